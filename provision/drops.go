package provision

import (
	"fmt"
	"strings"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/policies"
)

// repositories are the options' repositories as the spec names them: all
// in the setup's region.
func (o Options) repositories() []resource.RepositoryAt {
	var out []resource.RepositoryAt
	for _, name := range o.Repositories {
		out = append(out, resource.RepositoryAt{Region: o.Region, Name: name})
	}
	return out
}

// Dropped are the repositories the policy grants today that this setup's
// document no longer grants: a change to what CI may do.
func (s *Setup) Dropped() []policies.RepositoryRef {
	if s.policy == nil {
		return nil
	}
	return s.policy.Dropped()
}

// DropRefused is a setup that would stop granting push to repositories the
// policy grants today, and was not confirmed: nothing was changed.
type DropRefused struct {
	Policy  string
	Region  string                   // the setup's region
	Dropped []policies.RepositoryRef // what the policy would stop granting
}

func (e *DropRefused) Error() string {
	return fmt.Sprintf("%s; nothing was changed: to keep them, name them too in this setup, or give this set its own policy and role; to drop them, confirm", e.Summary())
}

// Summary says what would change: "policy P would stop granting push to
// eu-west-1/my-app".
func (e *DropRefused) Summary() string {
	var names []string
	for _, r := range e.Dropped {
		names = append(names, r.String())
	}
	return fmt.Sprintf("policy %s would stop granting push to %s, so CI could no longer push there", e.Policy, strings.Join(names, ", "))
}

// SameRegion are the dropped repositories in the setup's region: those
// this setup could name too.
func (e *DropRefused) SameRegion() []string {
	var out []string
	for _, r := range e.Dropped {
		if r.Region == e.Region {
			out = append(out, r.Name)
		}
	}
	return out
}

// Questions also ask about a drop, so that one yes covers it.
func (s *Setup) dropQuestions() []string {
	var out []string
	for _, r := range s.Dropped() {
		out = append(out, fmt.Sprintf("stop granting push to %s (policy %s)", r, s.o.Policy))
	}
	return out
}

// refuseUnconfirmedDrop stops a setup that would take a repository away
// from CI without confirmation, before any change (exit 2).
func (s *Setup) refuseUnconfirmedDrop(confirmed bool) error {
	if confirmed || len(s.Dropped()) == 0 {
		return nil
	}
	return clierror.AsUsage(&DropRefused{Policy: s.o.Policy, Region: s.o.Region, Dropped: s.Dropped()})
}
