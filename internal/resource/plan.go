package resource

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/awsx"
)

// Step is one action of a plan, usually one API call.
type Step struct {
	Action string // "detach policy ECRContainerise from role containerise"
	Call   string // "iam:DetachRolePolicy"
	// Needs are the steps that must have succeeded before this one runs.
	Needs []*Step
	// Do acts.
	Do func(ctx context.Context) error
	// Skipped, when set, runs instead of Do when a needed step did not
	// succeed (cause is the step that failed); it returns the error to
	// record for this step, nil when being skipped is no failure of its own.
	Skipped func(ctx context.Context, cause *Step) error
	// Confirm, when set, is the question a person must have answered yes
	// (or the plan must be confirmed) before the step runs: for steps that
	// take away what someone else may still use. Declined runs instead of
	// Do when the plan was not confirmed.
	Confirm  string
	Declined func()
	// Required, on a step that asks for confirmation, is why a run
	// without it must not go ahead at all: the change cannot be left out
	// quietly (setup's registry scan type). Unconfirmed returns it, and
	// nothing runs.
	Required func() error

	// Report is the resource the step works on.
	Report *Report

	done  chan struct{}
	ran   bool
	err   error
	cause *Step
}

// Err is the step's error once the plan ran: its own failure, or what its
// Skipped recorded.
func (s *Step) Err() error { return s.err }

// OK reports whether the step ran and succeeded.
func (s *Step) OK() bool { return s.ran && s.err == nil }

// Plan is what a run will do: the resources with their reports, the steps
// with what each needs, and notes for the user. Reconcile and Delete fill
// it; Apply runs it.
type Plan struct {
	Env       *Env
	Identity  awsx.Identity
	Resources []Resource

	mu       sync.Mutex
	notes    []Note
	warnings []string
	steps    []*Step
	later    []func()

	deleteUnmanaged bool
	refused         []error
	confirmed       bool
}

// Observe reads every resource concurrently, with the caller's identity,
// and returns a plan over them with nothing in it yet. The first failed
// read cancels the others and is returned: nothing has been changed then.
func Observe(ctx context.Context, env *Env, purpose Purpose, resources ...Resource) (*Plan, error) {
	g, gctx := errgroup.WithContext(ctx)
	var id awsx.Identity
	g.Go(func() error {
		var err error
		id, err = env.Identity(gctx)
		return err
	})
	for _, r := range resources {
		g.Go(func() error { return r.Observe(gctx, env, purpose) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return &Plan{Env: env, Identity: id, Resources: resources}, nil
}

// Reconcile has every resource, in order, compare what it found with what
// is wanted and add its steps.
func (p *Plan) Reconcile() *Plan {
	for _, r := range p.Resources {
		r.Reconcile(p)
	}
	p.runLater()
	return p
}

// Delete has every resource, in order, add the steps that delete it.
func (p *Plan) Delete() *Plan {
	for _, r := range p.Resources {
		r.Delete(p)
	}
	p.runLater()
	return p
}

// Later runs fn once every resource has added its steps: for decisions that
// depend on what resources added after this one.
func (p *Plan) Later(fn func()) { p.later = append(p.later, fn) }

func (p *Plan) runLater() {
	for len(p.later) > 0 {
		fn := p.later[0]
		p.later = p.later[1:]
		fn()
	}
}

// Add adds a step working on r, after the steps it needs, and lists it
// among r's steps.
func (p *Plan) Add(r *Report, s *Step) *Step {
	s.Report = r
	p.steps = append(p.steps, s)
	r.Steps = append(r.Steps, s)
	return s
}

// Reports are every resource's reports, in the resources' order.
func (p *Plan) Reports() []*Report {
	var out []*Report
	for _, r := range p.Resources {
		out = append(out, r.Reports()...)
	}
	return out
}

// Steps counts the plan's steps.
func (p *Plan) Steps() int { return len(p.steps) }

// Note records something the user should know or do next.
func (p *Plan) Note(n Note) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notes = append(p.notes, n)
}

// Warn records a difference the user should look at.
func (p *Plan) Warn(w string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.warnings = append(p.warnings, w)
}

// Notes and Warnings are what was recorded, in order.
func (p *Plan) Notes() []Note {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Note(nil), p.notes...)
}

// Warnings are the recorded warnings, in order.
func (p *Plan) Warnings() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.warnings...)
}

