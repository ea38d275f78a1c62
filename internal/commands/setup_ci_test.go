package commands

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/trusteval"
	"github.com/containerise/containerise/policies"
)

var githubArgs = []string{"--auth", "oidc", "--github-repo", "acme/app", "--branch", "main"}

// providerOf reads the account's OIDC provider for issuer: its client IDs
// and thumbprints, and whether it exists.
func providerOf(t *testing.T, acct *awsfake.Account, issuer string) (*iam.GetOpenIDConnectProviderOutput, error) {
	t.Helper()
	return acct.IAM().GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{
		OpenIDConnectProviderArn: aws.String(policies.OIDCProviderARN(acct.Partition(), acct.ID(), issuer))})
}

func githubJob(name, repo, ref string, want bool) trusteval.Token {
	c := citoken.GitHub{Repo: repo, Ref: ref}.Claims()
	return trusteval.Token{Name: name, Provider: policies.OIDCProviderARN("aws", "123456789012", c["iss"].(string)), Claims: c, Want: want}
}

// setup --auth oidc --github-repo acme/app --branch main: GitHub's provider
// with the audience sts.amazonaws.com and no thumbprint, a trust that the
// independent evaluator finds admits only acme/app's main branch, and a
// rerun that writes nothing.
func TestSetupTrustsAGitHubRepositorysMainBranch(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct, githubArgs...)
	if r.err != nil {
		t.Fatalf("%s\n%s", r.message, r.stderr)
	}
	if !strings.Contains(r.stdout, "oidc-provider  token.actions.githubusercontent.com  created") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	prov, err := providerOf(t, acct, "https://token.actions.githubusercontent.com")
	if err != nil || strings.Join(prov.ClientIDList, ",") != "sts.amazonaws.com" || len(prov.ThumbprintList) != 0 {
		t.Fatalf("GitHub's provider: %+v %v", prov, err)
	}
	_, encoded := written(t, acct)
	trust, err := url.QueryUnescape(encoded) // IAM returns documents URL-encoded
	if err != nil {
		t.Fatal(err)
	}
	feature := citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main"}
	feature.Event, feature.Ref = "pull_request", "refs/pull/7/merge"
	pr := feature.Claims()
	ghes := citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main", Host: "github.example.com"}.Claims()
	trusteval.Check(t, trust, []trusteval.Token{
		githubJob("acme/app, push to main", "acme/app", "refs/heads/main", true),
		githubJob("acme/app, branch main-evil", "acme/app", "refs/heads/main-evil", false),
		githubJob("acme/app, branch feature/x", "acme/app", "refs/heads/feature/x", false),
		githubJob("acme/app, tag main", "acme/app", "refs/tags/main", false),
		githubJob("acme/app-evil, main", "acme/app-evil", "refs/heads/main", false),
		githubJob("acme/ap, main", "acme/ap", "refs/heads/main", false),
		{Name: "acme/app, pull request", Provider: policies.OIDCProviderARN("aws", "123456789012", "https://token.actions.githubusercontent.com"), Claims: pr, Want: false},
		{Name: "acme/app on a GitHub Enterprise Server, main", Provider: policies.OIDCProviderARN("aws", "123456789012", ghes["iss"].(string)), Claims: ghes, Want: false},
	})

	acct.ResetCalls()
	again := runSetupCmd(t, acct, githubArgs...)
	if again.err != nil || len(acct.Mutating()) != 0 {
		t.Fatalf("rerun: %v, writes %v\n%s", again.err, acct.Mutating(), again.stdout)
	}
	if !strings.Contains(again.stdout, "oidc-provider  token.actions.githubusercontent.com  unchanged") {
		t.Errorf("rerun stdout:\n%s", again.stdout)
	}
}

