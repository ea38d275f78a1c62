package buildkite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/buildkite"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/schemacheck"
	"github.com/containerise/containerise/internal/testsupport/trusteval"
	"github.com/containerise/containerise/policies"
)

var schema = schemacheck.Schema(schemacheck.BuildkiteSchema)

func providerARN(issuer string) string {
	return policies.OIDCProviderARN("aws", "123456789012", issuer)
}

func trustOf(s buildkite.Selector) string {
	return policies.Document{Version: policies.Version, Statement: []policies.Statement{s.Statement(providerARN(s.Issuer()))}}.JSON()
}

func token(name string, j citoken.Buildkite, want bool) trusteval.Token {
	if j.Audience == "" {
		j.Audience = "sts.amazonaws.com"
	}
	c := j.Claims()
	return trusteval.Token{Name: name, Provider: providerARN(c["iss"].(string)), Claims: c, Want: want}
}

func build(org, pipeline, ref string) citoken.Buildkite {
	return citoken.Buildkite{Org: org, Pipeline: pipeline, Ref: ref}
}

func TestTrustOfAPipelinesMainBranch(t *testing.T) {
	s := buildkite.Selector{Org: "acme", Pipelines: []string{"app"}, Branches: []string{"main"}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	otherAud := build("acme", "app", "refs/heads/main")
	otherAud.Audience = "https://vault.example.com"
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("acme/app, branch main", build("acme", "app", "refs/heads/main"), true),
		token("acme/app, branch main-evil", build("acme", "app", "refs/heads/main-evil"), false),
		token("acme/app, branch feature/main", build("acme", "app", "refs/heads/feature/main"), false),
		token("acme/app, tag main (refs/tags/main)", build("acme", "app", "refs/tags/main"), false),
		token("acme/app, pull request ref refs/pull/7/head", build("acme", "app", "refs/pull/7/head"), false),
		token("acme/app, branch main:commit:x:step:y (made up through the API)", build("acme", "app", "refs/heads/main:commit:x:step:y"), false),
		token("acme/app-evil, main", build("acme", "app-evil", "refs/heads/main"), false),
		token("acme/ap, main", build("acme", "ap", "refs/heads/main"), false),
		token("acme-evil/app, main", build("acme-evil", "app", "refs/heads/main"), false),
		token("evil/app, main", build("evil", "app", "refs/heads/main"), false),
		token("acme/app, main, audience of another service", otherAud, false),
	})
}

func TestTrustOfWholePipelines(t *testing.T) {
	s := buildkite.Selector{Org: "acme", Pipelines: []string{"app", "lib"}}
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("acme/app, branch main", build("acme", "app", "refs/heads/main"), true),
		token("acme/lib, tag v1", build("acme", "lib", "refs/tags/v1"), true),
		token("acme/app, branch feature/x", build("acme", "app", "refs/heads/feature/x"), true),
		token("acme/app-evil, main", build("acme", "app-evil", "refs/heads/main"), false),
		token("acme/lib2, main", build("acme", "lib2", "refs/heads/main"), false),
		token("other/app, main", build("other", "app", "refs/heads/main"), false),
	})
}

func TestSelectorValidation(t *testing.T) {
	for _, tc := range []struct {
		s    buildkite.Selector
		want string
	}{
		{buildkite.Selector{Pipelines: []string{"app"}}, "--buildkite-org"},
		{buildkite.Selector{Org: "acme:x", Pipelines: []string{"app"}}, "--buildkite-org"},
		{buildkite.Selector{Org: "acme"}, "--buildkite-pipeline is required"},
		{buildkite.Selector{Org: "acme", Pipelines: []string{"app*"}}, "--buildkite-pipeline"},
		{buildkite.Selector{Org: "acme", Pipelines: []string{"app"}, Branches: []string{"main:commit:x"}}, "separates"},
	} {
		err := tc.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || clierror.Code(err) != 2 {
			t.Errorf("%+v: %v, want a usage error saying %q", tc.s, err, tc.want)
		}
	}
}

