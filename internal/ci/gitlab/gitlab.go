// Package gitlab is GitLab CI as a CI provider: the trust that lets a
// project's jobs assume the role with an ID token (id_tokens), how push
// finds that token, and the .gitlab-ci.yml job that pushes.
package gitlab

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
	// DefaultHost is GitLab.com, whose tokens' issuer is https://gitlab.com.
	DefaultHost = "gitlab.com"
	// DefaultAudience is the aud the emitted job asks its ID token for.
	// GitLab has no default: the job's id_tokens names one.
	DefaultAudience = "sts.amazonaws.com"
	// TokenVariable is the variable the emitted job's id_tokens fills,
	// and the one push reads.
	TokenVariable = "GITLAB_OIDC_TOKEN"
	name          = "gitlab"
)

// Selector is the jobs of some projects a role trusts: all of them, or
// those building some branches.
type Selector struct {
	// Host is a self-managed instance's host name; empty for GitLab.com.
	Host string
	// Projects are full project paths, GROUP[/SUBGROUP...]/PROJECT.
	Projects []string
	// Aud is the aud the jobs' id_tokens ask for; empty for
	// DefaultAudience.
	Aud      string
	Branches []string
}

var (
	projectPath = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$`)
	hostName    = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?$`)
)

// Provider names the CI.
func (s Selector) Provider() string { return name }

// RoleTags name the issuer on the role, so that teardown finds its
// provider even after the role's trust stopped naming it.
func (s Selector) RoleTags() map[string]string { return ci.IssuerTags(s) }

// Validate checks the selector before any call.
func (s Selector) Validate() error {
	if len(s.Projects) == 0 {
		return clierror.Usagef("--gitlab-project is required: name the project (GROUP/PROJECT) whose jobs may assume the role")
	}
	for _, p := range s.Projects {
		if !projectPath.MatchString(p) {
			return clierror.Usagef("--gitlab-project %q is not a project path (GROUP/PROJECT, subgroups allowed)", p)
		}
	}
	if s.Host != "" && !hostName.MatchString(s.Host) {
		return clierror.Usagef("--gitlab-host %q is not a host name (gitlab.example.com)", s.Host)
	}
	if s.Aud != "" {
		if err := trust.Plain("--gitlab-audience", s.Aud, ""); err != nil {
			return clierror.AsUsage(err)
		}
		if strings.Contains(s.Aud, "$") {
			return clierror.Usagef("--gitlab-audience %q holds '$', which GitLab expands in id_tokens", s.Aud)
		}
	}
	for _, b := range s.Branches {
		if err := trust.Branch(b); err != nil {
			return clierror.AsUsage(err)
		}
	}
	return nil
}

// IssuerFor is the issuer of a GitLab instance's ID tokens.
func IssuerFor(host string) string {
	if host == "" {
		host = DefaultHost
	}
	return "https://" + host
}

// Issuer is the URL of the tokens' issuer and of the IAM OIDC provider.
func (s Selector) Issuer() string { return IssuerFor(s.Host) }

// Audience is the aud the trust requires.
func (s Selector) Audience() string {
	if s.Aud == "" {
		return DefaultAudience
	}
	return s.Aud
}

// Subjects are the sub claims (patterns without branches) the trust
// admits. A project path holds no ':', so "project_path:GROUP/PROJECT:*"
// admits no other project, nor a subproject.
func (s Selector) Subjects() []string {
	var out []string
	for _, p := range s.Projects {
		base := "project_path:" + p + ":"
		if len(s.Branches) == 0 {
			out = append(out, base+"*")
			continue
		}
		for _, b := range s.Branches {
			out = append(out, base+"ref_type:branch:ref:"+b)
		}
	}
	return out
}

// Statement is the trust statement: the audience, and the subject under
// StringLike with '$' escaped; with branches, a subject holds no wildcard,
// so a branch admits neither a tag of the same name nor another branch.
func (s Selector) Statement(providerARN string) policies.Statement {
	iss := s.Issuer()
	return trust.Statement(providerARN, policies.Condition{
		"StringEquals": {trust.Key(iss, "aud"): {s.Audience()}},
		"StringLike":   {trust.Key(iss, "sub"): trust.Literals(s.Subjects())},
	})
}

// Describe names the jobs for people.
func (s Selector) Describe() string {
	d := "GitLab CI jobs of " + strings.Join(s.Projects, ", ")
	if s.Host != "" {
		d += " on " + s.Host
	}
	if len(s.Branches) > 0 {
		d += " on branch " + strings.Join(s.Branches, ", ")
	}
	return d
}

// Provider is GitLab CI as its jobs see it.
type Provider struct{}

// Name is the CI's short name.
func (Provider) Name() string { return name }

// Title is its name for people.
func (Provider) Title() string { return "GitLab CI" }

// Detect: GitLab sets GITLAB_CI=true in every job.
func (Provider) Detect(getenv func(string) string) bool { return getenv("GITLAB_CI") == "true" }

