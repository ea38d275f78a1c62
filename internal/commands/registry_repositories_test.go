package commands

import (
	"slices"
	"strings"
	"testing"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

// count is how many times op is among ops.
func count(ops []string, op string) int {
	n := 0
	for _, o := range ops {
		if o == op {
			n++
		}
	}
	return n
}

// One role for two repositories: the registry's configurations are shared
// by both, so setup writes each once, with a filter and a signing rule per
// repository (and the signing tag on each), beside another team's; a rerun
// writes nothing; teardown takes both out in one write each and leaves the
// other team's.
func TestRegistryRulesOfSeveralRepositoriesAreOneWrite(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	putScanning(t, acct, ecrtypes.ScanTypeBasic, rule(ecrtypes.ScanFrequencyScanOnPush, "other-app"))
	acct.ResetCalls()
	args := []string{"--repository", "my-app", "--repository", "my-api", "--scanning", "enhanced", "--signing-profile", profileA, "--yes"}

	r := runSetupCmd(t, acct, args...)
	if r.err != nil {
		t.Fatalf("setup: %s", r.message)
	}
	m := acct.Mutating()
	if n := count(m, "ecr.PutRegistryScanningConfiguration"); n != 1 {
		t.Errorf("%d registry scanning writes, want 1: %v", n, m)
	}
	if n := count(m, "ecr.PutSigningConfiguration"); n != 1 {
		t.Errorf("%d signing writes, want 1: %v", n, m)
	}
	typ, rules := scanRules(acct)
	if typ != ecrtypes.ScanTypeEnhanced || !slices.Equal(rules, []string{"SCAN_ON_PUSH: my-api, my-app, other-app"}) {
		t.Errorf("registry scanning: %s %v", typ, rules)
	}
	if got := strings.Join(signingRules(acct), "; "); got != "team_a: my-api; team_a: my-app" {
		t.Errorf("signing rules: %s", got)
	}
	for _, line := range []string{"my-app: enhanced scanning on push", "my-api: enhanced scanning on push", "my-app: pushes signed with", "my-api: pushes signed with"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("setup does not say %q:\n%s", line, r.stdout)
		}
	}

	acct.ResetCalls()
	if r = runSetupCmd(t, acct, args...); r.err != nil || len(acct.Mutating()) != 0 {
		t.Errorf("rerun: %v wrote %v", r.err, acct.Mutating())
	}

	acct.ResetCalls()
	td := runTeardownCmd(t, acct, "--yes")
	if td.code != 0 {
		t.Fatalf("teardown: %d\n%s", td.code, td.stderr)
	}
	m = acct.Mutating()
	if n, d := count(m, "ecr.PutRegistryScanningConfiguration"), count(m, "ecr.DeleteSigningConfiguration"); n != 1 || d != 1 {
		t.Errorf("teardown made %d registry scanning writes and %d signing deletions, want 1 each: %v", n, d, m)
	}
	if n := count(m, "ecr.DeleteRepository"); n != 2 {
		t.Errorf("teardown deleted %d repositories, want 2: %v", n, m)
	}
	if typ, rules = scanRules(acct); typ != ecrtypes.ScanTypeEnhanced || !slices.Equal(rules, []string{"SCAN_ON_PUSH: other-app"}) {
		t.Errorf("after teardown: %s %v", typ, rules)
	}
	if acct.SigningRules() != nil {
		t.Errorf("signing rules left: %v", signingRules(acct))
	}
}
