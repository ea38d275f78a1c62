package circleci_test

import (
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

func TestGetProject(t *testing.T) {
	f := newFixture(t)
	p, err := f.client.GetProject(t.Context(), project)
	if err != nil || p.ID != f.srv.ProjectID(project) {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := f.client.GetProject(t.Context(), "gh/acme/nope"); !circleci.IsKind(err, circleci.KindNotFound) {
		t.Fatalf("unknown project: %v", err)
	}
}

// A new context carries the members' group restriction; a project
// restriction is added once, listed, and deleted.
func TestContextRestrictions(t *testing.T) {
	f := newFixture(t)
	id := f.srv.AddContext(org, "aws")
	list, err := f.client.ListContextRestrictions(t.Context(), id)
	if err != nil || len(list) != 1 || list[0].Type != circleci.RestrictGroup {
		t.Fatalf("a new context's restrictions: %+v %v", list, err)
	}
	pid := f.srv.ProjectID(project)
	r, err := f.client.RestrictContextToProject(t.Context(), id, pid)
	if err != nil || r.Type != circleci.RestrictProject || r.Value != pid || r.ID == "" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := f.client.RestrictContextToProject(t.Context(), id, "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"); !circleci.IsKind(err, circleci.KindRejected) {
		t.Fatalf("a project CircleCI does not know: %v", err)
	}
	if err := f.client.DeleteContextRestriction(t.Context(), id, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.ContextProjectRestrictions(id); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

// Creating a restriction is not repeated blindly: after an answer lost
// (the restriction made) the client finds it; after one refused, it stops.
func TestRestrictContextAfterALostAnswer(t *testing.T) {
	f := newFixture(t)
	id := f.srv.AddContext(org, "aws")
	pid := f.srv.ProjectID(project)
	f.srv.Inject(circlecitest.Fault{Method: "POST", Path: "/api/v2/context/*/restrictions", Times: -1, Status: 502, Applied: true})
	r, err := f.client.RestrictContextToProject(t.Context(), id, pid)
	if err != nil || r.Value != pid {
		t.Fatalf("%+v %v", r, err)
	}
	if got := f.srv.ContextProjectRestrictions(id); len(got) != 1 {
		t.Fatalf("restrictions %v", got)
	}
	f.srv.ClearFaults()
	other := f.srv.AddContext(org, "other")
	f.srv.Inject(circlecitest.Fault{Method: "POST", Path: "/api/v2/context/*/restrictions", Times: -1, Status: 403})
	if _, err := f.client.RestrictContextToProject(t.Context(), other, pid); !circleci.IsKind(err, circleci.KindForbidden) {
		t.Fatalf("refused: %v", err)
	}
	posts := 0
	for _, r := range f.srv.Requests() {
		if r.Method == "POST" && r.Status == 403 {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("a refusal was sent %d times", posts)
	}
}
