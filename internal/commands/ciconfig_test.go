package commands

import (
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/testsupport/schemacheck"
)

// Each CI's config, as ci-config prints it, passes that CI's validator.
func TestCIConfigPassesEachCIsValidator(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		path   string
		check  func(t *testing.T, body []byte)
		expect []string
	}{
		{[]string{"--ci", "github"}, ".github/workflows/containerise.yml",
			func(t *testing.T, b []byte) { schemacheck.CheckWorkflow(t, ".github/workflows/containerise.yml", b) },
			[]string{"id-token: write", "${{ vars.AWS_IAM_ROLE_ARN }}", "--auth oidc"}},
		{[]string{"--ci", "github", "--auth", "keys", "--role-arn", "arn:aws:iam::123456789012:role/containerise"}, ".github/workflows/containerise.yml",
			func(t *testing.T, b []byte) { schemacheck.CheckWorkflow(t, ".github/workflows/containerise.yml", b) },
			[]string{"--auth keys", "--role-arn arn:aws:iam::123456789012:role/containerise", "secrets.AWS_IAM_USER_SECRET_ACCESS_KEY"}},
		{[]string{"--ci", "gitlab", "--gitlab-audience", "https://aws.example.com", "--tag", "${CI_COMMIT_SHORT_SHA}"}, ".gitlab-ci.yml",
			func(t *testing.T, b []byte) { schemacheck.CheckWith(t, schemacheck.GitLabSchema, b) },
			[]string{"id_tokens:", "aud: https://aws.example.com", `--tag "${CI_COMMIT_SHORT_SHA}"`}},
		{[]string{"--ci", "bitbucket", "--repository", "my-app"}, "bitbucket-pipelines.yml",
			func(t *testing.T, b []byte) { schemacheck.CheckWith(t, schemacheck.BitbucketSchema, b) },
			[]string{"oidc: true", "--repository my-app", `--tag "${BITBUCKET_COMMIT}"`}},
		{[]string{"--ci", "buildkite"}, ".buildkite/pipeline.yml",
			func(t *testing.T, b []byte) { schemacheck.CheckWith(t, schemacheck.BuildkiteSchema, b) },
			[]string{"--auth oidc", `--tag "$${BUILDKITE_COMMIT}"`}},
		{[]string{"--ci", "circleci", "--circleci-org-id", "4a3c2b1d-0e9f-4a8b-8c7d-6e5f4a3b2c1d"}, ".circleci/config.yml",
			func(t *testing.T, b []byte) {},
			[]string{"--auth oidc --circleci-org-id 4a3c2b1d-0e9f-4a8b-8c7d-6e5f4a3b2c1d", `"${CIRCLE_SHA1}"`}},
	} {
		out, errOut, code := runCLI(t, append([]string{"ci-config"}, tc.args...)...)
		if code != 0 {
			t.Errorf("ci-config %q: exit %d\n%s", tc.args, code, errOut)
			continue
		}
		tc.check(t, []byte(out))
		for _, want := range tc.expect {
			if !strings.Contains(out, want) {
				t.Errorf("ci-config %q lacks %q:\n%s", tc.args, want, out)
			}
		}
		if !strings.Contains(errOut, tc.path) {
			t.Errorf("ci-config %q: stderr %q does not name %s", tc.args, errOut, tc.path)
		}
	}
}

func TestCIConfigRefusesBadInputBeforePrinting(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--ci", "jenkins"},
		{"--ci", "github", "--auth", "password"},
		{"--ci", "github", "--tag", "$(id)"},
		{"--ci", "github", "--tag", "${AWS_SECRET_ACCESS_KEY}"},
		{"--ci", "gitlab", "--gitlab-audience", "sts.*"},
		{"--ci", "github", "--gitlab-audience", "x"},
		{"--ci", "bitbucket", "--role-arn", "arn:aws:iam::1:role/x"},
		{"--ci", "buildkite", "--context", "/abs"},
		{"--ci", "circleci", "--role-arn", "arn:aws:iam::123456789012:role/x"},
		{"--ci", "github", "--circleci-org-id", "x"},
		{"--ci", "gitlab", "--release-url", "http://downloads.example.com"},
		{"--ci", "buildkite", "--install-version", "main"},
	} {
		out, errOut, code := runCLI(t, append([]string{"ci-config"}, args...)...)
		if code != 2 || out != "" || errOut == "" {
			t.Errorf("ci-config %q: exit %d, stdout %q, stderr %q; want exit 2, an error and nothing printed", args, code, out, errOut)
		}
	}
}

// ci-config installs the emitting binary's release by default, for every
// CI, from --release-url; a commit hash builds from source and says so.
func TestCIConfigInstallsAPinnedRelease(t *testing.T) {
	for _, c := range []string{"github", "gitlab", "bitbucket", "buildkite", "circleci"} {
		out, errOut, code := runCLI(t, "ci-config", "--ci", c, "--release-url", "https://downloads.example.com/c")
		if code != 0 {
			t.Errorf("ci-config --ci %s: exit %d\n%s", c, code, errOut)
			continue
		}
		for _, want := range []string{"version='v1.2.3'", "base='https://downloads.example.com/c'", "does not match its SHA-256"} {
			if !strings.Contains(strings.ReplaceAll(out, "$$", "$"), want) {
				t.Errorf("ci-config --ci %s lacks %q:\n%s", c, want, out)
			}
		}
		if strings.Contains(out, "go install") || strings.Contains(out, "setup-go") || strings.Contains(out, "golang:") {
			t.Errorf("ci-config --ci %s installs a release with Go:\n%s", c, out)
		}

		out, _, code = runCLI(t, "ci-config", "--ci", c, "--install-version", "abcdef0")
		if code != 0 || !strings.Contains(out, "go install github.com/containerise/containerise/cmd/containerise@abcdef0") ||
			!strings.Contains(out, "No release for commit abcdef0") {
			t.Errorf("ci-config --ci %s --install-version abcdef0: exit %d, want a go install from source that says so:\n%s", c, code, out)
		}
	}
}
