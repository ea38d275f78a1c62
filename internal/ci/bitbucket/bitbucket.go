// Package bitbucket is Bitbucket Pipelines as a CI provider: the trust that
// lets a workspace's repositories' steps assume the role with their OIDC
// token, how push finds that token, and the bitbucket-pipelines.yml that
// pushes.
//
// A Bitbucket token's subject is {REPOSITORY_UUID}:{STEP_UUID} (with the
// deployment environment's UUID after the repository's for a deployment
// step); it names no branch, and IAM offers no condition key for
// Bitbucket's branchName claim, so a trust cannot be narrowed to branches.
package bitbucket

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/idtoken"
	"github.com/containerise/containerise/internal/ci/jobconfig"
	"github.com/containerise/containerise/internal/ci/trust"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/policies"
)

const (
	// TokenVariable holds a step's token when the step says oidc: true.
	TokenVariable  = "BITBUCKET_STEP_OIDC_TOKEN"
	audiencePrefix = "ari:cloud:bitbucket::workspace/"
	name           = "bitbucket"
)

// IssuerFor is the issuer of a workspace's step tokens.
func IssuerFor(workspace string) string {
	return "https://api.bitbucket.org/2.0/workspaces/" + workspace + "/pipelines-config/identity/oidc"
}

// AudienceFor is the aud of a workspace's step tokens.
func AudienceFor(workspaceUUID string) string { return audiencePrefix + bare(workspaceUUID) }

// Selector is the steps of some of a workspace's repositories that a role
// trusts.
type Selector struct {
	// Workspace is the workspace's ID (its slug in URLs).
	Workspace string
	// WorkspaceUUID is the workspace's UUID, with or without braces.
	WorkspaceUUID string
	// RepoUUIDs are the repositories' UUIDs, with or without braces.
	RepoUUIDs []string
	// Branches must be empty: see the package comment.
	Branches []string
}

