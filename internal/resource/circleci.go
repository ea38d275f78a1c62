package resource

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/names"
)

// KindCircleCI names the CircleCI variables' report.
const KindCircleCI = "circleci"

// CircleCIAPI is the part of *circleci.Client the variables use.
type CircleCIAPI interface {
	circleci.VaultAPI
	FindContext(ctx context.Context, owner circleci.Owner, name string) (circleci.Context, bool, error)
	GetContext(ctx context.Context, id string) (circleci.Context, error)
	CreateContext(ctx context.Context, owner circleci.Owner, name string) (circleci.Context, error)
	GetProject(ctx context.Context, slug string) (circleci.Project, error)
	ListContextRestrictions(ctx context.Context, contextID string) ([]circleci.ContextRestriction, error)
	RestrictContextToProject(ctx context.Context, contextID, projectID string) (circleci.ContextRestriction, error)
}

var _ CircleCIAPI = (*circleci.Client)(nil)

// CircleCITarget says where the variables go: a project's environment
// variables, or an organisation's context (by name and owner, or by ID).
type CircleCITarget struct {
	Project       string
	Context       string
	Owner         circleci.Owner
	ContextID     string
	CreateContext bool
	// RestrictTo (project slugs) and RestrictToIDs (project IDs) are the
	// projects a context setup creates is restricted to.
	RestrictTo    []string
	RestrictToIDs []string
}

// String names the target for people: "project gh/acme/app", "context ci".
func (t CircleCITarget) String() string {
	switch {
	case t.Project != "":
		return "project " + t.Project
	case t.Context != "":
		return "context " + t.Context
	default:
		return "context " + t.ContextID
	}
}

// CircleCIVariables are the variables push reads, kept in CircleCI by
// setup: the role and region always; the user's access key in key mode.
// Variables setup no longer wants (the key's, after a switch to keyless)
// are removed after confirmation.
type CircleCIVariables struct {
	API    CircleCIAPI
	Target CircleCITarget
	Region string
	Role   *Role
	// User is the CI user whose key is written; nil in keyless mode.
	User *User

	report Report

	// Observed: the context's ID (empty until created) and what CircleCI
	// shows of each variable: the masked value of a project variable, ""
	// for a context variable (CircleCI shows none).
	contextID string
	shown     map[string]string
	updated   map[string]time.Time
	// restrictTo: the projects' IDs to restrict the context to (names for
	// people); restricted: the project IDs it is restricted to now.
	restrictTo map[string]string
	restricted map[string]bool

	// What CircleCI holds of the key this run created (see rotation.go).
	secretState, idState Delivery
	keyAttempted         bool
	keyWrite             *Step
}

// NewCircleCIVariables are the variables for target.
func NewCircleCIVariables(api CircleCIAPI, target CircleCITarget, region string, role *Role, user *User) *CircleCIVariables {
	return &CircleCIVariables{API: api, Target: target, Region: region, Role: role, User: user,
		report: Report{Kind: KindCircleCI, Name: target.String()}}
}

// Reports is the variables' one report.
func (c *CircleCIVariables) Reports() []*Report { return []*Report{&c.report} }

func (c *CircleCIVariables) fail(doing string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Kind: KindCircleCI, Name: c.Target.String(), Doing: doing + " in CircleCI " + c.Target.String(), Call: "circleci", Err: err}
	e.Hint, e.Next = circleCIAdvice(err)
	return e
}

// circleCIAdvice says what to do about a failed CircleCI call.
func circleCIAdvice(err error) (string, hint.Next) {
	kind, _ := circleci.KindOf(err)
	switch kind {
	case circleci.KindUnauthorized:
		return "CircleCI refused the API token: create a personal API token (User Settings > Personal API Tokens) and export it", hint.CircleCIToken
	case circleci.KindForbidden:
		return "the token's user may not change this project's or context's variables: use a token of a user with admin rights on the project (or the organisation, for a context)", hint.None
	case circleci.KindNotFound:
		return "check the project slug or the context: CircleCI also answers so when the token's user cannot see them", hint.None
	case circleci.KindTLS:
		return "the CircleCI host's certificate is not trusted: the system's trust store (or SSL_CERT_FILE) decides", hint.None
	case circleci.KindNetwork, circleci.KindServer, circleci.KindRateLimited:
		return "CircleCI could not be reached or kept failing: rerun setup later", hint.None
	}
	return "rerun setup once fixed", hint.None
}

// Observe finds the context (when the target is one) and reads which
// variables are there, with what CircleCI shows of them.
func (c *CircleCIVariables) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	t := c.Target
	c.contextID = t.ContextID
	switch {
	case t.Project != "":
	case c.contextID != "":
		got, err := c.API.GetContext(ctx, c.contextID)
		if err != nil {
			return c.fail("reading the context", err)
		}
		c.report.Name = "context " + got.Name
	default:
		got, found, err := c.API.FindContext(ctx, t.Owner, t.Context)
		if err != nil {
			return c.fail("looking for the context", err)
		}
		c.contextID = got.ID
		if !found {
			c.shown, c.updated = map[string]string{}, map[string]time.Time{}
			return c.observeRestrictions(ctx, false)
		}
	}
	if err := c.readVariables(ctx); err != nil {
		return err
	}
	return c.observeRestrictions(ctx, c.Target.Project == "")
}