// Token reads the ID token the job's id_tokens put in TokenVariable and
// checks its issuer (the instance the job runs on, CI_SERVER_URL),
// audience and expiry.
func (Provider) Token(_ context.Context, job ci.Job) (*ci.Token, error) {
	raw := job.Getenv(TokenVariable)
	aud := job.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	if raw == "" {
		if !job.Required {
			return nil, nil
		}
		return nil, fmt.Errorf("GitLab gave this job no ID token in %s: add to the job\n  id_tokens:\n    %s:\n      aud: %s", TokenVariable, TokenVariable, aud)
	}
	tok, err := idtoken.Parse(raw, TokenVariable)
	if err != nil {
		return nil, err
	}
	issuer := strings.TrimSuffix(job.Getenv("CI_SERVER_URL"), "/")
	if issuer == "" {
		issuer = IssuerFor("")
	}
	if err := idtoken.Check(tok, issuer, aud, job.Now); err != nil {
		return nil, err
	}
	tok.Claims.Job = "project " + tok.Claims.Extra["project_path"] + ", " + tok.Claims.Extra["ref_type"] + " " + tok.Claims.Extra["ref"]
	return tok, nil
}

// SessionName names the role session after the project and the job.
func (Provider) SessionName(getenv func(string) string, now time.Time) string {
	return idtoken.SessionName("gitlab", getenv("CI_PROJECT_PATH"), getenv("CI_JOB_ID"), now)
}

// Variables are the CI/CD variables the job reads.
func (Provider) Variables(keyless bool) []string { return jobconfig.Variables(keyless) }

// ConfigPath is where the emitted config goes.
const ConfigPath = ".gitlab-ci.yml"

// Config writes a .gitlab-ci.yml with one job that installs containerise
// and pushes, against a Docker-in-Docker service over TLS. Keyless, the
// job's id_tokens asks for an ID token for o.Trusted (the audience the
// role trusts; DefaultAudience when empty).
func (Provider) Config(o ci.ConfigOptions) (ci.Config, error) {
	if err := jobconfig.Check(o, "CI_"); err != nil {
		return ci.Config{}, err
	}
	aud := o.Trusted
	if aud == "" {
		aud = DefaultAudience
	}
	if err := (Selector{Projects: []string{"a/b"}, Aud: aud}).Validate(); err != nil {
		return ci.Config{}, err
	}
	inst := jobconfig.InstallStep(o, install.Export)
	image := o.Image
	if image == "" {
		image = inst.Image
	}
	s, m, y := jobconfig.Str, jobconfig.Map, jobconfig.Seq
	job := m(
		s("image"), s(image),
		jobconfig.Comment(s("services"), "A Docker engine for the build; containerise reads DOCKER_HOST,\nDOCKER_TLS_VERIFY and DOCKER_CERT_PATH."), y(s("docker:dind")),
		s("variables"), m(
			s("DOCKER_HOST"), s("tcp://docker:2376"),
			s("DOCKER_TLS_CERTDIR"), s("/certs"),
			s("DOCKER_TLS_VERIFY"), s("1"),
			s("DOCKER_CERT_PATH"), s("/certs/client"),
		),
	)
	if o.Keyless {
		job.Content = append(job.Content,
			jobconfig.Comment(s("id_tokens"), "The job's OIDC token, which push exchanges for the role."),
			m(s(TokenVariable), m(s("aud"), s(aud))))
	}
	job.Content = append(job.Content, s("script"), y(
		jobconfig.Block(inst.Command),
		s(pushCommand(o, aud)),
	))
	header := "Generated by 'containerise ci-config --ci gitlab'.\n"
	if o.Keyless {
		header += "Keyless: set the CI/CD variables AWS_IAM_ROLE_ARN and AWS_REGION (printed\n" +
			"by 'containerise setup --auth oidc --gitlab-project ...'); no access key."
	} else {
		header += "Set the CI/CD variables AWS_IAM_USER_ACCESS_KEY_ID and\n" +
			"AWS_IAM_USER_SECRET_ACCESS_KEY (masked), AWS_IAM_ROLE_ARN and AWS_REGION\n" +
			"(printed by 'containerise setup')."
	}
	root := m(jobconfig.Comment(s("containerise"), header), job)
	body, err := jobconfig.Encode(root, "GitLab CI configuration")
	if err != nil {
		return ci.Config{}, err
	}
	return ci.Config{Path: ConfigPath, Body: body}, nil
}

// pushCommand is the job's push line; keyless with another audience than
// DefaultAudience, it names it (--audience), since push checks the token's
// audience before STS and cannot read the job's id_tokens.
func pushCommand(o ci.ConfigOptions, aud string) string {
	line := jobconfig.PushCommand(o, "${CI_COMMIT_SHA}", "$")
	if o.Keyless && aud != DefaultAudience {
		line += " --audience " + jobconfig.ShellQuote(aud)
	}
	return line
}
