package e2e

import (
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/testsupport/schemacheck"
)

// The built binary's ci-config, for each CI, passes that CI's own
// validator; keyless GitHub grants id-token: write and reads the role from
// the repository's variables.
func TestCIConfigPassesEachCIsValidator(t *testing.T) {
	r := run(t, nil, "ci-config", "--ci", "github", "--auth", "oidc")
	if r.Code != 0 {
		t.Fatalf("ci-config --ci github:\n%s", r)
	}
	schemacheck.CheckWorkflow(t, ".github/workflows/containerise.yml", []byte(r.Stdout))
	for _, want := range []string{"id-token: write", "${{ vars.AWS_IAM_ROLE_ARN }}", "containerise push --auth oidc"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("the GitHub workflow lacks %q:\n%s", want, r.Stdout)
		}
	}
	for _, tc := range []struct{ ci, schema, want string }{
		{"gitlab", schemacheck.GitLabSchema, "id_tokens:"},
		{"bitbucket", schemacheck.BitbucketSchema, "oidc: true"},
		{"buildkite", schemacheck.BuildkiteSchema, "containerise push --auth oidc"},
	} {
		r := run(t, nil, "ci-config", "--ci", tc.ci, "--role-arn", "arn:aws:iam::123456789012:role/containerise")
		if r.Code != 0 {
			t.Errorf("ci-config --ci %s:\n%s", tc.ci, r)
			continue
		}
		schemacheck.CheckWith(t, tc.schema, []byte(r.Stdout))
		if !strings.Contains(r.Stdout, tc.want) || !strings.Contains(r.Stdout, "--role-arn arn:aws:iam::123456789012:role/containerise") {
			t.Errorf("the %s config lacks %q or the embedded role:\n%s", tc.ci, tc.want, r.Stdout)
		}
	}
	if r := run(t, nil, "ci-config", "--ci", "jenkins"); r.Code != 2 || r.Stdout != "" {
		t.Errorf("ci-config --ci jenkins: want exit 2 and nothing on stdout\n%s", r)
	}
}
