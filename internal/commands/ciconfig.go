package commands

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/bitbucket"
	"github.com/containerise/containerise/internal/ci/buildkite"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/github"
	"github.com/containerise/containerise/internal/ci/gitlab"
	"github.com/containerise/containerise/internal/ci/jobconfig"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/provision"
)

// configProviders are the CIs ci-config writes, each through the CI
// provider seam.
var configProviders = map[string]ci.Provider{
	"circleci":  circleci.Provider{},
	"github":    github.Provider{},
	"gitlab":    gitlab.Provider{},
	"bitbucket": bitbucket.Provider{},
	"buildkite": buildkite.Provider{},
}

type ciConfigOptions struct {
	ci, auth, roleARN                         string
	repository, context, file, image, install string
	releaseURL                                string
	tags                                      []string
	gitlabAudience, circleOrg                 string
}

// ciNames lists the CIs, CircleCI first.
func ciNames() string {
	all := []string{circleci.Name}
	for n := range configProviders {
		if n != circleci.Name {
			all = append(all, n)
		}
	}
	sort.Strings(all[1:])
	return strings.Join(all, "|")
}

func newCIConfigCmd(g *Globals) *cobra.Command {
	o := ciConfigOptions{}
	cmd := &cobra.Command{
		Use:   "ci-config",
		Short: "Print a CI config (GitHub Actions, GitLab, Bitbucket, Buildkite, CircleCI) that installs containerise and pushes",
		Long: `Print a complete config for one CI (--ci github, gitlab, bitbucket, buildkite
or circleci): one job that installs a pinned, checksummed containerise release
and runs push; stderr names the path to commit it at. Keyless by default: the
job exchanges its OIDC token for the role, which comes from --role-arn or the
CI's AWS_IAM_ROLE_ARN variable. A tag may use the CI's own variables, as
'${GITHUB_SHA}'.` + guideLine + "ci/README.md",
		Example: `  containerise ci-config --ci github > .github/workflows/containerise.yml
  containerise ci-config --ci gitlab --repository my-app --tag '${CI_COMMIT_SHORT_SHA}' > .gitlab-ci.yml
  containerise ci-config --ci bitbucket --role-arn arn:aws:iam::123456789012:role/containerise
  containerise ci-config --ci buildkite --auth keys`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, path, err := o.render(g.Version())
			if err != nil {
				return err
			}
			if note := o.installNote(g.Version()); note != "" {
				g.Logf("%s", note)
			}
			if _, err := g.Out.Write(body); err != nil {
				return err
			}
			fmt.Fprintf(g.Err, "ci-config: save this as %s\n", path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ci, "ci", "", "the CI to write a config for: "+ciNames())
	f.StringVar(&o.auth, "auth", string(provision.AuthOIDC), "how the job assumes the role: oidc (keyless, the job's OIDC token) or keys (the CI user's access key)")
	f.StringVar(&o.roleARN, "role-arn", "", "the role to embed (default: read from the CI's AWS_IAM_ROLE_ARN variable)")
	f.StringVar(&o.repository, "repository", names.Repository, "ECR repository to push to")
	f.StringArrayVar(&o.tags, "tag", nil, "image tag (repeatable; default: the CI's commit); the CI's own ${NAME} variables expand in the job")
	f.StringVar(&o.context, "context", ".", "build context, relative to the repository root")
	f.StringVar(&o.file, "file", "", "Dockerfile, relative to the repository root (default: Dockerfile in the context)")
	f.StringVar(&o.image, "image", "", "the job's image, where the CI runs jobs in one (default: "+jobconfig.ReleaseImage+" for a release, "+jobconfig.SourceImage+" to build from source; CircleCI "+install.ReleaseImage+" or "+install.SourceImage+")")
	f.StringVar(&o.install, "install-version", "", "containerise release to install, like v1.2.3; a commit hash or latest builds from source with go install (default: this binary's release)")
	f.StringVar(&o.releaseURL, "release-url", install.DefaultReleaseURL, "where the job downloads releases from: BASE/v1.2.3/<archive> and its checksums file")
	f.StringVar(&o.gitlabAudience, "gitlab-audience", "", "--ci gitlab: the audience the job's ID token asks for (default sts.amazonaws.com)")
	f.StringVar(&o.circleOrg, "circleci-org-id", "", "--ci circleci with --auth oidc: the organization push checks the token against")
	return cmd
}

// render checks the options and writes the config.
func (o ciConfigOptions) render(version string) ([]byte, string, error) {
	var keyless bool
	switch provision.Auth(o.auth) {
	case provision.AuthOIDC:
		keyless = true
	case provision.AuthKeys:
	default:
		return nil, "", clierror.Usagef("--auth %q is invalid: use oidc (keyless, the job's OIDC token) or keys (the CI user's access key)", o.auth)
	}
	if o.ci == "" {
		return nil, "", clierror.Usagef("--ci is required: one of %s", ciNames())
	}
	if o.ci != "gitlab" && o.gitlabAudience != "" {
		return nil, "", clierror.Usagef("--gitlab-audience is for --ci gitlab")
	}
	if o.ci != "circleci" && o.circleOrg != "" {
		return nil, "", clierror.Usagef("--circleci-org-id is for --ci circleci")
	}
	p, ok := configProviders[o.ci]
	if !ok {
		return nil, "", clierror.Usagef("--ci %q is not a CI containerise knows: use one of %s", o.ci, ciNames())
	}
	if err := jobconfig.RelativePath("--context", o.context); err != nil {
		return nil, "", err
	}
	// What push checks the token against: GitLab's audience, CircleCI's
	// organisation (each refused above for the other CIs).
	trusted := o.gitlabAudience
	if o.ci == circleci.Name {
		trusted = o.circleOrg
	}
	c, err := p.Config(ci.ConfigOptions{
		Keyless: keyless, RoleARN: o.roleARN, Trusted: trusted,
		Repository: o.repository, Tags: o.tags, Context: o.context, File: o.file,
		Image: o.image, Install: o.install, Version: version, ReleaseURL: o.releaseURL,
	})
	if err != nil {
		return nil, "", err
	}
	return c.Body, c.Path, nil
}

// installNote explains, for stderr, an install step the user did not pin:
// a development build has no release, so the job builds from source.
func (o ciConfigOptions) installNote(version string) string {
	return install.Options{Version: o.install, ReleaseURL: o.releaseURL, Binary: version}.StepFor(install.BashEnv).Note
}
