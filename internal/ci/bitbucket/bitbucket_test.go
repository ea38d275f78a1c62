package bitbucket_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/bitbucket"
	"github.com/containerise/containerise/internal/ci/jobconfig"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/schemacheck"
	"github.com/containerise/containerise/internal/testsupport/trusteval"
	"github.com/containerise/containerise/policies"
)

var schema = schemacheck.Schema(schemacheck.BitbucketSchema)

const (
	workspaceUUID = "{1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b}"
	otherWSUUID   = "{9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d}"
	repoUUID      = "{437da666-7aab-4b60-a947-ec542536ca0d}"
	siblingUUID   = "{437da666-7aab-4b60-a947-ec542536ca0e}"
	otherRepoUUID = "{03baea80-974f-432a-8d42-183fad107439}"
	deployUUID    = "{a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d}"
)

func providerARN(issuer string) string {
	return policies.OIDCProviderARN("aws", "123456789012", issuer)
}

func trustOf(s bitbucket.Selector) string {
	return policies.Document{Version: policies.Version, Statement: []policies.Statement{s.Statement(providerARN(s.Issuer()))}}.JSON()
}

func token(name string, j citoken.Bitbucket, want bool) trusteval.Token {
	c := j.Claims()
	return trusteval.Token{Name: name, Provider: providerARN(c["iss"].(string)), Claims: c, Want: want}
}

func step(workspace, wsUUID, repo string) citoken.Bitbucket {
	return citoken.Bitbucket{Workspace: workspace, WorkspaceUUID: wsUUID, RepoUUID: repo, Branch: "main"}
}

func TestTrustOfARepositorysSteps(t *testing.T) {
	s := bitbucket.Selector{Workspace: "acme", WorkspaceUUID: workspaceUUID, RepoUUIDs: []string{strings.Trim(repoUUID, "{}")}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Audience(), "ari:cloud:bitbucket::workspace/1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"; got != want {
		t.Fatalf("audience %q, want %q", got, want)
	}
	deploy := step("acme", workspaceUUID, repoUUID)
	deploy.DeploymentUUID = deployUUID
	feature := step("acme", workspaceUUID, repoUUID)
	feature.Branch = "feature/x"
	forged := step("acme", otherWSUUID, repoUUID)
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("the repository's step on main", step("acme", workspaceUUID, repoUUID), true),
		token("the repository's step on feature/x (tokens name no branch)", feature, true),
		token("the repository's deployment step", deploy, true),
		token("another repository of the workspace", step("acme", workspaceUUID, otherRepoUUID), false),
		token("a repository whose UUID differs in its last digit", step("acme", workspaceUUID, siblingUUID), false),
		token("the same repository UUID in another workspace", step("evil", otherWSUUID, repoUUID), false),
		token("a token with another workspace's audience, through this workspace's provider", forged, false),
	})
}

