package push

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
	"github.com/containerise/containerise/policies"
)

// newKeylessWorld is newWorld after a keyless setup: the organisation's
// OIDC provider, and the role trusting the project's jobs on main through
// it. The push has the job's token and no keys.

const (
	testOrg     = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	testProject = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

func newKeylessWorld(t *testing.T, cfg awsfake.Config, branch string) (*world, string) {
	t.Helper()
	w := newWorld(t, cfg)
	ctx := context.Background()
	admin := w.acct.IAM()
	issuer := circleci.Issuer(testOrg)
	if _, err := admin.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuer), ClientIDList: []string{testOrg}}); err != nil {
		t.Fatal(err)
	}
	trust := circleci.Trust(policies.OIDCProviderARN("aws", w.acct.ID(), issuer),
		circleci.Selector{OrgID: testOrg, ProjectIDs: []string{testProject}, Branches: []string{"main"}})
	if _, err := admin.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("circleci-ecr"), PolicyDocument: aws.String(trust.JSON())}); err != nil {
		t.Fatal(err)
	}
	w.acct.ResetCalls()
	token := circletoken.Job{OrgID: testOrg, ProjectID: testProject, Branch: branch, IssuedAt: w.acct.Now()}.Mint()
	env := map[string]string{circleci.EnvOIDCTokenV2: token}
	tok, err := circleci.Provider{}.Token(ctx, ci.Job{Getenv: func(k string) string { return env[k] }, Now: w.acct.Now(), Trusted: testOrg})
	if err != nil {
		t.Fatal(err)
	}
	w.pusher.STS = w.acct.STS() // the call is unsigned: whose client does not matter
	w.opts.AccessKeyID, w.opts.SecretAccessKey, w.opts.WebIdentity = "", "", &WebIdentity{Token: *tok, CI: circleci.Provider{}}
	return w, token
}

func checkTokenNotShown(t *testing.T, w *world, token string) {
	t.Helper()
	for _, part := range strings.Split(token, ".") {
		if strings.Contains(w.out.String()+w.err.String(), part) {
			t.Fatalf("part of the token appears in the output:\n%s%s", w.out, w.err)
		}
	}
}

func TestPushKeyless(t *testing.T) {
	w, token := newKeylessWorld(t, awsfake.Config{}, "main")
	if err := w.run(); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	if n := strings.Count(w.out.String(), "\n"); n != 2 {
		t.Errorf("stdout:\n%s", w.out)
	}
	ops := strings.Join(w.acct.Ops(), " ")
	if !strings.Contains(ops, "sts.AssumeRoleWithWebIdentity") || strings.Contains(ops, "sts.AssumeRole ") {
		t.Errorf("calls: %s", ops)
	}
	if !strings.Contains(w.err.String(), "with the OIDC token in CIRCLE_OIDC_TOKEN_V2 (organization "+testOrg) {
		t.Errorf("stderr does not say which credential it used:\n%s", w.err)
	}
	checkTokenNotShown(t, w, token) // Debugf is on: the --verbose case
	w.checkNoSecrets()
	w.checkHomeEmpty()
}

func TestPushKeylessWaitsForTheProvider(t *testing.T) {
	w, token := newKeylessWorld(t, awsfake.Config{ProviderDelay: 10 * time.Second}, "main")
	if err := w.run(); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	if !strings.Contains(w.err.String(), "waiting for IAM to know the new OIDC provider (InvalidIdentityToken)") {
		t.Errorf("stderr does not say what it waits for:\n%s", w.err)
	}
	checkTokenNotShown(t, w, token)
}

func TestPushKeylessRefusals(t *testing.T) {
	for _, c := range []struct {
		name, branch string
		cfg          awsfake.Config
		change       func(*world)
		want         []string
	}{
		{name: "another branch", branch: "dev", want: []string{"does not accept this job's token (project " + testProject + ", ref refs/heads/dev)", "rerun setup keyless"}},
		{name: "no provider", branch: "main", cfg: awsfake.Config{ProviderDelay: time.Hour},
			want: []string{"no IAM OIDC provider for the token's issuer, https://oidc.circleci.com/org/" + testOrg}},
		{name: "expired for STS", branch: "main", change: func(w *world) { w.acct.Advance(2 * time.Hour) }, want: []string{"the token has expired"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, token := newKeylessWorld(t, c.cfg, c.branch)
			if c.change != nil {
				c.change(w)
			}
			w.opts.Wait = 50 * time.Millisecond
			w.pusher.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
			err := w.run()
			if err == nil {
				t.Fatal("push succeeded")
			}
			t.Logf("error: %v", err)
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), token[:30]) {
				t.Error("the error shows the token")
			}
			checkTokenNotShown(t, w, token)
		})
	}
}

// A token refused by a role that trusts only the CI user (a keys setup) is
// the trust saying no, not IAM catching up: push stops after the few
// retries that cover propagation instead of spending all of --wait, and
// says how to push with the keys.
func TestPushKeylessRefusedByAKeysRoleFailsFast(t *testing.T) {
	w, token := newKeylessWorld(t, awsfake.Config{}, "main")
	userTrust := policies.Trust(policies.UserARN("aws", w.acct.ID(), "circleci")).JSON()
	if _, err := w.acct.IAM().UpdateAssumeRolePolicy(context.Background(), &iam.UpdateAssumeRolePolicyInput{
		RoleName: aws.String("circleci-ecr"), PolicyDocument: aws.String(userTrust)}); err != nil {
		t.Fatal(err)
	}
	w.acct.ResetCalls()
	w.opts.Wait = time.Hour
	w.pusher.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	err := w.run()
	if err == nil {
		t.Fatal("push succeeded with a token the role does not trust")
	}
	if !strings.Contains(err.Error(), "--auth keys") || !strings.Contains(err.Error(), "only the CI user's keys") {
		t.Errorf("the error does not point to the keys: %v", err)
	}
	if n := strings.Count(strings.Join(w.acct.Ops(), " "), "sts.AssumeRoleWithWebIdentity"); n != trustRetries+1 {
		t.Errorf("%d AssumeRoleWithWebIdentity calls, want %d: the refusal was retried as propagation", n, trustRetries+1)
	}
	checkTokenNotShown(t, w, token)
}
