package commands

import (
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

func TestSetupThatDropsARepositorySaysHowToKeepBoth(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	if r := runSetupCmd(t, acct, "--repository", "my-app"); r.err != nil {
		t.Fatal(r.message)
	}
	acct.ResetCalls()
	r := runSetupCmd(t, acct)
	if clierror.Code(r.err) != clierror.ExitUsage {
		t.Fatalf("setup dropping my-app: exit %d, want 2: %s", clierror.Code(r.err), r.message)
	}
	for _, want := range []string{
		"would stop granting push to us-east-1/my-app",
		"Nothing was changed",
		"name both: containerise setup --repository circleci-ecr-test --repository my-app",
		"--policy NEW-POLICY --role NEW-ROLE",
		"confirm: containerise setup --yes",
	} {
		if !strings.Contains(r.message, want) {
			t.Errorf("message lacks %q:\n%s", want, r.message)
		}
	}
	if m := acct.Mutating(); len(m) != 0 {
		t.Errorf("refused setup wrote: %v", m)
	}

	// Naming both drops nothing: no question, one new policy version.
	both := runSetupCmd(t, acct, "--repository", "circleci-ecr-test", "--repository", "my-app")
	if both.err != nil {
		t.Fatal(both.message)
	}
	for _, want := range []string{`^\s+repository\s+us-east-1/circleci-ecr-test\s+created$`, `^\s+repository\s+us-east-1/my-app\s+unchanged$`} {
		if !regexpLine(both.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, both.stdout)
		}
	}
}

func TestTeardownRefusesARepositoryThePolicyDoesNotGrant(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	if r := runSetupCmd(t, acct, "--repository", "my-app"); r.err != nil {
		t.Fatal(r.message)
	}
	acct.ResetCalls()
	r := runTeardownCmd(t, acct, "--yes", "--repository", "circleci-ecr-test")
	if r.code != 2 || !strings.Contains(r.stderr, "does not grant push to us-east-1/circleci-ecr-test") ||
		!strings.Contains(r.stderr, "the policy grants us-east-1/my-app") || !strings.Contains(r.stderr, "--include-unmanaged") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
	if m := acct.Mutating(); len(m) != 0 {
		t.Errorf("refused teardown wrote: %v", m)
	}
	bare := runTeardownCmd(t, acct, "--yes")
	if bare.code != 0 || !strings.Contains(bare.stdout, "repository us-east-1/my-app: deleted") || !strings.Contains(bare.stdout, "Teardown of account "+acct.ID()) {
		t.Errorf("bare teardown: exit %d\n%s%s", bare.code, bare.stdout, bare.stderr)
	}
}