func TestSelectorValidation(t *testing.T) {
	ok := bitbucket.Selector{Workspace: "acme", WorkspaceUUID: workspaceUUID, RepoUUIDs: []string{repoUUID}}
	for _, tc := range []struct {
		change func(*bitbucket.Selector)
		want   string
	}{
		{func(s *bitbucket.Selector) { s.Workspace = "" }, "--bitbucket-workspace"},
		{func(s *bitbucket.Selector) { s.Workspace = "acme/x" }, "--bitbucket-workspace"},
		{func(s *bitbucket.Selector) { s.WorkspaceUUID = "acme" }, "--bitbucket-workspace-uuid"},
		{func(s *bitbucket.Selector) { s.RepoUUIDs = nil }, "--bitbucket-repo-uuid is required"},
		{func(s *bitbucket.Selector) { s.RepoUUIDs = []string{"{*}"} }, "not a UUID"},
		{func(s *bitbucket.Selector) { s.Branches = []string{"main"} }, "cannot narrow"},
	} {
		s := ok
		tc.change(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || clierror.Code(err) != 2 {
			t.Errorf("%+v: %v, want a usage error saying %q", s, err, tc.want)
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestTokenOfTheStep(t *testing.T) {
	p := bitbucket.Provider{}
	ctx := context.Background()
	raw := step("acme", workspaceUUID, repoUUID).Mint()
	vars := map[string]string{"BITBUCKET_BUILD_NUMBER": "42", "BITBUCKET_WORKSPACE": "acme", bitbucket.TokenVariable: raw}
	tok, err := p.Token(ctx, ci.Job{Getenv: env(vars), Now: time.Now(), Required: true})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Claims.Issuer != bitbucket.IssuerFor("acme") || !strings.HasPrefix(tok.Claims.Subject, repoUUID+":") {
		t.Errorf("claims %+v", tok.Claims)
	}
	_, err = p.Token(ctx, ci.Job{Getenv: env(map[string]string{"BITBUCKET_BUILD_NUMBER": "42"}), Now: time.Now(), Required: true})
	if err == nil || !strings.Contains(err.Error(), "oidc: true") {
		t.Errorf("no token: %v; want it to name oidc: true", err)
	}
	vars["BITBUCKET_WORKSPACE"] = "other"
	_, err = p.Token(ctx, ci.Job{Getenv: env(vars), Now: time.Now(), Required: true})
	if err == nil || !strings.Contains(err.Error(), "issued by") || strings.Contains(err.Error(), raw) {
		t.Errorf("another workspace's issuer: %v", err)
	}
	vars["BITBUCKET_WORKSPACE"] = "acme"
	_, err = p.Token(ctx, ci.Job{Getenv: env(vars), Now: time.Now(), Audience: bitbucket.AudienceFor(otherWSUUID), Required: true})
	if err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("another workspace's audience: %v", err)
	}
	old := step("acme", workspaceUUID, repoUUID)
	old.IssuedAt = time.Now().Add(-2 * time.Hour)
	vars[bitbucket.TokenVariable] = old.Mint()
	_, err = p.Token(ctx, ci.Job{Getenv: env(vars), Now: time.Now(), Required: true})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
}

func TestDetectAndSessionName(t *testing.T) {
	p := bitbucket.Provider{}
	if !p.Detect(env(map[string]string{"BITBUCKET_BUILD_NUMBER": "42"})) || p.Detect(env(map[string]string{"GITLAB_CI": "true"})) {
		t.Error("Detect does not follow BITBUCKET_BUILD_NUMBER")
	}
	if got := p.SessionName(env(map[string]string{"BITBUCKET_REPO_FULL_NAME": "acme/app", "BITBUCKET_BUILD_NUMBER": "42"}), time.Now()); got != "bitbucket-acme-app-42" {
		t.Errorf("session name %q", got)
	}
}

func TestConfigPassesBitbucketsSchema(t *testing.T) {
	for _, o := range []ci.ConfigOptions{
		{Keyless: true, Repository: "app"},
		{Keyless: true, Repository: "team/app", Tags: []string{"${BITBUCKET_COMMIT}", "build-${BITBUCKET_BUILD_NUMBER}"}, Context: "docker", Image: "golang:1.26-bookworm"},
		{Keyless: true, Repository: "app", RoleARN: "arn:aws:iam::123456789012:role/containerise"},
		{Repository: "app"},
	} {
		c, err := bitbucket.Provider{}.Config(o)
		if err != nil {
			t.Fatal(err)
		}
		if c.Path != "bitbucket-pipelines.yml" {
			t.Errorf("path %q", c.Path)
		}
		schemacheck.Check(t, schema, c.Body)
		var cfg struct {
			Pipelines struct {
				Default []struct {
					Step struct {
						OIDC   bool     `yaml:"oidc"`
						Script []string `yaml:"script"`
					} `yaml:"step"`
				} `yaml:"default"`
			} `yaml:"pipelines"`
		}
		if err := yaml.Unmarshal(c.Body, &cfg); err != nil {
			t.Fatal(err)
		}
		st := cfg.Pipelines.Default[0].Step
		if st.OIDC != o.Keyless {
			t.Errorf("keyless %v: oidc %v", o.Keyless, st.OIDC)
		}
		if push := st.Script[len(st.Script)-1]; o.Keyless != strings.Contains(push, "--auth oidc") {
			t.Errorf("push line %q", push)
		}
	}
}

// The step installs this binary's release, checked, on a small image
// without Go, in the script's own shell; a commit builds from source on a
// Go image.
func TestConfigInstallsARelease(t *testing.T) {
	for _, tc := range []struct {
		o     ci.ConfigOptions
		image string
	}{
		{ci.ConfigOptions{Keyless: true, Repository: "app", Version: "v1.2.3"}, jobconfig.ReleaseImage},
		{ci.ConfigOptions{Keyless: true, Repository: "app", Install: "v1.4.0", ReleaseURL: "https://downloads.example.com/c"}, jobconfig.ReleaseImage},
		{ci.ConfigOptions{Keyless: true, Repository: "app", Version: "v1.2.3", Install: "abcdef0"}, jobconfig.SourceImage},
	} {
		c, err := bitbucket.Provider{}.Config(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		schemacheck.Check(t, schema, c.Body)
		var cfg struct {
			Image     string `yaml:"image"`
			Pipelines struct {
				Default []struct {
					Step struct {
						Script []string `yaml:"script"`
					} `yaml:"step"`
				} `yaml:"default"`
			} `yaml:"pipelines"`
		}
		if err := yaml.Unmarshal(c.Body, &cfg); err != nil {
			t.Fatal(err)
		}
		script := cfg.Pipelines.Default[0].Step.Script
		want := install.Options{Version: tc.o.Install, ReleaseURL: tc.o.ReleaseURL, Binary: tc.o.Version}.StepFor(install.Export)
		if cfg.Image != tc.image || len(script) != 2 || script[0] != want.Command {
			t.Errorf("%+v: image %q, script %q; want image %q and the install step\n%s", tc.o, cfg.Image, script, tc.image, want.Command)
		}
	}
}

// The schema is live: oidc given as a string fails it.
func TestSchemaCatchesABrokenConfig(t *testing.T) {
	c, err := bitbucket.Provider{}.Config(ci.ConfigOptions{Keyless: true, Repository: "app"})
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(c.Body), "oidc: true", "oidc: yes-please", 1)
	if schemacheck.Errors(t, schema, []byte(broken)) == nil {
		t.Fatal("Bitbucket's schema passed oidc: yes-please")
	}
}

// Both sides of the seam.
var (
	_ ci.Selector = bitbucket.Selector{}
	_ ci.Provider = bitbucket.Provider{}
)