// One role trusted by CircleCI, GitHub, GitLab and Buildkite jobs: one
// provider per issuer, one statement per CI, and policies shows it.
func TestSetupOneRoleForSeveralCIs(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	args := append(append([]string{}, keylessArgs...), "--github-repo", "acme/app", "--gitlab-project", "acme/app",
		"--buildkite-org", "acme", "--buildkite-pipeline", "app", "--branch", "main")
	shown := policiesSections(t, acct, args...)
	r := runSetupCmd(t, acct, args...)
	if r.err != nil {
		t.Fatalf("%s\n%s", r.message, r.stderr)
	}
	for _, issuer := range []string{"https://oidc.circleci.com/org/" + testOrg, "https://token.actions.githubusercontent.com", "https://gitlab.com", "https://agent.buildkite.com"} {
		if _, err := providerOf(t, acct, issuer); err != nil {
			t.Errorf("provider %s: %v", issuer, err)
		}
	}
	_, trust := written(t, acct)
	doc, err := policies.Parse(trust)
	if err != nil || len(doc.Statement) != 4 {
		t.Fatalf("trust %s %v", trust, err)
	}
	want, _ := policies.Parse(shown["trust"])
	if same, err := policies.Equivalent(trust, want); !same || err != nil {
		t.Errorf("setup wrote\n%s\npolicies shows\n%s", trust, shown["trust"])
	}

	// What the written document admits, judged by the evaluator: each CI's
	// job on main, and none on another branch or through another CI's
	// provider.
	decoded, err := url.QueryUnescape(trust)
	if err != nil {
		t.Fatal(err)
	}
	arn := func(issuer string) string { return policies.OIDCProviderARN("aws", "123456789012", issuer) }
	tok := func(name string, claims map[string]any, issuer string, want bool) trusteval.Token {
		return trusteval.Token{Name: name, Provider: arn(issuer), Claims: claims, Want: want}
	}
	gh, glIss, bkIss := "https://token.actions.githubusercontent.com", "https://gitlab.com", "https://agent.buildkite.com"
	circle := circletoken.Job{OrgID: testOrg, ProjectID: testProject, Branch: "main"}.Claims()
	trusteval.Check(t, decoded, []trusteval.Token{
		tok("CircleCI project, main", circle, "https://oidc.circleci.com/org/"+testOrg, true),
		tok("CircleCI project, main-evil", circletoken.Job{OrgID: testOrg, ProjectID: testProject, Branch: "main-evil"}.Claims(), "https://oidc.circleci.com/org/"+testOrg, false),
		tok("GitHub acme/app, main", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main"}.Claims(), gh, true),
		tok("GitHub acme/app, dev", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/dev"}.Claims(), gh, false),
		tok("GitLab acme/app, main", citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Claims(), glIss, true),
		tok("GitLab acme/app, tag main", citoken.GitLab{ProjectPath: "acme/app", RefType: "tag", Ref: "main", Audience: "sts.amazonaws.com"}.Claims(), glIss, false),
		tok("GitLab acme/app-evil, main", citoken.GitLab{ProjectPath: "acme/app-evil", Ref: "main", Audience: "sts.amazonaws.com"}.Claims(), glIss, false),
		tok("Buildkite acme/app, main", citoken.Buildkite{Org: "acme", Pipeline: "app", Ref: "refs/heads/main", Audience: "sts.amazonaws.com"}.Claims(), bkIss, true),
		tok("Buildkite acme/app, main-evil", citoken.Buildkite{Org: "acme", Pipeline: "app", Ref: "refs/heads/main-evil", Audience: "sts.amazonaws.com"}.Claims(), bkIss, false),
		tok("GitHub's token through GitLab's provider", citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main"}.Claims(), glIss, false),
		tok("GitLab's token through Buildkite's provider", citoken.GitLab{ProjectPath: "acme/app", Ref: "main", Audience: "sts.amazonaws.com"}.Claims(), bkIss, false),
	})
}

func TestSetupOtherCIsRefuseBadInputBeforeAnyCall(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--github-repo", "acme/app"}, "--github-repo is for keyless setups"},
		{[]string{"--auth", "oidc", "--github-repo", "acme"}, `--github-repo "acme" is not OWNER/REPO`},
		{[]string{"--auth", "oidc", "--github-environment", "prod"}, "--github-repo is required"},
		{[]string{"--auth", "oidc", "--github-repo", "acme/app", "--github-host", "https://ghe.example.com"}, "--github-host"},
		{[]string{"--auth", "oidc", "--github-repo", "acme/app", "--branch", "main*"}, "--branch"},
		{[]string{"--auth", "oidc", "--gitlab-project", "app"}, "--gitlab-project \"app\" is not a project path"},
		{[]string{"--auth", "oidc", "--gitlab-project", "g/app", "--gitlab-audience", "$AUD"}, "--gitlab-audience"},
		{[]string{"--auth", "oidc", "--bitbucket-workspace", "acme"}, "--bitbucket-workspace-uuid"},
		{[]string{"--auth", "oidc", "--bitbucket-workspace", "acme", "--bitbucket-workspace-uuid", "0c9b4e1a-7d2f-4b8e-9a61-3f5d2c8b7e40"}, "--bitbucket-repo-uuid is required"},
		{[]string{"--auth", "oidc", "--bitbucket-workspace", "acme", "--bitbucket-workspace-uuid", "0c9b4e1a-7d2f-4b8e-9a61-3f5d2c8b7e40",
			"--bitbucket-repo-uuid", "5e6f7a8b-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "--branch", "main"}, "--branch cannot narrow Bitbucket's trust"},
		{[]string{"--auth", "oidc", "--buildkite-org", "acme"}, "--buildkite-pipeline is required"},
		{[]string{"--auth", "oidc", "--circleci-project-id", testProject, "--github-repo", "acme/app"}, "need --circleci-org-id"},
		{[]string{"--auth", "oidc"}, "--github-repo, --gitlab-project"},
	} {
		acct := awsfake.New(awsfake.Config{})
		r := runSetupCmd(t, acct, c.args...)
		var u *clierror.UsageError
		if !errors.As(r.err, &u) || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error with %q", c.args, r.err, c.want)
		}
		if r.built || len(acct.Calls()) != 0 {
			t.Errorf("%v: AWS was called", c.args)
		}
	}
}

// A role that trusted GitHub, then GitLab, then the CI user again: its
// tags name each issuer setup made it trust, so teardown finds and deletes
// both providers, which no trust names any more.
func TestTeardownFindsEveryProviderTheRoleTrusted(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	for _, args := range [][]string{githubArgs, {"--auth", "oidc", "--gitlab-project", "acme/app", "--yes"}, {"--yes"}} {
		if r := runSetupCmd(t, acct, args...); r.err != nil {
			t.Fatalf("setup %v: %s\n%s", args, r.message, r.stderr)
		}
	}
	td := runTeardownCmd(t, acct, "--yes")
	if td.code != 0 {
		t.Fatalf("teardown: exit %d\n%s%s", td.code, td.stdout, td.stderr)
	}
	for _, issuer := range []string{"https://token.actions.githubusercontent.com", "https://gitlab.com"} {
		if !strings.Contains(td.stdout, "oidc-provider "+strings.TrimPrefix(issuer, "https://")+": deleted") {
			t.Errorf("teardown did not report %s deleted:\n%s", issuer, td.stdout)
		}
		if _, err := providerOf(t, acct, issuer); err == nil {
			t.Errorf("provider %s is still there", issuer)
		}
	}
}

// GitHub's provider is one per account, often made by hand or by another
// tool: setup adopts it (reported unmanaged), adds the audience only once
// confirmed, and teardown leaves it.
func TestSetupAdoptsAnExistingGitHubProvider(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	ctx := context.Background()
	if _, err := acct.IAM().CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://token.actions.githubusercontent.com"), ClientIDList: []string{"https://github.com/acme"}}); err != nil {
		t.Fatal(err)
	}
	acct.ResetCalls()
	r := runSetupCmd(t, acct, githubArgs...)
	if r.err != nil {
		t.Fatalf("%s\n%s", r.message, r.stderr)
	}
	if !strings.Contains(r.stdout, "oidc-provider  token.actions.githubusercontent.com  unmanaged") || !strings.Contains(r.stdout+r.stderr, "sts.amazonaws.com") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	for _, op := range acct.Mutating() {
		if strings.Contains(op, "OpenIDConnectProvider") || strings.Contains(op, "ClientID") {
			t.Errorf("setup changed the provider without confirmation: %s", op)
		}
	}
	if r := runSetupCmd(t, acct, append([]string{"--yes"}, githubArgs...)...); r.err != nil {
		t.Fatalf("%s\n%s", r.message, r.stderr)
	}
	prov, err := providerOf(t, acct, "https://token.actions.githubusercontent.com")
	if err != nil || strings.Join(prov.ClientIDList, ",") != "https://github.com/acme,sts.amazonaws.com" {
		t.Fatalf("provider after --yes: %+v %v", prov, err)
	}
	td := runTeardownCmd(t, acct, "--yes")
	if td.code != 0 || !strings.Contains(td.stdout, "oidc-provider token.actions.githubusercontent.com: left alone") {
		t.Errorf("teardown: exit %d\n%s%s", td.code, td.stdout, td.stderr)
	}
	if _, err := providerOf(t, acct, "https://token.actions.githubusercontent.com"); err != nil {
		t.Errorf("teardown deleted a provider containerise did not make: %v", err)
	}
}

// Another role of the account trusts GitHub's provider too: teardown of
// this role keeps the provider for it.
func TestTeardownKeepsAGitHubProviderAnotherRoleTrusts(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	if r := runSetupCmd(t, acct, githubArgs...); r.err != nil {
		t.Fatalf("%s\n%s", r.message, r.stderr)
	}
	if r := runSetupCmd(t, acct, append([]string{"--role", "deploy", "--policy", "deploy-ecr", "--repository", "other"}, githubArgs...)...); r.err != nil {
		t.Fatalf("%s\n%s", r.message, r.stderr)
	}
	td := runTeardownCmd(t, acct, "--yes")
	if td.code != 0 {
		t.Fatalf("teardown: exit %d\n%s%s", td.code, td.stdout, td.stderr)
	}
	if _, err := providerOf(t, acct, "https://token.actions.githubusercontent.com"); err != nil || !strings.Contains(td.stdout, "deploy") {
		t.Errorf("the provider role deploy trusts is gone (%v), or teardown did not say which role keeps it:\n%s", err, td.stdout)
	}
}