// fakeAgent puts a buildkite-agent on PATH that checks its arguments and
// prints token, as the real one does for a job.
func fakeAgent(t *testing.T, token string) {
	dir := t.TempDir()
	script := "#!/bin/sh\n" +
		"[ \"$1 $2 $3 $4\" = 'oidc request-token --audience sts.amazonaws.com' ] || { echo \"unexpected: $*\" >&2; exit 1; }\n" +
		"printf '%s\\n' '" + token + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "buildkite-agent"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestTokenFromTheAgent(t *testing.T) {
	p := buildkite.Provider{}
	ctx := context.Background()
	job := ci.Job{Getenv: env(map[string]string{"BUILDKITE": "true"}), Now: time.Now(), Required: true}

	t.Setenv("PATH", t.TempDir())
	if _, err := p.Token(ctx, job); err == nil || !strings.Contains(err.Error(), "buildkite-agent is not on PATH") {
		t.Errorf("no agent: %v", err)
	}

	raw := citoken.Buildkite{Org: "acme", Pipeline: "app", Ref: "refs/heads/main", Audience: "sts.amazonaws.com"}.Mint()
	fakeAgent(t, raw)
	tok, err := p.Token(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Raw != raw || tok.Claims.Job != "pipeline acme/app, branch main, step push" {
		t.Errorf("token %+v", tok.Claims)
	}

	fakeAgent(t, citoken.Buildkite{Org: "acme", Pipeline: "app", Ref: "refs/heads/main", Audience: "sts.amazonaws.com", IssuedAt: time.Now().Add(-2 * time.Hour)}.Mint())
	if _, err := p.Token(ctx, job); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}

	job.Audience = "https://vault.example.com"
	fakeAgent(t, raw)
	if _, err := p.Token(ctx, job); err == nil || !strings.Contains(err.Error(), "unexpected") || strings.Contains(err.Error(), raw) {
		t.Errorf("agent refusing: %v", err)
	}
}

func TestDetectAndSessionName(t *testing.T) {
	p := buildkite.Provider{}
	if !p.Detect(env(map[string]string{"BUILDKITE": "true"})) || p.Detect(env(map[string]string{"CIRCLECI": "true"})) {
		t.Error("Detect does not follow BUILDKITE")
	}
	got := p.SessionName(env(map[string]string{"BUILDKITE_ORGANIZATION_SLUG": "acme", "BUILDKITE_PIPELINE_SLUG": "app", "BUILDKITE_BUILD_NUMBER": "42"}), time.Now())
	if got != "buildkite-acme-app-42" {
		t.Errorf("session name %q", got)
	}
}

func TestConfigPassesBuildkitesSchema(t *testing.T) {
	for _, o := range []ci.ConfigOptions{
		{Keyless: true, Repository: "app"},
		{Keyless: true, Repository: "team/app", Tags: []string{"${BUILDKITE_COMMIT}", "build-${BUILDKITE_BUILD_NUMBER}"}, File: "Dockerfile.ci"},
		{Keyless: true, Repository: "app", RoleARN: "arn:aws:iam::123456789012:role/containerise"},
		{Repository: "app"},
	} {
		c, err := buildkite.Provider{}.Config(o)
		if err != nil {
			t.Fatal(err)
		}
		if c.Path != ".buildkite/pipeline.yml" {
			t.Errorf("path %q", c.Path)
		}
		schemacheck.Check(t, schema, c.Body)
		var cfg struct {
			Steps []struct {
				Command []string `yaml:"command"`
			} `yaml:"steps"`
		}
		if err := yaml.Unmarshal(c.Body, &cfg); err != nil {
			t.Fatal(err)
		}
		push := cfg.Steps[0].Command[1]
		if install := cfg.Steps[0].Command[0]; strings.Contains(strings.ReplaceAll(install, "$$", ""), "$") {
			t.Errorf("install step has a '$' Buildkite would interpolate at upload:\n%s", install)
		}
		if o.Keyless != strings.Contains(push, "--auth oidc") {
			t.Errorf("push line %q", push)
		}
		// Buildkite interpolates at upload: the job's shell must get the
		// variable reference, so every '$' is doubled.
		if strings.Contains(strings.ReplaceAll(push, "$$", ""), "$") {
			t.Errorf("push line %q has a '$' Buildkite would interpolate at upload", push)
		}
	}
}

// The agent installs this binary's release, checked, in the command's own
// shell: the step is install's same-shell form with every '$' doubled.
func TestConfigInstallsARelease(t *testing.T) {
	for _, o := range []ci.ConfigOptions{
		{Keyless: true, Repository: "app", Version: "v1.2.3"},
		{Keyless: true, Repository: "app", Install: "v1.4.0", ReleaseURL: "https://downloads.example.com/c"},
		{Keyless: true, Repository: "app", Version: "v1.2.3", Install: "abcdef0"},
	} {
		c, err := buildkite.Provider{}.Config(o)
		if err != nil {
			t.Fatal(err)
		}
		schemacheck.Check(t, schema, c.Body)
		var cfg struct {
			Steps []struct {
				Command []string `yaml:"command"`
			} `yaml:"steps"`
		}
		if err := yaml.Unmarshal(c.Body, &cfg); err != nil {
			t.Fatal(err)
		}
		want := install.Options{Version: o.Install, ReleaseURL: o.ReleaseURL, Binary: o.Version}.StepFor(install.Export)
		if got := strings.ReplaceAll(cfg.Steps[0].Command[0], "$$", "$"); got != want.Command {
			t.Errorf("%+v: install step\n%s\nwant\n%s", o, got, want.Command)
		}
		if needsGo := strings.Contains(string(c.Body), "The agent needs Go"); needsGo != want.FromSource {
			t.Errorf("%+v: the header says the agent needs Go: %v, from source: %v", o, needsGo, want.FromSource)
		}
	}
}

// The schema is live: a step with a misspelt key fails it.
func TestSchemaCatchesABrokenConfig(t *testing.T) {
	c, err := buildkite.Provider{}.Config(ci.ConfigOptions{Keyless: true, Repository: "app"})
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(c.Body), "command:", "commands_:", 1)
	if schemacheck.Errors(t, schema, []byte(broken)) == nil {
		t.Fatal("Buildkite's schema passed a step with the key commands_")
	}
}

// Both sides of the seam.
var (
	_ ci.Selector = buildkite.Selector{}
	_ ci.Provider = buildkite.Provider{}
)
