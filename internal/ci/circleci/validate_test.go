package circleci_test

import (
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci"
)

const (
	orgID     = "5f9b0e3c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
	projectID = "0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
)

func TestValidateProjectSlug(t *testing.T) {
	good := []string{"gh/acme/app", "github/acme/app", "bb/acme/app", "bitbucket/a-b/c.d_e", "circleci/" + orgID + "/" + projectID}
	bad := []string{"", "acme/app", "gh/acme", "gh/acme/app/x", "gl/acme/app", "gh//app", "gh/acme/..", "gh/acme/a b",
		"gh/acme/app?x=1", "gh/acme/app#f", "gh/acme/%2e%2e", "circleci/acme/app", "circleci/" + orgID + "/app"}
	for _, s := range good {
		if err := circleci.ValidateProjectSlug(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range bad {
		if err := circleci.ValidateProjectSlug(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestValidateOrgSlugIDAndNames(t *testing.T) {
	for _, s := range []string{"gh/acme", "bitbucket/acme", "circleci/" + orgID} {
		if err := circleci.ValidateOrgSlug(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "acme", "gh/acme/app", "circleci/acme", "gh/.."} {
		if err := circleci.ValidateOrgSlug(s); err == nil {
			t.Errorf("org slug %q accepted", s)
		}
	}
	if err := circleci.ValidateID("context ID", orgID); err != nil {
		t.Error(err)
	}
	for _, s := range []string{"", "aws", orgID + "0", "../" + orgID} {
		if err := circleci.ValidateID("context ID", s); err == nil {
			t.Errorf("ID %q accepted", s)
		}
	}
	for _, s := range []string{"AWS_REGION", "_X", "a1"} {
		if err := circleci.ValidateEnvVarName(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "1A", "AWS-REGION", "A B", "A/B"} {
		if err := circleci.ValidateEnvVarName(s); err == nil {
			t.Errorf("variable name %q accepted", s)
		}
	}
	for _, s := range []string{"aws", "AWS ECR (prod)"} {
		if err := circleci.ValidateContextName(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "a\nb"} {
		if err := circleci.ValidateContextName(s); err == nil {
			t.Errorf("context name %q accepted", s)
		}
	}
}
