package resource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

// TestDeletion: one wrapper for every deletion step: not found is done,
// the step is logged (its outcome, or why it runs), a failure is worded by
// Fail, and an interrupted run stops before the call, saying what finishes it.
func TestDeletion(t *testing.T) {
	rep := &Report{Kind: KindUser, Name: "circleci"}
	notFound := &smithy.GenericAPIError{Code: "NoSuchEntity", Message: "gone"}
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "no"}
	for _, tc := range []struct {
		name, why string
		err       error
		log       string
		failed    bool
	}{
		{"deleted", "", nil, "delete user circleci: done\n", false},
		{"not found", "", notFound, "delete user circleci: already done\n", false},
		{"failed", "", denied, "", true},
		{"retired", "no longer used", nil, "delete user circleci: no longer used\n", false},
		{"retired, not found", "no longer used", notFound, "delete user circleci: no longer used\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log strings.Builder
			var done []string
			calls := 0
			s := &Step{Action: "delete user circleci", Call: "iam:DeleteUser", Do: func(context.Context) error { calls++; return tc.err }}
			Deletion{Report: rep, Rerun: "teardown", Why: tc.why,
				Logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) },
				Fail: func(s *Step, err error) error { return fmt.Errorf("worded: %s: %w", s.Call, err) },
				Done: func(s *Step) { done = append(done, s.Action) },
			}.Wrap(s)
			err := s.Do(context.Background())
			if calls != 1 || log.String() != tc.log {
				t.Errorf("%d calls, log %q, want %q", calls, log.String(), tc.log)
			}
			if tc.failed != (err != nil) || tc.failed && (!strings.HasPrefix(err.Error(), "worded: iam:DeleteUser") || !errors.Is(err, denied)) || tc.failed == (len(done) == 1) {
				t.Errorf("err %v, done %v", err, done)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := &Step{Action: "delete user circleci", Do: func(context.Context) error { t.Error("called after the interrupt"); return nil }}
	Deletion{Report: rep, Rerun: "setup", Fail: func(_ *Step, err error) error { return err }}.Wrap(s)
	if err := s.Do(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `user circleci: interrupted before "delete user circleci"`) || !strings.Contains(err.Error(), "rerun setup") {
		t.Errorf("interrupted: %v", err)
	}
}
