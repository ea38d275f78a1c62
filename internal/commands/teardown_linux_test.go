package commands

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openTerminal returns the two ends of a new pseudo-terminal: what the user
// types goes into master, and the command reads it from the terminal.
func openTerminal(t *testing.T) (master, terminal *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("naming the pseudo-terminal: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestTeardownAsksAtATerminal(t *testing.T) {
	for _, tc := range []struct {
		answer  string
		code    int
		deleted bool
	}{
		{"y\n", 0, true},
		{"yes\n", 0, true},
		{"n\n", 1, false},
		{"\n", 1, false},
	} {
		t.Run(strings.TrimSpace(tc.answer), func(t *testing.T) {
			a := seedSetup(t, true)
			master, terminal := openTerminal(t)
			if _, err := master.WriteString(tc.answer); err != nil {
				t.Fatal(err)
			}
			r := runTeardownCmdIn(t, a, terminal)
			if r.code != tc.code {
				t.Fatalf("answer %q: exit %d, want %d\n%s%s", tc.answer, r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "Delete what the plan above lists? [y/N]") {
				t.Errorf("no question on stderr:\n%s", r.stderr)
			}
			if deleted := len(a.Mutating()) > 0; deleted != tc.deleted {
				t.Errorf("answer %q: deleted = %v, want %v (calls %v)", tc.answer, deleted, tc.deleted, a.Mutating())
			}
			if !tc.deleted && !strings.Contains(r.stderr, "nothing was deleted") {
				t.Errorf("a declined teardown should say nothing was deleted:\n%s", r.stderr)
			}
		})
	}
}