var (
	workspaceID = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,61}$`)
	uuid        = regexp.MustCompile(`^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$`)
)

func bare(u string) string   { return strings.ToLower(strings.Trim(u, "{}")) }
func braced(u string) string { return "{" + bare(u) + "}" }

// Provider names the CI.
func (s Selector) Provider() string { return name }

// RoleTags name the issuer on the role, so that teardown finds its
// provider even after the role's trust stopped naming it.
func (s Selector) RoleTags() map[string]string { return ci.IssuerTags(s) }

// Validate checks the selector before any call.
func (s Selector) Validate() error {
	if !workspaceID.MatchString(s.Workspace) {
		return clierror.Usagef("--bitbucket-workspace %q is not a workspace ID (lower-case letters, digits, '-', '_', '.'): copy it from the identity provider URL under Repository settings > OpenID Connect", s.Workspace)
	}
	if !uuid.MatchString(s.WorkspaceUUID) {
		return clierror.Usagef("--bitbucket-workspace-uuid %q is not a UUID: copy it from the audience (ari:cloud:bitbucket::workspace/UUID) under Repository settings > OpenID Connect", s.WorkspaceUUID)
	}
	if len(s.RepoUUIDs) == 0 {
		return clierror.Usagef("--bitbucket-repo-uuid is required: name the repositories whose steps may assume the role (Repository settings > OpenID Connect shows the UUID)")
	}
	for _, r := range s.RepoUUIDs {
		if !uuid.MatchString(r) {
			return clierror.Usagef("--bitbucket-repo-uuid %q is not a UUID", r)
		}
	}
	if len(s.Branches) > 0 {
		return clierror.Usagef("--branch cannot narrow Bitbucket's trust: a step's token names its repository and step, not its branch, and IAM cannot test Bitbucket's branch claim; restrict the pipeline's branches in Bitbucket, or drop --branch")
	}
	return nil
}

// Issuer is the URL of the tokens' issuer and of the IAM OIDC provider.
func (s Selector) Issuer() string { return IssuerFor(s.Workspace) }

// Audience is the aud the trust requires, which names the workspace.
func (s Selector) Audience() string { return AudienceFor(s.WorkspaceUUID) }

// Subjects are the sub patterns the trust admits: any step of each
// repository, deployment steps included. A braced UUID cannot be extended,
// so no other repository matches.
func (s Selector) Subjects() []string {
	var out []string
	for _, r := range s.RepoUUIDs {
		out = append(out, braced(r)+":*", braced(r)+"{*}:*")
	}
	return out
}

// Statement is the trust statement: the workspace's audience and the
// repositories' subjects.
func (s Selector) Statement(providerARN string) policies.Statement {
	iss := s.Issuer()
	return trust.Statement(providerARN, policies.Condition{
		"StringEquals": {trust.Key(iss, "aud"): {s.Audience()}},
		"StringLike":   {trust.Key(iss, "sub"): trust.Literals(s.Subjects())},
	})
}

// Describe names the jobs for people.
func (s Selector) Describe() string {
	var repos []string
	for _, r := range s.RepoUUIDs {
		repos = append(repos, braced(r))
	}
	return "Bitbucket Pipelines steps of workspace " + s.Workspace + ", repository " + strings.Join(repos, ", ")
}

// Provider is Bitbucket Pipelines as its steps see it.
type Provider struct{}

// Name is the CI's short name.
func (Provider) Name() string { return name }

// Title is its name for people.
func (Provider) Title() string { return "Bitbucket Pipelines" }

// Detect: Bitbucket sets BITBUCKET_BUILD_NUMBER in every step.
func (Provider) Detect(getenv func(string) string) bool {
	return getenv("BITBUCKET_BUILD_NUMBER") != ""
}

// Token reads the step's token and checks its issuer (the workspace the
// step runs in, BITBUCKET_WORKSPACE), audience and expiry. The audience is
// job.Audience when known, else any workspace's.
func (Provider) Token(_ context.Context, job ci.Job) (*ci.Token, error) {
	raw := job.Getenv(TokenVariable)
	if raw == "" {
		if !job.Required {
			return nil, nil
		}
		return nil, fmt.Errorf("Bitbucket gave this step no OIDC token (%s is not set): add `oidc: true` to the step", TokenVariable)
	}
	tok, err := idtoken.Parse(raw, TokenVariable)
	if err != nil {
		return nil, err
	}
	issuer := ""
	if ws := job.Getenv("BITBUCKET_WORKSPACE"); ws != "" {
		issuer = IssuerFor(ws)
	}
	if err := idtoken.Check(tok, issuer, job.Audience, job.Now); err != nil {
		return nil, err
	}
	if job.Audience == "" && (len(tok.Claims.Audience) != 1 || !strings.HasPrefix(tok.Claims.Audience[0], audiencePrefix)) {
		return nil, fmt.Errorf("the OIDC token in %s is for audience %q, not a Bitbucket workspace's (%s...): a custom audience on the step does not match the role's trust", TokenVariable, strings.Join(tok.Claims.Audience, ","), audiencePrefix)
	}
	tok.Claims.Job = "repository " + tok.Claims.Extra["repositoryUuid"] + ", branch " + tok.Claims.Extra["branchName"]
	return tok, nil
}

// SessionName names the role session after the repository and the build.
func (Provider) SessionName(getenv func(string) string, now time.Time) string {
	return idtoken.SessionName("bitbucket", getenv("BITBUCKET_REPO_FULL_NAME"), getenv("BITBUCKET_BUILD_NUMBER"), now)
}

// Variables are the repository variables the step reads.
func (Provider) Variables(keyless bool) []string { return jobconfig.Variables(keyless) }

// ConfigPath is where the emitted config goes.
const ConfigPath = "bitbucket-pipelines.yml"

// Config writes a bitbucket-pipelines.yml whose default pipeline has one
// step that installs containerise and pushes, with Bitbucket's Docker
// service. Keyless, the step says oidc: true.
func (Provider) Config(o ci.ConfigOptions) (ci.Config, error) {
	if err := jobconfig.Check(o, "BITBUCKET_"); err != nil {
		return ci.Config{}, err
	}
	inst := jobconfig.InstallStep(o, install.Export)
	image := o.Image
	if image == "" {
		image = inst.Image
	}
	s, m, y := jobconfig.Str, jobconfig.Map, jobconfig.Seq
	step := m(s("name"), s("Build and push to ECR"))
	if o.Keyless {
		step.Content = append(step.Content,
			jobconfig.Comment(s("oidc"), "The step's OIDC token (BITBUCKET_STEP_OIDC_TOKEN), which push exchanges\nfor the role."),
			jobconfig.Bool(true))
	}
	step.Content = append(step.Content,
		jobconfig.Comment(s("services"), "A Docker engine for the build (DOCKER_HOST)."), y(s("docker")),
		s("script"), y(
			jobconfig.Block(inst.Command),
			s(jobconfig.PushCommand(o, "${BITBUCKET_COMMIT}", "$")),
		))
	header := "Generated by 'containerise ci-config --ci bitbucket'.\n"
	if o.Keyless {
		header += "Keyless: set the repository variables AWS_IAM_ROLE_ARN and AWS_REGION\n" +
			"(printed by 'containerise setup --auth oidc --bitbucket-workspace ...'); no access key."
	} else {
		header += "Set the repository variables AWS_IAM_USER_ACCESS_KEY_ID and\n" +
			"AWS_IAM_USER_SECRET_ACCESS_KEY (secured), AWS_IAM_ROLE_ARN and AWS_REGION\n" +
			"(printed by 'containerise setup')."
	}
	root := m(
		jobconfig.Comment(s("image"), header), s(image),
		s("pipelines"), m(s("default"), y(m(s("step"), step))),
	)
	body, err := jobconfig.Encode(root, "Bitbucket Pipelines configuration")
	if err != nil {
		return ci.Config{}, err
	}
	return ci.Config{Path: ConfigPath, Body: body}, nil
}
