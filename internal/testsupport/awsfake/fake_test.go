package awsfake

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/policies"
)

// The fakes must keep the SDK clients' method shapes: both sides of each
// assertion implement the same interface.
type iamShape interface {
	CreateUser(context.Context, *iam.CreateUserInput, ...func(*iam.Options)) (*iam.CreateUserOutput, error)
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	DeleteUser(context.Context, *iam.DeleteUserInput, ...func(*iam.Options)) (*iam.DeleteUserOutput, error)
	TagUser(context.Context, *iam.TagUserInput, ...func(*iam.Options)) (*iam.TagUserOutput, error)
	ListUserTags(context.Context, *iam.ListUserTagsInput, ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
	CreateAccessKey(context.Context, *iam.CreateAccessKeyInput, ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	DeleteAccessKey(context.Context, *iam.DeleteAccessKeyInput, ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	UpdateAccessKey(context.Context, *iam.UpdateAccessKeyInput, ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error)
	AttachUserPolicy(context.Context, *iam.AttachUserPolicyInput, ...func(*iam.Options)) (*iam.AttachUserPolicyOutput, error)
	DetachUserPolicy(context.Context, *iam.DetachUserPolicyInput, ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error)
	ListAttachedUserPolicies(context.Context, *iam.ListAttachedUserPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	PutUserPolicy(context.Context, *iam.PutUserPolicyInput, ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
	ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	DeleteUserPolicy(context.Context, *iam.DeleteUserPolicyInput, ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
	CreateLoginProfile(context.Context, *iam.CreateLoginProfileInput, ...func(*iam.Options)) (*iam.CreateLoginProfileOutput, error)
	GetLoginProfile(context.Context, *iam.GetLoginProfileInput, ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error)
	DeleteLoginProfile(context.Context, *iam.DeleteLoginProfileInput, ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	UpdateAssumeRolePolicy(context.Context, *iam.UpdateAssumeRolePolicyInput, ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	TagRole(context.Context, *iam.TagRoleInput, ...func(*iam.Options)) (*iam.TagRoleOutput, error)
	ListRoleTags(context.Context, *iam.ListRoleTagsInput, ...func(*iam.Options)) (*iam.ListRoleTagsOutput, error)
	AttachRolePolicy(context.Context, *iam.AttachRolePolicyInput, ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	DetachRolePolicy(context.Context, *iam.DetachRolePolicyInput, ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListInstanceProfilesForRole(context.Context, *iam.ListInstanceProfilesForRoleInput, ...func(*iam.Options)) (*iam.ListInstanceProfilesForRoleOutput, error)
	RemoveRoleFromInstanceProfile(context.Context, *iam.RemoveRoleFromInstanceProfileInput, ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
	CreatePolicy(context.Context, *iam.CreatePolicyInput, ...func(*iam.Options)) (*iam.CreatePolicyOutput, error)
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	DeletePolicy(context.Context, *iam.DeletePolicyInput, ...func(*iam.Options)) (*iam.DeletePolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	CreatePolicyVersion(context.Context, *iam.CreatePolicyVersionInput, ...func(*iam.Options)) (*iam.CreatePolicyVersionOutput, error)
	ListPolicyVersions(context.Context, *iam.ListPolicyVersionsInput, ...func(*iam.Options)) (*iam.ListPolicyVersionsOutput, error)
	DeletePolicyVersion(context.Context, *iam.DeletePolicyVersionInput, ...func(*iam.Options)) (*iam.DeletePolicyVersionOutput, error)
	SetDefaultPolicyVersion(context.Context, *iam.SetDefaultPolicyVersionInput, ...func(*iam.Options)) (*iam.SetDefaultPolicyVersionOutput, error)
	ListEntitiesForPolicy(context.Context, *iam.ListEntitiesForPolicyInput, ...func(*iam.Options)) (*iam.ListEntitiesForPolicyOutput, error)
	TagPolicy(context.Context, *iam.TagPolicyInput, ...func(*iam.Options)) (*iam.TagPolicyOutput, error)
	ListPolicyTags(context.Context, *iam.ListPolicyTagsInput, ...func(*iam.Options)) (*iam.ListPolicyTagsOutput, error)
}

type ecrShape interface {
	CreateRepository(context.Context, *ecr.CreateRepositoryInput, ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	ListTagsForResource(context.Context, *ecr.ListTagsForResourceInput, ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error)
	TagResource(context.Context, *ecr.TagResourceInput, ...func(*ecr.Options)) (*ecr.TagResourceOutput, error)
	ListImages(context.Context, *ecr.ListImagesInput, ...func(*ecr.Options)) (*ecr.ListImagesOutput, error)
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	DeleteRepository(context.Context, *ecr.DeleteRepositoryInput, ...func(*ecr.Options)) (*ecr.DeleteRepositoryOutput, error)
	GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

type stsShape interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
	AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

var (
	_ iamShape = (*iam.Client)(nil)
	_ iamShape = (*IAM)(nil)
	_ ecrShape = (*ecr.Client)(nil)
	_ ecrShape = (*ECR)(nil)
	_ stsShape = (*sts.Client)(nil)
	_ stsShape = (*STS)(nil)
)

var ctx = context.Background()

// must returns v, panicking (so failing the test, with its stack) on error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func wantErr[E error](t *testing.T, err error, msg string) {
	t.Helper()
	var e E
	if !errors.As(err, &e) {
		t.Fatalf("got error %v, want %T", err, e)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("got error %v, want code %s", err, code)
	}
}

const trustUser = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/circleci"},"Action":"sts:AssumeRole"}]}`
const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`

func TestAccessKeyLimit(t *testing.T) {
	a := New(Config{})
	c := a.IAM()
	must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("circleci")}))
	k1 := must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("circleci")}))
	if len(*k1.AccessKey.SecretAccessKey) != 40 || !strings.HasPrefix(*k1.AccessKey.AccessKeyId, "AKIA") {
		t.Fatalf("odd key %+v", k1.AccessKey)
	}
	must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("circleci")}))
	_, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("circleci")})
	wantErr[*iamtypes.LimitExceededException](t, err, "AccessKeysPerUser")
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("circleci")})
	wantErr[*iamtypes.DeleteConflictException](t, err, "access keys")
	keys := must(c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("circleci")}))
	for _, k := range keys.AccessKeyMetadata {
		must(c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("circleci"), AccessKeyId: k.AccessKeyId}))
	}
	must(c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("circleci")}))
	_, err = c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("circleci")})
	wantErr[*iamtypes.NoSuchEntityException](t, err, "cannot be found")
}

func TestPolicyVersions(t *testing.T) {
	a := New(Config{})
	c := a.IAM()
	p := must(c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("P"), PolicyDocument: aws.String(doc)})).Policy
	if *p.Arn != "arn:aws:iam::123456789012:policy/P" || *p.DefaultVersionId != "v1" {
		t.Fatalf("policy %+v", p)
	}
	_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("P"), PolicyDocument: aws.String(doc)})
	wantErr[*iamtypes.EntityAlreadyExistsException](t, err, "")
	for i := 2; i <= 5; i++ {
		must(c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: p.Arn, PolicyDocument: aws.String(doc), SetAsDefault: true}))
	}
	_, err = c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: p.Arn, PolicyDocument: aws.String(doc)})
	wantErr[*iamtypes.LimitExceededException](t, err, "5 versions")
	_, err = c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("v5")})
	wantErr[*iamtypes.DeleteConflictException](t, err, "default version")
	vs := must(c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: p.Arn})).Versions
	if len(vs) != 5 || *vs[0].VersionId != "v5" || !vs[0].IsDefaultVersion {
		t.Fatalf("versions %+v", vs)
	}
	got := must(c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("v5")})).PolicyVersion
	if strings.HasPrefix(*got.Document, "{") || !strings.Contains(*got.Document, "%7B") {
		t.Fatalf("document not URL-encoded: %s", *got.Document)
	}
	if dec, _ := url.QueryUnescape(*got.Document); dec != doc {
		t.Fatalf("document round trip: %s", dec)
	}
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: p.Arn})
	wantErr[*iamtypes.DeleteConflictException](t, err, "more than one version")
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		must(c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String(v)}))
	}
	must(c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}))
	must(c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("r"), PolicyArn: p.Arn}))
	if n := *must(c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p.Arn})).Policy.AttachmentCount; n != 1 {
		t.Fatalf("attachment count %d", n)
	}
	ents := must(c.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: p.Arn}))
	if len(ents.PolicyRoles) != 1 || *ents.PolicyRoles[0].RoleName != "r" {
		t.Fatalf("entities %+v", ents)
	}
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: p.Arn})
	wantErr[*iamtypes.DeleteConflictException](t, err, "attached")
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("r")})
	wantErr[*iamtypes.DeleteConflictException](t, err, "detach all policies")
	must(c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("r"), PolicyArn: p.Arn}))
	must(c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("i"), PolicyDocument: aws.String(doc)}))
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("r")})
	wantErr[*iamtypes.DeleteConflictException](t, err, "delete policies")
	must(c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("i")}))
	if err := a.AddInstanceProfile("ip", "r"); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("r")})
	wantErr[*iamtypes.DeleteConflictException](t, err, "instance profile")
	must(c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{RoleName: aws.String("r"), InstanceProfileName: aws.String("ip")}))
	must(c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("r")}))
	must(c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: p.Arn}))
}

func TestPolicyTags(t *testing.T) {
	a := New(Config{})
	c := a.IAM()
	tag := func(k, v string) iamtypes.Tag { return iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)} }
	p := must(c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("P"), PolicyDocument: aws.String(doc),
		Tags: []iamtypes.Tag{tag("managed-by", "containerise"), tag("containerise/default-version", "v1")}})).Policy
	if len(p.Tags) != 2 || *p.DefaultVersionId != "v1" {
		t.Fatalf("created policy %+v", p)
	}
	// TagPolicy adds or replaces by key; GetPolicy returns the tags.
	must(c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: p.Arn, Tags: []iamtypes.Tag{
		tag("containerise/default-version", "v2"), tag("containerise/document-sha256", strings.Repeat("0f", 32))}}))
	got := must(c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p.Arn})).Policy.Tags
	have := map[string]string{}
	for _, t := range got {
		have[*t.Key] = *t.Value
	}
	if len(have) != 3 || have["containerise/default-version"] != "v2" || have["managed-by"] != "containerise" || len(have["containerise/document-sha256"]) != 64 {
		t.Fatalf("tags %v", have)
	}
	if m := strings.Join(a.Mutating(), " "); m != "iam.CreatePolicy iam.TagPolicy" {
		t.Fatalf("mutating %s", m)
	}

	// IAM's rules: key 1-128 characters, value at most 256, letters, digits,
	// white space and _.:/=+-@; no aws: prefix; at most 50 tags.
	for name, bad := range map[string]iamtypes.Tag{
		"empty key":     tag("", "x"),
		"long key":      tag(strings.Repeat("k", 129), "x"),
		"long value":    tag("k", strings.Repeat("v", 257)),
		"key character": tag("containerise#version", "x"),
		"value comma":   tag("k", "a,b"),
		"aws: prefix":   tag("AWS:thing", "x"),
	} {
		_, err := c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: p.Arn, Tags: []iamtypes.Tag{bad}})
		wantErr[*iamtypes.InvalidInputException](t, err, "")
		_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("Q"), PolicyDocument: aws.String(doc), Tags: []iamtypes.Tag{bad}})
		if err == nil {
			t.Errorf("%s: CreatePolicy accepted tag %q=%q", name, *bad.Key, *bad.Value)
		}
	}
	must(c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: p.Arn, Tags: []iamtypes.Tag{
		tag(strings.Repeat("k", 128), strings.Repeat("v", 256)), tag("Ünïcode key with spaces_.:/=+-@", "")}}))
	var many []iamtypes.Tag
	for i := 0; i < 46; i++ {
		many = append(many, tag(fmt.Sprintf("t%d", i), "x"))
	}
	_, err := c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: p.Arn, Tags: many})
	wantErr[*iamtypes.LimitExceededException](t, err, "maximum")
	must(c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: p.Arn, Tags: many[:45]}))
	_, err = c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("nobody"), Tags: many})
	wantErr[*iamtypes.NoSuchEntityException](t, err, "")
}

func TestInvalidPrincipal(t *testing.T) {
	a := New(Config{PrincipalDelay: 10 * time.Second})
	c := a.IAM()
	_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("containerise"), AssumeRolePolicyDocument: aws.String(trustUser)})
	wantErr[*iamtypes.MalformedPolicyDocumentException](t, err, "Invalid principal in policy")
	must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("circleci")}))
	a.Advance(5 * time.Second)
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("containerise"), AssumeRolePolicyDocument: aws.String(trustUser)})
	wantErr[*iamtypes.MalformedPolicyDocumentException](t, err, "Invalid principal in policy")
	a.Advance(5 * time.Second)
	r := must(c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("containerise"), AssumeRolePolicyDocument: aws.String(trustUser)})).Role
	got := must(c.GetRole(ctx, &iam.GetRoleInput{RoleName: r.RoleName})).Role
	if ok, err := policies.Equivalent(*got.AssumeRolePolicyDocument, must(policies.Parse(trustUser))); !ok || err != nil || strings.HasPrefix(*got.AssumeRolePolicyDocument, "{") {
		t.Fatalf("trust %q: %v %v", *got.AssumeRolePolicyDocument, ok, err)
	}
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("containerise"), AssumeRolePolicyDocument: aws.String(trustUser)})
	wantErr[*iamtypes.EntityAlreadyExistsException](t, err, "already exists")
	_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: r.RoleName, PolicyDocument: aws.String("{")})
	wantErr[*iamtypes.MalformedPolicyDocumentException](t, err, "")

	// Deleting the user leaves its unique ID in the trust policy, as IAM does.
	must(c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("circleci")}))
	got = must(c.GetRole(ctx, &iam.GetRoleInput{RoleName: r.RoleName})).Role
	if d, _ := url.QueryUnescape(*got.AssumeRolePolicyDocument); strings.Contains(d, "user/circleci") || !strings.Contains(d, "AIDA") {
		t.Fatalf("trust after the user's deletion: %s", d)
	}
}

func TestSTS(t *testing.T) {
	a := New(Config{KeyDelay: 10 * time.Second, RoleDelay: 5 * time.Second})
	c := a.IAM()
	id := must(a.STS().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))
	if *id.Account != "123456789012" || *id.Arn != "arn:aws:iam::123456789012:user/admin" {
		t.Fatalf("identity %+v", id)
	}
	must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("circleci")}))
	k := must(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("circleci")})).AccessKey
	must(c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("containerise"), AssumeRolePolicyDocument: aws.String(trustUser)}))
	user := a.STSAs(*k.AccessKeyId, *k.SecretAccessKey)
	in := &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/containerise"), RoleSessionName: aws.String("s1")}
	_, err := user.AssumeRole(ctx, in)
	wantCode(t, err, "InvalidClientTokenId")
	a.Advance(10 * time.Second)
	got := must(user.AssumeRole(ctx, in))
	if !strings.HasPrefix(*got.Credentials.AccessKeyId, "ASIA") || *got.AssumedRoleUser.Arn != "arn:aws:sts::123456789012:assumed-role/containerise/s1" {
		t.Fatalf("assumed %+v", got.AssumedRoleUser)
	}
	_, err = a.STS().AssumeRole(ctx, in) // the admin is not trusted
	wantCode(t, err, "AccessDenied")
	_, err = a.STSAs(*k.AccessKeyId, "wrong").GetCallerIdentity(ctx, nil)
	wantCode(t, err, "SignatureDoesNotMatch")
	in.RoleArn = aws.String("arn:aws:iam::123456789012:role/missing")
	_, err = user.AssumeRole(ctx, in)
	wantCode(t, err, "AccessDenied")
}

func TestECR(t *testing.T) {
	a := New(Config{Region: "eu-west-2"})
	c := a.ECR()
	r := must(c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("circleci-ecr-test"),
		Tags: []ecrtypes.Tag{{Key: aws.String("managed-by"), Value: aws.String("containerise")}}})).Repository
	if *r.RepositoryArn != "arn:aws:ecr:eu-west-2:123456789012:repository/circleci-ecr-test" ||
		*r.RepositoryUri != "123456789012.dkr.ecr.eu-west-2.amazonaws.com/circleci-ecr-test" {
		t.Fatalf("repo %+v", r)
	}
	_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("circleci-ecr-test")})
	wantErr[*ecrtypes.RepositoryAlreadyExistsException](t, err, "")
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"nope"}})
	wantErr[*ecrtypes.RepositoryNotFoundException](t, err, "nope")
	tags := must(c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn})).Tags
	if len(tags) != 1 || *tags[0].Key != "managed-by" {
		t.Fatalf("tags %+v", tags)
	}
	must(a.AddImage("circleci-ecr-test", "v1"))
	must(a.AddImage("circleci-ecr-test", "v2", "latest"))
	must(a.AddImage("circleci-ecr-test", "v3", "latest")) // latest moves
	ids := must(c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("circleci-ecr-test")})).ImageIds
	if len(ids) != 4 {
		t.Fatalf("image ids %d: %+v", len(ids), ids)
	}
	det := must(c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("circleci-ecr-test"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("latest")}}})).ImageDetails
	if len(det) != 1 || strings.Join(det[0].ImageTags, ",") != "v3,latest" {
		t.Fatalf("latest %+v", det)
	}
	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("circleci-ecr-test"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v9")}}})
	wantErr[*ecrtypes.ImageNotFoundException](t, err, "")
	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("circleci-ecr-test")})
	wantErr[*ecrtypes.RepositoryNotEmptyException](t, err, "contains images")
	must(c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("circleci-ecr-test"), Force: true}))

	tok := must(c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})).AuthorizationData[0]
	dec, _ := base64.StdEncoding.DecodeString(*tok.AuthorizationToken)
	if string(dec) != "AWS:123456789012-auth-token" || *tok.ProxyEndpoint != "https://123456789012.dkr.ecr.eu-west-2.amazonaws.com" {
		t.Fatalf("token %s %s", dec, *tok.ProxyEndpoint)
	}
}

func TestFaultsAndRecord(t *testing.T) {
	a := New(Config{})
	c := a.IAM()
	a.FailCall(2, Throttling())
	a.FailOperationTimes("iam.CreateUser", 1, ServerError())
	a.Inject(Fault{Op: "iam.CreateAccessKey", Times: 1, Applied: true, Err: ServerError()})

	_, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("u")}) // 1
	wantErr[*iamtypes.NoSuchEntityException](t, err, "")
	_, err = c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("u")}) // 2
	wantCode(t, err, "Throttling")
	_, err = c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("u")}) // 3
	wantCode(t, err, "ServiceUnavailable")
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorFault() != smithy.FaultServer {
		t.Fatal("ServerError is not a server fault")
	}
	must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("u")}))              // 4
	_, err = c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("u")}) // 5: applied, then lost
	wantCode(t, err, "ServiceUnavailable")
	keys := must(c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("u")})) // 6
	if len(keys.AccessKeyMetadata) != 1 {
		t.Fatalf("the lost CreateAccessKey did not take effect: %+v", keys)
	}
	a.FailAfter(6, a.AccessDenied("iam:GetUser"))
	_, err = c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("u")})
	wantCode(t, err, "AccessDenied")
	a.ClearFaults()
	must(c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("u")}))

	want := "iam.GetUser iam.GetUser iam.CreateUser iam.CreateUser iam.CreateAccessKey iam.ListAccessKeys iam.GetUser iam.GetUser"
	if got := strings.Join(a.Ops(), " "); got != want {
		t.Fatalf("ops\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(a.Mutating(), " "); got != "iam.CreateUser iam.CreateUser iam.CreateAccessKey" {
		t.Fatalf("mutating %s", got)
	}
	for _, c := range a.Calls() {
		if c.Mutating != awsx.IsMutating(c.Op) {
			t.Fatalf("%s mutating=%v", c.Op, c.Mutating)
		}
	}
}

func TestRounds(t *testing.T) {
	a := New(Config{})
	a.SetLatency(20 * time.Millisecond)
	c := a.IAM()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("x")})
		}()
	}
	wg.Wait()
	c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("x")})
	if r := a.Rounds(); r != 2 {
		t.Fatalf("rounds %d, want 2", r)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.GetUser(cctx, &iam.GetUserInput{UserName: aws.String("x")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
}
