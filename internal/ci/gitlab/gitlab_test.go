package gitlab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/gitlab"
	"github.com/containerise/containerise/internal/ci/jobconfig"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/schemacheck"
	"github.com/containerise/containerise/internal/testsupport/trusteval"
	"github.com/containerise/containerise/policies"
)

var schema = schemacheck.Schema(schemacheck.GitLabSchema)

func providerARN(issuer string) string {
	return policies.OIDCProviderARN("aws", "123456789012", issuer)
}

func trustOf(s gitlab.Selector) string {
	return policies.Document{Version: policies.Version, Statement: []policies.Statement{s.Statement(providerARN(s.Issuer()))}}.JSON()
}

func token(name string, j citoken.GitLab, want bool) trusteval.Token {
	if j.Audience == "" {
		j.Audience = "sts.amazonaws.com"
	}
	c := j.Claims()
	return trusteval.Token{Name: name, Provider: providerARN(c["iss"].(string)), Claims: c, Want: want}
}

func branch(project, ref string) citoken.GitLab {
	return citoken.GitLab{ProjectPath: project, Ref: ref}
}

func TestTrustOfAProjectsMainBranch(t *testing.T) {
	s := gitlab.Selector{Projects: []string{"acme/app"}, Branches: []string{"main"}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	tag := branch("acme/app", "main")
	tag.RefType = "tag"
	aud := branch("acme/app", "main")
	aud.Audience = "https://vault.example.com"
	selfManaged := branch("acme/app", "main")
	selfManaged.Host = "gitlab.example.com"
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("acme/app, branch main", branch("acme/app", "main"), true),
		token("acme/app, branch main-evil", branch("acme/app", "main-evil"), false),
		token("acme/app, branch feature/main", branch("acme/app", "feature/main"), false),
		token("acme/app, tag main", tag, false),
		token("acme/app, merge request pipeline of branch feature", branch("acme/app", "feature"), false),
		token("evil/app (a fork), branch main", branch("evil/app", "main"), false),
		token("acme/app-evil, branch main", branch("acme/app-evil", "main"), false),
		token("acme/app/sub, branch main", branch("acme/app/sub", "main"), false),
		token("evil/acme/app, branch main", branch("evil/acme/app", "main"), false),
		token("acme/ap, branch main", branch("acme/ap", "main"), false),
		token("acme/app, main, audience of another service", aud, false),
		token("acme/app on a self-managed instance, main", selfManaged, false),
	})
}

func TestTrustOfWholeProjectsOnASelfManagedInstance(t *testing.T) {
	s := gitlab.Selector{Host: "gitlab.example.com", Projects: []string{"acme/app", "acme/platform/lib"}, Aud: "https://aws.example.com"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	on := func(project, ref, refType string) citoken.GitLab {
		return citoken.GitLab{Host: "gitlab.example.com", ProjectPath: project, Ref: ref, RefType: refType, Audience: "https://aws.example.com"}
	}
	dotcom := branch("acme/app", "main")
	dotcom.Audience = "https://aws.example.com"
	defaultAud := on("acme/app", "main", "")
	defaultAud.Audience = "sts.amazonaws.com"
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("acme/app, branch main", on("acme/app", "main", ""), true),
		token("acme/app, tag v1.0.0", on("acme/app", "v1.0.0", "tag"), true),
		token("acme/platform/lib, branch feature/x", on("acme/platform/lib", "feature/x", ""), true),
		token("acme/app-evil, main", on("acme/app-evil", "main", ""), false),
		token("acme/platform/lib2, main", on("acme/platform/lib2", "main", ""), false),
		token("acme/platform, main", on("acme/platform", "main", ""), false),
		token("acme/app, main, audience sts.amazonaws.com", defaultAud, false),
		token("GitLab.com's acme/app, main", dotcom, false),
	})
}

