package push

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/github"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/internal/testsupport/citoken"
	"github.com/containerise/containerise/policies"
)

// newGitHubWorld is newWorld after `setup --auth oidc --github-repo
// acme/app --branch main`, pushing from a GitHub Actions job on ref.
func newGitHubWorld(t *testing.T, ref string) (*world, string) {
	t.Helper()
	w := newWorld(t, awsfake.Config{})
	ctx := context.Background()
	admin := w.acct.IAM()
	if _, err := admin.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(github.Issuer), ClientIDList: []string{github.Audience}}); err != nil {
		t.Fatal(err)
	}
	sel := github.Selector{Repos: []string{"acme/app"}, Branches: []string{"main"}}
	trust := policies.FederatedTrust(sel.Statement(policies.OIDCProviderARN("aws", w.acct.ID(), github.Issuer)))
	if _, err := admin.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("circleci-ecr"), PolicyDocument: aws.String(trust.JSON())}); err != nil {
		t.Fatal(err)
	}
	w.acct.ResetCalls()
	token := citoken.GitHub{Repo: "acme/app", Ref: ref, IssuedAt: w.acct.Now()}.Mint()
	w.pusher.STS = w.acct.STS()
	w.opts.AccessKeyID, w.opts.SecretAccessKey = "", ""
	w.opts.SessionName = "github-acme-app-9876543210-1"
	w.opts.WebIdentity = &WebIdentity{CI: github.Provider{}, Token: ci.Token{Raw: token, Source: "GitHub's token endpoint",
		Claims: ci.Claims{Issuer: github.Issuer, Subject: "repo:acme/app:ref:" + ref, Audience: []string{github.Audience}, Expires: w.acct.Now().Add(5 * time.Minute),
			Job: "repository acme/app, ref " + ref}}}
	return w, token
}

func TestPushWithAGitHubActionsToken(t *testing.T) {
	w, token := newGitHubWorld(t, "refs/heads/main")
	if err := w.run(); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	if ops := strings.Join(w.acct.Ops(), " "); !strings.Contains(ops, "sts.AssumeRoleWithWebIdentity") {
		t.Errorf("calls: %s", ops)
	}
	if !strings.Contains(w.err.String(), "as session github-acme-app-9876543210-1 with the GitHub Actions OIDC token from GitHub's token endpoint (repository acme/app, ref refs/heads/main)") {
		t.Errorf("stderr does not say which credential it used:\n%s", w.err)
	}
	checkTokenNotShown(t, w, token)
}

// STS's refusal of another CI's token is worded for that CI, not CircleCI.
func TestPushWithAGitHubActionsTokenRefused(t *testing.T) {
	w, token := newGitHubWorld(t, "refs/heads/dev")
	w.opts.Wait = 50 * time.Millisecond
	w.pusher.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	err := w.run()
	if err == nil {
		t.Fatal("push succeeded")
	}
	for _, want := range []string{"does not accept this job's token (repository acme/app, ref refs/heads/dev, subject repo:acme/app:ref:refs/heads/dev)", "naming this job's repository"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "CircleCI") || strings.Contains(err.Error(), "organization") {
		t.Errorf("error speaks of CircleCI: %v", err)
	}
	checkTokenNotShown(t, w, token)
}
