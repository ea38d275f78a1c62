package commands

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/provision"
	"github.com/containerise/containerise/teardown"
)

// useRepositories makes the first --repository the options' Repository
// (what messages name when there is one).
func (o *setupOptions) useRepositories() {
	if len(o.Repositories) == 0 {
		o.Repositories = []string{names.Repository}
	}
	o.Repository = o.Repositories[0]
}

// repositoryArgs are the --repository flags of a suggested command: none
// for setup's default repository alone.
func repositoryArgs(o provision.Options) string {
	repos := o.Repositories
	if len(repos) == 0 && o.Repository != "" {
		repos = []string{o.Repository}
	}
	if len(repos) == 1 && repos[0] == names.Repository {
		return ""
	}
	var args string
	for _, r := range repos {
		args += " --repository " + r
	}
	return args
}

// explainDrop words a refused drop with setup's flags: how to keep the
// repositories (name them too, or a policy and role of this set's own),
// or how to confirm.
func (o setupOptions) explainDrop(err error) error {
	var drop *provision.DropRefused
	if !errors.As(err, &drop) {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s. Nothing was changed.", drop.Summary())
	if same := drop.SameRegion(); len(same) > 0 {
		both := o
		both.Repositories = append(append([]string(nil), o.Repositories...), same...)
		fmt.Fprintf(&b, " To keep pushing to both, name both: %s.", strings.Replace(both.commandLine(""), "setup  ", "setup ", 1))
	}
	if len(drop.SameRegion()) < len(drop.Dropped) {
		fmt.Fprintf(&b, " A repository in another region needs a policy and role of its own.")
	}
	own := o
	own.Policy, own.Role = "NEW-POLICY", "NEW-ROLE"
	fmt.Fprintf(&b, " To give this set its own policy and role instead: %s.", strings.Replace(own.commandLine(""), "setup  ", "setup ", 1))
	fmt.Fprintf(&b, " To stop granting it, confirm: %s", o.commandLine("--yes"))
	return clierror.Usagef("%s", b.String())
}

// explainNotGranted words teardown's refusal with its flags.
func explainNotGranted(err error) error {
	var ng *teardown.NotGranted
	if !errors.As(err, &ng) {
		return err
	}
	return clierror.Usagef("%s. Leave --repository out to tear down what the policy grants, or pass --include-unmanaged to delete it anyway", ng.Summary())
}

// scanningWhich names, in policies' heading, the repositories whose
// scanning the grant follows: one of several is enough.
func scanningWhich(repos []string) string {
	if len(repos) == 1 {
		return "repository " + repos[0]
	}
	return "any of repositories " + strings.Join(repos, ", ")
}
