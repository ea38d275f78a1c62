package github_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/github"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/ghtokenserver"
	"github.com/containerise/containerise/internal/testsupport/schemacheck"
	"github.com/containerise/containerise/internal/testsupport/trusteval"
	"github.com/containerise/containerise/policies"
)

// The providers and roles live in one made-up account.
func providerARN(issuer string) string {
	return policies.OIDCProviderARN("aws", "123456789012", issuer)
}

func trustOf(s github.Selector) string {
	return policies.Document{Version: policies.Version, Statement: []policies.Statement{s.Statement(providerARN(s.Issuer()))}}.JSON()
}

// token is a job's token presented through the provider of its issuer,
// as IAM would pick it.
func token(name string, j citoken.GitHub, want bool) trusteval.Token {
	c := j.Claims()
	return trusteval.Token{Name: name, Provider: providerARN(c["iss"].(string)), Claims: c, Want: want}
}

func main(repo string) citoken.GitHub { return citoken.GitHub{Repo: repo, Ref: "refs/heads/main"} }

func TestTrustOfARepositorysMainBranch(t *testing.T) {
	s := github.Selector{Repos: []string{"acme/app"}, Branches: []string{"main"}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	ghes := main("acme/app")
	ghes.Host = "github.example.com"
	otherAud := main("acme/app")
	otherAud.Audience = "https://github.com/acme"
	tag := main("acme/app")
	tag.Ref = "refs/tags/main"
	pr := main("acme/app")
	pr.Event, pr.Ref = "pull_request", "refs/pull/7/merge"
	env := main("acme/app")
	env.Environment = "production"
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("acme/app, push to main", main("acme/app"), true),
		token("acme/app, branch main-evil", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main-evil"}, false),
		token("acme/app, branch feature/main", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/feature/main"}, false),
		token("acme/app, tag main (refs/tags/main)", tag, false),
		token("acme/app, pull request", pr, false),
		token("acme/app, main in environment production", env, false),
		token("acme/app-evil, main", main("acme/app-evil"), false),
		token("acme/ap, main", main("acme/ap"), false),
		token("evil/app, main", main("evil/app"), false),
		token("acme/app, main, GitHub's default audience", otherAud, false),
		token("acme/app on a GitHub Enterprise Server, main", ghes, false),
	})
}

func TestTrustOfAWholeRepository(t *testing.T) {
	s := github.Selector{Repos: []string{"acme/app", "acme/lib"}}
	tag := citoken.GitHub{Repo: "acme/app", Ref: "refs/tags/v1.0.0"}
	pr := citoken.GitHub{Repo: "acme/app", Ref: "refs/pull/7/merge", Event: "pull_request"}
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("acme/app, main", main("acme/app"), true),
		token("acme/lib, main", main("acme/lib"), true),
		token("acme/app, branch feature/x", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/feature/x"}, true),
		token("acme/app, tag v1.0.0", tag, true),
		token("acme/app, pull request (same repository)", pr, true),
		token("acme/app-evil, main", main("acme/app-evil"), false),
		token("acme/application, main", main("acme/application"), false),
		token("acme/li, main", main("acme/li"), false),
		token("acme/app2, main", main("acme/app2"), false),
	})
}

func TestTrustOfAnEnvironmentOnABranch(t *testing.T) {
	s := github.Selector{Repos: []string{"acme/app"}, Environments: []string{"production"}, Branches: []string{"main"}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	in := func(env, ref string) citoken.GitHub {
		return citoken.GitHub{Repo: "acme/app", Ref: ref, Environment: env}
	}
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("environment production, main", in("production", "refs/heads/main"), true),
		token("environment production, branch dev", in("production", "refs/heads/dev"), false),
		token("environment production, branch main-evil", in("production", "refs/heads/main-evil"), false),
		token("environment production, tag main", in("production", "refs/tags/main"), false),
		token("environment production-evil, main", in("production-evil", "refs/heads/main"), false),
		token("environment staging, main", in("staging", "refs/heads/main"), false),
		token("no environment, main", main("acme/app"), false),
		token("acme/app-evil, environment production, main", citoken.GitHub{Repo: "acme/app-evil", Ref: "refs/heads/main", Environment: "production"}, false),
	})
}

