package resource

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/names"
)

// CircleCILeftovers are, for teardown, the variables setup wrote into a
// CircleCI project or context, and removes only those that name what
// teardown deletes: the access key ID whose last four characters (all a
// project shows of a value) match a key of the user being deleted, with
// the secret that goes with it, and the role ARN of the role being
// deleted. Anything else is left with a note saying why: the region (other
// jobs may read it), a key or role teardown keeps, and every variable of a
// context, whose values CircleCI does not show at all.
//
// The variables go before the key and the role they name, so that a
// teardown whose CircleCI call failed still finds the key or the role to
// match them against when run again.
type CircleCILeftovers struct {
	vars *CircleCIVariables
	Role *Role
	User *User

	notes []string
}

// NewCircleCILeftovers are the variables in target that teardown looks at.
func NewCircleCILeftovers(api CircleCIAPI, target CircleCITarget, role *Role, user *User) *CircleCILeftovers {
	return &CircleCILeftovers{vars: NewCircleCIVariables(api, target, "", role, user), Role: role, User: user}
}

// Reports is the variables' one report.
func (l *CircleCILeftovers) Reports() []*Report { return l.vars.Reports() }

// Observe finds the context, when the target is one, and reads what
// CircleCI shows of its variables.
func (l *CircleCILeftovers) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	return l.vars.Observe(ctx, env, purpose)
}

// Reconcile does nothing: setup writes the variables through
// CircleCIVariables.
func (l *CircleCILeftovers) Reconcile(*Plan) {}

// Notes say which of setup's variables are left in CircleCI, and why.
func (l *CircleCILeftovers) Notes() []string { return append([]string(nil), l.notes...) }

// Delete decides, once the role's and the user's deletions are planned,
// which variables go.
func (l *CircleCILeftovers) Delete(p *Plan) { p.Later(func() { l.plan(p) }) }

// setupVariables are the variables setup writes, in the order they are
// looked at.
var setupVariables = []string{names.EnvAccessKeyID, names.EnvSecretAccessKey, names.EnvRoleARN, names.EnvRegion, names.EnvDefaultRegion}

func (l *CircleCILeftovers) plan(p *Plan) {
	v := l.vars
	rep := &v.report
	var present []string
	for _, name := range setupVariables {
		if _, ok := v.shown[name]; ok {
			present = append(present, name)
		}
	}
	rep.Exists, rep.Managed = len(present) > 0, true
	if len(present) == 0 {
		rep.State = StateGone
		return
	}
	lp := &leftoverPlan{l: l, p: p, where: "CircleCI " + rep.Name, project: v.Target.Project != "", add: p.chain(rep)}
	removeKey := lp.key()
	removeRole := lp.role()
	lp.region()

	if removeKey == nil && removeRole == nil {
		rep.State = StateInUse
		rep.Blocker = "none of setup's variables there names the key or the role teardown deletes (see the notes)"
		return
	}
	rep.State = StateDelete
	// The key and the role go only once CircleCI no longer holds them.
	if removeKey != nil && len(l.User.report.Steps) > 0 {
		first := l.User.report.Steps[0]
		first.Needs = append(first.Needs, removeKey)
	}
	if removeRole != nil && l.Role.deleteStep != nil {
		l.Role.deleteStep.Needs = append(l.Role.deleteStep.Needs, removeRole)
	}
}

// hiddenValues is why a context's variables stay.
const hiddenValues = "CircleCI shows no value of a context's variables, so teardown cannot tell whether it names what teardown deletes; remove it in the context's settings if it does"

// leftoverPlan is one plan of CircleCILeftovers: which of setup's
// variables go (steps chained in add) and which stay (notes).
type leftoverPlan struct {
	l       *CircleCILeftovers
	p       *Plan
	where   string
	project bool // a project shows its values' last four characters; a context none
	add     func(*Step) *Step
}

func (lp *leftoverPlan) leave(name, why string) {
	lp.l.notes = append(lp.l.notes, fmt.Sprintf("%s left in %s: %s", name, lp.where, why))
}

func (lp *leftoverPlan) remove(name, because string) *Step {
	v := lp.l.vars
	return lp.add(&Step{Action: fmt.Sprintf("remove %s from %s (%s)", name, lp.where, because), Call: "circleci",
		Do: func(ctx context.Context) error {
			lp.p.Env.logf("removing %s from %s", name, lp.where)
			return v.fail("removing "+name, v.vault().Delete(ctx, name))
		}})
}

// key matches the key ID's last four characters against the keys
// teardown deletes; the secret goes with a matching ID, and first, so that
// a rerun still finds the ID to match.
func (lp *leftoverPlan) key() *Step {
	l, shownVars := lp.l, lp.l.vars.shown
	shown, ok := shownVars[names.EnvAccessKeyID]
	_, hasSecret := shownVars[names.EnvSecretAccessKey]
	if !ok {
		if hasSecret {
			lp.leave(names.EnvSecretAccessKey, "no "+names.EnvAccessKeyID+" beside it says which key it is the secret of")
		}
		return nil
	}
	if !lp.project {
		return lp.contextKey(hasSecret)
	}
	switch key := l.deletedKey(shown); {
	case key == "":
		lp.leave(names.EnvAccessKeyID, l.keyKept(shown))
		if hasSecret {
			lp.leave(names.EnvSecretAccessKey, "it goes with "+names.EnvAccessKeyID+", which is left")
		}
	default:
		which := fmt.Sprintf("access key %s of user %s, which teardown deletes", key, l.User.Name)
		if hasSecret {
			lp.remove(names.EnvSecretAccessKey, "the secret of "+which)
		}
		return lp.remove(names.EnvAccessKeyID, fmt.Sprintf("it shows %s, the end of %s", shown, which))
	}
	return nil
}

