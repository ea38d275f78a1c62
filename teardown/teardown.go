// Package teardown removes what `containerise setup` created: the ECR
// repository (with its images), the managed policy, the role, the CI user
// (with its access keys) and, for a keyless setup, the OIDC providers the
// role trusts, in the order AWS demands. The providers are found through
// the role (its tag and its trust policy) and each is kept while a role
// that stays trusts it. What to remove is wired by resource.Stack.
//
// It is the resource model's read, delete steps, apply. Plan reads
// everything first, concurrently, and decides for each resource whether it
// is already gone, will be deleted (and through which steps), is left alone
// because it does not carry the tag managed-by=containerise, or is blocked by
// something containerise did not make. Apply then runs only the steps of the
// plan: each as soon as what it needs is done (a policy is deleted once the
// role and the user have let go of it).
//
// Teardown is idempotent: whatever is already gone is reported as gone, and a
// NoSuchEntity while deleting (another teardown got there first) counts as
// success, so a run cut off at any step completes when run again.
package teardown

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/resource"
)

// Teardown plans and applies the removal of containerise's resources.
type Teardown struct {
	iam    resource.IAM
	ecr    resource.ECR
	caller awsx.CallerAPI
	// CircleCI removes the variables setup wrote there, when Options name a
	// CircleCI target (*circleci.Client, or a fake).
	CircleCI resource.CircleCIAPI

	// Region is the run's region (the clients'); ECRIn, when set, gives
	// the ECR client of another region, for the repositories the policy
	// grants there.
	Region string
	ECRIn  func(region string) resource.ECR

	logMu sync.Mutex
	log   io.Writer

	// IAM is eventually consistent: right after a detachment, DeleteRole,
	// DeleteUser or DeletePolicy can still fail with DeleteConflict. Those
	// are retried for up to conflictWait, polling from conflictPoll (doubling,
	// at most 8 s) before the conflict is reported.
	conflictWait, conflictPoll time.Duration
}

// New returns a Teardown over the given clients (*iam.Client, *ecr.Client
// and *sts.Client, or fakes with the same methods). Progress lines, one per
// step done, go to log when it is not nil.
func New(iamClient resource.IAM, ecrClient resource.ECR, stsClient awsx.CallerAPI, log io.Writer) *Teardown {
	return &Teardown{iam: iamClient, ecr: ecrClient, caller: stsClient, log: log,
		conflictWait: 30 * time.Second, conflictPoll: time.Second}
}

// Options name the resources to remove; the defaults are setup's (the blog's).
type Options struct {
	// Repository and Repositories name the repositories to remove, in the
	// run's region. None named: those the policy grants (setup's set,
	// wherever they are), else setup's default repository.
	Repository   string
	Repositories []string
	Policy       string
	Role         string
	User         string
	// IncludeUnmanaged also deletes resources that lack the tag
	// managed-by=containerise (made by hand, as in the blog).
	IncludeUnmanaged bool
	// CircleCI, when set, is the project or context whose variables naming
	// the deleted key and role are removed (through Teardown.CircleCI).
	CircleCI *resource.CircleCITarget
}

func (t *Teardown) logf(format string, args ...any) {
	if t.log == nil {
		return
	}
	t.logMu.Lock()
	defer t.logMu.Unlock()
	fmt.Fprintf(t.log, format+"\n", args...)
}

// Plan is what teardown found and will do. Apply fills in the outcomes.
type Plan struct {
	Account   string
	Region    string // the run's region; each repository's is in its report
	Resources []*resource.Report
	// Notes say what teardown leaves in CircleCI, and why.
	Notes []string

	plan    *resource.Plan
	applied bool
}

// Deletes reports whether the plan would change anything.
func (p *Plan) Deletes() bool {
	for _, r := range p.Resources {
		if r.State == resource.StateDelete {
			return true
		}
	}
	return false
}

// Settled reports whether nothing is left to do: every resource is gone or
// left alone.
func (p *Plan) Settled() bool {
	for _, r := range p.Resources {
		if r.State != resource.StateGone && r.State != resource.StateUnmanaged && r.State != resource.StateInUse {
			return false
		}
	}
	return true
}

// Steps counts the API calls the plan would make to delete.
func (p *Plan) Steps() int { return p.plan.Steps() }

// Plan reads the account and decides what to delete. It makes no change.
func (t *Teardown) Plan(ctx context.Context, o Options) (*Plan, error) {
	env := &resource.Env{
		IAM: t.iam, ECR: t.ecr, Caller: &awsx.Caller{STS: t.caller}, Region: t.Region, ECRIn: t.ECRIn,
		Logf: t.logf,
		Wait: awsx.Waiter{Bound: t.conflictWait, First: t.conflictPoll, Max: 8 * time.Second},
	}
	if o.CircleCI != nil && t.CircleCI == nil {
		return nil, errors.New("teardown of CircleCI variables needs a CircleCI client")
	}
	// The policy first: the repositories it grants are setup's set.
	known, err := resource.ReadGranted(ctx, env, o.Policy)
	if err != nil {
		return nil, readError(err)
	}
	repos, err := t.repositories(ctx, env, o, known)
	if err != nil {
		return nil, err
	}
	st := resource.NewStack(resource.Spec{Repositories: repos, Policy: o.Policy, User: o.User, Role: o.Role, Region: t.Region, CircleCI: o.CircleCI}, resource.ForTeardown, t.CircleCI)
	st.Policy.Known = known
	plan, err := resource.Observe(ctx, env, resource.ForTeardown, st.Resources()...)
	if err != nil {
		return nil, readError(err)
	}
	if o.IncludeUnmanaged {
		plan.IncludeUnmanaged()
	}
	plan.Delete()
	out := &Plan{Account: plan.Identity.Account, Region: t.Region, Resources: plan.Reports(), plan: plan}
	if st.Leftovers != nil {
		out.Notes = st.Leftovers.Notes()
	}
	for _, r := range out.Resources {
		for _, s := range r.Steps {
			t.watch(r, s)
		}
	}
	return out, nil
}

