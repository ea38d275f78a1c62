package e2e

// Keyless: setup --auth oidc against moto, push with a token the test mints
// (moto's AssumeRoleWithWebIdentity, like the fake, does not check
// signatures), and teardown. What setup made is checked through the real
// API.

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
	"github.com/containerise/containerise/policies"
)

const (
	e2eOrg     = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	e2eProject = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

var keylessSetup = []string{"setup", "--auth", "oidc", "--circleci-org-id", e2eOrg, "--circleci-project-id", e2eProject}

func providerARN(t *testing.T, c clients) string {
	return policies.OIDCProviderARN("aws", setupAccount(t, c), circleci.Issuer(e2eOrg))
}

// checkKeylessSetUp checks through the API what a keyless setup makes: the
// tagged provider for the organisation's issuer with the organisation as
// its only client ID and no thumbprint, the role trusting exactly the
// project's jobs through it (wantSubjects), and no user.
func checkKeylessSetUp(t *testing.T, c clients, wantSubjects ...string) {
	t.Helper()
	ctx := context.Background()
	arn := providerARN(t, c)
	prov, err := c.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("the OIDC provider: %v", err)
	}
	if aws.ToString(prov.Url) != "oidc.circleci.com/org/"+e2eOrg || strings.Join(prov.ClientIDList, ",") != e2eOrg || len(prov.ThumbprintList) != 0 || !managed.IAM(prov.Tags) {
		t.Errorf("provider: url %s, client IDs %v, thumbprints %v, tags %+v", aws.ToString(prov.Url), prov.ClientIDList, prov.ThumbprintList, prov.Tags)
	}

	role, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(setupNames.role)})
	if err != nil {
		t.Fatalf("the role: %v", err)
	}
	trust, err := policies.Parse(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		t.Fatalf("the role's trust policy: %v", err)
	}
	// What the issue asks, read off the document IAM holds.
	if len(trust.Statement) != 1 {
		t.Fatalf("trust policy has %d statements, want 1: %+v", len(trust.Statement), trust)
	}
	s := trust.Statement[0]
	key := "oidc.circleci.com/org/" + e2eOrg
	if s.Effect != "Allow" || s.Principal == nil || len(s.Principal.AWS)+len(s.Principal.Service) != 0 || strings.Join(s.Principal.Federated, ",") != arn ||
		strings.Join(s.Action, ",") != "sts:AssumeRoleWithWebIdentity" {
		t.Errorf("trust statement %+v, want only %s with sts:AssumeRoleWithWebIdentity", s, arn)
	}
	if got := s.Condition["StringEquals"][key+":aud"]; strings.Join(got, ",") != e2eOrg {
		t.Errorf("aud condition %v, want %s", got, e2eOrg)
	}
	got := append([]string(nil), s.Condition["StringLike"][key+":sub"]...)
	slices.Sort(got)
	slices.Sort(wantSubjects)
	if !slices.Equal(got, wantSubjects) {
		t.Errorf("sub condition %v, want %v", got, wantSubjects)
	}
	tags := map[string]string{}
	for _, tag := range role.Role.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if tags["managed-by"] != "containerise" || tags["containerise/circleci-org-id"] != e2eOrg {
		t.Errorf("role tags %v", tags)
	}
	_, err = c.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(setupNames.user)})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("a user exists after a keyless setup (GetUser: %v)", err)
	}
}

// keylessEnv is a CircleCI job's environment after a keyless setup: the
// role and region, the job's token, and no AWS credentials at all.
func keylessEnv(roleARN, region, token string) []string {
	return []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_IAM_ROLE_ARN=" + roleARN, "AWS_REGION=" + region, "AWS_DEFAULT_REGION=" + region, "CIRCLE_OIDC_TOKEN_V2=" + token,
		"CIRCLE_PROJECT_REPONAME=app", "CIRCLE_BUILD_NUM=7"}
}

// checkTokenHidden fails when the token, or any part of it, was printed.
func checkTokenHidden(t *testing.T, what string, r result, token string) {
	t.Helper()
	for _, part := range strings.Split(token, ".") {
		for _, probe := range []string{part, part[:min(16, len(part))]} {
			if strings.Contains(r.Stdout+r.Stderr, probe) {
				t.Errorf("%s: part of the OIDC token (%.6s…) was printed:\n%s", what, probe, r)
			}
		}
	}
}