// readVariables reads what CircleCI shows of the target's variables.
func (c *CircleCIVariables) readVariables(ctx context.Context) error {
	shown, updated, err := c.vault().Variables(ctx)
	if err != nil {
		what := "reading the environment variables"
		if c.Target.Project == "" {
			what = "reading the context's variables"
		}
		return c.fail(what, err)
	}
	c.shown, c.updated = shown, updated
	return nil
}

// vault is where the variables go: the project, or the context once found
// or made.
func (c *CircleCIVariables) vault() *circleci.Vault {
	if c.Target.Project != "" {
		return circleci.ProjectVault(c.API, c.Target.Project)
	}
	return circleci.ContextVault(c.API, c.contextID)
}

// current reports whether CircleCI holds value under name, as far as it
// shows: a project variable's last four characters must match; a context
// shows no value, so being there is all that can be checked.
func (c *CircleCIVariables) current(name, value string) bool {
	shown, ok := c.shown[name]
	if !ok {
		return false
	}
	if c.Target.Project == "" {
		return true
	}
	return circleci.CompareMasked(value, shown) != circleci.MaskDiffers
}

// Reconcile writes what differs: the role and region first, since a failed
// write there stops setup before it makes a key; the new key's secret and
// ID once the key exists; and removes the key variables keyless setup no
// longer needs, after confirmation.
func (c *CircleCIVariables) Reconcile(p *Plan) {
	rep := &c.report
	rep.Managed, rep.Status = true, Unchanged
	if c.Target.Project == "" && c.contextID == "" && !c.Target.CreateContext {
		p.Refuse(&Error{Kind: KindCircleCI, Name: rep.Name, Doing: "finding CircleCI " + rep.Name,
			Err:  fmt.Errorf("no context %q in organization %s", c.Target.Context, ownerName(c.Target.Owner)),
			Hint: "check its name, or let setup create it", Next: hint.CreateContext})
		return
	}
	var ready *Step
	if c.Target.Project == "" && c.contextID == "" {
		rep.Status = WouldUpdate
		rep.Changes = append(rep.Changes, "create the context")
		ready = p.Add(rep, &Step{Action: "create CircleCI " + rep.Name, Call: "circleci", Do: func(ctx context.Context) error {
			got, err := c.API.CreateContext(ctx, c.Target.Owner, c.Target.Context)
			if err != nil {
				return c.fail("creating the context", err)
			}
			c.contextID = got.ID
			return nil
		}})
	}

	ready = c.reconcileRestrictions(p, ready)

	fixed := map[string]string{
		names.EnvRoleARN: c.Role.ARN(), names.EnvRegion: c.Region, names.EnvDefaultRegion: c.Region,
	}
	var write []string
	for _, name := range sortedKeys(fixed) {
		if !c.current(name, fixed[name]) {
			write = append(write, name)
		}
	}
	var preflight *Step
	if len(write) > 0 {
		rep.Status = WouldUpdate
		rep.Changes = append(rep.Changes, "write "+strings.Join(write, ", "))
		preflight = p.Add(rep, &Step{Action: "write " + strings.Join(write, ", ") + " to CircleCI " + rep.Name, Call: "circleci",
			Needs: stepsOf(ready),
			Do: func(ctx context.Context) error {
				values := map[string]string{}
				for _, name := range write {
					values[name] = fixed[name]
				}
				return c.write(ctx, p.Env, write, values)
			}})
	}

	if c.User == nil {
		c.removeKeyVariables(p, ready)
		return
	}
	if keyStep := c.User.KeyStep(); keyStep != nil {
		// The key is made only once the target took the role and region:
		// a token or slug CircleCI refuses stops setup before any key.
		if preflight != nil {
			keyStep.Needs = append(keyStep.Needs, preflight)
		} else if ready != nil {
			keyStep.Needs = append(keyStep.Needs, ready)
		}
		rep.Status = WouldUpdate
		keyVars := []string{names.EnvSecretAccessKey, names.EnvAccessKeyID}
		rep.Changes = append(rep.Changes, "write "+strings.Join(keyVars, ", ")+" once the key is made")
		c.keyWrite = p.Add(rep, &Step{Action: "write the new access key to CircleCI " + rep.Name, Call: "circleci",
			Needs: append([]*Step{keyStep}, stepsOf(preflight, ready)...),
			Do: func(ctx context.Context) error {
				id, secret := c.User.Key()
				if secret == "" {
					return nil // another setup made the key, and showed its secret
				}
				// The secret first: were the ID's write to fail, CircleCI
				// would hold the new secret, and setup keeps that key.
				c.keyAttempted = true
				return c.write(ctx, p.Env, keyVars, map[string]string{names.EnvSecretAccessKey: secret, names.EnvAccessKeyID: id})
			}})
		return
	}
	id, _ := c.User.Key()
	_, hasSecret := c.shown[names.EnvSecretAccessKey]
	if id != "" && (!c.current(names.EnvAccessKeyID, id) || !hasSecret) {
		p.Note(Note{Text: fmt.Sprintf("CircleCI %s does not hold access key %s of user %s with its secret, and AWS shows a secret only when its key is created",
			rep.Name, id, c.User.Name), Next: hint.RotateKey})
	}
}

