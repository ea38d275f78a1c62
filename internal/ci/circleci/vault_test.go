package circleci_test

import (
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci"
)

// A project shows a value's last four characters; a context only when each
// variable was written. Both take a write and a removal the same way.
func TestVaultOfAProjectAndOfAContext(t *testing.T) {
	f := newFixture(t)
	id := f.srv.AddContext(org, "aws")
	for i, v := range []*circleci.Vault{circleci.ProjectVault(f.client, project), circleci.ContextVault(f.client, id)} {
		t.Run(v.String(), func(t *testing.T) {
			if err := v.Set(t.Context(), "AWS_REGION", "eu-west-1"); err != nil {
				t.Fatal(err)
			}
			shown, updated, err := v.Variables(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got, ok := shown["AWS_REGION"]
			isContext := i == 1
			switch {
			case !ok:
				t.Fatalf("not shown: %v", shown)
			case isContext && (got != "" || updated["AWS_REGION"].IsZero()):
				t.Errorf("a context shows %q, written %v", got, updated["AWS_REGION"])
			case !isContext && got != "xxxxst-1":
				t.Errorf("a project shows %q", got)
			}
			only, err := v.Shown(t.Context(), []string{"AWS_REGION", "ABSENT"})
			if err != nil || len(only) != 1 {
				t.Errorf("Shown: %v %v", only, err)
			}
			if err := v.Delete(t.Context(), "AWS_REGION"); err != nil {
				t.Fatal(err)
			}
			if err := v.Delete(t.Context(), "AWS_REGION"); err != nil {
				t.Errorf("removing an absent variable: %v", err)
			}
			if after, _, _ := v.Variables(t.Context()); len(after) != 0 {
				t.Errorf("left %v", after)
			}
		})
	}
}
