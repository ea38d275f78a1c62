package awsfake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/policies"
)

// The OIDC calls keep the SDK clients' shapes.
type oidcShape interface {
	CreateOpenIDConnectProvider(context.Context, *iam.CreateOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.CreateOpenIDConnectProviderOutput, error)
	GetOpenIDConnectProvider(context.Context, *iam.GetOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error)
	ListOpenIDConnectProviders(context.Context, *iam.ListOpenIDConnectProvidersInput, ...func(*iam.Options)) (*iam.ListOpenIDConnectProvidersOutput, error)
	AddClientIDToOpenIDConnectProvider(context.Context, *iam.AddClientIDToOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.AddClientIDToOpenIDConnectProviderOutput, error)
	DeleteOpenIDConnectProvider(context.Context, *iam.DeleteOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.DeleteOpenIDConnectProviderOutput, error)
	TagOpenIDConnectProvider(context.Context, *iam.TagOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.TagOpenIDConnectProviderOutput, error)
	ListRoles(context.Context, *iam.ListRolesInput, ...func(*iam.Options)) (*iam.ListRolesOutput, error)
}

type webIdentityShape interface {
	AssumeRoleWithWebIdentity(context.Context, *sts.AssumeRoleWithWebIdentityInput, ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error)
}

var (
	_ oidcShape        = (*iam.Client)(nil)
	_ oidcShape        = (*IAM)(nil)
	_ webIdentityShape = (*sts.Client)(nil)
	_ webIdentityShape = (*STS)(nil)
)

const (
	fakeOrg     = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	fakeProject = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

// unsignedJWT is a token with the given claims and a signature nobody
// checks.
func unsignedJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("sig"))
}

func TestOIDCProvidersAndWebIdentity(t *testing.T) {
	ctx := context.Background()
	a := New(Config{PrincipalDelay: 10 * time.Second, ProviderDelay: 20 * time.Second})
	admin := a.IAM()
	issuer := circleci.Issuer(fakeOrg)
	providerARN := policies.OIDCProviderARN("aws", a.ID(), issuer)
	c := circleci.Selector{OrgID: fakeOrg, ProjectIDs: []string{fakeProject}, Branches: []string{"main"}}
	trust := circleci.Trust(providerARN, c).JSON()

	// A trust policy may not name a provider before it exists, and has
	// propagated.
	_, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ci"), AssumeRolePolicyDocument: aws.String(trust)})
	var malformed *iamtypes.MalformedPolicyDocumentException
	if !errors.As(err, &malformed) || !strings.Contains(err.Error(), "Invalid principal") {
		t.Fatalf("a role trusting a missing provider: %v", err)
	}
	out, err := admin.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuer), ClientIDList: []string{fakeOrg}})
	if err != nil || aws.ToString(out.OpenIDConnectProviderArn) != providerARN {
		t.Fatalf("CreateOpenIDConnectProvider: %v %v", out, err)
	}
	if _, err := admin.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuer)}); !awsx.IsAlreadyExists(err) {
		t.Errorf("a second provider for the URL: %v", err)
	}
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ci"), AssumeRolePolicyDocument: aws.String(trust)}); err == nil {
		t.Fatal("a provider created this instant was accepted as a principal")
	}
	a.Advance(10 * time.Second)
	role, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ci"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := admin.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)})
	if err != nil || aws.ToString(got.Url) != "oidc.circleci.com/org/"+fakeOrg || strings.Join(got.ClientIDList, ",") != fakeOrg || len(got.ThumbprintList) != 0 {
		t.Fatalf("GetOpenIDConnectProvider: %+v %v", got, err)
	}

	claims := func(sub string, exp time.Time) map[string]any {
		return map[string]any{"iss": issuer, "aud": fakeOrg, "sub": sub, "exp": exp.Unix(), "iat": a.Now().Unix()}
	}
	sub := "org/" + fakeOrg + "/project/" + fakeProject + "/user/u1/vcs-origin/github.com/acme/app/vcs-ref/refs/heads/"
	assume := func(cl map[string]any) error {
		_, err := a.STS().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: role.Role.Arn, RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(unsignedJWT(cl))})
		return err
	}
	later := a.Now().Add(time.Hour)
	if err := assume(claims(sub+"main", later)); awsx.ErrorCode(err) != "InvalidIdentityToken" || !strings.Contains(err.Error(), "No OpenIDConnect provider found") {
		t.Errorf("a provider younger than ProviderDelay: %v", err)
	}
	a.Advance(10 * time.Second)
	if err := assume(claims(sub+"main", later)); err != nil {
		t.Errorf("the main branch: %v", err)
	}
	var expired *ststypes.ExpiredTokenException
	if err := assume(claims(sub+"main", a.Now().Add(-time.Second))); !errors.As(err, &expired) {
		t.Errorf("an expired token: %v", err)
	}
	for name, cl := range map[string]map[string]any{
		"another branch":            claims(sub+"dev", later),
		"a branch named like main":  claims(sub+"x/vcs-ref/refs/heads/main", later),
		"a v1 token (no branch)":    claims("org/"+fakeOrg+"/project/"+fakeProject+"/user/u1", later),
		"another project on main":   claims(strings.Replace(sub, fakeProject, "other", 1)+"main", later),
		"another audience":          {"iss": issuer, "aud": "x", "sub": sub + "main", "exp": later.Unix()},
		"another issuer (no such)":  {"iss": "https://oidc.circleci.com/org/other", "aud": fakeOrg, "sub": sub + "main", "exp": later.Unix()},
		"no expiry (refused by us)": {"iss": issuer, "aud": fakeOrg, "sub": sub + "main"},
	} {
		if err := assume(cl); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := a.STS().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("s1"),
		WebIdentityToken: aws.String("not-a-jwt")}); awsx.ErrorCode(err) != "InvalidIdentityToken" {
		t.Errorf("garbage token: %v", err)
	}

	// ListRoles pages through every role with its trust policy.
	for _, n := range []string{"r1", "r2", "r3"} {
		if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(n), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := iam.NewListRolesPaginator(admin, &iam.ListRolesInput{MaxItems: aws.Int32(2)})
	err = awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListRolesOutput) {
		for _, r := range page.Roles {
			names = append(names, aws.ToString(r.RoleName))
			if same, _ := policies.Equivalent(aws.ToString(r.AssumeRolePolicyDocument), circleci.Trust(providerARN, c)); !same {
				t.Errorf("role %s listed with trust %s", aws.ToString(r.RoleName), aws.ToString(r.AssumeRolePolicyDocument))
			}
		}
	})
	if err != nil || strings.Join(names, ",") != "ci,r1,r2,r3" {
		t.Errorf("ListRoles pages: %v %v", names, err)
	}

	// Adding a client ID is idempotent; deleting is too.
	for range 2 {
		if _, err := admin.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{
			OpenIDConnectProviderArn: aws.String(providerARN), ClientID: aws.String("sts.amazonaws.com")}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = admin.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)})
	if strings.Join(got.ClientIDList, ",") != fakeOrg+",sts.amazonaws.com" {
		t.Errorf("client IDs %v", got.ClientIDList)
	}
	for range 2 {
		if _, err := admin.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)}); !awsx.IsNotFound(err) {
		t.Errorf("after deletion: %v", err)
	}
	if _, err := admin.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("http://insecure.example")}); err == nil {
		t.Error("an http issuer was accepted")
	}
}
