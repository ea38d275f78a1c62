package teardown

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/policies"
)

const (
	ciToken   = "CCIPAT_test-token-0123456789abcdef0123456789abcdef"
	ciProject = "gh/acme/app"
)

// withCircleCI gives the world's teardown a CircleCI stand-in holding one
// project and one organisation.
func (w *world) withCircleCI() *circlecitest.Server {
	w.t.Helper()
	s := circlecitest.New(w.t)
	s.AddToken(ciToken, "admin")
	s.AddProject(ciProject)
	s.AddOrg("gh/acme")
	c, err := circleci.New(circleci.Options{Host: s.URL, Token: ciToken, HTTPClient: s.Client(), RetryDelay: 1})
	if err != nil {
		w.t.Fatal(err)
	}
	w.td.CircleCI = c
	return s
}

// keyID is the user's one access key.
func (w *world) keyID() string {
	w.t.Helper()
	out := must(w.a.IAM().ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(DefaultUser)}))
	if len(out.AccessKeyMetadata) != 1 {
		w.t.Fatalf("the user has %d keys", len(out.AccessKeyMetadata))
	}
	return aws.ToString(out.AccessKeyMetadata[0].AccessKeyId)
}

func (w *world) roleARN() string { return policies.RoleARN(w.a.Partition(), w.a.ID(), DefaultRole) }

