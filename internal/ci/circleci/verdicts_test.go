package circleci_test

import (
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
	"github.com/containerise/containerise/internal/testsupport/trusteval"
	"github.com/containerise/containerise/policies"
)

// These tests judge the CircleCI trust policies setup writes with an IAM
// simulator the product does not share (trusteval): which job tokens get in
// and which must not.

const (
	verdictOrg      = "4a3c2b1d-0e9f-4a8b-8c7d-6e5f4a3b2c1d"
	verdictOtherOrg = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"
	verdictProject  = "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b"
	verdictOther    = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d"
)

func circleProvider(org string) string {
	return policies.OIDCProviderARN("aws", "123456789012", circleci.Issuer(org))
}

// circleToken is the token of a job of org's project, presented through
// org's provider; branch "" makes a v1 token. vcsRef, when set, replaces
// the v2 token's ref (refs/heads/<branch>) in its claims and subject.
func circleToken(name, org, project, branch, vcsRef string, want bool) trusteval.Token {
	claims := circletoken.Job{OrgID: org, ProjectID: project, Branch: branch}.Claims()
	if vcsRef != "" {
		sub := claims["sub"].(string)
		claims["sub"] = sub[:strings.Index(sub, "/vcs-ref/")] + "/vcs-ref/" + vcsRef
		claims["oidc.circleci.com/vcs-ref"] = vcsRef
	}
	return trusteval.Token{Name: name, Provider: circleProvider(org), Claims: claims, Want: want}
}

// through presents tok through another provider, as a token whose claims
// were forged would be: IAM picks the provider by the token's issuer.
func through(tok trusteval.Token, provider string) trusteval.Token {
	tok.Provider = provider
	return tok
}

func circleTrust(c circleci.Selector) string {
	return circleci.Trust(circleProvider(c.OrgID), c).JSON()
}

func TestCircleCITrustVerdictsNarrowedToMain(t *testing.T) {
	trust := circleTrust(circleci.Selector{OrgID: verdictOrg, ProjectIDs: []string{verdictProject}, Branches: []string{"main"}})
	trusteval.Check(t, trust, []trusteval.Token{
		circleToken("v2 token, the project's main", verdictOrg, verdictProject, "main", "", true),
		circleToken("v2 token, another organization's main", verdictOtherOrg, verdictProject, "main", "", false),
		through(circleToken("v2 token of another organization, through this org's provider", verdictOtherOrg, verdictProject, "main", "", false), circleProvider(verdictOrg)),
		circleToken("v2 token, another project's main", verdictOrg, verdictOther, "main", "", false),
		circleToken("v2 token, branch main-evil", verdictOrg, verdictProject, "main-evil", "", false),
		circleToken("v2 token, branch evil-main", verdictOrg, verdictProject, "evil-main", "", false),
		circleToken("v2 token, tag main (refs/tags/main)", verdictOrg, verdictProject, "main", "refs/tags/main", false),
		circleToken("v2 token, branch x/vcs-ref/refs/heads/main", verdictOrg, verdictProject, "x/vcs-ref/refs/heads/main", "", false),
		circleToken("v2 token, pull request ref refs/pull/7/head", verdictOrg, verdictProject, "main", "refs/pull/7/head", false),
		circleToken("v2 token, pull request branch pull/7", verdictOrg, verdictProject, "pull/7", "", false),
		circleToken("v1 token (no ref)", verdictOrg, verdictProject, "", "", false),
	})
}

func TestCircleCITrustVerdictsWithoutBranches(t *testing.T) {
	trust := circleTrust(circleci.Selector{OrgID: verdictOrg, ProjectIDs: []string{verdictProject}})
	trusteval.Check(t, trust, []trusteval.Token{
		circleToken("v1 token, the project", verdictOrg, verdictProject, "", "", true),
		circleToken("v2 token, the project's main", verdictOrg, verdictProject, "main", "", true),
		circleToken("v2 token, the project's feature/x", verdictOrg, verdictProject, "feature/x", "", true),
		circleToken("v1 token, another project", verdictOrg, verdictOther, "", "", false),
		circleToken("v1 token, another organization", verdictOtherOrg, verdictProject, "", "", false),
		through(circleToken("v1 token of another organization, through this org's provider", verdictOtherOrg, verdictProject, "", "", false), circleProvider(verdictOrg)),
	})
}

func TestCircleCITrustVerdictsAnyProjectTwoBranches(t *testing.T) {
	trust := circleTrust(circleci.Selector{OrgID: verdictOrg, AnyProject: true, Branches: []string{"main", "release/$1"}})
	trusteval.Check(t, trust, []trusteval.Token{
		circleToken("v2 token, a project's main", verdictOrg, verdictProject, "main", "", true),
		circleToken("v2 token, another project's main", verdictOrg, verdictOther, "main", "", true),
		circleToken("v2 token, branch release/$1 (a literal $)", verdictOrg, verdictProject, "release/$1", "", true),
		circleToken("v2 token, branch release/x1", verdictOrg, verdictProject, "release/x1", "", false),
		circleToken("v2 token, branch main-evil", verdictOrg, verdictProject, "main-evil", "", false),
		circleToken("v2 token, tag main", verdictOrg, verdictProject, "main", "refs/tags/main", false),
		circleToken("v2 token, branch x/vcs-ref/refs/heads/main", verdictOrg, verdictOther, "x/vcs-ref/refs/heads/main", "", false),
		circleToken("v2 token, another organization's main", verdictOtherOrg, verdictProject, "main", "", false),
		circleToken("v1 token", verdictOrg, verdictProject, "", "", false),
	})
}