func TestKeylessSetupRerunPushTeardown(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	subject := "org/" + e2eOrg + "/project/" + e2eProject + "/user/*"

	cold := run(t, nil, append(keylessSetup, "--verbose")...)
	if cold.Code != 0 {
		t.Fatalf("keyless setup failed:\n%s", cold)
	}
	coldOps := calledOps(cold.Stderr)
	t.Logf("cold keyless setup: %d calls, %d mutating: %v", len(coldOps), len(mutatingOps(cold.Stderr)), coldOps)
	vars := textVariables(cold.Stdout)
	account := setupAccount(t, c)
	roleARN := policies.RoleARN("aws", account, setupNames.role)
	if len(vars) != 3 || vars["AWS_IAM_ROLE_ARN"] != roleARN || vars["AWS_REGION"] != c.Cfg.Region || vars["AWS_DEFAULT_REGION"] != c.Cfg.Region {
		t.Fatalf("variables %v from:\n%s", vars, cold.Stdout)
	}
	for _, op := range mutatingOps(cold.Stderr) {
		if strings.Contains(op, "User") || strings.Contains(op, "AccessKey") {
			t.Errorf("keyless setup called %s", op)
		}
	}
	if !strings.Contains(cold.Stdout, "oidc-provider") || strings.Count(cold.Stdout, "created") < 4 {
		t.Errorf("stdout does not report the 4 resources created:\n%s", cold.Stdout)
	}
	checkKeylessSetUp(t, c, subject)
	checkSetUpPolicy(t, c)

	again := run(t, nil, append(keylessSetup, "--verbose")...)
	if again.Code != 0 {
		t.Fatalf("rerun failed:\n%s", again)
	}
	if m := mutatingOps(again.Stderr); len(m) != 0 || !regexp.MustCompile(`aws: \d+ calls, 0 mutating`).MatchString(again.Stderr) {
		t.Fatalf("the rerun made mutating calls %v:\n%s", m, again.Stderr)
	}
	t.Logf("keyless rerun: %d calls: %v", len(calledOps(again.Stderr)), calledOps(again.Stderr))
	if strings.Count(again.Stdout, "unchanged") != 4 {
		t.Errorf("rerun output:\n%s", again.Stdout)
	}

	// JSON and dotenv: the same variables, no key.
	js := run(t, nil, append(keylessSetup, "--output", "json")...)
	var doc struct {
		Auth      string `json:"auth"`
		Resources []struct {
			Kind, Name, ARN, Status string
		} `json:"resources"`
		Variables map[string]string `json:"variables"`
	}
	if err := json.Unmarshal([]byte(js.Stdout), &doc); err != nil || js.Code != 0 {
		t.Fatalf("json: %v\n%s", err, js)
	}
	var kinds []string
	for _, res := range doc.Resources {
		kinds = append(kinds, res.Kind)
	}
	if doc.Auth != "oidc" || strings.Join(kinds, ",") != "repository,policy,oidc-provider,role" || len(doc.Variables) != 3 || doc.Resources[2].ARN != providerARN(t, c) {
		t.Errorf("json %+v", doc)
	}
	env := run(t, nil, append(keylessSetup, "--output", "dotenv")...)
	if d := dotenv(env.Stdout); env.Code != 0 || len(d) != 3 || d["AWS_IAM_ROLE_ARN"] != roleARN {
		t.Errorf("dotenv:\n%s", env)
	}

	// push in a CircleCI job: the token, no keys.
	stamp := nonce()
	app := tinyApp(t, stamp)
	tag := "keyless-" + stamp
	token := circletoken.Job{OrgID: e2eOrg, ProjectID: e2eProject, Branch: "main"}.Mint()
	r := runWith(t, runOpts{env: keylessEnv(roleARN, c.Cfg.Region, token), dir: app}, "push", "--tag", tag, "--verbose")
	if r.Code != 0 {
		t.Fatalf("keyless push failed:\n%s", r)
	}
	digests := pushedDigests(t, r, tag)
	if got := manifestDigest(t, pushRepo, tag); got != digests[tag] {
		t.Errorf("the registry has %s:%s at %q; push printed %q", pushRepo, tag, got, digests[tag])
	}
	ops := strings.Join(calledOps(r.Stderr), " ")
	if !strings.Contains(ops, "sts.AssumeRoleWithWebIdentity") || strings.Contains(ops, "sts.AssumeRole ") {
		t.Errorf("push's calls: %s", ops)
	}
	if !strings.Contains(r.Stderr, "as session circleci-app-7 with the OIDC token in CIRCLE_OIDC_TOKEN_V2") {
		t.Errorf("stderr does not say how push assumed the role:\n%s", r.Stderr)
	}
	checkTokenHidden(t, "keyless push --verbose", r, token)

	// An expired token is refused before STS, with when it expired.
	expired := circletoken.Job{OrgID: e2eOrg, ProjectID: e2eProject, Branch: "main", IssuedAt: time.Now().Add(-90 * time.Minute)}.Mint()
	r = runWith(t, runOpts{env: keylessEnv(roleARN, c.Cfg.Region, expired), dir: app}, "push", "--tag", tag, "--verbose")
	if r.Code != 2 || !strings.Contains(r.Stderr, "CIRCLE_OIDC_TOKEN_V2 expired at") || len(calledOps(r.Stderr)) != 0 || r.Stdout != "" {
		t.Errorf("want exit 2 saying the token expired, before any call:\n%s", r)
	}
	checkTokenHidden(t, "push with an expired token", r, expired)
	// A token of another organization, when push knows the one the role trusts.
	other := circletoken.Job{OrgID: "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a", ProjectID: e2eProject}.Mint()
	r = runWith(t, runOpts{env: keylessEnv(roleARN, c.Cfg.Region, other), dir: app}, "push", "--tag", tag, "--circleci-org-id", e2eOrg, "--verbose")
	if r.Code != 2 || !strings.Contains(r.Stderr, "the role trusts organization "+e2eOrg) || len(calledOps(r.Stderr)) != 0 {
		t.Errorf("want exit 2 naming both organizations, before any call:\n%s", r)
	}

	td := run(t, nil, "teardown", "--yes", "--verbose")
	if td.Code != 0 {
		t.Fatalf("teardown failed:\n%s", td)
	}
	for _, want := range []string{"oidc-provider oidc.circleci.com/org/" + e2eOrg + ": deleted\n", "role containerise: deleted\n", "user circleci: already gone\n"} {
		if !strings.Contains(td.Stdout, want) {
			t.Errorf("teardown stdout lacks %q:\n%s", want, td.Stdout)
		}
	}
	if got := lookup(t, c); got != (present{}) {
		t.Errorf("after teardown, still present: %+v", got)
	}
	list, err := c.IAM.ListOpenIDConnectProviders(context.Background(), &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(list.OpenIDConnectProviderList) != 0 {
		t.Errorf("OIDC providers left: %+v (%v)", list, err)
	}
	rerun := run(t, nil, "teardown", "--yes", "--verbose")
	if rerun.Code != 0 || len(mutatingOps(rerun.Stderr)) != 0 || !strings.Contains(rerun.Stdout, "Nothing to delete") {
		t.Errorf("teardown rerun:\n%s", rerun)
	}
}

// checkSetUpPolicy checks the policy is attached to the role, as in keys
// mode.
func checkSetUpPolicy(t *testing.T, c clients) {
	t.Helper()
	policyARN := policies.PolicyARN("aws", setupAccount(t, c), setupNames.policy)
	attached, err := c.IAM.ListAttachedRolePolicies(context.Background(), &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(setupNames.role)})
	if err != nil || len(attached.AttachedPolicies) != 1 || aws.ToString(attached.AttachedPolicies[0].PolicyArn) != policyARN {
		t.Errorf("attached to the role: %+v (%v)", attached, err)
	}
}

