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
		Long: `Print a complete .circleci/config.yml: a job with a remote Docker engine
that installs a pinned, checksummed containerise release (no Go) and runs
push. With --auth oidc the job holds no key; with --fail-on it also gates on
ECR's scan and uploads a JUnit report. Every value is checked (exit 2) and
quoted for the job's shell; a tag may use CircleCI's variables, as
'${CIRCLE_SHA1}'.` + guideLine + "ci/circleci.md",
		Example: `  # Keyless, tagged with the commit, gated on HIGH findings
  containerise circleci-config --auth oidc --circleci-org-id <org UUID> --tag '${CIRCLE_SHA1}' --fail-on HIGH > .circleci/config.yml

  # The blog's keys, another repository, two tags
  containerise circleci-config --repository my-app --tag v1 --tag '${CIRCLE_SHA1}'

  # Another release, from your own mirror
  containerise circleci-config --install-version v1.4.0 --release-url https://downloads.example.com/containerise`,
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
	f.BoolVar(&o.job.RequireSignature, "require-signature", false, "with --fail-on: also fail unless ECR's managed signing signed the image (setup --signing-profile)")
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
