package circleci_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

var setupVars = map[string]string{
	"AWS_IAM_USER_ACCESS_KEY_ID":     "AKIAIOSFODNN7EXAMPLE",
	"AWS_IAM_USER_SECRET_ACCESS_KEY": secret,
	"AWS_IAM_ROLE_ARN":               "arn:aws:iam::123456789012:role/containerise",
	"AWS_REGION":                     "us-east-1",
}

// The write, then the read-back a rerun makes: the masked values match
// what was written, CI holds the plaintext, and reading writes nothing.
func TestProjectVarsWriteThenReadBackWithoutWriting(t *testing.T) {
	f := newFixture(t)
	for name, value := range setupVars {
		shown, err := f.client.SetProjectEnvVar(ctx(t), project, name, value)
		if err != nil {
			t.Fatal(err)
		}
		if shown.Name != name || circleci.CompareMasked(value, shown.MaskedValue) != circleci.MaskMatches {
			t.Errorf("write %s: CircleCI answered %+v", name, shown)
		}
	}
	if got := f.srv.ProjectVars(project); !maps.Equal(got, setupVars) {
		t.Fatalf("CircleCI holds %v, want %v", got, setupVars)
	}

	f.srv.ResetRequests()
	vars, err := f.client.ListProjectEnvVars(ctx(t), project)
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) != len(setupVars) {
		t.Fatalf("listed %d variables, want %d: %+v", len(vars), len(setupVars), vars)
	}
	for _, v := range vars {
		if strings.Contains(v.MaskedValue, setupVars[v.Name][:len(setupVars[v.Name])-4]) {
			t.Errorf("%s shown unmasked: %q", v.Name, v.MaskedValue)
		}
		if got := circleci.CompareMasked(setupVars[v.Name], v.MaskedValue); got != circleci.MaskMatches {
			t.Errorf("%s: masked %q compares %s with what was written", v.Name, v.MaskedValue, got)
		}
	}
	if w := f.srv.Writes(); len(w) != 0 {
		t.Errorf("reading back wrote to CircleCI: %v", w)
	}
}

func TestListProjectEnvVarsFollowsPages(t *testing.T) {
	f := newFixture(t)
	f.srv.SetPageSize(2)
	want := map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("VAR_%d", i)
		want[name] = fmt.Sprintf("value-number-%d", i)
		f.srv.SetProjectVar(project, name, want[name])
	}
	vars, err := f.client.ListProjectEnvVars(ctx(t), project)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range vars {
		got[v.Name] = v.MaskedValue
	}
	if len(got) != 5 || got["VAR_3"] != "xxxxer-3" {
		t.Errorf("listed %v, want the 5 variables masked", got)
	}
	pages := 0
	for _, r := range f.srv.Requests() {
		if r.Method == "GET" {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("read %d pages of 2 for 5 variables, want 3: %v", pages, f.srv.Requests())
	}
}

func TestSetProjectEnvVarReplacesByName(t *testing.T) {
	f := newFixture(t)
	f.srv.SetProjectVar(project, "AWS_REGION", "eu-west-1")
	if _, err := f.client.SetProjectEnvVar(ctx(t), project, "AWS_REGION", "us-east-2"); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.ProjectVars(project); len(got) != 1 || got["AWS_REGION"] != "us-east-2" {
		t.Errorf("CircleCI holds %v, want AWS_REGION=us-east-2 only", got)
	}
}

func TestGetProjectEnvVar(t *testing.T) {
	f := newFixture(t)
	f.srv.SetProjectVar(project, "AWS_IAM_USER_SECRET_ACCESS_KEY", secret)
	v, err := f.client.GetProjectEnvVar(ctx(t), project, "AWS_IAM_USER_SECRET_ACCESS_KEY")
	if err != nil {
		t.Fatal(err)
	}
	if v.MaskedValue != "xxxxEKEY" {
		t.Errorf("masked value %q, want xxxxEKEY", v.MaskedValue)
	}
	_, err = f.client.GetProjectEnvVar(ctx(t), project, "MISSING")
	wantKind(t, err, circleci.KindNotFound)
}

