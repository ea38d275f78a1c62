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
	job, err := seamJob(context.Background(), envOf(srv.Env()), "oidc", false, srv.Client(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if job.Provider.Name() != "github" || job.WebIdentity == nil || job.SessionName != "github-acme-app-9876543210-1" {
		t.Fatalf("job %+v", job)
	}
	if c := job.WebIdentity.Claims; c.Subject != "repo:acme/app:ref:refs/heads/main" || c.Audience[0] != "sts.amazonaws.com" {
		t.Errorf("claims %+v", c)
	}
	// The job's own keys win, as in CircleCI, unless --auth oidc.
	keys, err := seamJob(context.Background(), envOf(srv.Env()), "", true, srv.Client(), time.Now())
	if err != nil || keys.WebIdentity != nil || len(srv.Audiences()) != 1 {
		t.Errorf("with keys: %+v, %v (token requests %d)", keys, err, len(srv.Audiences()))
	}
}

func TestSeamJobSaysWhatTheConfigLacks(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GITHUB_ACTIONS": "true"}, "permissions: id-token: write"},
		{map[string]string{"GITLAB_CI": "true"}, "id_tokens:"},
		{map[string]string{"BITBUCKET_BUILD_NUMBER": "7"}, "oidc: true"},
		{map[string]string{"BUILDKITE": "true", "PATH": ""}, "buildkite-agent"},
	} {
		if tc.env["PATH"] == "" && tc.env["BUILDKITE"] != "" {
			t.Setenv("PATH", t.TempDir())
		}
		_, err := seamJob(context.Background(), envOf(tc.env), "oidc", false, nil, time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) || clierror.Code(err) != 2 {
			t.Errorf("%v: %v; want a usage error naming %q", tc.env, err, tc.want)
		}
	}
	if job, err := seamJob(context.Background(), envOf(map[string]string{"CIRCLECI": "true"}), "oidc", false, nil, time.Now()); job != nil || err != nil {
		t.Errorf("a CircleCI job is not the seam's here: %+v %v", job, err)
	}
}
