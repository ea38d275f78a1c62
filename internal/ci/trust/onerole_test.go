package trust_test

import (
	"testing"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/bitbucket"
	"github.com/containerise/containerise/internal/ci/buildkite"
	"github.com/containerise/containerise/internal/ci/github"
	"github.com/containerise/containerise/internal/ci/gitlab"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/trusteval"
	"github.com/containerise/containerise/policies"
)

func providerARN(issuer string) string {
	return policies.OIDCProviderARN("aws", "123456789012", issuer)
}

const (
	wsUUID   = "{1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b}"
	repoUUID = "{437da666-7aab-4b60-a947-ec542536ca0d}"
)

// Four CIs trust one role, one statement each: every CI's own job gets in,
// and no job gets in through another CI's provider, even with a subject
// shaped like that CI's.
func TestFourCIsTrustOneRole(t *testing.T) {
	selectors := []ci.Selector{
		github.Selector{Repos: []string{"acme/app"}, Branches: []string{"main"}},
		gitlab.Selector{Projects: []string{"acme/app"}, Branches: []string{"main"}},
		bitbucket.Selector{Workspace: "acme", WorkspaceUUID: wsUUID, RepoUUIDs: []string{repoUUID}},
		buildkite.Selector{Org: "acme", Pipelines: []string{"app"}, Branches: []string{"main"}},
	}
	doc := policies.Document{Version: policies.Version}
	for _, s := range selectors {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		doc.Statement = append(doc.Statement, s.Statement(providerARN(s.Issuer())))
	}
	gh := citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main"}.Claims()
	gl := citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Claims()
	bb := citoken.Bitbucket{Workspace: "acme", WorkspaceUUID: wsUUID, RepoUUID: repoUUID, Branch: "main"}.Claims()
	bk := citoken.Buildkite{Org: "acme", Pipeline: "app", Ref: "refs/heads/main", Audience: "sts.amazonaws.com"}.Claims()
	through := func(name string, claims map[string]any, issuer string, want bool) trusteval.Token {
		return trusteval.Token{Name: name, Provider: providerARN(issuer), Claims: claims, Want: want}
	}
	ghIss, glIss := github.Issuer, gitlab.IssuerFor("")
	bbIss, bkIss := bitbucket.IssuerFor("acme"), buildkite.Issuer
	// A GitLab token whose subject imitates GitHub's, presented through
	// GitHub's provider: IAM would not get that far (the issuer picks the
	// provider), and the trust must not rely on it.
	forged := citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Claims()
	forged["sub"] = "repo:acme/app:ref:refs/heads/main"
	trusteval.Check(t, doc.JSON(), []trusteval.Token{
		through("GitHub acme/app main", gh, ghIss, true),
		through("GitLab acme/app main", gl, glIss, true),
		through("Bitbucket acme repository step", bb, bbIss, true),
		through("Buildkite acme/app main", bk, bkIss, true),
		through("GitHub's token through GitLab's provider", gh, glIss, false),
		through("GitLab's token through GitHub's provider", gl, ghIss, false),
		through("Buildkite's token through Bitbucket's provider", bk, bbIss, false),
		through("Bitbucket's token through Buildkite's provider", bb, bkIss, false),
		through("GitLab token with a GitHub-shaped subject, through GitLab's provider", forged, glIss, false),
	})
}