// keys, then keyless (the user goes only with --yes), then keys again (the
// provider stays), then teardown removes all of it.
func TestKeylessSwitchBothWays(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	keys := run(t, nil, "setup", "--output", "dotenv")
	if keys.Code != 0 {
		t.Fatalf("setup with keys:\n%s", keys)
	}

	branches := append(keylessSetup, "--branch", "main", "--branch", "release/v1")
	unconfirmed := run(t, nil, append(branches, "--verbose")...)
	if unconfirmed.Code != 0 {
		t.Fatalf("switch without --yes:\n%s", unconfirmed)
	}
	if m := strings.Join(mutatingOps(unconfirmed.Stderr), " "); strings.Contains(m, "iam.DeleteUser") || strings.Contains(m, "iam.DeleteAccessKey") {
		t.Errorf("the user was deleted without confirmation: %s", m)
	}
	if !strings.Contains(unconfirmed.Stdout, "--yes") || !regexp.MustCompile(`(?m)^  user +circleci +kept`).MatchString(unconfirmed.Stdout) {
		t.Errorf("the output does not show the user kept and how to finish:\n%s", unconfirmed.Stdout)
	}
	base := "org/" + e2eOrg + "/project/" + e2eProject + "/user/*/vcs-origin/*/vcs-ref/refs/heads/"
	confirmed := run(t, nil, append(branches, "--yes", "--verbose")...)
	if confirmed.Code != 0 {
		t.Fatalf("switch with --yes:\n%s", confirmed)
	}
	if !regexp.MustCompile(`(?m)^  user +circleci +deleted`).MatchString(confirmed.Stdout) {
		t.Errorf("the output does not show the user deleted:\n%s", confirmed.Stdout)
	}
	checkKeylessSetUp(t, c, base+"main", base+"release/v1")
	if again := run(t, nil, append(branches, "--verbose")...); again.Code != 0 || len(mutatingOps(again.Stderr)) != 0 {
		t.Errorf("rerun after the switch:\n%s", again)
	}

	back := run(t, nil, "setup", "--output", "dotenv", "--verbose")
	if back.Code != 0 {
		t.Fatalf("back to keys:\n%s", back)
	}
	if m := strings.Join(mutatingOps(back.Stderr), " "); strings.Contains(m, "OpenIDConnect") {
		t.Errorf("keys mode touched the provider: %s", m)
	}
	checkSetUp(t, c, dotenv(back.Stdout)["AWS_IAM_USER_ACCESS_KEY_ID"])
	if _, err := c.IAM.GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN(t, c))}); err != nil {
		t.Errorf("the provider went with the switch back: %v", err)
	}

	td := run(t, nil, "teardown", "--yes")
	if td.Code != 0 || !strings.Contains(td.Stdout, "oidc-provider oidc.circleci.com/org/"+e2eOrg+": deleted") {
		t.Fatalf("teardown:\n%s", td)
	}
	if got := lookup(t, c); got != (present{}) {
		t.Errorf("after teardown, still present: %+v", got)
	}
}

