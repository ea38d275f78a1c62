package commands

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
)

var contextArgs = []string{"--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", ciProject}

// The context setup creates is open only to the project named, before the
// key goes in; the plan says so; a rerun writes nothing.
func TestSetupRestrictsTheContextItCreates(t *testing.T) {
	w := newCIWorld(t)
	dry := w.setup(append(contextArgs, "--dry-run")...)
	if dry.err != nil || !strings.Contains(dry.stdout, "restrict it to project "+ciProject) || len(w.ci.Writes()) != 0 {
		t.Fatalf("dry run: %v, writes %v\n%s", dry.message, w.ci.Writes(), dry.stdout)
	}
	r := w.setup(contextArgs...)
	if r.err != nil {
		t.Fatal(r.message)
	}
	id := w.ci.ContextIDs("gh/acme", "aws-push")[0]
	if got := w.ci.ContextProjectRestrictions(id); !slices.Equal(got, []string{w.ci.ProjectID(ciProject)}) {
		t.Fatalf("restrictions %v, want the project's ID %s", got, w.ci.ProjectID(ciProject))
	}
	// The restriction went in before any variable.
	var order []string
	for _, req := range w.ci.Writes() {
		order = append(order, req.Method+" "+req.Path)
	}
	if i := slices.IndexFunc(order, func(s string) bool { return strings.HasSuffix(s, "/restrictions") }); i < 0 || slices.ContainsFunc(order[:i], func(s string) bool { return strings.Contains(s, "environment-variable") }) {
		t.Fatalf("writes in this order: %v", order)
	}
	w.ciWorks(w.ci.ContextVars(id))
	w.ci.ResetRequests()
	if again := w.setup(contextArgs...); again.err != nil || len(w.ci.Writes()) != 0 {
		t.Fatalf("rerun: %v, writes %v", again.message, w.ci.Writes())
	}
}

// When CircleCI refuses the restriction, the context stays, without the
// key; setup fails saying what to do; a rerun then finishes.
func TestSetupContextRestrictionRefused(t *testing.T) {
	w := newCIWorld(t)
	w.ci.Inject(circlecitest.Fault{Method: http.MethodPost, Path: "/api/v2/context/*/restrictions", Times: -1, Status: http.StatusForbidden,
		Message: "Context restrictions are not available on your plan."})
	r := w.setup(contextArgs...)
	if r.err == nil {
		t.Fatalf("exited 0:\n%s", r.stdout)
	}
	for _, want := range []string{"open to every project", "restrict it by hand", "--circleci-project", "no key was written"} {
		if !strings.Contains(r.message, want) {
			t.Errorf("the error does not say %q: %s", want, r.message)
		}
	}
	ids := w.ci.ContextIDs("gh/acme", "aws-push")
	if len(ids) != 1 {
		t.Fatalf("contexts %v", ids)
	}
	if vars := w.ci.ContextVars(ids[0]); vars[names.EnvSecretAccessKey] != "" || vars[names.EnvAccessKeyID] != "" {
		t.Fatalf("the key went into an unrestricted context: %v", keysOf(vars))
	}
	if keys := w.keys(); len(keys) != 0 {
		t.Fatalf("keys %v made for a context that could not be restricted", keys)
	}
	w.ci.ClearFaults()
	if again := w.setup(contextArgs...); again.err != nil {
		t.Fatal(again.message)
	}
	if got := w.ci.ContextProjectRestrictions(ids[0]); len(got) != 1 {
		t.Fatalf("restrictions after the rerun: %v", got)
	}
	w.ciWorks(w.ci.ContextVars(ids[0]))
}

// A restriction made whose answer was lost is found, not made twice.
func TestSetupContextRestrictionAnswerLost(t *testing.T) {
	w := newCIWorld(t)
	w.ci.Inject(circlecitest.Fault{Method: http.MethodPost, Path: "/api/v2/context/*/restrictions", DropAfter: true})
	if r := w.setup(contextArgs...); r.err != nil {
		t.Fatal(r.message)
	}
	id := w.ci.ContextIDs("gh/acme", "aws-push")[0]
	if got := w.ci.ContextProjectRestrictions(id); len(got) != 1 {
		t.Fatalf("restrictions %v", got)
	}
}

// A context that was there already, holding others' variables and open to
// all, is not narrowed; the output says it is open.
func TestSetupLeavesTheRestrictionsOfAForeignContext(t *testing.T) {
	w := newCIWorld(t)
	id := w.ci.AddContext("gh/acme", "aws-push")
	w.ci.SetContextVar(id, "NPM_TOKEN", "npm_0123456789")
	r := w.setup(contextArgs...)
	if r.err != nil {
		t.Fatal(r.message)
	}
	if got := w.ci.ContextProjectRestrictions(id); len(got) != 0 {
		t.Fatalf("a context setup did not make was restricted: %v", got)
	}
	if !strings.Contains(r.stdout, "open to every project of the organization and holds variables setup does not write (NPM_TOKEN)") {
		t.Errorf("stdout does not say the context is open:\n%s", r.stdout)
	}
}

// Keyless, the context is restricted to the projects the role trusts.
func TestSetupKeylessContextRestrictedToTheTrustedProjects(t *testing.T) {
	w := newCIWorld(t)
	project := w.ci.ProjectID(ciProject)
	r := w.setup("--auth", "oidc", "--circleci-org-id", testOrg, "--circleci-project-id", project,
		"--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context")
	if r.err != nil {
		t.Fatal(r.message)
	}
	id := w.ci.ContextIDs("gh/acme", "aws-push")[0]
	if got := w.ci.ContextProjectRestrictions(id); !slices.Equal(got, []string{project}) {
		t.Fatalf("restrictions %v", got)
	}
}

func TestSetupContextRestrictionInputRefusedBeforeAnyCall(t *testing.T) {
	for _, args := range [][]string{
		{"--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context"},
		{"--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--context-project", ciProject},
		{"--circleci-project", ciProject, "--context-project", ciProject},
		{"--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", "acme/app"},
	} {
		w := newCIWorld(t)
		r := w.setup(args...)
		var u *clierror.UsageError
		if !errors.As(r.err, &u) || !strings.Contains(r.message, "--context-project") || r.built || len(w.ci.Requests()) != 0 {
			t.Errorf("%v: error %v", args, r.message)
		}
	}
	// An unknown project is found out before anything is made.
	w := newCIWorld(t)
	r := w.setup("--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", "gh/acme/nope")
	if r.err == nil || len(w.ci.Writes()) != 0 || len(w.keys()) != 0 {
		t.Fatalf("error %v, writes %v", r.message, w.ci.Writes())
	}
}
