package commands

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/bitbucket"
	"github.com/containerise/containerise/internal/ci/buildkite"
	"github.com/containerise/containerise/internal/ci/github"
	"github.com/containerise/containerise/internal/ci/gitlab"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/provision"
)

// ciTrustFlags say which jobs of CIs other than CircleCI a keyless role
// trusts. Each CI named adds its OIDC provider and one trust statement;
// --branch (authFlags) narrows every one of them. setup and policies share
// them (through authFlags), so policies shows what setup writes.
type ciTrustFlags struct {
	githubRepos, githubEnvs []string
	githubHost              string

	gitlabProjects        []string
	gitlabHost, gitlabAud string

	bitbucketWorkspace     string
	bitbucketWorkspaceUUID string
	bitbucketRepos         []string

	buildkiteOrg       string
	buildkitePipelines []string
}

// ciTrustFlagNames are the flags, in the order help shows them.
var ciTrustFlagNames = []string{
	"github-repo", "github-environment", "github-host",
	"gitlab-project", "gitlab-host", "gitlab-audience",
	"bitbucket-workspace", "bitbucket-workspace-uuid", "bitbucket-repo-uuid",
	"buildkite-org", "buildkite-pipeline",
}

// ciTrustGroup is the flags' section in a command's help.
var ciTrustGroup = flagGroup{"Keyless from GitHub Actions, GitLab, Bitbucket, Buildkite (with --auth oidc)", ciTrustFlagNames}

func (c *ciTrustFlags) add(f *pflag.FlagSet) {
	f.StringArrayVar(&c.githubRepos, "github-repo", nil,
		"a GitHub repository (OWNER/REPO) whose Actions jobs may assume the role; repeatable")
	f.StringArrayVar(&c.githubEnvs, "github-environment", nil,
		"with --github-repo: only jobs that use this GitHub environment (their token's sub names it instead of the ref); repeatable")
	f.StringVar(&c.githubHost, "github-host", "",
		"with --github-repo: a GitHub Enterprise Server host (issuer https://HOST/_services/token); default github.com")
	f.StringArrayVar(&c.gitlabProjects, "gitlab-project", nil,
		"a GitLab project (GROUP/PROJECT, subgroups allowed) whose jobs may assume the role; repeatable")
	f.StringVar(&c.gitlabHost, "gitlab-host", "",
		"with --gitlab-project: a self-managed GitLab host (issuer https://HOST); default gitlab.com")
	f.StringVar(&c.gitlabAud, "gitlab-audience", "",
		"with --gitlab-project: the aud the job's id_tokens asks for (default "+gitlab.DefaultAudience+")")
	f.StringVar(&c.bitbucketWorkspace, "bitbucket-workspace", "",
		"a Bitbucket workspace (its slug) whose Pipelines steps may assume the role (Repository settings > OpenID Connect)")
	f.StringVar(&c.bitbucketWorkspaceUUID, "bitbucket-workspace-uuid", "",
		"with --bitbucket-workspace: the workspace's UUID, the last part of its audience (Repository settings > OpenID Connect)")
	f.StringArrayVar(&c.bitbucketRepos, "bitbucket-repo-uuid", nil,
		"with --bitbucket-workspace: a repository UUID whose steps may assume the role; repeatable")
	f.StringVar(&c.buildkiteOrg, "buildkite-org", "", "a Buildkite organization slug whose pipelines' jobs may assume the role")
	f.StringArrayVar(&c.buildkitePipelines, "buildkite-pipeline", nil,
		"with --buildkite-org: a pipeline slug whose jobs may assume the role; repeatable")
}

// set names the first of these flags given, "" when none.
func (c *ciTrustFlags) set() string {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"--github-repo", len(c.githubRepos) > 0}, {"--github-environment", len(c.githubEnvs) > 0}, {"--github-host", c.githubHost != ""},
		{"--gitlab-project", len(c.gitlabProjects) > 0}, {"--gitlab-host", c.gitlabHost != ""}, {"--gitlab-audience", c.gitlabAud != ""},
		{"--bitbucket-workspace", c.bitbucketWorkspace != ""}, {"--bitbucket-workspace-uuid", c.bitbucketWorkspaceUUID != ""}, {"--bitbucket-repo-uuid", len(c.bitbucketRepos) > 0},
		{"--buildkite-org", c.buildkiteOrg != ""}, {"--buildkite-pipeline", len(c.buildkitePipelines) > 0},
	} {
		if f.set {
			return f.name
		}
	}
	return ""
}