// Another role trusting the provider keeps it through teardown, which
// says which role.
func TestKeylessTeardownKeepsASharedProvider(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	if r := run(t, nil, keylessSetup...); r.Code != 0 {
		t.Fatalf("setup:\n%s", r)
	}
	trust := circleci.Trust(providerARN(t, c), circleci.Selector{OrgID: e2eOrg, AnyProject: true})
	if _, err := c.IAM.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("other-app"), AssumeRolePolicyDocument: aws.String(trust.JSON())}); err != nil {
		t.Fatal(err)
	}
	td := run(t, nil, "teardown", "--yes")
	if td.Code != 0 || !strings.Contains(td.Stdout, "role other-app's trust policy names it: kept for them") {
		t.Fatalf("teardown:\n%s", td)
	}
	if _, err := c.IAM.GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN(t, c))}); err != nil {
		t.Errorf("the shared provider was deleted: %v", err)
	}
}

func TestKeylessBadInputBeforeAnyCall(t *testing.T) {
	resetAWS(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"setup", "--auth", "oidc", "--circleci-project-id", e2eProject}, "--circleci-org-id"},
		{[]string{"setup", "--auth", "oidc", "--circleci-org-id", "acme", "--circleci-project-id", e2eProject}, "--circleci-org-id"},
		{[]string{"setup", "--auth", "oidc", "--circleci-org-id", e2eOrg, "--circleci-project-id", "app"}, "--circleci-project-id"},
		{[]string{"setup", "--auth", "oidc", "--circleci-org-id", e2eOrg}, "--circleci-project-id"},
		{append(append([]string{}, keylessSetup...), "--branch", "bad..ref"), "--branch"},
		{append(append([]string{}, keylessSetup...), "--branch", "-x"), "--branch"},
	} {
		r := run(t, nil, append(c.args, "--verbose")...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) || len(calledOps(r.Stderr)) != 0 || r.Stdout != "" {
			t.Errorf("%v: want exit 2 naming %s before any call:\n%s", c.args, c.want, r)
		}
	}
}
