package commands

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/ghtokenserver"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSeamJobInAGitHubActionsJob(t *testing.T) {
	srv := ghtokenserver.Start(t, citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main"})
	job, err := seamJob(context.Background(), envOf(srv.Env()), jobRequest{Auth: "oidc", HTTP: srv.Client(), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if job.Provider.Name() != "github" || job.WebIdentity == nil || job.SessionName != "github-acme-app-9876543210-1" {
		t.Fatalf("job %+v", job)
	}
	if c := job.WebIdentity.Claims; c.Subject != "repo:acme/app:ref:refs/heads/main" || strings.Join(c.Audience, ",") != "sts.amazonaws.com" {
		t.Errorf("claims %+v", c)
	}
	if got := srv.Audiences(); len(got) != 1 || got[0] != "sts.amazonaws.com" {
		t.Errorf("token requests %v", got)
	}
	if s := job.WebIdentity.String(); strings.Contains(s, srv.RequestToken) || !strings.Contains(s, "GitHub Actions") || !strings.Contains(s, "acme/app") {
		t.Errorf("described as %q", s)
	}
	// The job's own keys win, as in CircleCI, unless --auth oidc: no token
	// is even requested.
	keys, err := seamJob(context.Background(), envOf(srv.Env()), jobRequest{HaveKeys: true, HTTP: srv.Client(), Now: time.Now()})
	if err != nil || keys.WebIdentity != nil || len(srv.Audiences()) != 1 || keys.SessionName != "github-acme-app-9876543210-1" {
		t.Errorf("with keys: %+v, %v (token requests %d)", keys, err, len(srv.Audiences()))
	}
	// No --auth and no keys: the token.
	ambient, err := seamJob(context.Background(), envOf(srv.Env()), jobRequest{HTTP: srv.Client(), Now: time.Now()})
	if err != nil || ambient.WebIdentity == nil {
		t.Errorf("without keys: %+v, %v", ambient, err)
	}
}

// A GitLab job's token is a variable its id_tokens fills; its audience is
// checked against --audience (setup's --gitlab-audience), its issuer
// against the instance the job runs on.
func TestSeamJobInAGitLabJob(t *testing.T) {
	env := map[string]string{"GITLAB_CI": "true", "CI_PROJECT_PATH": "acme/app", "CI_JOB_ID": "7654321", "CI_SERVER_URL": "https://gitlab.com",
		"GITLAB_OIDC_TOKEN": citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Mint()}
	job, err := seamJob(context.Background(), envOf(env), jobRequest{Now: time.Now()})
	if err != nil || job.WebIdentity == nil || job.SessionName != "gitlab-acme-app-7654321" || job.WebIdentity.Source != "GITLAB_OIDC_TOKEN" {
		t.Fatalf("job %+v %v", job, err)
	}
	_, err = seamJob(context.Background(), envOf(env), jobRequest{Audience: "https://gitlab.com", Now: time.Now()})
	if err == nil || clierror.Code(err) != 2 || !strings.Contains(err.Error(), `not "https://gitlab.com"`) {
		t.Errorf("another audience: %v", err)
	}
	env["GITLAB_OIDC_TOKEN"] = citoken.GitLab{Host: "gitlab.example.com", ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Mint()
	_, err = seamJob(context.Background(), envOf(env), jobRequest{Now: time.Now()})
	if err == nil || clierror.Code(err) != 2 || !strings.Contains(err.Error(), "issued by") {
		t.Errorf("another instance's token: %v", err)
	}
	env["GITLAB_OIDC_TOKEN"] = citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com", IssuedAt: time.Now().Add(-3 * time.Hour)}.Mint()
	_, err = seamJob(context.Background(), envOf(env), jobRequest{Now: time.Now()})
	if err == nil || clierror.Code(err) != 2 || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired token: %v", err)
	}
}

// A job without a token is told what its CI config lacks, before any call.
func TestSeamJobSaysWhatTheConfigLacks(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GITHUB_ACTIONS": "true"}, "permissions: id-token: write"},
		{map[string]string{"GITLAB_CI": "true"}, "id_tokens:\n    GITLAB_OIDC_TOKEN:\n      aud: sts.amazonaws.com"},
		{map[string]string{"BITBUCKET_BUILD_NUMBER": "7"}, "oidc: true"},
		{map[string]string{"BUILDKITE": "true"}, "buildkite-agent is not on PATH"},
	} {
		if tc.env["BUILDKITE"] != "" {
			t.Setenv("PATH", t.TempDir())
		}
		for _, auth := range []string{"oidc", ""} {
			_, err := seamJob(context.Background(), envOf(tc.env), jobRequest{Auth: auth, Now: time.Now()})
			if err == nil || !strings.Contains(err.Error(), tc.want) || clierror.Code(err) != 2 {
				t.Errorf("%v, --auth %q: %v; want a usage error naming %q", tc.env, auth, err, tc.want)
			}
			if auth == "" && err != nil && !strings.Contains(err.Error(), "AWS_IAM_USER_ACCESS_KEY_ID") {
				t.Errorf("%v without --auth: %v; want the keys named as the other way", tc.env, err)
			}
		}
	}
	// CircleCI goes through the seam too, and its jobs' tokens are ambient:
	// without one, only --auth oidc is an error; otherwise push asks for the
	// keys.
	circle := map[string]string{"CIRCLECI": "true", "CIRCLE_PROJECT_REPONAME": "app", "CIRCLE_BUILD_NUM": "42"}
	_, err := seamJob(context.Background(), envOf(circle), jobRequest{Auth: "oidc", Now: time.Now()})
	if err == nil || clierror.Code(err) != 2 || !strings.Contains(err.Error(), "neither CIRCLE_OIDC_TOKEN_V2 nor CIRCLE_OIDC_TOKEN is set") {
		t.Errorf("a CircleCI job without a token, --auth oidc: %v", err)
	}
	job, err := seamJob(context.Background(), envOf(circle), jobRequest{Now: time.Now()})
	if err != nil || job.Provider.Name() != "circleci" || job.WebIdentity != nil || job.SessionName != "circleci-app-42" {
		t.Errorf("a CircleCI job without a token: %+v %v", job, err)
	}
}

// push in a GitLab job: the token from GITLAB_OIDC_TOKEN, the session named
// after the project and job, no key; the token is never printed.
func TestPushTakesAGitLabJobsToken(t *testing.T) {
	token := citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Mint()
	env := keylessEnv(map[string]string{"GITLAB_CI": "true", "CI_PROJECT_PATH": "acme/app", "CI_JOB_ID": "7654321", "GITLAB_OIDC_TOKEN": token})
	o, stderr, err := pushWith(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.WebIdentity == nil || o.WebIdentity.Raw != token || o.AccessKeyID != "" || o.SessionName != "gitlab-acme-app-7654321" {
		t.Errorf("options: session %q, keys %q, token from %v", o.SessionName, o.AccessKeyID, o.WebIdentity)
	}
	if strings.Contains(stderr, token) {
		t.Error("the token was printed")
	}
	// The keys win without --auth oidc, and the session is still the run's.
	env["AWS_IAM_USER_ACCESS_KEY_ID"], env["AWS_IAM_USER_SECRET_ACCESS_KEY"] = testKeyID, testSecret
	o, _, err = pushWith(t, env)
	if err != nil || o.WebIdentity != nil || o.AccessKeyID != testKeyID || o.SessionName != "gitlab-acme-app-7654321" {
		t.Errorf("with keys: %v, token %v, session %q", err, o.WebIdentity, o.SessionName)
	}
	o, stderr, err = pushWith(t, env, "--auth", "oidc")
	if err != nil || o.WebIdentity == nil || o.AccessKeyID != "" || !strings.Contains(stderr, "using the token") {
		t.Errorf("--auth oidc with keys: %v, token %v, stderr %q", err, o.WebIdentity, stderr)
	}
	if _, _, err := pushWith(t, keylessEnv(nil), "--audience", "x"); err == nil || clierror.Code(err) != 2 {
		t.Errorf("--audience outside those CIs: %v", err)
	}
}
