package resource

import (
	"context"
	"strings"

	"github.com/containerise/containerise/internal/hint"
)

// Retired is a resource setup made before and no longer wants: the CI user
// and its access keys, once CI assumes the role with its OIDC token. Setup
// reads it as teardown does and deletes it through the kind's own Delete
// steps (in AWS's order), but only once a person confirmed: CI may still
// hold its keys. Without confirmation it is kept, and a note says so and
// how to finish. It is shown only when it exists.
type Retired struct {
	Resource
	// Why says why it is no longer wanted: "CI assumes the role with its
	// OIDC token".
	Why string
	// Gate, when set, runs at Reconcile: the steps the deletion waits for
	// (the role no longer trusting it) and, when hold is not empty, why it
	// must be kept for now.
	Gate func() (needs []*Step, hold string)
}

// Retire wraps r, no longer wanted for the reason why.
func Retire(r Resource, why string) *Retired { return &Retired{Resource: r, Why: why} }

// Reports are the wrapped resource's, while it exists.
func (r *Retired) Reports() []*Report {
	var out []*Report
	for _, rep := range r.Resource.Reports() {
		if rep.Exists {
			out = append(out, rep)
		}
	}
	return out
}

// Observe reads the resource as a teardown does, with what its deletion
// must remove first.
func (r *Retired) Observe(ctx context.Context, env *Env, _ Purpose) error {
	return r.Resource.Observe(ctx, env, ForTeardown)
}

// Reconcile plans the deletion, to run after confirmation. (The wrapped
// kind's Delete must add its steps at once, not through Plan.Later.)
func (r *Retired) Reconcile(p *Plan) {
	var needs []*Step
	hold := ""
	if r.Gate != nil {
		needs, hold = r.Gate()
	}
	before := len(p.steps)
	r.Resource.Delete(p)
	added := p.steps[before:]
	if hold != "" {
		p.steps = p.steps[:before]
		for _, rep := range r.Resource.Reports() {
			rep.Steps, rep.State = nil, ""
			rep.Status, rep.Changes = Kept, []string{"no longer used (" + r.Why + "), but kept: " + hold}
		}
		return
	}
	for _, rep := range r.Resource.Reports() {
		switch rep.State {
		case StateUnmanaged:
			rep.Status, rep.Changes = Unmanaged, []string{"no longer used (" + r.Why + "); left as is: containerise did not create it"}
			p.Note(Note{Text: rep.Kind + " " + rep.Name + " is no longer used (" + r.Why + "), but containerise did not create it, so it is left as is; delete it by hand once nothing uses it"})
		case StateDelete:
			r.planDeletion(p, rep, added, needs)
		}
	}
}

func (r *Retired) planDeletion(p *Plan, rep *Report, added []*Step, needs []*Step) {
	var mine []*Step
	for _, s := range added {
		if s.Report == rep {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return
	}
	var what []string
	for _, s := range mine {
		what = append(what, s.Action)
	}
	rep.Status, rep.Changes = WouldDelete, []string{"no longer used: " + r.Why}
	first, last := mine[0], mine[len(mine)-1]
	first.Needs = append(first.Needs, needs...)
	first.Skipped = func(context.Context, *Step) error {
		rep.Status = Kept
		rep.Changes = []string{"no longer used (" + r.Why + "), kept: what its deletion waits for failed (see that error)"}
		return nil
	}
	first.Confirm = strings.Join(what, ", then ") + " (" + r.Why + "; CI may still hold its keys: update CI first)"
	first.Declined = func() {
		rep.Status = Kept
		rep.Changes = []string{"no longer used (" + r.Why + "), kept: its deletion was not confirmed"}
		p.Note(Note{Text: rep.Kind + " " + rep.Name + " is kept, unused (" + r.Why + "): its deletion was not confirmed, as CI may still hold its keys; " +
			"once CI no longer uses them, delete it", Next: hint.Confirm})
	}
	deletion := Deletion{Report: rep, Logf: p.Env.logf, Rerun: "setup", Why: r.Why,
		Fail: func(s *Step, err error) error { return fail(rep.Kind, rep.Name, s.Action, s.Call, err) },
		Done: func(s *Step) {
			if s == last {
				rep.Status = Deleted
			}
		}}
	for _, s := range mine {
		deletion.Wrap(s)
	}
}

// Delete is the wrapped resource's.
func (r *Retired) Delete(p *Plan) { r.Resource.Delete(p) }
