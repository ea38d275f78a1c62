package circlecitest_test

import (
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

// An error that hides a success: the change is made, the answer is a 5xx.
func TestFaultAppliedThenFails(t *testing.T) {
	s := newServer(t)
	s.Inject(circlecitest.Fault{Method: "POST", Status: 502, Applied: true})
	if status, _ := call(t, s, "POST", "/api/v2/project/gh/acme/app/envvar", token, `{"name":"K","value":"v1234"}`); status != 502 {
		t.Errorf("status %d, want 502", status)
	}
	if v, ok := s.ProjectVar("gh/acme/app", "K"); !ok || v != "v1234" {
		t.Errorf("the change was not made: %q %v", v, ok)
	}
}