func TestTrustOfAGitHubEnterpriseServer(t *testing.T) {
	s := github.Selector{Host: "github.example.com", Repos: []string{"acme/app"}, Branches: []string{"main"}}
	if got, want := s.Issuer(), "https://github.example.com/_services/token"; got != want {
		t.Fatalf("issuer %q, want %q", got, want)
	}
	ghes := func(ref string) citoken.GitHub {
		return citoken.GitHub{Host: "github.example.com", Repo: "acme/app", Ref: ref}
	}
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("the server's acme/app, main", ghes("refs/heads/main"), true),
		token("the server's acme/app, main-evil", ghes("refs/heads/main-evil"), false),
		token("github.com's acme/app, main", main("acme/app"), false),
	})
}

// Branches and environments are used literally: IAM's '$' is escaped,
// and wildcards and separators are refused before any call.
func TestSelectorValidation(t *testing.T) {
	for _, tc := range []struct {
		s    github.Selector
		want string
	}{
		{github.Selector{}, "--github-repo is required"},
		{github.Selector{Repos: []string{"acme"}}, "not OWNER/REPO"},
		{github.Selector{Repos: []string{"acme/app:x"}}, "not OWNER/REPO"},
		{github.Selector{Repos: []string{"acme/*"}}, "not OWNER/REPO"},
		{github.Selector{Repos: []string{"acme/app"}, Branches: []string{"main*"}}, "wildcard"},
		{github.Selector{Repos: []string{"acme/app"}, Branches: []string{"refs/heads/main"}}, "short name"},
		{github.Selector{Repos: []string{"acme/app"}, Environments: []string{"prod:x"}}, "separates"},
		{github.Selector{Repos: []string{"acme/app"}, Host: "bad host"}, "--github-host"},
		{github.Selector{Repos: []string{"acme/app"}, Host: "ghe.example.com", Environments: []string{"prod"}, Branches: []string{"main"}}, "github.com only"},
	} {
		err := tc.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one saying %q", tc.s, err, tc.want)
			continue
		}
		if clierror.Code(err) != 2 {
			t.Errorf("%+v: exit code %d, want 2", tc.s, clierror.Code(err))
		}
	}
	s := github.Selector{Repos: []string{"acme/app"}, Branches: []string{"release/$1"}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	trusteval.Check(t, trustOf(s), []trusteval.Token{
		token("branch release/$1", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/release/$1"}, true),
		token("branch release/x1", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/release/x1"}, false),
	})
}

func TestStatementAlwaysConditionsTheAudience(t *testing.T) {
	for _, s := range []github.Selector{
		{Repos: []string{"acme/app"}},
		{Repos: []string{"acme/app"}, Branches: []string{"main"}},
		{Repos: []string{"acme/app"}, Environments: []string{"prod"}},
		{Host: "ghe.example.com", Repos: []string{"acme/app"}},
	} {
		st := s.Statement(providerARN(s.Issuer()))
		key := strings.TrimPrefix(s.Issuer(), "https://") + ":aud"
		if got := st.Condition["StringEquals"][key]; len(got) != 1 || got[0] != "sts.amazonaws.com" {
			t.Errorf("%s: StringEquals %s = %v, want sts.amazonaws.com", s.Describe(), key, got)
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestTokenFromTheJobsTokenEndpoint(t *testing.T) {
	srv := ghtokenserver.Start(t, main("acme/app"))
	tok, err := github.Provider{}.Token(context.Background(), ci.Job{
		Getenv: env(srv.Env()), HTTP: srv.Client(), Now: time.Now(), Required: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Audiences(); len(got) != 1 || got[0] != "sts.amazonaws.com" {
		t.Errorf("audiences asked for: %v, want [sts.amazonaws.com]", got)
	}
	c := tok.Claims
	if c.Issuer != github.Issuer || c.Subject != "repo:acme/app:ref:refs/heads/main" || len(c.Audience) != 1 || c.Audience[0] != "sts.amazonaws.com" {
		t.Errorf("claims %+v", c)
	}
	if !strings.Contains(c.Job, "acme/app") || !strings.Contains(c.Job, "refs/heads/main") {
		t.Errorf("job %q names neither the repository nor the ref", c.Job)
	}
	if tok.Raw == "" || strings.Contains(tok.Source, tok.Raw) {
		t.Errorf("source %q", tok.Source)
	}
}

func TestTokenRefusals(t *testing.T) {
	ctx := context.Background()
	// No request variables: the workflow lacks id-token: write.
	tok, err := github.Provider{}.Token(ctx, ci.Job{Getenv: env(map[string]string{"GITHUB_ACTIONS": "true"}), Now: time.Now()})
	if tok != nil || err != nil {
		t.Errorf("without a token, not required: %v, %v; want nothing", tok, err)
	}
	_, err = github.Provider{}.Token(ctx, ci.Job{Getenv: env(map[string]string{"GITHUB_ACTIONS": "true"}), Now: time.Now(), Required: true})
	if err == nil || !strings.Contains(err.Error(), "permissions: id-token: write") {
		t.Errorf("without a token, required: %v; want it to name permissions: id-token: write", err)
	}

	srv := ghtokenserver.Start(t, main("acme/app"))
	vars := srv.Env()
	vars["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "ghs_wrongwrongwrong"
	_, err = github.Provider{}.Token(ctx, ci.Job{Getenv: env(vars), HTTP: srv.Client(), Now: time.Now(), Required: true})
	if err == nil || strings.Contains(err.Error(), "ghs_wrong") || srv.Refusals() != 1 {
		t.Errorf("wrong request token: %v (refusals %d); want a refusal that does not print the request token", err, srv.Refusals())
	}

	old := main("acme/app")
	old.IssuedAt = time.Now().Add(-2 * time.Hour)
	srv = ghtokenserver.Start(t, old)
	_, err = github.Provider{}.Token(ctx, ci.Job{Getenv: env(srv.Env()), HTTP: srv.Client(), Now: time.Now(), Required: true})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}

	ghes := main("acme/app")
	ghes.Host = "github.example.com"
	srv = ghtokenserver.Start(t, ghes)
	_, err = github.Provider{}.Token(ctx, ci.Job{Getenv: env(srv.Env()), HTTP: srv.Client(), Now: time.Now(), Required: true})
	if err == nil || !strings.Contains(err.Error(), "issued by") {
		t.Errorf("token of another issuer: %v", err)
	}

	// The token endpoint is down: the error names the host, not the token.
	srv = ghtokenserver.Start(t, main("acme/app"))
	vars = srv.Env()
	srv.Close()
	_, err = github.Provider{}.Token(ctx, ci.Job{Getenv: env(vars), HTTP: &http.Client{Timeout: time.Second}, Now: time.Now(), Required: true})
	if err == nil || strings.Contains(err.Error(), srv.RequestToken) {
		t.Errorf("endpoint down: %v", err)
	}
}

func TestDetectAndSessionName(t *testing.T) {
	p := github.Provider{}
	if !p.Detect(env(map[string]string{"GITHUB_ACTIONS": "true"})) || p.Detect(env(map[string]string{"CIRCLECI": "true"})) {
		t.Error("Detect does not follow GITHUB_ACTIONS")
	}
	got := p.SessionName(env(map[string]string{"GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_ID": "9876543210", "GITHUB_RUN_ATTEMPT": "2"}), time.Now())
	if got != "github-acme-app-9876543210-2" {
		t.Errorf("session name %q", got)
	}
	long := p.SessionName(env(map[string]string{"GITHUB_REPOSITORY": "acme/" + strings.Repeat("x", 100), "GITHUB_RUN_ID": "9876543210"}), time.Now())
	if len(long) > 64 || !strings.HasSuffix(long, "-9876543210") {
		t.Errorf("long session name %q (%d)", long, len(long))
	}
}

// lint runs actionlint on a workflow and fails the test for each error.
func lint(t *testing.T, body []byte) {
	t.Helper()
	schemacheck.CheckWorkflow(t, github.WorkflowPath, body)
}

func TestConfigPassesActionlint(t *testing.T) {
	for _, o := range []ci.ConfigOptions{
		{Keyless: true, Repository: "app"},
		{Keyless: true, Repository: "team/app", Tags: []string{"${GITHUB_SHA}", "latest", "v${GITHUB_RUN_NUMBER}"}, Context: "docker", File: "docker/Dockerfile", Install: "v1.2.3"},
		{Keyless: true, Repository: "app", RoleARN: "arn:aws:iam::123456789012:role/containerise"},
		{Repository: "app"},
	} {
		c, err := github.Provider{}.Config(o)
		if err != nil {
			t.Fatal(err)
		}
		if c.Path != ".github/workflows/containerise.yml" {
			t.Errorf("path %q", c.Path)
		}
		lint(t, c.Body)
		var wf struct {
			Permissions map[string]string `yaml:"permissions"`
			Jobs        map[string]struct {
				Env   map[string]string `yaml:"env"`
				Steps []struct {
					Run string `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(c.Body, &wf); err != nil {
			t.Fatal(err)
		}
		if got := wf.Permissions["id-token"]; (got == "write") != o.Keyless {
			t.Errorf("keyless %v: permissions id-token %q", o.Keyless, got)
		}
		job := wf.Jobs["push"]
		push := job.Steps[len(job.Steps)-1].Run
		wantAuth := "--auth keys"
		if o.Keyless {
			wantAuth = "--auth oidc"
		}
		if !strings.Contains(push, wantAuth) {
			t.Errorf("push step %q lacks %s", push, wantAuth)
		}
		if o.RoleARN != "" {
			if !strings.Contains(push, "--role-arn "+o.RoleARN) || job.Env["AWS_IAM_ROLE_ARN"] != "" {
				t.Errorf("role ARN not embedded: %q, env %v", push, job.Env)
			}
		} else if job.Env["AWS_IAM_ROLE_ARN"] != "${{ vars.AWS_IAM_ROLE_ARN }}" {
			t.Errorf("env %v does not read vars.AWS_IAM_ROLE_ARN", job.Env)
		}
		if _, ok := job.Env["AWS_IAM_USER_SECRET_ACCESS_KEY"]; ok == o.Keyless {
			t.Errorf("keyless %v: env %v", o.Keyless, job.Env)
		}
	}
}

func TestConfigRefusesUnsafeValues(t *testing.T) {
	for _, o := range []ci.ConfigOptions{
		{Keyless: true, Repository: "app", Tags: []string{"$(id)"}},
		{Keyless: true, Repository: "app", Tags: []string{"${AWS_SECRET_ACCESS_KEY}"}},
		{Keyless: true, Repository: "app", Tags: []string{"${{ secrets.X }}"}},
		{Keyless: true, Repository: "app; rm -rf /"},
		{Keyless: true, Repository: "app", RoleARN: "arn:aws:iam::1:role/x"},
		{Keyless: true, Repository: "app", Context: "../outside"},
		{Keyless: true, Repository: "app", Install: "main"},
	} {
		_, err := github.Provider{}.Config(o)
		var usage *clierror.UsageError
		if !errors.As(err, &usage) {
			t.Errorf("%+v: %v, want a usage error", o, err)
		}
	}
}

// The workflow installs this binary's release, checked, and hands its
// folder on through $GITHUB_PATH, without Go; only a build from source
// sets Go up.
func TestConfigInstallsARelease(t *testing.T) {
	for _, o := range []ci.ConfigOptions{
		{Keyless: true, Repository: "app", Version: "v1.2.3"},
		{Keyless: true, Repository: "app", Install: "v1.4.0", ReleaseURL: "https://downloads.example.com/c"},
		{Keyless: true, Repository: "app", Version: "v1.2.3", Install: "abcdef0"},
		{Keyless: true, Repository: "app", Version: "dev"},
	} {
		c, err := github.Provider{}.Config(o)
		if err != nil {
			t.Fatal(err)
		}
		lint(t, c.Body)
		var wf struct {
			Jobs map[string]struct {
				Steps []struct {
					Name, Uses, Run string
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(c.Body, &wf); err != nil {
			t.Fatal(err)
		}
		want := install.Options{Version: o.Install, ReleaseURL: o.ReleaseURL, Binary: o.Version}.StepFor(install.GitHubPath)
		var setupGo, installed bool
		for _, st := range wf.Jobs["push"].Steps {
			setupGo = setupGo || strings.HasPrefix(st.Uses, "actions/setup-go@")
			installed = installed || (st.Name == want.Name && st.Run == want.Command)
		}
		if !installed || setupGo != want.FromSource {
			t.Errorf("%+v: install step %v (want %q), setup-go %v (from source %v):\n%s", o, installed, want.Name, setupGo, want.FromSource, c.Body)
		}
		if !want.FromSource && !strings.Contains(want.Command, `>> "$GITHUB_PATH"`) {
			t.Errorf("the release step does not hand PATH on through $GITHUB_PATH:\n%s", want.Command)
		}
	}
}

// The validator is live: a workflow that grants a permission level
// GitHub does not have fails it.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	c, err := github.Provider{}.Config(ci.ConfigOptions{Keyless: true, Repository: "app"})
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(c.Body), "id-token: write", "id-token: writ", 1)
	if len(schemacheck.Workflow(t, github.WorkflowPath, []byte(broken))) == 0 {
		t.Fatal("actionlint passed a workflow granting id-token: writ")
	}
}

// Both sides of the seam.
var (
	_ ci.Selector = github.Selector{}
	_ ci.Provider = github.Provider{}
)
