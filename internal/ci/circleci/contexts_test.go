package circleci_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

var acme = circleci.Owner{Slug: org}

func TestContextsListFindGet(t *testing.T) {
	f := newFixture(t)
	f.srv.SetPageSize(2)
	var ids []string
	for i := range 5 {
		ids = append(ids, f.srv.AddContext(org, fmt.Sprintf("ctx-%d", i)))
	}
	f.srv.AddContext("gh/other", "ctx-elsewhere")

	all, err := f.client.ListContexts(ctx(t), acme)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	if want := []string{"ctx-0", "ctx-1", "ctx-2", "ctx-3", "ctx-4"}; !slices.Equal(names, want) {
		t.Errorf("listed %v over pages of 2, want %v", names, want)
	}

	byID, err := f.client.ListContexts(ctx(t), circleci.Owner{ID: f.srv.OrgID(org)})
	if err != nil || len(byID) != 5 {
		t.Errorf("listing by owner ID: %d contexts, %v", len(byID), err)
	}

	c, ok, err := f.client.FindContext(ctx(t), acme, "ctx-3")
	if err != nil || !ok || c.ID != ids[3] {
		t.Errorf("FindContext(ctx-3) = %+v, %v, %v; want ID %s", c, ok, err, ids[3])
	}
	if _, ok, err := f.client.FindContext(ctx(t), acme, "ctx-elsewhere"); ok || err != nil {
		t.Errorf("found another organisation's context (%v, %v)", ok, err)
	}

	got, err := f.client.GetContext(ctx(t), ids[1])
	if err != nil || got.Name != "ctx-1" {
		t.Errorf("GetContext = %+v, %v", got, err)
	}

	_, err = f.client.ListContexts(ctx(t), circleci.Owner{Slug: "gh/nobody"})
	e := wantKind(t, err, circleci.KindNotFound)
	if !strings.Contains(e.Error(), `organization "gh/nobody"`) {
		t.Errorf("the error does not name the organization: %v", e)
	}
}

func TestContextVarsWriteListDelete(t *testing.T) {
	f := newFixture(t)
	f.srv.SetPageSize(3)
	id := f.srv.AddContext(org, "aws")
	for name, value := range setupVars {
		v, err := f.client.SetContextEnvVar(ctx(t), id, name, value)
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != name || v.ContextID != id || v.UpdatedAt.IsZero() {
			t.Errorf("write %s: CircleCI answered %+v", name, v)
		}
	}
	if got := f.srv.ContextVars(id); !maps.Equal(got, setupVars) {
		t.Fatalf("the context holds %v, want %v", got, setupVars)
	}

	f.srv.ResetRequests()
	vars, err := f.client.ListContextEnvVars(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	if want := slices.Sorted(maps.Keys(setupVars)); !slices.Equal(names, want) {
		t.Errorf("listed %v over pages of 3, want %v", names, want)
	}
	if w := f.srv.Writes(); len(w) != 0 {
		t.Errorf("listing wrote: %v", w)
	}

	// Replacing keeps one variable of that name.
	if _, err := f.client.SetContextEnvVar(ctx(t), id, "AWS_REGION", "eu-west-1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.srv.ContextVar(id, "AWS_REGION"); v != "eu-west-1" {
		t.Errorf("AWS_REGION is %q after the update", v)
	}

	if err := f.client.DeleteContextEnvVar(ctx(t), id, "AWS_IAM_USER_SECRET_ACCESS_KEY"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.srv.ContextVar(id, "AWS_IAM_USER_SECRET_ACCESS_KEY"); ok {
		t.Error("the secret is still in the context")
	}
	if err := f.client.DeleteContextEnvVar(ctx(t), id, "AWS_IAM_USER_SECRET_ACCESS_KEY"); err != nil {
		t.Errorf("deleting an absent variable: %v", err)
	}
}

// A context known by name earlier is named in later errors about its ID.
func TestContextErrorsNameTheContext(t *testing.T) {
	f := newFixture(t)
	id := f.srv.AddContext(org, "aws")
	if _, ok, err := f.client.FindContext(ctx(t), acme, "aws"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	f.srv.RemoveContext(id)
	_, err := f.client.SetContextEnvVar(ctx(t), id, "AWS_REGION", "us-east-1")
	wantKind(t, err, circleci.KindNotFound)
	if want := fmt.Sprintf(`context "aws" (id %s)`, id); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %s", err, want)
	}
	err = f.client.DeleteContextEnvVar(ctx(t), id, "AWS_REGION")
	wantKind(t, err, circleci.KindNotFound)
}

func TestCreateContext(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		f := newFixture(t)
		f.srv.AddOrg(org)
		c, err := f.client.CreateContext(ctx(t), acme, "aws")
		if err != nil {
			t.Fatal(err)
		}
		if ids := f.srv.ContextIDs(org, "aws"); len(ids) != 1 || ids[0] != c.ID {
			t.Errorf("contexts named aws: %v, created %+v", ids, c)
		}
	})
	t.Run("by owner ID", func(t *testing.T) {
		f := newFixture(t)
		orgID := f.srv.AddOrg(org)
		if _, err := f.client.CreateContext(ctx(t), circleci.Owner{ID: orgID}, "aws"); err != nil {
			t.Fatal(err)
		}
		if ids := f.srv.ContextIDs(org, "aws"); len(ids) != 1 {
			t.Errorf("contexts named aws: %v", ids)
		}
	})
	// After each of these failures the context is created exactly once.
	faults := map[string]circlecitest.Fault{
		"lost answer":          {DropAfter: true},
		"dropped before":       {Drop: true},
		"server error":         {Status: 502},
		"rate limited":         {Status: 429, RetryAfter: "2"},
		"lost answer, twice":   {DropAfter: true, Times: 2},
		"server error, twice":  {Status: 503, Times: 2},
		"answer without an ID": {Status: 200},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.AddOrg(org)
			fault.Method, fault.Path = "POST", "/api/v2/context"
			f.srv.Inject(fault)
			c, err := f.client.CreateContext(ctx(t), acme, "aws")
			if err != nil {
				t.Fatal(err)
			}
			ids := f.srv.ContextIDs(org, "aws")
			if len(ids) != 1 || ids[0] != c.ID {
				t.Errorf("contexts named aws: %v; CreateContext returned %s", ids, c.ID)
			}
		})
	}
	t.Run("name taken", func(t *testing.T) {
		f := newFixture(t)
		f.srv.AddContext(org, "aws")
		_, err := f.client.CreateContext(ctx(t), acme, "aws")
		wantKind(t, err, circleci.KindRejected)
		if n := len(f.srv.ContextIDs(org, "aws")); n != 1 {
			t.Errorf("%d contexts named aws", n)
		}
	})
	t.Run("no answer ever", func(t *testing.T) {
		f := newFixture(t)
		f.srv.AddOrg(org)
		f.srv.Inject(circlecitest.Fault{Method: "POST", Path: "/api/v2/context", Drop: true, Times: -1})
		_, err := f.client.CreateContext(ctx(t), acme, "aws")
		wantKind(t, err, circleci.KindNetwork)
		posts := 0
		for _, r := range f.srv.Requests() {
			if r.Method == "POST" {
				posts++
			}
		}
		if posts != circleci.DefaultMaxAttempts {
			t.Errorf("%d POSTs, want %d", posts, circleci.DefaultMaxAttempts)
		}
		if n := len(f.srv.ContextIDs(org, "aws")); n != 0 {
			t.Errorf("%d contexts named aws", n)
		}
	})
}
