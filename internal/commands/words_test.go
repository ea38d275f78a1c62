package commands

import (
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/provision"
)

// The domain packages suggest ways forward; the command words each with
// the flag that takes it.
func TestWaysForwardNameTheirFlags(t *testing.T) {
	for next, want := range map[hint.Next]string{
		hint.WaitLonger:         "--wait",
		hint.AdminCredentials:   "--profile",
		hint.RotateKey:          "containerise setup --rotate-key",
		hint.IncludeUnmanaged:   "--include-unmanaged",
		hint.AllowSkipExisting:  "--allow-skip-existing",
		hint.RecreateRepository: "containerise teardown",
		hint.AllowScan:          "--allow-scan",
	} {
		if got := defaultWords(next); !strings.Contains(got, want) {
			t.Errorf("%v worded %q, want it to name %s", next, got, want)
		}
	}
	o := setupOptions{Options: provision.Options{Repository: "my-app", Policy: names.Policy, User: names.User, Role: names.Role}}
	if got := o.words(hint.RotateKey); !strings.Contains(got, "containerise setup --rotate-key --repository my-app") {
		t.Errorf("setup words the rotation %q", got)
	}
	o.Settings.KMSKey = "alias/ecr"
	if got := o.words(hint.RecreateRepository); !strings.Contains(got, "--kms-key alias/ecr") || !strings.Contains(got, "containerise teardown --repository my-app") {
		t.Errorf("setup words a new repository %q", got)
	}
}