// watch makes s one of r's deletion steps (resource.Deletion: it stops
// when interrupted, logs what it did, counts NoSuchEntity as done, and
// fails with what to do next).
func (t *Teardown) watch(r *resource.Report, s *resource.Step) {
	resource.Deletion{Report: r, Logf: t.logf, Rerun: "teardown",
		Fail: func(s *resource.Step, err error) error { return &StepError{Resource: r, Step: s, Err: err} },
	}.Wrap(s)
	if s.Skipped == nil {
		// A step of another resource failed: say what still holds this one.
		s.Skipped = func(_ context.Context, cause *resource.Step) error {
			if cause.Report == r {
				return nil // this resource's own failure is reported
			}
			o := cause.Report
			return fmt.Errorf("%s %s: not deleted: %s %s still uses it, because %q failed (see %s %s); fix that, then rerun teardown",
				r.Kind, r.Label(), o.Kind, o.Label(), cause.Action, o.Kind, o.Label())
		}
	}
}

// Apply runs the plan's steps and sets each resource's outcome. It returns
// nil when every resource is deleted, gone or left alone; otherwise an error
// joining why each failed resource failed (blocked ones included).
func (t *Teardown) Apply(ctx context.Context, p *Plan) error {
	if p.applied {
		return errors.New("teardown plan applied twice: make a new plan")
	}
	p.applied = true
	p.plan.Apply(ctx)

	var errs []error
	for _, r := range p.Resources {
		switch r.State {
		case resource.StateGone:
			r.Outcome = resource.OutcomeGone
		case resource.StateUnmanaged, resource.StateInUse:
			r.Outcome = resource.OutcomeLeftAlone
		case resource.StateBlocked:
			r.Err = errors.New(r.Blocker)
		case resource.StateDelete:
			r.Err = resource.FirstError(r)
			if r.Err == nil {
				r.Outcome = resource.OutcomeDeleted
			}
		}
		if r.Err != nil {
			r.Outcome = resource.OutcomeFailed
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// Run plans the teardown, asks review whether to go ahead (it shows the
// plan and asks for confirmation, or stops a dry run), and applies the plan
// when it says so. It returns the plan, applied or not, and Apply's error.
func (t *Teardown) Run(ctx context.Context, o Options, review func(*Plan) (bool, error)) (*Plan, error) {
	plan, err := t.Plan(ctx, o)
	if err != nil {
		return nil, err
	}
	if ok, err := review(plan); !ok || err != nil {
		return plan, err
	}
	return plan, t.Apply(ctx, plan)
}

// Applied reports whether Apply ran.
func (p *Plan) Applied() bool { return p.applied }

// StepError is a failed step: the resource, the step, why, and what to do.
type StepError struct {
	Resource *resource.Report
	Step     *resource.Step
	Err      error
}

func (e *StepError) Error() string { return e.Explain(nil) }

// Explain words the failure with the way forward worded by words.
func (e *StepError) Explain(words hint.Words) string {
	r, s := e.Resource, e.Step
	text, next := stepAdvice(r, s, e.Err)
	return fmt.Sprintf("%s %s: %s failed (%s): %s (%s)", r.Kind, r.Label(), s.Action, s.Call, awsx.Describe(e.Err), hint.Append(text, next, words))
}

func (e *StepError) Unwrap() error { return e.Err }

func stepAdvice(r *resource.Report, s *resource.Step, err error) (string, hint.Next) {
	var re *resource.Error
	if errors.As(err, &re) {
		if text, next, ok := circleCIAdvice(re); ok {
			return text, next
		}
	}
	return resource.Advice(resource.TeardownDelete, r.Kind, r.Name, s.Call, err)
}

// circleCIAdvice is the way forward a failed CircleCI call carries (the
// advice table knows AWS's errors only), worded for teardown.
func circleCIAdvice(re *resource.Error) (string, hint.Next, bool) {
	if re.Kind != resource.KindCircleCI || re.Hint == "" {
		return "", hint.None, false
	}
	return strings.ReplaceAll(re.Hint, "rerun setup", "rerun teardown"), re.Next, true
}

// ReadError is a failed read. Nothing has been deleted when one happens:
// the plan is made before any change.
type ReadError struct{ Err *resource.Error }

func readError(err error) error {
	var re *resource.Error
	if errors.As(err, &re) {
		return &ReadError{Err: re}
	}
	return err
}

func (e *ReadError) Error() string { return e.Explain(nil) }

// Explain words the failure with the way forward worded by words.
func (e *ReadError) Explain(words hint.Words) string {
	re := e.Err
	what := "reading " + re.Kind
	if re.Name != "" {
		what += " " + re.Name
	}
	if re.Kind == "" {
		what = "reading the AWS account"
	}
	text, next, ok := circleCIAdvice(re)
	if !ok {
		text, next = resource.Advice(resource.TeardownRead, re.Kind, re.Name, re.Call, re.Err)
	}
	return fmt.Sprintf("%s (%s): %s (nothing was deleted; %s)", what, re.Call, awsx.Describe(re.Err), hint.Append(text, next, words))
}

func (e *ReadError) Unwrap() error { return e.Err }
