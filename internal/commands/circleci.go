package commands

import (
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/names"
)

// circleCIConfigFlags are circleci-config's flags; the config itself is
// CircleCI's to write (internal/ci/circleci).
type circleCIConfigFlags struct {
	job    circleci.JobOptions
	auth   authFlags
	failOn string // the scan gate, on when set (push --scan)
}

func newCircleCIConfigCmd(g *Globals) *cobra.Command {
	o := circleCIConfigFlags{}
	cmd := &cobra.Command{
		Use:   "circleci-config",
		Short: "Print a .circleci/config.yml that installs containerise and pushes",
		Long: `Print a complete CircleCI configuration, ready to commit as
.circleci/config.yml: a job with a remote Docker engine that installs
containerise and runs 'containerise push'.

The job reads the variables 'containerise setup' printed
(AWS_IAM_USER_ACCESS_KEY_ID, AWS_IAM_USER_SECRET_ACCESS_KEY, AWS_IAM_ROLE_ARN,
AWS_REGION) from the project's environment variables or a context. With
--auth oidc (after a keyless setup) the job has no key variables: CircleCI
injects the job's OIDC token itself, and push runs with --auth oidc (and,
given --circleci-org-id, checks that the token comes from that
organization before asking AWS).

Every value lands in the job's shell quoted, and is checked first (exit 2):
  --tag              a Docker tag; ${CIRCLE_...} references (CircleCI's own
                     variables, e.g. ${CIRCLE_SHA1}) may stand for all or part
                     of it and expand in the job
  --context, --file  a path relative to the repository root, without control
                     characters or '<<' (CircleCI's parameter syntax)
  --image            a Docker image reference, e.g. cimg/base:current
  --install-version  a release tag vMAJOR.MINOR.PATCH with an optional
                     pre-release (v1.2.3, v1.2.3-rc.1); a commit hash of 7 to
                     40 lowercase hex digits; or 'latest'
  --release-url      an https:// address holding one folder per release tag

Installing: the job downloads the release archive for its platform and the
release's checksums file from --release-url (BASE/v1.2.3/...), refuses an
archive whose SHA-256 does not match, and unpacks containerise into
$HOME/.local/bin for the later steps (through $BASH_ENV): no Go, no compile,
no sudo, on a small image (cimg/base:current). The release is this binary's
own version unless --install-version names another. A commit hash or
'latest' has no release: the job builds it with 'go install' on cimg/go.
A development build of containerise (no release version) has no release of
its own either, so it writes the 'go install' of latest and says so on
stderr: give --install-version to pin a release.

Scan gate: --fail-on SEVERITY makes the job run 'push --scan --fail-on
SEVERITY' (with --only-fixable and --ignore-file passed on), write a JUnit
report to ` + circleci.ScanReport + ` and upload it with store_test_results, so
the findings show in the job's Tests tab.`,
		Example: `  containerise circleci-config > .circleci/config.yml
  containerise circleci-config --repository my-app --tag v1 --tag '${CIRCLE_SHA1}'
  containerise circleci-config --install-version v1.4.0
  containerise circleci-config --release-url https://downloads.example.com/containerise
  containerise circleci-config --auth oidc --circleci-org-id <org UUID>
  containerise circleci-config --fail-on HIGH --only-fixable --ignore-file .scanignore`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			job, err := o.options(g.Version())
			if err != nil {
				return err
			}
			if note := job.InstallNote(); note != "" {
				g.Logf("%s", note)
			}
			out, err := circleci.WriteConfig(job)
			if err != nil {
				return err
			}
			_, err = g.Out.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.job.Repository, "repository", names.Repository, "ECR repository to push to")
	f.StringArrayVar(&o.job.Tags, "tag", []string{"v1"}, "image tag (repeatable); ${CIRCLE_SHA1} and other CircleCI variables expand in the job")
	f.StringVar(&o.job.Context, "context", ".", "build context, relative to the repository root")
	f.StringVar(&o.job.File, "file", "", "Dockerfile, relative to the repository root (default: Dockerfile in the context)")
	f.StringVar(&o.job.Image, "image", "", "the job's Docker image reference (default: "+install.ReleaseImage+" for a release, "+install.SourceImage+" to build from source)")
	f.StringVar(&o.job.Install, "install-version", "", "containerise release to install, like v1.2.3 or v1.2.3-rc.1; a commit hash or latest builds from source with go install (default: this binary's release)")
	f.StringVar(&o.job.ReleaseURL, "release-url", install.DefaultReleaseURL, "where the job downloads releases from: BASE/v1.2.3/<archive> and its checksums file")
	f.StringVar(&o.failOn, "fail-on", "", "turn the scan gate on: the job fails when ECR's scan finds a finding at or above this severity (CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL), and uploads a JUnit report")
	f.BoolVar(&o.job.OnlyFixable, "only-fixable", false, "with --fail-on: count only findings with a fix available")
	f.StringVar(&o.job.IgnoreFile, "ignore-file", "", "with --fail-on: the gate's ignore file, relative to the repository root")
	f.StringVar(&o.job.Builder, "builder", "auto", "push's builder: auto (the remote engine's own), or container (a BuildKit container on it, which caches a multi-stage Dockerfile's build stages in the registry)")
	o.auth.add(f, false)
	return cmd
}

// options checks the flags before anything is written (exit 2) and turns
// them into the job's options.
func (o circleCIConfigFlags) options(version string) (circleci.JobOptions, error) {
	job := o.job
	job.FailOn = o.failOn
	if err := job.Validate(); err != nil {
		return job, err
	}
	if o.failOn != "" {
		threshold, err := failOn(o.failOn)
		if err != nil {
			return job, err
		}
		job.FailOn = string(threshold)
	}
	_, circle, err := o.auth.options(false)
	if err != nil {
		return job, err
	}
	job.Keyless, job.Trusted, job.Version = o.auth.keyless(), circle.OrgID, version
	return job, nil
}

// shellSafe values need no quoting in a POSIX shell argument.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@+-]+$`)

// shellQuote quotes one argument for a POSIX shell, for the command lines
// hints suggest: inside single quotes nothing expands.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
