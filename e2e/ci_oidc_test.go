package e2e

// Keyless from other CIs than CircleCI: setup trusts a GitHub repository
// or a GitLab project, push runs in a job shaped like that CI's (GitHub's
// token endpoint a local HTTPS server; GitLab's token a variable), and
// teardown removes the provider setup made. moto does not check the
// token's signature or the trust's conditions: what the trust admits is
// judged by the evaluator in the unit tests (setup_ci_test.go).

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/internal/testsupport/ghtokenserver"
	"github.com/containerise/containerise/policies"
)

// ciJobEnv is a job's environment with no AWS credentials, the role and
// region, and the CI's own variables.
func ciJobEnv(roleARN, region string, vars map[string]string) []string {
	env := []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_IAM_ROLE_ARN=" + roleARN, "AWS_REGION=" + region, "AWS_DEFAULT_REGION=" + region}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// checkProvider checks the provider setup made for issuer: tagged, the
// audience its only client ID, no thumbprint; and the role's one trust
// statement, through it, requiring the audience and the subject.
func checkProvider(t *testing.T, c clients, issuer, audience, subject string) {
	t.Helper()
	ctx := context.Background()
	arn := policies.OIDCProviderARN("aws", setupAccount(t, c), issuer)
	prov, err := c.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("the OIDC provider of %s: %v", issuer, err)
	}
	if strings.Join(prov.ClientIDList, ",") != audience || len(prov.ThumbprintList) != 0 || !managed.IAM(prov.Tags) {
		t.Errorf("provider %s: client IDs %v, thumbprints %v, tags %+v", issuer, prov.ClientIDList, prov.ThumbprintList, prov.Tags)
	}
	role, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(setupNames.role)})
	if err != nil {
		t.Fatal(err)
	}
	trust, err := policies.Parse(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil || len(trust.Statement) != 1 {
		t.Fatalf("trust %+v %v", trust, err)
	}
	s, key := trust.Statement[0], strings.TrimPrefix(issuer, "https://")
	if strings.Join(s.Principal.Federated, ",") != arn || strings.Join(s.Condition["StringEquals"][key+":aud"], ",") != audience ||
		strings.Join(s.Condition["StringLike"][key+":sub"], ",") != subject {
		t.Errorf("trust statement %+v, want %s for aud %s and sub %s", s, arn, audience, subject)
	}
}

