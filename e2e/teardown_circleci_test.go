package e2e

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

func heldNames(m map[string]string) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// Setup writes the variables into a CircleCI project; teardown with the
// same project shows, then removes, those naming the key and the role it
// deletes, and leaves the region and the project's own variables with a
// note. A rerun converges.
func TestTeardownRemovesTheCircleCIVariablesSetupWrote(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	ci := startCircleCI(t)
	if r := run(t, ci.env, "setup", "--circleci-project", e2eCircleProject); r.Code != 0 {
		t.Fatalf("setup into CircleCI:\n%s", r)
	}
	ci.SetProjectVar(e2eCircleProject, "NPM_TOKEN", "npm_0123456789abcdef")
	key := ci.ProjectVars(e2eCircleProject)["AWS_IAM_USER_ACCESS_KEY_ID"]
	all := "AWS_DEFAULT_REGION AWS_IAM_ROLE_ARN AWS_IAM_USER_ACCESS_KEY_ID AWS_IAM_USER_SECRET_ACCESS_KEY AWS_REGION NPM_TOKEN"
	if got := heldNames(ci.ProjectVars(e2eCircleProject)); got != all || key == "" {
		t.Fatalf("after setup CircleCI holds %s", got)
	}

	dry := run(t, ci.env, "teardown", "--dry-run", "--circleci-project", e2eCircleProject)
	if dry.Code != 0 || !strings.Contains(dry.Stdout, "remove AWS_IAM_USER_ACCESS_KEY_ID from CircleCI project "+e2eCircleProject+" (it shows xxxx"+key[len(key)-4:]+", the end of access key "+key) ||
		!strings.Contains(dry.Stdout, "remove AWS_IAM_ROLE_ARN from CircleCI project") || !strings.Contains(dry.Stdout, "AWS_REGION, AWS_DEFAULT_REGION left in CircleCI project") {
		t.Errorf("the dry run does not show what goes and what stays:\n%s", dry)
	}
	if got := heldNames(ci.ProjectVars(e2eCircleProject)); got != all {
		t.Errorf("the dry run changed CircleCI: %s", got)
	}

	td := run(t, ci.env, "teardown", "--yes", "--circleci-project", e2eCircleProject)
	if td.Code != 0 || !strings.Contains(td.Stdout, "circleci project "+e2eCircleProject+": deleted") {
		t.Fatalf("teardown:\n%s", td)
	}
	if strings.Contains(td.Stdout+td.Stderr, e2eCircleToken) {
		t.Error("the CircleCI token was printed")
	}
	if got := heldNames(ci.ProjectVars(e2eCircleProject)); got != "AWS_DEFAULT_REGION AWS_REGION NPM_TOKEN" {
		t.Errorf("left in CircleCI: %s", got)
	}
	if got := lookup(t, c); got != (present{}) {
		t.Errorf("after teardown, still present: %+v", got)
	}

	again := run(t, ci.env, "teardown", "--yes", "--verbose", "--circleci-project", e2eCircleProject)
	if again.Code != 0 || len(mutatingOps(again.Stderr)) != 0 || !strings.Contains(again.Stdout, "Nothing to delete") {
		t.Errorf("rerun:\n%s", again)
	}
}

// A context shows no values, only when each variable was written: the
// key's variables and the role's, written after setup made them, go; the
// region stays, with a note; a rerun changes nothing.
func TestTeardownRemovesAContextsVariables(t *testing.T) {
	resetAWS(t)
	ci := startCircleCI(t)
	ci.AddOrg("gh/acme")
	if r := run(t, ci.env, "setup", "--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", e2eCircleProject); r.Code != 0 {
		t.Fatalf("setup into a context:\n%s", r)
	}
	ids := ci.ContextIDs("gh/acme", "aws-push")
	if len(ids) != 1 {
		t.Fatalf("contexts: %v", ids)
	}
	dry := run(t, ci.env, "teardown", "--dry-run", "--output", "json", "--circleci-context", "aws-push", "--circleci-org", "gh/acme")
	var doc struct {
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(dry.Stdout), &doc); dry.Code != 0 || err != nil || len(doc.Notes) != 1 || !strings.Contains(doc.Notes[0], "AWS_REGION") {
		t.Errorf("the JSON plan does not say the region stays (%v):\n%s", err, dry)
	}
	for _, want := range []string{"remove AWS_IAM_USER_ACCESS_KEY_ID", "remove AWS_IAM_USER_SECRET_ACCESS_KEY", "remove AWS_IAM_ROLE_ARN"} {
		if !strings.Contains(dry.Stdout, want) {
			t.Errorf("the plan lacks %q:\n%s", want, dry.Stdout)
		}
	}
	td := run(t, ci.env, "teardown", "--yes", "--circleci-context", "aws-push", "--circleci-org", "gh/acme")
	if td.Code != 0 {
		t.Fatalf("teardown:\n%s", td)
	}
	if got := heldNames(ci.ContextVars(ids[0])); got != "AWS_DEFAULT_REGION AWS_REGION" {
		t.Errorf("left in the context: %s", got)
	}
	again := run(t, ci.env, "teardown", "--yes", "--verbose", "--circleci-context", "aws-push", "--circleci-org", "gh/acme")
	if again.Code != 0 || len(mutatingOps(again.Stderr)) != 0 {
		t.Errorf("rerun:\n%s", again)
	}
}