// Apply runs every step as soon as the steps it needs have succeeded, so
// independent steps run concurrently. A step whose need failed does not
// run (its Skipped says what that means for its resource); a failure stops
// nothing else. Apply returns once every step is done or skipped.
func (p *Plan) Apply(ctx context.Context) {
	for _, s := range p.steps {
		s.done = make(chan struct{})
	}
	var wg sync.WaitGroup
	for _, s := range p.steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(s.done)
			s.run(ctx, p.confirmed)
		}()
	}
	wg.Wait()
}

// Questions are the confirmations the plan's steps ask for, in order.
func (p *Plan) Questions() []string {
	var out []string
	for _, s := range p.steps {
		if s.Confirm != "" {
			out = append(out, s.Confirm)
		}
	}
	return out
}

// Unconfirmed is why the plan must not run unconfirmed: the Required
// errors of its steps that ask for confirmation; nil when it may.
func (p *Plan) Unconfirmed() error {
	var errs []error
	for _, s := range p.steps {
		if s.Confirm != "" && s.Required != nil {
			errs = append(errs, s.Required())
		}
	}
	return errors.Join(errs...)
}

// Confirm lets the steps that ask for confirmation run.
func (p *Plan) Confirm() { p.confirmed = true }

func (s *Step) run(ctx context.Context, confirmed bool) {
	if s.Confirm != "" && !confirmed {
		if s.Declined != nil {
			s.Declined()
		}
		return
	}
	for _, n := range s.Needs {
		<-n.done
		if n.OK() {
			continue
		}
		s.cause = n
		if n.cause != nil {
			s.cause = n.cause
		}
		if s.Skipped != nil {
			s.err = s.Skipped(ctx, s.cause)
		}
		return
	}
	s.ran = true
	s.err = s.Do(ctx)
}

// FirstError is the first error among the steps of r, in the order they
// were added.
func FirstError(r *Report) error {
	for _, s := range r.Steps {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// IncludeUnmanaged makes Delete include resources without the
// managed-by=containerise tag.
func (p *Plan) IncludeUnmanaged() { p.deleteUnmanaged = true }

// decide applies the rules every deletion shares, in order: gone, left
// alone (unmanaged), blocked (by what blocker names), else deleted. It
// reports whether the resource is to be deleted.
func (p *Plan) decide(r *Report, exists, isManaged bool, blocker string) bool {
	r.Exists, r.Managed = exists, exists && isManaged
	switch {
	case !exists:
		r.State = StateGone
	case !isManaged && !p.deleteUnmanaged:
		r.State = StateUnmanaged
	case blocker != "":
		r.State, r.Blocker = StateBlocked, blocker
	default:
		r.State = StateDelete
	}
	return r.State == StateDelete
}

// Refuse records why the plan must not be applied: what is wanted cannot
// be done from what was found.
func (p *Plan) Refuse(err error) { p.refused = append(p.refused, err) }

// Refused is why the plan must not be applied, nil when it may.
func (p *Plan) Refused() error { return errors.Join(p.refused...) }

// readEntity reads a resource with get and, with each of parts, what
// belongs to it: all at once for setup, parts only once get found it for
// teardown (which reads more, and only of what exists). A not-found from any
// of them means the resource is gone (or went while it was read): found is
// false. Any other error wins over a not-found, and cancels the rest.
func readEntity(ctx context.Context, together bool, get func(context.Context) error, parts ...func(context.Context) error) (found bool, err error) {
	var gone atomic.Bool
	all := func(fns ...func(context.Context) error) error {
		g, gctx := errgroup.WithContext(ctx)
		for _, fn := range fns {
			g.Go(func() error {
				err := fn(gctx)
				if awsx.IsNotFound(err) {
					gone.Store(true)
					return nil
				}
				return err
			})
		}
		return g.Wait()
	}
	if together {
		err = all(append([]func(context.Context) error{get}, parts...)...)
	} else if err = all(get); err == nil && !gone.Load() {
		err = all(parts...)
	}
	return err == nil && !gone.Load(), err
}

// chain adds steps to r that run one after the other, as IAM wants what
// blocks a deletion gone before the deletion.
func (p *Plan) chain(r *Report) func(*Step) *Step {
	var prev *Step
	return func(s *Step) *Step {
		if prev != nil {
			s.Needs = append(s.Needs, prev)
		}
		prev = p.Add(r, s)
		return prev
	}
}