func TestDeleteProjectEnvVar(t *testing.T) {
	f := newFixture(t)
	f.srv.SetProjectVar(project, "AWS_IAM_USER_SECRET_ACCESS_KEY", secret)
	f.srv.SetProjectVar(project, "AWS_REGION", "us-east-1")
	if err := f.client.DeleteProjectEnvVar(ctx(t), project, "AWS_IAM_USER_SECRET_ACCESS_KEY"); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.ProjectVars(project); len(got) != 1 || got["AWS_REGION"] == "" {
		t.Errorf("after the delete CircleCI holds %v, want AWS_REGION only", got)
	}
	t.Run("already absent is done", func(t *testing.T) {
		if err := f.client.DeleteProjectEnvVar(ctx(t), project, "AWS_IAM_USER_SECRET_ACCESS_KEY"); err != nil {
			t.Errorf("deleting an absent variable: %v", err)
		}
	})
	t.Run("lost answer, retried", func(t *testing.T) {
		f.srv.SetProjectVar(project, "OLD", "old-value")
		f.srv.Inject(circlecitest.Fault{Method: "DELETE", Path: "/api/v2/project/gh/acme/app/envvar/OLD", DropAfter: true})
		if err := f.client.DeleteProjectEnvVar(ctx(t), project, "OLD"); err != nil {
			t.Errorf("a delete whose answer was lost: %v", err)
		}
		if _, ok := f.srv.ProjectVar(project, "OLD"); ok {
			t.Error("OLD is still there")
		}
	})
	t.Run("unknown project", func(t *testing.T) {
		err := f.client.DeleteProjectEnvVar(ctx(t), "gh/acme/nope", "AWS_REGION")
		e := wantKind(t, err, circleci.KindNotFound)
		if !strings.Contains(err.Error(), "project gh/acme/nope") || e.Target.Name != "gh/acme/nope" {
			t.Errorf("the error does not name the project: %v", err)
		}
	})
}

func TestProjectSlugForms(t *testing.T) {
	f := newFixture(t)
	const appSlug = "circleci/5f9b0e3c-1a2b-4c5d-8e9f-0a1b2c3d4e5f/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
	f.srv.AddProject(appSlug)
	f.srv.AddProject("bb/acme/lib")
	for _, slug := range []string{appSlug, "bb/acme/lib", "github/acme/app"} {
		if _, err := f.client.SetProjectEnvVar(ctx(t), slug, "AWS_REGION", "us-east-1"); err != nil {
			t.Errorf("%s: %v", slug, err)
		}
	}
	if _, ok := f.srv.ProjectVar(appSlug, "AWS_REGION"); !ok {
		t.Error("the GitHub App project did not get the variable")
	}
	// The slug's slashes go into the path as they are.
	for _, r := range f.srv.Requests() {
		if r.Method == "POST" && !strings.HasPrefix(r.Path, "/api/v2/project/") {
			t.Errorf("unexpected path %s", r.Path)
		}
	}
}

func TestInvalidInputFailsBeforeAnyRequest(t *testing.T) {
	f := newFixture(t)
	cases := map[string]func() error{
		"slug without repo": func() error { _, err := f.client.ListProjectEnvVars(ctx(t), "gh/acme"); return err },
		"slug with ..":      func() error { _, err := f.client.ListProjectEnvVars(ctx(t), "gh/acme/.."); return err },
		"unknown vcs":       func() error { _, err := f.client.ListProjectEnvVars(ctx(t), "svn/acme/app"); return err },
		"bad var name": func() error {
			_, err := f.client.SetProjectEnvVar(ctx(t), project, "AWS-REGION", "x")
			return err
		},
		"bad context id": func() error { _, err := f.client.ListContextEnvVars(ctx(t), "not-a-uuid"); return err },
		"owner slug and id": func() error {
			_, err := f.client.ListContexts(ctx(t), circleci.Owner{Slug: org, ID: "5f9b0e3c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"})
			return err
		},
	}
	for name, call := range cases {
		err := call()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if _, isAPI := circleci.KindOf(err); isAPI {
			t.Errorf("%s: %v is an API error; want a local one", name, err)
		}
	}
	if r := f.srv.Requests(); len(r) != 0 {
		t.Errorf("invalid input reached CircleCI: %v", r)
	}
}
