package teardown

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/policies"
)

// named are the repositories the options name, in the run's region.
func (o Options) named() []string {
	if len(o.Repositories) > 0 {
		return o.Repositories
	}
	if o.Repository != "" {
		return []string{o.Repository}
	}
	return nil
}

// repositories are what teardown removes: with none named, the
// repositories the policy grants in the caller's account (setup's set, in
// their regions), else setup's default one; named ones only when the
// policy grants them (or unmanaged resources are included, or there is
// no policy naming repositories to ask).
func (t *Teardown) repositories(ctx context.Context, env *resource.Env, o Options, known *resource.Granted) ([]resource.RepositoryAt, error) {
	id, err := env.Identity(ctx)
	if err != nil {
		return nil, readError(err)
	}
	var mine []policies.RepositoryRef
	for _, r := range known.Repositories {
		if r.Account == id.Account {
			mine = append(mine, r)
		}
	}
	named := o.named()
	if len(named) == 0 {
		if len(mine) == 0 {
			return []resource.RepositoryAt{{Region: t.Region, Name: names.Repository}}, nil
		}
		var out []resource.RepositoryAt
		for _, r := range mine {
			out = append(out, resource.RepositoryAt{Region: r.Region, Name: r.Name})
		}
		return out, nil
	}
	var out []resource.RepositoryAt
	var stray []string
	for _, n := range named {
		at := resource.RepositoryAt{Region: t.Region, Name: n}
		out = append(out, at)
		// A policy that names no repository (made by hand, or gone) cannot
		// tell the set: the repository's own tag still decides.
		if known.Found && len(mine) > 0 && !o.IncludeUnmanaged && !grants(mine, at) {
			stray = append(stray, at.String())
		}
	}
	if len(stray) > 0 {
		var g []string
		for _, r := range mine {
			g = append(g, r.String())
		}
		return nil, clierror.AsUsage(&NotGranted{Policy: o.Policy, Repositories: stray, Granted: g})
	}
	return out, nil
}

func grants(refs []policies.RepositoryRef, at resource.RepositoryAt) bool {
	for _, r := range refs {
		if r.Region == at.Region && r.Name == at.Name {
			return true
		}
	}
	return false
}

// NotGranted refuses to delete repositories the policy does not grant:
// they are not part of the set setup made for this role. Nothing was
// deleted.
type NotGranted struct {
	Policy       string
	Repositories []string // region/name
	Granted      []string // region/name, what the policy grants
}

func (e *NotGranted) Error() string {
	return fmt.Sprintf("%s; include unmanaged resources to delete it anyway", e.Summary())
}

// Summary says what was refused and what the policy grants instead.
func (e *NotGranted) Summary() string {
	what := "nothing"
	if len(e.Granted) > 0 {
		what = strings.Join(e.Granted, ", ")
	}
	return fmt.Sprintf("policy %s does not grant push to %s, so it is not part of the set setup made for this role (the policy grants %s): nothing was deleted",
		e.Policy, strings.Join(e.Repositories, ", "), what)
}
