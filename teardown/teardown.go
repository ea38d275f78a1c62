// Package teardown removes what `containerise setup` created: the ECR
// repository (with its images), the managed policy, the role and the CI user
// (with its access keys), in the order AWS demands.
//
// It works in two stages. Plan reads everything first, concurrently, and
// decides for each resource whether it is already gone, will be deleted (and
// through which steps), is left alone because it does not carry the tag
// managed-by=containerise, or is blocked by something containerise did not
// make. Apply then runs only the steps of the plan.
//
// Teardown is idempotent: whatever is already gone is reported as gone, and a
// NoSuchEntity while deleting (another teardown got there first) counts as
// success, so a run cut off at any step completes when run again.
package teardown

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/containerise/containerise/internal/names"
)

// iamAPI is the part of *iam.Client teardown calls.
type iamAPI interface {
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	ListPolicyVersions(context.Context, *iam.ListPolicyVersionsInput, ...func(*iam.Options)) (*iam.ListPolicyVersionsOutput, error)
	ListEntitiesForPolicy(context.Context, *iam.ListEntitiesForPolicyInput, ...func(*iam.Options)) (*iam.ListEntitiesForPolicyOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	ListInstanceProfilesForRole(context.Context, *iam.ListInstanceProfilesForRoleInput, ...func(*iam.Options)) (*iam.ListInstanceProfilesForRoleOutput, error)
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	ListAttachedUserPolicies(context.Context, *iam.ListAttachedUserPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	GetLoginProfile(context.Context, *iam.GetLoginProfileInput, ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error)

	DetachRolePolicy(context.Context, *iam.DetachRolePolicyInput, ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	DeletePolicyVersion(context.Context, *iam.DeletePolicyVersionInput, ...func(*iam.Options)) (*iam.DeletePolicyVersionOutput, error)
	DeletePolicy(context.Context, *iam.DeletePolicyInput, ...func(*iam.Options)) (*iam.DeletePolicyOutput, error)
	DetachUserPolicy(context.Context, *iam.DetachUserPolicyInput, ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error)
	DeleteUserPolicy(context.Context, *iam.DeleteUserPolicyInput, ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
	DeleteAccessKey(context.Context, *iam.DeleteAccessKeyInput, ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	DeleteLoginProfile(context.Context, *iam.DeleteLoginProfileInput, ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error)
	DeleteUser(context.Context, *iam.DeleteUserInput, ...func(*iam.Options)) (*iam.DeleteUserOutput, error)
}

// ecrAPI is the part of *ecr.Client teardown calls.
type ecrAPI interface {
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	ListTagsForResource(context.Context, *ecr.ListTagsForResourceInput, ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error)
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	DeleteRepository(context.Context, *ecr.DeleteRepositoryInput, ...func(*ecr.Options)) (*ecr.DeleteRepositoryOutput, error)
}

// stsAPI is the part of *sts.Client teardown calls.
type stsAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Teardown plans and applies the removal of containerise's resources.
type Teardown struct {
	iam iamAPI
	ecr ecrAPI
	sts stsAPI

	logMu sync.Mutex
	log   io.Writer

	// IAM is eventually consistent: right after a detachment, DeleteRole,
	// DeleteUser or DeletePolicy can still fail with DeleteConflict. Those
	// are retried for up to conflictWait, polling from conflictPoll (doubling,
	// at most 8 s) before the conflict is reported.
	conflictWait, conflictPoll time.Duration
}

// New returns a Teardown over the given clients (*iam.Client, *ecr.Client
// and *sts.Client, or fakes with the same methods). Progress lines, one per
// step done, go to log when it is not nil.
func New(iamClient iamAPI, ecrClient ecrAPI, stsClient stsAPI, log io.Writer) *Teardown {
	return &Teardown{iam: iamClient, ecr: ecrClient, sts: stsClient, log: log,
		conflictWait: 30 * time.Second, conflictPoll: time.Second}
}

// Options name the resources to remove; the defaults are setup's (the blog's).
type Options struct {
	Repository string
	Policy     string
	Role       string
	User       string
	// IncludeUnmanaged also deletes resources that lack the tag
	// managed-by=containerise (made by hand, as in the blog).
	IncludeUnmanaged bool
}

// Default names, shared with setup.
const (
	DefaultRepository = names.Repository
	DefaultPolicy     = names.Policy
	DefaultRole       = names.Role
	DefaultUser       = names.User
)

func (t *Teardown) logf(format string, args ...any) {
	if t.log == nil {
		return
	}
	t.logMu.Lock()
	defer t.logMu.Unlock()
	fmt.Fprintf(t.log, format+"\n", args...)
}