// role removes the role ARN when it shows the end of the role teardown
// deletes.
func (lp *leftoverPlan) role() *Step {
	l := lp.l
	shown, ok := l.vars.shown[names.EnvRoleARN]
	if !ok {
		return nil
	}
	role := l.Role.report
	switch {
	case role.State != StateDelete:
		lp.leave(names.EnvRoleARN, "teardown does not delete role "+l.Role.Name)
	case !lp.project:
		at := l.vars.updated[names.EnvRoleARN]
		if l.Role.role == nil || l.Role.role.CreateDate == nil || at.Before(l.Role.role.CreateDate.Add(-clockSkew)) {
			lp.leave(names.EnvRoleARN, hiddenValues+"; it was last written before role "+l.Role.Name+" was made")
			return nil
		}
		lp.add = lp.p.chain(&l.vars.report)
		return lp.remove(names.EnvRoleARN, "role "+l.Role.Name+", which teardown deletes; "+contextEvidence)
	case circleci.CompareMasked(role.ARN, shown) != circleci.MaskMatches:
		lp.leave(names.EnvRoleARN, fmt.Sprintf("it shows %s, which is not how role %s's ARN ends", shown, l.Role.Name))
	default:
		lp.add = lp.p.chain(&l.vars.report) // independent of the key's removals
		return lp.remove(names.EnvRoleARN, "role "+l.Role.Name+", which teardown deletes")
	}
	return nil
}

// contextEvidence says why a context's variable is taken as setup's:
// CircleCI shows no value of a context's variables, only when each was
// last written.
const contextEvidence = "written after it was made (CircleCI shows no value of a context's variables, only when they were written)"

// contextKey judges a context's key variables by time: the ID names a key
// teardown deletes when it was last written after the oldest such key was
// made (setup writes the ID only once its key exists). Written before any
// of them, it names some other key, and stays.
func (lp *leftoverPlan) contextKey(hasSecret bool) *Step {
	l := lp.l
	at := l.vars.updated[names.EnvAccessKeyID]
	var key string
	if l.User != nil && l.User.report.State == StateDelete {
		for _, k := range l.User.keys { // oldest first
			if k.CreateDate != nil && !at.Before(k.CreateDate.Add(-clockSkew)) {
				key = aws.ToString(k.AccessKeyId)
			}
		}
	}
	if key == "" {
		why := hiddenValues + "; it was last written before any key teardown deletes was made"
		if l.User == nil || l.User.report.State != StateDelete {
			why = "teardown deletes no access key"
		}
		lp.leave(names.EnvAccessKeyID, why)
		if hasSecret {
			lp.leave(names.EnvSecretAccessKey, "it goes with "+names.EnvAccessKeyID+", which is left")
		}
		return nil
	}
	which := fmt.Sprintf("access key %s of user %s, which teardown deletes; %s", key, l.User.Name, contextEvidence)
	if hasSecret {
		lp.remove(names.EnvSecretAccessKey, "the secret of "+which)
	}
	return lp.remove(names.EnvAccessKeyID, which)
}

// region notes the region variables, which stay: other jobs may read them.
func (lp *leftoverPlan) region() {
	var region []string
	for _, name := range []string{names.EnvRegion, names.EnvDefaultRegion} {
		if _, ok := lp.l.vars.shown[name]; ok {
			region = append(region, name)
		}
	}
	if len(region) > 0 {
		lp.l.notes = append(lp.l.notes, fmt.Sprintf("%s left in %s: teardown removes only the variables naming the key and the role it deletes, and other jobs may read the region",
			strings.Join(region, ", "), lp.where))
	}
}

// deletedKey is the ID of the key, among those teardown deletes, whose last
// four characters CircleCI shows; "" when none.
func (l *CircleCILeftovers) deletedKey(shown string) string {
	if l.User == nil || l.User.report.State != StateDelete {
		return ""
	}
	for _, k := range l.User.keys {
		id := aws.ToString(k.AccessKeyId)
		if circleci.CompareMasked(id, shown) == circleci.MaskMatches {
			return id
		}
	}
	return ""
}

// keyKept says why the key ID variable stays.
func (l *CircleCILeftovers) keyKept(shown string) string {
	switch l.User.report.State {
	case StateDelete:
		return fmt.Sprintf("it shows %s, and no access key of user %s ends so (it may be another user's key)", shown, l.User.Name)
	case StateGone:
		return fmt.Sprintf("it shows %s, and user %s does not exist, so there is no key to match it with", shown, l.User.Name)
	default:
		return "teardown does not delete user " + l.User.Name + " or its keys"
	}
}
