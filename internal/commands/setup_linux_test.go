package commands

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/provision"
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
			var out, errb bytes.Buffer
			g := &Globals{In: terminal, Out: &out, Err: &errb}
			cmd := newSetupCmdWith(g, func(context.Context) (*provision.Provisioner, string, error) {
				return &provision.Provisioner{IAM: acct.IAM(), ECR: acct.ECR(), STS: acct.STS(), Logf: g.Logf}, acct.Region(), nil
			})
			cmd.SetArgs([]string{"--rotate-key"})
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			if err := cmd.ExecuteContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			secret := secretFrom(t, out.String())
			if n := strings.Count(out.String(), secret); n != 1 {
				t.Errorf("the secret is shown %d times:\n%s", n, out.String())
			}
			if !strings.Contains(errb.String(), "Delete old access key "+oldKey) {
				t.Errorf("no question about the old key:\n%s", errb.String())
			}
			deleted := strings.Contains(out.String(), "Old access key "+oldKey+" deleted.")
			kept := strings.Contains(out.String(), "Old access key "+oldKey+" kept")
			if (answer == "y\n") != deleted || (answer == "n\n") != kept {
				t.Errorf("answer %q: stdout\n%s", answer, out.String())
			}
		})
	}
}
