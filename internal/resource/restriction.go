package resource

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/names"
)

// A context setup creates is restricted to the projects named for it, so
// that the key in it does not reach every project of the organisation. The
// restriction comes before any variable is written: when CircleCI refuses
// it, the context stays (empty of the key) and setup says what to do; a
// rerun adds it then. A context setup did not create is restricted only
// when it holds nothing but setup's variables; otherwise it is left as it
// is, with a note.

// observeRestrictions resolves the projects' IDs (a wrong slug fails before
// any change) and, for a context that exists, reads its restrictions.
func (c *CircleCIVariables) observeRestrictions(ctx context.Context, exists bool) error {
	t := c.Target
	if !t.CreateContext || (len(t.RestrictTo) == 0 && len(t.RestrictToIDs) == 0) {
		return nil
	}
	c.restrictTo = map[string]string{}
	for _, id := range t.RestrictToIDs {
		c.restrictTo[id] = "project " + id
	}
	for _, slug := range t.RestrictTo {
		p, err := c.API.GetProject(ctx, slug)
		if err != nil {
			return c.fail("reading project "+slug+" (to restrict the context to it)", err)
		}
		c.restrictTo[p.ID] = "project " + slug
	}
	if !exists {
		return nil
	}
	list, err := c.API.ListContextRestrictions(ctx, c.contextID)
	if err != nil {
		return c.fail("reading the context's restrictions", err)
	}
	c.restricted = map[string]bool{}
	for _, r := range list {
		if r.Type == circleci.RestrictProject {
			c.restricted[r.Value] = true
		}
	}
	return nil
}

// reconcileRestrictions adds the restrictions missing from the context,
// after ready (the context's creation, if any); the returned step is what
// writes to the context must wait for.
func (c *CircleCIVariables) reconcileRestrictions(p *Plan, ready *Step) *Step {
	rep := &c.report
	var missing []string
	for _, id := range sortedKeys(c.restrictTo) {
		if !c.restricted[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return ready
	}
	if ready == nil && len(c.restricted) == 0 {
		if foreign := c.foreignVariables(); len(foreign) > 0 {
			p.Note(Note{Text: fmt.Sprintf("CircleCI %s is open to every project of the organization and holds variables setup does not write (%s), so setup leaves its restrictions alone: restrict it under Organization Settings > Contexts",
				rep.Name, strings.Join(foreign, ", "))})
			return ready
		}
	}
	var who []string
	for _, id := range missing {
		who = append(who, c.restrictTo[id])
	}
	change := "restrict it to " + strings.Join(who, ", ")
	rep.Status = WouldUpdate
	rep.Changes = append(rep.Changes, change)
	return p.Add(rep, &Step{Action: change + " in CircleCI " + rep.Name, Call: "circleci", Needs: stepsOf(ready),
		Do: func(ctx context.Context) error {
			for _, id := range missing {
				p.Env.logf("restricting CircleCI %s to %s", rep.Name, c.restrictTo[id])
				if _, err := c.API.RestrictContextToProject(ctx, c.contextID, id); err != nil {
					e := c.fail("restricting the context to "+c.restrictTo[id], err).(*Error)
					e.Doing = fmt.Sprintf("restricting CircleCI %s to %s (the context exists, open to every project of the organization; no key was written to it)", rep.Name, c.restrictTo[id])
					e.Hint = "restrict it by hand under Organization Settings > Contexts > " + contextName(c) +
						" > Project restrictions and rerun, or write to the project instead (--circleci-project)"
					if circleci.IsKind(err, circleci.KindForbidden) {
						e.Hint += "; CircleCI lets only organization admins manage project restrictions"
					}
					return e
				}
			}
			return nil
		}})
}

// foreignVariables are the context's variables setup does not write.
func (c *CircleCIVariables) foreignVariables() []string {
	ours := map[string]bool{names.EnvAccessKeyID: true, names.EnvSecretAccessKey: true, names.EnvRoleARN: true,
		names.EnvRegion: true, names.EnvDefaultRegion: true}
	var out []string
	for _, name := range sortedKeys(c.shown) {
		if !ours[name] {
			out = append(out, name)
		}
	}
	return out
}

func contextName(c *CircleCIVariables) string {
	if c.Target.Context != "" {
		return c.Target.Context
	}
	return strings.TrimPrefix(c.report.Name, "context ")
}