// holdAsSetupWrote puts into set what setup writes: the key, the role,
// the region.
func (w *world) holdAsSetupWrote(set func(name, value string), keyID string) {
	set(names.EnvAccessKeyID, keyID)
	set(names.EnvSecretAccessKey, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	set(names.EnvRoleARN, w.roleARN())
	set(names.EnvRegion, w.a.Region())
	set(names.EnvDefaultRegion, w.a.Region())
}

var inProject = Options{Repository: DefaultRepository, Policy: DefaultPolicy, Role: DefaultRole, User: DefaultUser,
	CircleCI: &resource.CircleCITarget{Project: ciProject}}

func varNames(m map[string]string) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func notesText(p *Plan) string { return strings.Join(p.Notes, "\n") }

// Teardown removes the key ID whose last four characters match the key it
// deletes, its secret and the role's ARN, before the key and the role;
// the region stays, with a note. A rerun has nothing to do there.
func TestTeardownRemovesTheCircleCIVariablesNamingWhatItDeletes(t *testing.T) {
	w := newWorld(t)
	w.setUp(false, false)
	ci := w.withCircleCI()
	key := w.keyID()
	w.holdAsSetupWrote(func(n, v string) { ci.SetProjectVar(ciProject, n, v) }, key)
	ci.SetProjectVar(ciProject, "NPM_TOKEN", "npm_0123456789")

	dry, err := w.td.Plan(context.Background(), inProject)
	if err != nil {
		t.Fatal(err)
	}
	vars := reportOf(dry, resource.KindCircleCI)
	if vars == nil || vars.State != resource.StateDelete || len(vars.Steps) != 3 {
		t.Fatalf("plan for the variables: %+v", vars)
	}
	for i, want := range []string{names.EnvSecretAccessKey, names.EnvAccessKeyID, names.EnvRoleARN} {
		if !strings.Contains(vars.Steps[i].Action, "remove "+want+" ") {
			t.Errorf("step %d: %s, want removing %s", i, vars.Steps[i].Action, want)
		}
	}
	if !strings.Contains(vars.Steps[1].Action, key) || !strings.Contains(notesText(dry), names.EnvRegion+", "+names.EnvDefaultRegion+" left") {
		t.Errorf("the plan does not say which key, or why the region stays:\n%v\n%s", vars.Steps[1].Action, notesText(dry))
	}
	if strings.Contains(notesText(dry), "NPM_TOKEN") {
		t.Errorf("a variable setup does not write is named: %s", notesText(dry))
	}
	if got := varNames(ci.ProjectVars(ciProject)); got != "AWS_DEFAULT_REGION AWS_IAM_ROLE_ARN AWS_IAM_USER_ACCESS_KEY_ID AWS_IAM_USER_SECRET_ACCESS_KEY AWS_REGION NPM_TOKEN" {
		t.Errorf("the plan alone changed CircleCI: %s", got)
	}

	w.a.ResetCalls()
	p, err := w.run(inProject)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if o := outcomes(p); o[resource.KindCircleCI] != OutcomeDeleted || o[KindUser] != OutcomeDeleted || o[KindRole] != OutcomeDeleted {
		t.Errorf("outcomes: %s", kinds(p))
	}
	if got := varNames(ci.ProjectVars(ciProject)); got != "AWS_DEFAULT_REGION AWS_REGION NPM_TOKEN" {
		t.Errorf("left in CircleCI: %s", got)
	}

	again, err := w.run(inProject)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if vars := reportOf(again, resource.KindCircleCI); vars.State != resource.StateInUse || len(vars.Steps) != 0 || !again.Settled() {
		t.Errorf("rerun: %+v", vars)
	}
	if len(w.a.Mutating()) == 0 {
		t.Error("no AWS deletion recorded")
	}
}

// The variables go before the key and the role: a CircleCI failure keeps
// them, so the rerun still matches the variables and finishes.
func TestTeardownCircleCIFailureKeepsTheKeyThenRerun(t *testing.T) {
	w := newWorld(t)
	w.setUp(false, false)
	ci := w.withCircleCI()
	key := w.keyID()
	w.holdAsSetupWrote(func(n, v string) { ci.SetProjectVar(ciProject, n, v) }, key)
	ci.Inject(circlecitest.Fault{Method: http.MethodDelete, Variable: names.EnvAccessKeyID, Times: -1, Status: http.StatusForbidden, Message: "Permission denied"})

	p, err := w.run(inProject)
	if err == nil {
		t.Fatal("teardown succeeded despite CircleCI's refusal")
	}
	if o := outcomes(p); o[resource.KindCircleCI] != OutcomeFailed || o[KindUser] != OutcomeFailed {
		t.Errorf("outcomes: %s", kinds(p))
	}
	if w.keyID() != key {
		t.Error("the key changed")
	}
	if user := reportOf(p, KindUser); !strings.Contains(errText(user), "circleci project "+ciProject) {
		t.Errorf("the user's error does not say what holds it: %s", errText(user))
	}

	ci.ClearFaults()
	if _, err := w.run(inProject); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	w.wantExists(allGone)
	if got := varNames(ci.ProjectVars(ciProject)); got != "AWS_DEFAULT_REGION AWS_REGION" {
		t.Errorf("left in CircleCI: %s", got)
	}
}

// What does not name the key or the role teardown deletes stays, each
// with a note saying why.
func TestTeardownLeavesCircleCIVariablesItCannotMatch(t *testing.T) {
	t.Run("another key, and a role teardown keeps", func(t *testing.T) {
		w := newWorld(t)
		w.seedWith(map[Kind]bool{KindRepository: true, KindPolicy: true, KindUser: true, KindRole: false}, 0)
		ci := w.withCircleCI()
		w.holdAsSetupWrote(func(n, v string) { ci.SetProjectVar(ciProject, n, v) }, "AKIAIOSFODNN7EXAMPLE")
		p, err := w.run(inProject)
		if err != nil {
			t.Fatalf("teardown: %v", err)
		}
		if got := varNames(ci.ProjectVars(ciProject)); got != "AWS_DEFAULT_REGION AWS_IAM_ROLE_ARN AWS_IAM_USER_ACCESS_KEY_ID AWS_IAM_USER_SECRET_ACCESS_KEY AWS_REGION" {
			t.Errorf("removed what it could not match: left %s", got)
		}
		notes := notesText(p)
		for _, want := range []string{
			names.EnvAccessKeyID + " left in CircleCI project " + ciProject + ": it shows xxxxMPLE, and no access key of user circleci ends so",
			names.EnvSecretAccessKey + " left in CircleCI project " + ciProject + ": it goes with " + names.EnvAccessKeyID,
			names.EnvRoleARN + " left in CircleCI project " + ciProject + ": teardown does not delete role containerise",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("notes lack %q:\n%s", want, notes)
			}
		}
		if vars := reportOf(p, resource.KindCircleCI); vars.Outcome != OutcomeLeftAlone {
			t.Errorf("variables %s, want left alone", vars.Outcome)
		}
	})
	t.Run("a context written before the key and the role were made", func(t *testing.T) {
		w := newWorld(t)
		w.setUp(false, false)
		ci := w.withCircleCI()
		id := ci.AddContext("gh/acme", "aws-push")
		long := w.a.Now().Add(-24 * time.Hour) // before the fake made the key and the role
		w.holdAsSetupWrote(func(n, v string) { ci.SetContextVarAt(id, n, v, long) }, w.keyID())
		o := inProject
		o.CircleCI = &resource.CircleCITarget{Context: "aws-push", Owner: circleci.Owner{Slug: "gh/acme"}}
		p, err := w.run(o)
		if err != nil {
			t.Fatalf("teardown: %v", err)
		}
		if got := varNames(ci.ContextVars(id)); got != "AWS_DEFAULT_REGION AWS_IAM_ROLE_ARN AWS_IAM_USER_ACCESS_KEY_ID AWS_IAM_USER_SECRET_ACCESS_KEY AWS_REGION" {
			t.Errorf("removed from a context: left %s", got)
		}
		if n := strings.Count(notesText(p), "CircleCI shows no value of a context's variables"); n != 2 {
			t.Errorf("%d notes say why, want 2 (the key ID and the role):\n%s", n, notesText(p))
		}
		w.wantExists(allGone)
	})
	t.Run("a context that does not exist", func(t *testing.T) {
		w := newWorld(t)
		w.setUp(false, false)
		w.withCircleCI()
		o := inProject
		o.CircleCI = &resource.CircleCITarget{Context: "nowhere", Owner: circleci.Owner{Slug: "gh/acme"}}
		p, err := w.run(o)
		if err != nil {
			t.Fatalf("teardown: %v", err)
		}
		if vars := reportOf(p, resource.KindCircleCI); vars.Outcome != OutcomeGone {
			t.Errorf("variables %s, want gone", vars.Outcome)
		}
	})
}

