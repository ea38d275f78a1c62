package teardown

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Apply runs the plan's steps and sets each resource's outcome. It returns
// nil when every resource is deleted, gone or left alone; otherwise an error
// joining why each failed resource failed (blocked ones included).
//
// Steps run in two stages. First, concurrently across resources and in order
// within each: the repository's deletion and everything that must go before
// an IAM entity can be deleted (detachments, inline policies, access keys,
// the console password, non-default policy versions). Then, concurrently,
// DeleteRole, DeleteUser and DeletePolicy, each only if its resource's first
// stage succeeded, and DeletePolicy only once the role and user no longer
// hold the policy. A NoSuchEntity from any step counts as done.
func (t *Teardown) Apply(ctx context.Context, p *Plan) error {
	if p.applied {
		return errors.New("teardown plan applied twice: make a new plan")
	}
	p.applied = true

	stage := func(final bool) {
		var wg sync.WaitGroup
		for _, r := range p.Resources {
			if r.State != StateDelete || r.err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.err = t.runSteps(ctx, r, final)
			}()
		}
		wg.Wait()
	}
	stage(false)
	stage(true)

	var errs []error
	for _, r := range p.Resources {
		switch r.State {
		case StateGone:
			r.Outcome = OutcomeGone
		case StateUnmanaged:
			r.Outcome = OutcomeLeftAlone
		case StateBlocked:
			r.err = errors.New(r.Reason)
		case StateDelete:
			if r.err == nil {
				r.Outcome = OutcomeDeleted
			}
		}
		if r.err != nil {
			r.Outcome, r.Error = OutcomeFailed, r.err.Error()
			errs = append(errs, r.err)
		}
	}
	return errors.Join(errs...)
}

// runSteps runs, in order, the steps of r that belong to the stage, and stops
// at the first failure.
func (t *Teardown) runSteps(ctx context.Context, r *Resource, final bool) error {
	for _, s := range r.Steps {
		if s.final != final {
			continue
		}
		for _, n := range s.needs {
			if !n.ok {
				return fmt.Errorf("%s %s: not deleted: %s %s still uses it, because %q failed (see %s %s); fix that, then rerun teardown",
					r.Kind, r.Name, n.owner.Kind, n.owner.Name, n.Action, n.owner.Kind, n.owner.Name)
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s %s: interrupted before %q: %w (rerun teardown to finish)", r.Kind, r.Name, s.Action, err)
		}
		err := t.do(ctx, s)
		switch {
		case err == nil:
			t.logf("%s: done", s.Action)
		case notFound(err):
			// Already gone: another teardown, or a person, got there first.
			t.logf("%s: already done", s.Action)
		default:
			return fmt.Errorf("%s %s: %s failed (%s): %w (%s)", r.Kind, r.Name, s.Action, s.Call, awsError{err}, stepHint(r, s, err))
		}
		s.ok = true
	}
	return nil
}

// do runs a step. A final step refused with DeleteConflict is retried for a
// while: IAM may not yet see the detachments that just succeeded.
func (t *Teardown) do(ctx context.Context, s *Step) error {
	err := s.do(ctx)
	if !s.final || !isDeleteConflict(err) || t.conflictWait <= 0 {
		return err
	}
	deadline := time.Now().Add(t.conflictWait)
	wait := t.conflictPoll
	t.logf("%s: IAM still reports it in use; retrying for up to %s", s.Action, t.conflictWait)
	for isDeleteConflict(err) && time.Now().Add(wait).Before(deadline) {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return errors.Join(err, ctx.Err())
		case <-timer.C:
		}
		err = s.do(ctx)
		wait = min(2*wait, 8*time.Second)
	}
	return err
}

func stepHint(r *Resource, s *Step, err error) string {
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return "teardown was interrupted; rerun it to finish"
	case isAccessDenied(err):
		return "the credentials in use do not allow " + s.Call + ": run teardown as an administrator, e.g. with --profile, then rerun it"
	case isDeleteConflict(err):
		switch r.Kind {
		case KindUser:
			return fmt.Sprintf("the user still has something teardown does not remove: a group membership, an MFA device, a signing certificate, an SSH public key or a service-specific credential; "+
				"find them with `aws iam list-groups-for-user --user-name %[1]s`, `aws iam list-mfa-devices --user-name %[1]s`, `aws iam list-signing-certificates --user-name %[1]s`, "+
				"`aws iam list-ssh-public-keys --user-name %[1]s` and `aws iam list-service-specific-credentials --user-name %[1]s`, remove them, then rerun teardown", r.Name)
		default:
			return "something was added to it since teardown read the account; rerun teardown to see what"
		}
	default:
		return "rerun teardown: it continues where this run stopped"
	}
}
