package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

// A rotation whose key ID write CircleCI refuses after the secret landed:
// the binary exits 1 saying CircleCI pairs the old ID with the new secret,
// keeps both keys, and the same command run again leaves CircleCI with a
// pair that pushes and IAM with one key.
func TestCircleCIHalfFailedRotationConverges(t *testing.T) {
	resetAWS(t)
	ci := startCircleCI(t)
	if r := run(t, ci.env, "setup", "--circleci-project", e2eCircleProject); r.Code != 0 {
		t.Fatalf("setup into CircleCI failed:\n%s", r)
	}
	old := ci.ProjectVars(e2eCircleProject)["AWS_IAM_USER_ACCESS_KEY_ID"]

	ci.Inject(circlecitest.Fault{Method: http.MethodPost, Variable: "AWS_IAM_USER_ACCESS_KEY_ID", Times: -1, Status: http.StatusForbidden})
	rotate := []string{"setup", "--circleci-project", e2eCircleProject, "--rotate-key", "--yes"}
	half := run(t, ci.env, rotate...)
	if half.Code != 1 {
		t.Fatalf("the half-failed rotation: want exit 1:\n%s", half)
	}
	keys := userKeys(t)
	if len(keys) != 2 || !slices.Contains(keys, old) {
		t.Fatalf("keys %v, want the old key %s and the new one", keys, old)
	}
	fresh := keys[0]
	if fresh == old {
		fresh = keys[1]
	}
	if want := "holds the ID of old key " + old + " with the secret of new key " + fresh; !strings.Contains(half.Stdout, want) {
		t.Errorf("stdout does not say %q:\n%s", want, half.Stdout)
	}
	if held := ci.ProjectVars(e2eCircleProject); held["AWS_IAM_USER_ACCESS_KEY_ID"] != old || strings.Contains(half.Stdout+half.Stderr, held["AWS_IAM_USER_SECRET_ACCESS_KEY"]) {
		t.Fatalf("CircleCI's key ID %s (old %s), or the secret reached the output", held["AWS_IAM_USER_ACCESS_KEY_ID"], old)
	}

	ci.ClearFaults()
	again := run(t, ci.env, rotate...)
	if again.Code != 0 {
		t.Fatalf("the rerun failed:\n%s", again)
	}
	held := ci.ProjectVars(e2eCircleProject)
	if keys := userKeys(t); len(keys) != 1 || keys[0] != held["AWS_IAM_USER_ACCESS_KEY_ID"] || keys[0] == old || keys[0] == fresh {
		t.Fatalf("after the rerun: keys %v, CircleCI's key ID %s", keys, held["AWS_IAM_USER_ACCESS_KEY_ID"])
	}
	pushWith(t, held)
}

// --create-context makes a context open only to the project named, and
// CI pushes with what it holds.
func TestCircleCICreatedContextIsRestricted(t *testing.T) {
	resetAWS(t)
	ci := startCircleCI(t)
	r := run(t, ci.env, "setup", "--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", e2eCircleProject)
	if r.Code != 0 {
		t.Fatalf("setup into a new context failed:\n%s", r)
	}
	ids := ci.ContextIDs("gh/acme", "aws-push")
	if len(ids) != 1 {
		t.Fatalf("contexts %v", ids)
	}
	if got := ci.ContextProjectRestrictions(ids[0]); !slices.Equal(got, []string{ci.ProjectID(e2eCircleProject)}) {
		t.Fatalf("restrictions %v, want project %s only", got, ci.ProjectID(e2eCircleProject))
	}
	pushWith(t, ci.ContextVars(ids[0]))
}
