package circleci

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerise/containerise/policies"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// matchGolden compares got with testdata/file, byte for byte, and returns
// the file; -update rewrites it first.
func matchGolden(t *testing.T, file, got string) string {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/ci/circleci -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", file, got, want)
	}
	return string(want)
}

const (
	testOrg      = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	testProject  = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
	testProject2 = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"
)

var testProvider = policies.OIDCProviderARN("aws", "123456789012", Issuer(testOrg))

// golden compares a document with testdata/<name>.json; -update rewrites it.
func golden(t *testing.T, name string, doc policies.Document) {
	t.Helper()
	want := matchGolden(t, name+".json", doc.JSON()+"\n")
	// What IAM gives back must read as the same document.
	if same, err := policies.Equivalent(string(want), doc); !same || err != nil {
		t.Errorf("%s: the golden file is not equivalent to the document (%v)", name, err)
	}
}

func TestCircleCITrustGolden(t *testing.T) {
	for name, c := range map[string]Selector{
		"trust-circleci-one-project":           {OrgID: testOrg, ProjectIDs: []string{testProject}},
		"trust-circleci-two-projects":          {OrgID: testOrg, ProjectIDs: []string{testProject, testProject2}},
		"trust-circleci-branches":              {OrgID: testOrg, ProjectIDs: []string{testProject, testProject2}, Branches: []string{"main", "release/v1"}},
		"trust-circleci-any-project":           {OrgID: testOrg, AnyProject: true},
		"trust-circleci-any-project-on-branch": {OrgID: testOrg, AnyProject: true, Branches: []string{"main"}},
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, Trust(testProvider, c)) })
	}
}

func TestCircleCITrustShape(t *testing.T) {
	doc := Trust(testProvider, Selector{OrgID: testOrg, ProjectIDs: []string{testProject}})
	if len(doc.Statement) != 1 {
		t.Fatalf("want one statement, got %d", len(doc.Statement))
	}
	s := doc.Statement[0]
	if s.Principal == nil || len(s.Principal.AWS) != 0 || strings.Join(s.Principal.Federated, ",") != testProvider {
		t.Errorf("principal %+v, want only the provider %s", s.Principal, testProvider)
	}
	if strings.Join(s.Action, ",") != "sts:AssumeRoleWithWebIdentity" {
		t.Errorf("actions %v", s.Action)
	}
	aud := "oidc.circleci.com/org/" + testOrg + ":aud"
	sub := "oidc.circleci.com/org/" + testOrg + ":sub"
	if got := s.Condition["StringEquals"][aud]; strings.Join(got, ",") != testOrg {
		t.Errorf("audience condition %v, want the org ID", got)
	}
	if got := s.Condition["StringLike"][sub]; strings.Join(got, ",") != "org/"+testOrg+"/project/"+testProject+"/user/*" {
		t.Errorf("subject condition %v", got)
	}
	if testProvider != "arn:aws:iam::123456789012:oidc-provider/oidc.circleci.com/org/"+testOrg {
		t.Errorf("provider ARN %s", testProvider)
	}
	if got := doc.FederatedPrincipals(); len(got) != 1 || got[0] != testProvider {
		t.Errorf("FederatedPrincipals = %v", got)
	}
}

func TestCircleCISubjects(t *testing.T) {
	base := "org/" + testOrg + "/project/" + testProject + "/user/*"
	for _, c := range []struct {
		name string
		c    Selector
		want []string
	}{
		{"project", Selector{OrgID: testOrg, ProjectIDs: []string{testProject}}, []string{base}},
		{"repeated project", Selector{OrgID: testOrg, ProjectIDs: []string{testProject, testProject}}, []string{base}},
		{"branch", Selector{OrgID: testOrg, ProjectIDs: []string{testProject}, Branches: []string{"main"}},
			[]string{base + "/vcs-origin/*/vcs-ref/refs/heads/main"}},
		{"a '$' stays literal", Selector{OrgID: testOrg, ProjectIDs: []string{testProject}, Branches: []string{"a$b"}},
			[]string{base + "/vcs-origin/*/vcs-ref/refs/heads/a${$}b"}},
		{"any project", Selector{OrgID: testOrg, AnyProject: true}, []string{"org/" + testOrg + "/project/*/user/*"}},
	} {
		got := c.c.Subjects()
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: subjects %v, want %v", c.name, got, c.want)
		}
	}
}

// Documents that differ in what they trust are not equivalent, and their
// digests differ.
func TestCircleCITrustComparesConditions(t *testing.T) {
	one := Trust(testProvider, Selector{OrgID: testOrg, ProjectIDs: []string{testProject}})
	for name, other := range map[string]policies.Document{
		"another project": Trust(testProvider, Selector{OrgID: testOrg, ProjectIDs: []string{testProject2}}),
		"a branch":        Trust(testProvider, Selector{OrgID: testOrg, ProjectIDs: []string{testProject}, Branches: []string{"main"}}),
		"any project":     Trust(testProvider, Selector{OrgID: testOrg, AnyProject: true}),
		"the user":        policies.Trust("arn:aws:iam::123456789012:user/circleci"),
	} {
		if same, _ := policies.Equivalent(other.JSON(), one); same || other.Digest() == one.Digest() {
			t.Errorf("%s: reads as the same trust", name)
		}
	}
	two := Trust(testProvider, Selector{OrgID: testOrg, ProjectIDs: []string{testProject, testProject2}})
	swapped := Trust(testProvider, Selector{OrgID: testOrg, ProjectIDs: []string{testProject2, testProject}})
	if same, _ := policies.Equivalent(swapped.JSON(), two); !same {
		t.Error("the projects' order should not matter")
	}
}