func TestSelectorValidation(t *testing.T) {
	for _, tc := range []struct {
		s    gitlab.Selector
		want string
	}{
		{gitlab.Selector{}, "--gitlab-project is required"},
		{gitlab.Selector{Projects: []string{"app"}}, "not a project path"},
		{gitlab.Selector{Projects: []string{"acme/app:x"}}, "not a project path"},
		{gitlab.Selector{Projects: []string{"acme/*"}}, "not a project path"},
		{gitlab.Selector{Projects: []string{"acme/app"}, Aud: "sts.*"}, "wildcard"},
		{gitlab.Selector{Projects: []string{"acme/app"}, Aud: "$AUD"}, "'$'"},
		{gitlab.Selector{Projects: []string{"acme/app"}, Host: "https://gitlab.example.com"}, "--gitlab-host"},
		{gitlab.Selector{Projects: []string{"acme/app"}, Branches: []string{"ma?n"}}, "wildcard"},
	} {
		err := tc.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || clierror.Code(err) != 2 {
			t.Errorf("%+v: error %v, want a usage error saying %q", tc.s, err, tc.want)
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestTokenFromIDTokens(t *testing.T) {
	p := gitlab.Provider{}
	ctx := context.Background()
	job := func(vars map[string]string) ci.Job {
		return ci.Job{Getenv: env(vars), Now: time.Now(), Required: true}
	}
	raw := citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Mint()
	tok, err := p.Token(ctx, job(map[string]string{"GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.com", gitlab.TokenVariable: raw}))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Raw != raw || tok.Claims.Subject != "project_path:acme/app:ref_type:branch:ref:main" || tok.Claims.Job != "project acme/app, branch main" {
		t.Errorf("token %+v", tok.Claims)
	}

	_, err = p.Token(ctx, job(map[string]string{"GITLAB_CI": "true"}))
	if err == nil || !strings.Contains(err.Error(), "id_tokens:") || !strings.Contains(err.Error(), "aud: sts.amazonaws.com") {
		t.Errorf("no token: %v; want the id_tokens the job lacks", err)
	}
	if tok, err := p.Token(ctx, ci.Job{Getenv: env(map[string]string{"GITLAB_CI": "true"}), Now: time.Now()}); tok != nil || err != nil {
		t.Errorf("no token, not required: %v %v", tok, err)
	}

	for name, tc := range map[string]struct {
		raw, server, want string
	}{
		"another audience": {citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "vault"}.Mint(), "https://gitlab.com", "audience"},
		"expired":          {citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com", IssuedAt: time.Now().Add(-3 * time.Hour)}.Mint(), "", "expired"},
		"another instance": {citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Mint(), "https://gitlab.example.com", "issued by"},
		"not a JWT":        {"not-a-token-secret", "", "not a JWT"},
	} {
		_, err := p.Token(ctx, job(map[string]string{"GITLAB_CI": "true", "CI_SERVER_URL": tc.server, gitlab.TokenVariable: tc.raw}))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.raw) {
			t.Errorf("%s: %v; want an error saying %q that does not print the token", name, err, tc.want)
		}
	}
}

func TestDetectAndSessionName(t *testing.T) {
	p := gitlab.Provider{}
	if !p.Detect(env(map[string]string{"GITLAB_CI": "true"})) || p.Detect(env(map[string]string{"GITHUB_ACTIONS": "true"})) {
		t.Error("Detect does not follow GITLAB_CI")
	}
	if got := p.SessionName(env(map[string]string{"CI_PROJECT_PATH": "acme/platform/app", "CI_JOB_ID": "7654321"}), time.Now()); got != "gitlab-acme-platform-app-7654321" {
		t.Errorf("session name %q", got)
	}
}

func TestConfigPassesGitLabsSchema(t *testing.T) {
	for _, o := range []ci.ConfigOptions{
		{Keyless: true, Repository: "app"},
		{Keyless: true, Repository: "team/app", Tags: []string{"${CI_COMMIT_SHORT_SHA}", "latest"}, Context: "docker", File: "docker/Dockerfile", Image: "golang:1.26-bookworm", Trusted: "https://aws.example.com"},
		{Keyless: true, Repository: "app", RoleARN: "arn:aws:iam::123456789012:role/containerise"},
		{Repository: "app"},
	} {
		c, err := gitlab.Provider{}.Config(o)
		if err != nil {
			t.Fatal(err)
		}
		if c.Path != ".gitlab-ci.yml" {
			t.Errorf("path %q", c.Path)
		}
		schemacheck.Check(t, schema, c.Body)
		var cfg map[string]struct {
			IDTokens map[string]map[string]string `yaml:"id_tokens"`
			Script   []string                     `yaml:"script"`
		}
		if err := yaml.Unmarshal(c.Body, &cfg); err != nil {
			t.Fatal(err)
		}
		job := cfg["containerise"]
		wantAud := o.Trusted
		if wantAud == "" {
			wantAud = "sts.amazonaws.com"
		}
		if got := job.IDTokens[gitlab.TokenVariable]["aud"]; (got == wantAud) != o.Keyless || (!o.Keyless && job.IDTokens != nil) {
			t.Errorf("keyless %v: id_tokens %v", o.Keyless, job.IDTokens)
		}
		push := job.Script[len(job.Script)-1]
		if o.Keyless != strings.Contains(push, "--auth oidc") || (o.RoleARN != "") != strings.Contains(push, "--role-arn "+o.RoleARN) {
			t.Errorf("push line %q", push)
		}
	}
}

// The job installs this binary's release, checked, on a small image without
// Go, in the script's own shell; a commit builds from source on a Go image.
func TestConfigInstallsARelease(t *testing.T) {
	for _, tc := range []struct {
		o     ci.ConfigOptions
		image string
	}{
		{ci.ConfigOptions{Keyless: true, Repository: "app", Version: "v1.2.3"}, jobconfig.ReleaseImage},
		{ci.ConfigOptions{Keyless: true, Repository: "app", Install: "v1.4.0", ReleaseURL: "https://downloads.example.com/c"}, jobconfig.ReleaseImage},
		{ci.ConfigOptions{Keyless: true, Repository: "app", Version: "v1.2.3", Install: "abcdef0"}, jobconfig.SourceImage},
		{ci.ConfigOptions{Keyless: true, Repository: "app", Version: "v1.2.3", Image: "debian:bookworm"}, "debian:bookworm"},
	} {
		c, err := gitlab.Provider{}.Config(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		schemacheck.Check(t, schema, c.Body)
		var cfg map[string]struct {
			Image  string   `yaml:"image"`
			Script []string `yaml:"script"`
		}
		if err := yaml.Unmarshal(c.Body, &cfg); err != nil {
			t.Fatal(err)
		}
		job := cfg["containerise"]
		want := install.Options{Version: tc.o.Install, ReleaseURL: tc.o.ReleaseURL, Binary: tc.o.Version}.StepFor(install.Export)
		if job.Image != tc.image || len(job.Script) != 2 || job.Script[0] != want.Command {
			t.Errorf("%+v: image %q, script %q; want image %q and the install step\n%s", tc.o, job.Image, job.Script, tc.image, want.Command)
		}
	}
}

// The schema is live: a job with a key GitLab does not know fails it.
func TestSchemaCatchesABrokenConfig(t *testing.T) {
	c, err := gitlab.Provider{}.Config(ci.ConfigOptions{Keyless: true, Repository: "app"})
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(c.Body), "id_tokens:", "id_token:", 1)
	if schemacheck.Errors(t, schema, []byte(broken)) == nil {
		t.Fatal("GitLab's schema passed a job with the key id_token")
	}
}

// Both sides of the seam.
var (
	_ ci.Selector = gitlab.Selector{}
	_ ci.Provider = gitlab.Provider{}
)

// The job's push line names the audience its id_tokens asks for when it is
// not the default, since push checks the token's audience before STS.
func TestConfigPushNamesAnotherAudience(t *testing.T) {
	for aud, want := range map[string]string{"": "", "sts.amazonaws.com": "", "https://gitlab.com": " --audience https://gitlab.com"} {
		cfg, err := gitlab.Provider{}.Config(ci.ConfigOptions{Keyless: true, Trusted: aud, Repository: "app", Version: "v1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		body := string(cfg.Body)
		if !strings.Contains(body, `--tag "${CI_COMMIT_SHA}"`+want+"\n") {
			t.Errorf("audience %q: the push line lacks %q:\n%s", aud, want, body)
		}
	}
}
