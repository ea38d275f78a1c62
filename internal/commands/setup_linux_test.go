package commands

import (
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

// A rotation at a terminal prints the new secret once, then asks whether to
// delete the old key.
func TestSetupRotationAtATerminalShowsTheSecretOnce(t *testing.T) {
	for _, answer := range []string{"y\n", "n\n"} {
		t.Run(strings.TrimSpace(answer), func(t *testing.T) {
			acct := awsfake.New(awsfake.Config{})
			first := runSetupCmd(t, acct, "-o", "dotenv")
			oldKey := dotenvOf(t, first.stdout)[names.EnvAccessKeyID]

			master, terminal := openTerminal(t)
			if _, err := master.WriteString(answer); err != nil {
				t.Fatal(err)
			}
			r := execSetup(t, setupEnv{acct: acct, in: terminal}, "--rotate-key")
			if r.err != nil {
				t.Fatal(r.err)
			}
			secret := secretFrom(t, r.stdout)
			if n := strings.Count(r.stdout, secret); n != 1 {
				t.Errorf("the secret is shown %d times:\n%s", n, r.stdout)
			}
			if !strings.Contains(r.stderr, "Delete old access key "+oldKey) {
				t.Errorf("no question about the old key:\n%s", r.stderr)
			}
			deleted := strings.Contains(r.stdout, "Old access key "+oldKey+" deleted.")
			kept := strings.Contains(r.stdout, "Old access key "+oldKey+" kept")
			if (answer == "y\n") != deleted || (answer == "n\n") != kept {
				t.Errorf("answer %q: stdout\n%s", answer, r.stdout)
			}
		})
	}
}