// pushAndCheck pushes a fresh image from a job with env and checks that
// push assumed the role with the job's token, as the session named.
func pushAndCheck(t *testing.T, env, args []string, session string, secrets ...string) {
	t.Helper()
	stamp := nonce()
	tag := "ci-" + stamp
	start := time.Now()
	r := runWith(t, runOpts{env: env, dir: tinyApp(t, stamp)}, append([]string{"push", "--tag", tag, "--verbose"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("push:\n%s", r)
	}
	t.Logf("push from the job: %s", time.Since(start).Round(time.Millisecond))
	digests := pushedDigests(t, r, tag)
	if got := manifestDigest(t, pushRepo, tag); got != digests[tag] {
		t.Errorf("the registry has %s:%s at %q; push printed %q", pushRepo, tag, got, digests[tag])
	}
	ops := strings.Join(calledOps(r.Stderr), " ")
	if !strings.Contains(ops, "sts.AssumeRoleWithWebIdentity") || strings.Contains(ops, "sts.AssumeRole ") {
		t.Errorf("push's calls: %s", ops)
	}
	if !strings.Contains(r.Stderr, "as session "+session+" with the ") {
		t.Errorf("stderr does not name the session %s:\n%s", session, r.Stderr)
	}
	for _, secret := range secrets {
		checkTokenHidden(t, "push --verbose", r, secret)
	}
}

// teardownRemoves runs teardown and checks it deleted the provider.
func teardownRemoves(t *testing.T, c clients, issuer string) {
	t.Helper()
	td := run(t, nil, "teardown", "--yes", "--verbose")
	if td.Code != 0 || !strings.Contains(td.Stdout, "oidc-provider "+strings.TrimPrefix(issuer, "https://")+": deleted\n") {
		t.Fatalf("teardown:\n%s", td)
	}
	list, err := c.IAM.ListOpenIDConnectProviders(context.Background(), &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(list.OpenIDConnectProviderList) != 0 {
		t.Errorf("providers left after teardown: %+v %v", list, err)
	}
}

var githubSetup = []string{"setup", "--auth", "oidc", "--github-repo", "acme/app", "--branch", "main"}

// setup trusts a GitHub repository's main branch; a rerun writes nothing;
// a GitHub Actions-shaped job (its token endpoint a local HTTPS server)
// pushes; teardown removes the provider.
func TestGitHubSetupRerunPushTeardown(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	start := time.Now()
	cold := run(t, nil, append(githubSetup, "--verbose")...)
	if cold.Code != 0 {
		t.Fatalf("setup:\n%s", cold)
	}
	t.Logf("setup: %s, %d calls", time.Since(start).Round(time.Millisecond), len(calledOps(cold.Stderr)))
	checkProvider(t, c, "https://token.actions.githubusercontent.com", "sts.amazonaws.com", "repo:acme/app:ref:refs/heads/main")
	again := run(t, nil, append(githubSetup, "--verbose")...)
	if again.Code != 0 || len(mutatingOps(again.Stderr)) != 0 || !regexp.MustCompile(`aws: \d+ calls, 0 mutating`).MatchString(again.Stderr) {
		t.Fatalf("rerun:\n%s", again)
	}
	policiesShown := run(t, nil, "policies", "--account", setupAccount(t, c), "--document", "trust", "--auth", "oidc", "--github-repo", "acme/app", "--branch", "main")
	role, err := c.IAM.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(setupNames.role)})
	if err != nil {
		t.Fatal(err)
	}
	if want, err := policies.Parse(policiesShown.Stdout); err != nil {
		t.Errorf("policies: %v\n%s", err, policiesShown)
	} else if same, err := policies.Equivalent(aws.ToString(role.Role.AssumeRolePolicyDocument), want); !same || err != nil {
		t.Errorf("policies shows\n%s\nsetup wrote\n%s", policiesShown.Stdout, aws.ToString(role.Role.AssumeRolePolicyDocument))
	}

	srv := ghtokenserver.Start(t, citoken.GitHub{Repo: "acme/app", Ref: "refs/heads/main"})
	vars := srv.Env()
	vars["SSL_CERT_FILE"] = srv.CertFile
	roleARN := policies.RoleARN("aws", setupAccount(t, c), setupNames.role)
	pushAndCheck(t, ciJobEnv(roleARN, c.Cfg.Region, vars), nil, "github-acme-app-9876543210-1", srv.RequestToken)
	if got := srv.Audiences(); len(got) != 1 || got[0] != "sts.amazonaws.com" || srv.Refusals() != 0 {
		t.Errorf("token requests %v, refused %d", got, srv.Refusals())
	}

	// Without id-token: write, GitHub gives the job no way to ask: push
	// says what the workflow lacks, before any call.
	delete(vars, "ACTIONS_ID_TOKEN_REQUEST_URL")
	delete(vars, "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	r := runWith(t, runOpts{env: ciJobEnv(roleARN, c.Cfg.Region, vars), dir: t.TempDir()}, "push", "--verbose")
	if r.Code != 2 || !strings.Contains(r.Stderr, "permissions: id-token: write") || len(calledOps(r.Stderr)) != 0 {
		t.Errorf("push without id-token: write:\n%s", r)
	}

	teardownRemoves(t, c, "https://token.actions.githubusercontent.com")
}

// The same journey from a GitLab job, whose token is the variable its
// id_tokens names; with a project in a subgroup and the audience setup
// was given.
func TestGitLabSetupPushTeardown(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	setup := []string{"setup", "--auth", "oidc", "--gitlab-project", "acme/tools/app", "--gitlab-audience", "https://gitlab.com", "--branch", "main", "--verbose"}
	if r := run(t, nil, setup...); r.Code != 0 {
		t.Fatalf("setup:\n%s", r)
	}
	checkProvider(t, c, "https://gitlab.com", "https://gitlab.com", "project_path:acme/tools/app:ref_type:branch:ref:main")
	if r := run(t, nil, setup...); r.Code != 0 || len(mutatingOps(r.Stderr)) != 0 {
		t.Fatalf("rerun:\n%s", r)
	}

	token := citoken.GitLab{ProjectPath: "acme/tools/app", Ref: "main", Audience: "https://gitlab.com"}.Mint()
	vars := map[string]string{"GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.com", "CI_PROJECT_PATH": "acme/tools/app", "CI_JOB_ID": "7654321",
		"GITLAB_OIDC_TOKEN": token}
	roleARN := policies.RoleARN("aws", setupAccount(t, c), setupNames.role)
	env := ciJobEnv(roleARN, c.Cfg.Region, vars)
	// The token is for the audience setup was given, not the default:
	// push checks it against --audience before STS.
	r := runWith(t, runOpts{env: env, dir: t.TempDir()}, "push", "--verbose")
	if r.Code != 2 || !strings.Contains(r.Stderr, `not "sts.amazonaws.com"`) || len(calledOps(r.Stderr)) != 0 {
		t.Errorf("push without --audience:\n%s", r)
	}
	checkTokenHidden(t, "push refused before STS", r, token)
	pushAndCheck(t, env, []string{"--audience", "https://gitlab.com"}, "gitlab-acme-tools-app-7654321", token)

	teardownRemoves(t, c, "https://gitlab.com")
}

// Bitbucket Pipelines (the step's token a variable) and Buildkite (the
// token from the agent, played by a script on PATH that answers only the
// request push must make): setup, push from a job shaped like the CI's,
// teardown.
func TestBitbucketAndBuildkiteSetupPushTeardown(t *testing.T) {
	const (
		workspaceUUID = "{0c9b4e1a-7d2f-4b8e-9a61-3f5d2c8b7e40}"
		repoUUID      = "{5e6f7a8b-1c2d-4e3f-8a9b-0c1d2e3f4a5b}"
	)
	bitbucketToken := citoken.Bitbucket{Workspace: "acme", WorkspaceUUID: workspaceUUID, RepoUUID: repoUUID, Branch: "main"}.Mint()
	buildkiteToken := citoken.Buildkite{Org: "acme", Pipeline: "app", Ref: "refs/heads/main", Audience: "sts.amazonaws.com"}.Mint()
	agentDir := t.TempDir()
	agent := "#!/bin/sh\n" +
		`[ "$*" = "oidc request-token --audience sts.amazonaws.com" ] || { echo "unexpected request: $*" >&2; exit 1; }` + "\n" +
		`cat "$(dirname "$0")/token"` + "\n"
	if err := os.WriteFile(filepath.Join(agentDir, "buildkite-agent"), []byte(agent), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(agentDir, "token"), []byte(buildkiteToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, issuer, audience string
		setup                  []string
		job                    map[string]string
		session, token         string
	}{
		{
			name: "bitbucket", issuer: "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc",
			audience: "ari:cloud:bitbucket::workspace/0c9b4e1a-7d2f-4b8e-9a61-3f5d2c8b7e40",
			setup:    []string{"--bitbucket-workspace", "acme", "--bitbucket-workspace-uuid", workspaceUUID, "--bitbucket-repo-uuid", repoUUID},
			job: map[string]string{"BITBUCKET_BUILD_NUMBER": "42", "BITBUCKET_WORKSPACE": "acme", "BITBUCKET_REPO_FULL_NAME": "acme/app",
				"BITBUCKET_STEP_OIDC_TOKEN": bitbucketToken},
			session: "bitbucket-acme-app-42", token: bitbucketToken,
		},
		{
			name: "buildkite", issuer: "https://agent.buildkite.com", audience: "sts.amazonaws.com",
			setup: []string{"--buildkite-org", "acme", "--buildkite-pipeline", "app", "--branch", "main"},
			job: map[string]string{"BUILDKITE": "true", "BUILDKITE_ORGANIZATION_SLUG": "acme", "BUILDKITE_PIPELINE_SLUG": "app", "BUILDKITE_BUILD_NUMBER": "42",
				"PATH": agentDir + string(os.PathListSeparator) + os.Getenv("PATH")},
			session: "buildkite-acme-app-42", token: buildkiteToken,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetAWS(t)
			c := awsClients(t)
			setup := append([]string{"setup", "--auth", "oidc", "--verbose"}, tc.setup...)
			if r := run(t, nil, setup...); r.Code != 0 {
				t.Fatalf("setup:\n%s", r)
			}
			if r := run(t, nil, setup...); r.Code != 0 || len(mutatingOps(r.Stderr)) != 0 {
				t.Fatalf("rerun:\n%s", r)
			}
			arn := policies.OIDCProviderARN("aws", setupAccount(t, c), tc.issuer)
			prov, err := c.IAM.GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
			if err != nil || strings.Join(prov.ClientIDList, ",") != tc.audience || len(prov.ThumbprintList) != 0 {
				t.Fatalf("provider %s: %+v %v", tc.issuer, prov, err)
			}
			roleARN := policies.RoleARN("aws", setupAccount(t, c), setupNames.role)
			pushAndCheck(t, ciJobEnv(roleARN, c.Cfg.Region, tc.job), nil, tc.session, tc.token)
			teardownRemoves(t, c, tc.issuer)
		})
	}
}
