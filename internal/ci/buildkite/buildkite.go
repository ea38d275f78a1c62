// Package buildkite is Buildkite as a CI provider: the trust that lets an
// organization's pipelines' jobs assume the role with their OIDC token, how
// push requests that token from the agent, and the pipeline.yml step that
// pushes.
package buildkite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
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
	// Issuer is the issuer of every Buildkite agent's job tokens.
	Issuer = "https://agent.buildkite.com"
	// DefaultAudience is what a job asks its token for, as Buildkite
	// documents for AWS.
	DefaultAudience = "sts.amazonaws.com"
	name            = "buildkite"
	agent           = "buildkite-agent"
)

// Selector is the jobs of some of an organization's pipelines that a role
// trusts: all of them, or those building some branches.
type Selector struct {
	Org       string
	Pipelines []string
	Branches  []string
	// Aud is the audience the jobs request; empty for DefaultAudience.
	Aud string
}

// Slugs: lower-case letters, digits and '-'; never ':', which separates
// the subject's fields.
var slug = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`)

// Provider names the CI.
func (s Selector) Provider() string { return name }

// RoleTags name the issuer on the role, so that teardown finds its
// provider even after the role's trust stopped naming it.
func (s Selector) RoleTags() map[string]string { return ci.IssuerTags(s) }

// Validate checks the selector before any call.
func (s Selector) Validate() error {
	if !slug.MatchString(s.Org) {
		return clierror.Usagef("--buildkite-org %q is not an organization slug (as in buildkite.com/SLUG)", s.Org)
	}
	if len(s.Pipelines) == 0 {
		return clierror.Usagef("--buildkite-pipeline is required: name the pipelines (their slugs) whose jobs may assume the role")
	}
	for _, p := range s.Pipelines {
		if !slug.MatchString(p) {
			return clierror.Usagef("--buildkite-pipeline %q is not a pipeline slug (as in buildkite.com/ORG/SLUG)", p)
		}
	}
	for _, b := range s.Branches {
		if err := trust.Branch(b); err != nil {
			return clierror.AsUsage(err)
		}
	}
	if s.Aud != "" {
		if err := trust.Plain("the audience", s.Aud, ""); err != nil {
			return clierror.AsUsage(err)
		}
	}
	return nil
}

// Issuer is the URL of the tokens' issuer and of the IAM OIDC provider.
func (s Selector) Issuer() string { return Issuer }

// Audience is the aud the trust requires.
func (s Selector) Audience() string {
	if s.Aud == "" {
		return DefaultAudience
	}
	return s.Aud
}

// Subjects are the sub patterns the trust admits. The subject is
// organization:ORG:pipeline:PIPELINE:ref:REF:commit:SHA:step:KEY; slugs
// hold no ':', so neither can be extended, and a branch is matched as
// refs/heads/BRANCH up to ":commit:".
func (s Selector) Subjects() []string {
	var out []string
	for _, p := range s.Pipelines {
		base := "organization:" + s.Org + ":pipeline:" + p + ":"
		if len(s.Branches) == 0 {
			out = append(out, base+"ref:*")
			continue
		}
		for _, b := range s.Branches {
			out = append(out, base+"ref:refs/heads/"+b+":commit:*:step:*")
		}
	}
	return out
}

// twoCommits matches a subject naming ":commit:" twice. A build's branch
// is whatever its creator said (the API takes any string), so a branch
// called "main:commit:x:step:y" would otherwise match the pattern for main,
// since IAM's '*' also matches ':'.
const twoCommits = "*:commit:*:commit:*"

// Statement is the trust statement: the audience, the subjects, and, with
// branches, the guard against a branch name that imitates a subject.
func (s Selector) Statement(providerARN string) policies.Statement {
	sub := trust.Key(Issuer, "sub")
	cond := policies.Condition{
		"StringEquals": {trust.Key(Issuer, "aud"): {s.Audience()}},
		"StringLike":   {sub: trust.Literals(s.Subjects())},
	}
	if len(s.Branches) > 0 {
		cond["StringNotLike"] = map[string]policies.Values{sub: {twoCommits}}
	}
	return trust.Statement(providerARN, cond)
}

// Describe names the jobs for people.
func (s Selector) Describe() string {
	d := "Buildkite jobs of " + s.Org + "/" + strings.Join(s.Pipelines, ", "+s.Org+"/")
	if len(s.Branches) > 0 {
		d += " on branch " + strings.Join(s.Branches, ", ")
	}
	return d
}

// Provider is Buildkite as its jobs see it.
type Provider struct{}

// Name is the CI's short name.
func (Provider) Name() string { return name }

// Title is its name for people.
func (Provider) Title() string { return "Buildkite" }

// Detect: the agent sets BUILDKITE=true in every job.
func (Provider) Detect(getenv func(string) string) bool { return getenv("BUILDKITE") == "true" }

// Token asks the job's agent for a token (buildkite-agent oidc
// request-token --audience AUD) and checks its issuer, audience and
// expiry. The agent reads the job's own variables (BUILDKITE_JOB_ID,
// BUILDKITE_AGENT_ACCESS_TOKEN) from the environment it inherits.
func (Provider) Token(ctx context.Context, job ci.Job) (*ci.Token, error) {
	aud := job.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	path, err := exec.LookPath(agent)
	if err != nil {
		if !job.Required {
			return nil, nil
		}
		return nil, fmt.Errorf("%s is not on PATH, so this job cannot request its OIDC token: run push in a command step of a Buildkite agent (v3.48 or later)", agent)
	}
	cmd := exec.CommandContext(ctx, path, "oidc", "request-token", "--audience", aud)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500]
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) && msg != "" {
			return nil, fmt.Errorf("%s oidc request-token --audience %s failed: %s", agent, aud, msg)
		}
		return nil, fmt.Errorf("%s oidc request-token --audience %s: %v", agent, aud, err)
	}
	tok, err := idtoken.Parse(stdout.String(), agent+" oidc request-token")
	if err != nil {
		return nil, err
	}
	if err := idtoken.Check(tok, Issuer, aud, job.Now); err != nil {
		return nil, err
	}
	e := tok.Claims.Extra
	tok.Claims.Job = "pipeline " + e["organization_slug"] + "/" + e["pipeline_slug"] + ", branch " + e["build_branch"] + ", step " + e["step_key"]
	return tok, nil
}

// SessionName names the role session after the pipeline and the build.
func (Provider) SessionName(getenv func(string) string, now time.Time) string {
	pipeline := getenv("BUILDKITE_ORGANIZATION_SLUG")
	if p := getenv("BUILDKITE_PIPELINE_SLUG"); p != "" {
		pipeline += "/" + p
	}
	return idtoken.SessionName("buildkite", pipeline, getenv("BUILDKITE_BUILD_NUMBER"), now)
}

// Variables are the variables the job needs from the agent's environment
// (or the pipeline's settings).
func (Provider) Variables(keyless bool) []string { return jobconfig.Variables(keyless) }

// ConfigPath is where the emitted pipeline goes.
const ConfigPath = ".buildkite/pipeline.yml"

// Config writes a pipeline.yml with one command step that installs
// containerise and pushes. Buildkite interpolates the pipeline's variables
// when it is uploaded, so '$' reaches the job's shell as "$$".
func (Provider) Config(o ci.ConfigOptions) (ci.Config, error) {
	if err := jobconfig.Check(o, "BUILDKITE_"); err != nil {
		return ci.Config{}, err
	}
	s, m, y := jobconfig.Str, jobconfig.Map, jobconfig.Seq
	inst := jobconfig.InstallStep(o, install.Export)
	step := m(
		s("label"), s(":docker: Build and push to ECR"),
		s("key"), s("containerise-push"),
		s("command"), y(
			// Buildkite interpolates '$' when the pipeline is uploaded:
			// "$$" reaches the job's shell as '$'.
			jobconfig.Block(strings.ReplaceAll(inst.Command, "$", "$$")),
			s(jobconfig.PushCommand(o, "${BUILDKITE_COMMIT}", "$$")),
		),
	)
	needs := "The agent needs curl, tar and sha256sum (to install a checksummed\nrelease of containerise) and a Docker engine.\n"
	if inst.FromSource {
		needs = "The agent needs Go (to build containerise from source) and a Docker\nengine.\n"
	}
	header := "Generated by 'containerise ci-config --ci buildkite'.\n" + needs
	if o.Keyless {
		header += "Keyless: give the job AWS_IAM_ROLE_ARN and AWS_REGION (printed by\n" +
			"'containerise setup --auth oidc --buildkite-org ...'); no access key. push\n" +
			"requests the job's OIDC token with buildkite-agent oidc request-token."
	} else {
		header += "Give the job AWS_IAM_USER_ACCESS_KEY_ID, AWS_IAM_USER_SECRET_ACCESS_KEY,\n" +
			"AWS_IAM_ROLE_ARN and AWS_REGION (printed by 'containerise setup'), for\n" +
			"example from Buildkite secrets in an environment hook."
	}
	root := m(jobconfig.Comment(s("steps"), header), y(step))
	body, err := jobconfig.Encode(root, "Buildkite pipeline")
	if err != nil {
		return ci.Config{}, err
	}
	return ci.Config{Path: ConfigPath, Body: body}, nil
}
