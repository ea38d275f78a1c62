package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/managed"
)

// providerExists asks IAM whether the organisation's OIDC provider is there.
func providerExists(t *testing.T, c clients) bool {
	t.Helper()
	list, err := c.IAM.ListOpenIDConnectProviders(context.Background(), &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		t.Fatalf("listing the OIDC providers: %v", err)
	}
	for _, p := range list.OpenIDConnectProviderList {
		if aws.ToString(p.Arn) == providerARN(t, c) {
			return true
		}
	}
	return false
}

// Another team's role, whose trust policy is written in forms setup never
// writes (one statement object, a boolean condition), keeps the provider
// through teardown; once that role is gone, a second teardown finds the
// provider (its role is gone by then) and removes it.
func TestTeardownSharedProviderGoesWithTheLastRole(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	if r := run(t, nil, keylessSetup...); r.Code != 0 {
		t.Fatalf("setup:\n%s", r)
	}
	host := strings.TrimPrefix(circleci.Issuer(e2eOrg), "https://")
	trust := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + providerARN(t, c) + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + host + `:aud":"` + e2eOrg + `"},"Bool":{"aws:SecureTransport":true}}}}`
	if _, err := c.IAM.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("other-team-role"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}

	first := run(t, nil, "teardown", "--yes")
	if first.Code != 0 || !strings.Contains(first.Stdout, "role other-team-role's trust policy names it: kept for them") || !strings.Contains(first.Stdout, "role containerise: deleted") {
		t.Fatalf("teardown while the other role trusts the provider:\n%s", first)
	}
	if !providerExists(t, c) {
		t.Fatal("the provider was deleted under a role that trusts it")
	}

	if _, err := c.IAM.DeleteRole(context.Background(), &iam.DeleteRoleInput{RoleName: aws.String("other-team-role")}); err != nil {
		t.Fatal(err)
	}
	second := run(t, nil, "teardown", "--yes")
	if second.Code != 0 || !strings.Contains(second.Stdout, "oidc-provider "+host+": deleted") {
		t.Fatalf("teardown once the other role is gone:\n%s", second)
	}
	if providerExists(t, c) {
		t.Error("the provider is still there")
	}
	if third := run(t, nil, "teardown", "--yes", "--verbose"); third.Code != 0 || len(mutatingOps(third.Stderr)) != 0 {
		t.Errorf("third teardown:\n%s", third)
	}
}

// The role --role names, made by hand (no managed-by tag), is left alone
// and still trusts the provider: teardown keeps the provider and says so.
func TestTeardownKeepsTheProviderForAHandMadeRole(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	if r := run(t, nil, keylessSetup...); r.Code != 0 {
		t.Fatalf("setup:\n%s", r)
	}
	if _, err := c.IAM.UntagRole(context.Background(), &iam.UntagRoleInput{RoleName: aws.String(tdRole), TagKeys: []string{managed.TagKey}}); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "teardown", "--yes")
	if r.Code != 0 || !strings.Contains(r.Stdout, "kept: role containerise still trusts it, which is left alone") {
		t.Fatalf("teardown:\n%s", r)
	}
	if !providerExists(t, c) {
		t.Error("the provider was deleted under the hand-made role")
	}
}