// selectors are the CIs' selectors, one per CI named, each narrowed to
// branches and checked before any call (a usage error names the flag).
func (c *ciTrustFlags) selectors(branches []string) ([]ci.Selector, error) {
	var out []ci.Selector
	if len(c.githubRepos) > 0 || len(c.githubEnvs) > 0 || c.githubHost != "" {
		out = append(out, github.Selector{Host: c.githubHost, Repos: c.githubRepos, Environments: c.githubEnvs, Branches: branches})
	}
	if len(c.gitlabProjects) > 0 || c.gitlabHost != "" || c.gitlabAud != "" {
		out = append(out, gitlab.Selector{Host: c.gitlabHost, Projects: c.gitlabProjects, Aud: c.gitlabAud, Branches: branches})
	}
	if c.bitbucketWorkspace != "" || c.bitbucketWorkspaceUUID != "" || len(c.bitbucketRepos) > 0 {
		out = append(out, bitbucket.Selector{Workspace: c.bitbucketWorkspace, WorkspaceUUID: c.bitbucketWorkspaceUUID, RepoUUIDs: c.bitbucketRepos, Branches: branches})
	}
	if c.buildkiteOrg != "" || len(c.buildkitePipelines) > 0 {
		out = append(out, buildkite.Selector{Org: c.buildkiteOrg, Pipelines: c.buildkitePipelines, Branches: branches})
	}
	for _, s := range out {
		if err := s.Validate(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// args are the flags that ask for the same trust again, for the command
// lines hints suggest.
func (c *ciTrustFlags) args() string {
	var args string
	add := func(flag string, values ...string) {
		for _, v := range values {
			if v != "" {
				args += " " + flag + " " + shellQuote(v)
			}
		}
	}
	add("--github-repo", c.githubRepos...)
	add("--github-environment", c.githubEnvs...)
	add("--github-host", c.githubHost)
	add("--gitlab-project", c.gitlabProjects...)
	add("--gitlab-host", c.gitlabHost)
	add("--gitlab-audience", c.gitlabAud)
	add("--bitbucket-workspace", c.bitbucketWorkspace)
	add("--bitbucket-workspace-uuid", c.bitbucketWorkspaceUUID)
	add("--bitbucket-repo-uuid", c.bitbucketRepos...)
	add("--buildkite-org", c.buildkiteOrg)
	add("--buildkite-pipeline", c.buildkitePipelines...)
	return args
}

// trustsOnlyOtherCIs reports whether a keyless setup's role trusts no
// CircleCI job, only other CIs' (its providers say which).
func trustsOnlyOtherCIs(res *provision.Result) bool {
	if !res.Keyless {
		return false
	}
	for _, r := range res.Resources {
		if r.Kind == resource.KindOIDCProvider && strings.HasPrefix(r.Name, "oidc.circleci.com/") {
			return false
		}
	}
	return true
}

// variablesHeading heads the variables setup prints.
func variablesHeading(res *provision.Result) string {
	if trustsOnlyOtherCIs(res) {
		return "CI variables (the job's environment)"
	}
	return "CircleCI environment variables"
}

// keylessNote says how a keyless job gets its credentials.
func keylessNote(res *provision.Result) string {
	if trustsOnlyOtherCIs(res) {
		return "Keyless: no access key to store. Each job gets an OIDC token from its CI, which\n" +
			"'containerise push' exchanges for the role's credentials ('containerise ci-config\n" +
			"--ci github|gitlab|bitbucket|buildkite --auth oidc' writes a job that asks for it)."
	}
	return "Keyless: no access key to store. CircleCI gives each job an OIDC token\n" +
		"(CIRCLE_OIDC_TOKEN_V2), which 'containerise push' exchanges for the role's credentials."
}