// A token CircleCI refuses stops teardown before any deletion, saying so.
func TestTeardownWithARefusedCircleCITokenDeletesNothing(t *testing.T) {
	w := newWorld(t)
	w.setUp(false, false)
	ci := w.withCircleCI()
	ci.RemoveToken(ciToken)
	w.a.ResetCalls()
	_, err := w.td.Plan(context.Background(), inProject)
	var re *ReadError
	if !errors.As(err, &re) {
		t.Fatalf("want a read error, got %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "nothing was deleted") || !strings.Contains(msg, "CircleCI refused the API token") {
		t.Errorf("the error does not say what to do: %s", msg)
	}
	if m := w.a.Mutating(); len(m) != 0 {
		t.Errorf("deleted despite the refusal: %v", m)
	}
}

// A context shows no values, only when each variable was written: what
// setup wrote after the key and the role were made goes with them; the
// region stays.
func TestTeardownRemovesAContextsVariablesWrittenAfterTheKey(t *testing.T) {
	w := newWorld(t)
	w.setUp(false, false)
	ci := w.withCircleCI()
	id := ci.AddContext("gh/acme", "aws-push")
	w.holdAsSetupWrote(func(n, v string) { ci.SetContextVarAt(id, n, v, w.a.Now().Add(time.Minute)) }, w.keyID())
	o := inProject
	o.CircleCI = &resource.CircleCITarget{Context: "aws-push", Owner: circleci.Owner{Slug: "gh/acme"}}
	p, err := w.run(o)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if got := varNames(ci.ContextVars(id)); got != "AWS_DEFAULT_REGION AWS_REGION" {
		t.Errorf("left in the context: %s", got)
	}
	if vars := reportOf(p, resource.KindCircleCI); vars.Outcome != OutcomeDeleted {
		t.Errorf("variables %s, want deleted", vars.Outcome)
	}
	w.wantExists(allGone)
}