// removeKeyVariables deletes the user's key variables in keyless mode,
// once confirmed: CI may still use them until its configuration changes.
func (c *CircleCIVariables) removeKeyVariables(p *Plan, ready *Step) {
	rep := &c.report
	var stale []string
	for _, name := range []string{names.EnvAccessKeyID, names.EnvSecretAccessKey} {
		if _, ok := c.shown[name]; ok {
			stale = append(stale, name)
		}
	}
	if len(stale) == 0 {
		return
	}
	rep.Status = WouldUpdate
	change := "remove " + strings.Join(stale, ", ") + " (no longer used without keys)"
	rep.Changes = append(rep.Changes, change)
	p.Add(rep, &Step{Action: "remove " + strings.Join(stale, ", ") + " from CircleCI " + rep.Name, Call: "circleci",
		Needs:   stepsOf(ready),
		Confirm: change + " from CircleCI " + rep.Name,
		Declined: func() {
			for i, ch := range rep.Changes {
				if ch == change {
					rep.Changes[i] = "kept " + strings.Join(stale, ", ") + " (not confirmed)"
				}
			}
		},
		Do: func(ctx context.Context) error {
			for _, name := range stale {
				if err := c.vault().Delete(ctx, name); err != nil {
					return c.fail("removing "+name, err)
				}
			}
			rep.Status = Updated
			return nil
		}})
}

// write writes the variables in order, then reads them back and checks
// CircleCI holds them. A write that fails is read back at once: if CircleCI
// shows it written (its answer was lost), the next one follows.
func (c *CircleCIVariables) write(ctx context.Context, env *Env, order []string, values map[string]string) error {
	rep := &c.report
	started := time.Now().Add(-time.Minute) // CircleCI's clock may lag ours
	for _, name := range order {
		env.logf("writing %s to CircleCI %s", name, rep.Name)
		_, existed := c.shown[name]
		prev := c.updated[name]
		err := c.vault().Set(ctx, name, values[name])
		state := Written
		if err != nil {
			held, known := c.landed(ctx, name, values[name], prev, existed, err)
			switch {
			case held:
				env.logf("CircleCI's answer to writing %s was lost, but it shows %s written; going on", name, name)
			case known:
				state = NotWritten
			default:
				state = MaybeWritten
			}
		}
		c.delivered(name, state)
		if state != Written {
			return c.fail("writing "+name, err)
		}
	}
	if err := c.verify(ctx, order, values, started); err != nil {
		return err
	}
	rep.Status = Updated
	return nil
}

// delivered records what CircleCI holds of the new key's variables.
func (c *CircleCIVariables) delivered(name string, state Delivery) {
	switch name {
	case names.EnvSecretAccessKey:
		c.secretState = state
	case names.EnvAccessKeyID:
		c.idState = state
	}
}

// verify reads the variables back: a project's must show each value's last
// four characters; a context's (which shows no value) must have been
// updated since the write began.
func (c *CircleCIVariables) verify(ctx context.Context, order []string, values map[string]string, since time.Time) error {
	if err := c.readVariables(ctx); err != nil {
		return err
	}
	var wrong []string
	for _, name := range order {
		ok := c.current(name, values[name])
		if c.Target.Project == "" {
			ok = ok && !c.updated[name].Before(since)
		}
		if !ok {
			wrong = append(wrong, name)
		}
	}
	if len(wrong) > 0 {
		return c.fail("checking what was written", fmt.Errorf("CircleCI does not show %s as written", strings.Join(wrong, ", ")))
	}
	return nil
}

// SecretHeld reports whether CircleCI holds, or may hold, the secret of
// the key this run created: then that key must stay.
func (c *CircleCIVariables) SecretHeld() bool { return c.secretState != NotWritten }

// Delete leaves CircleCI alone: teardown removes what is in AWS.
func (c *CircleCIVariables) Delete(p *Plan) {}

func ownerName(o circleci.Owner) string {
	if o.Slug != "" {
		return o.Slug
	}
	return o.ID
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// stepsOf lists the steps that are there.
func stepsOf(steps ...*Step) []*Step {
	var out []*Step
	for _, s := range steps {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}
