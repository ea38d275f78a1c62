package resource

import (
	"context"
	"fmt"

	"github.com/containerise/containerise/internal/awsx"
)

// Deletion is how every step that deletes something runs, in teardown and
// when setup retires what it no longer wants: a run interrupted before the
// step stops there, saying which command finishes it; "not found" counts as
// done (another run, or a person, got there first); the step is logged; a
// failure is worded by Fail.
type Deletion struct {
	// Report is the resource the steps delete.
	Report *Report
	Logf   func(format string, args ...any)
	// Rerun is the command that finishes an interrupted run: "teardown".
	Rerun string
	// Why, when set, says why the resource goes; it is logged as each step
	// starts ("<action>: <why>"). Without it each step's outcome is logged
	// when it ends ("<action>: done", or "already done" when not found).
	Why string
	// Fail words the failure of step s.
	Fail func(s *Step, err error) error
	// Done, when set, runs after step s succeeded or found nothing left.
	Done func(s *Step)
}

// Wrap makes s run as one of the deletion's steps.
func (d Deletion) Wrap(s *Step) {
	do := s.Do
	s.Do = func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s %s: interrupted before %q: %w (rerun %s to finish)", d.Report.Kind, d.Report.Label(), s.Action, err, d.Rerun)
		}
		if d.Why != "" {
			d.logf("%s: %s", s.Action, d.Why)
		}
		err := do(ctx)
		switch {
		case err == nil:
			d.outcome("%s: done", s.Action)
		case awsx.IsNotFound(err):
			d.outcome("%s: already done", s.Action)
		default:
			return d.Fail(s, err)
		}
		if d.Done != nil {
			d.Done(s)
		}
		return nil
	}
}

func (d Deletion) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

// outcome logs how a step ended, when its start did not say why it ran.
func (d Deletion) outcome(format string, args ...any) {
	if d.Why == "" {
		d.logf(format, args...)
	}
}
