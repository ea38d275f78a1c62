package commands

import (
	"strings"
	"testing"
)

// Teardown's CircleCI flags are checked, with the token, before any call.
func TestTeardownCircleCIBadInputBeforeAnyCall(t *testing.T) {
	for _, name := range circleCITokenVars {
		t.Setenv(name, "")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--circleci-project", "acme/app"}, "--circleci-project"},
		{[]string{"--circleci-context", "aws-push"}, "--circleci-org"},
		{[]string{"--circleci-project", "gh/acme/app", "--circleci-context", "aws-push"}, "give one of"},
		{[]string{"--circleci-org", "gh/acme"}, "go with --circleci-project"},
		{[]string{"--circleci-project", "gh/acme/app"}, "CIRCLECI_TOKEN"},
		{[]string{"--create-context"}, "unknown flag"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			a := seedSetup(t, true)
			r := runTeardownCmd(t, a, append(tc.args, "--yes")...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want 2 naming %q:\n%s", r.code, tc.want, r.stderr)
			}
			if r.built || len(a.Calls()) > 0 {
				t.Errorf("AWS was called: %v", a.Ops())
			}
		})
	}
}
