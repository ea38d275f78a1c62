// Package resource is containerise's one model of the AWS resources it
// manages. Each kind (the ECR repository and its settings, the push policy,
// the CI user with its access key, the OIDC provider of each CI issuer the
// role trusts, the role with its trust policy and attachment, the CircleCI
// variables) lives in one file and knows how to read itself into a snapshot
// (Observe), compare that with what is wanted and add the steps that create
// or correct it (Reconcile), and add the steps that delete it in the order
// AWS demands (Delete). A Plan collects the steps of every resource with
// what each needs first; Apply runs them, independent ones concurrently.
//
// The Stack (stack.go) wires every kind and edge once from a validated
// Spec. setup (package provision) is the Stack's Observe, Reconcile, Apply;
// teardown (package teardown) is Observe, Delete, Apply; policies prints
// the Stack's documents. A dry run stops before Apply. Nothing here knows a
// command's flags: errors and notes carry a hint.Next that the command
// layer words, and values are named through Labels.
package resource

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/containerise/containerise/internal/awsx"
)

// IAM is the part of *iam.Client the resources call.
type IAM interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	CreateUser(context.Context, *iam.CreateUserInput, ...func(*iam.Options)) (*iam.CreateUserOutput, error)
	DeleteUser(context.Context, *iam.DeleteUserInput, ...func(*iam.Options)) (*iam.DeleteUserOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	CreateAccessKey(context.Context, *iam.CreateAccessKeyInput, ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	DeleteAccessKey(context.Context, *iam.DeleteAccessKeyInput, ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	GetLoginProfile(context.Context, *iam.GetLoginProfileInput, ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error)
	DeleteLoginProfile(context.Context, *iam.DeleteLoginProfileInput, ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error)
	ListAttachedUserPolicies(context.Context, *iam.ListAttachedUserPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	DetachUserPolicy(context.Context, *iam.DetachUserPolicyInput, ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error)
	ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	DeleteUserPolicy(context.Context, *iam.DeleteUserPolicyInput, ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)

	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	UpdateAssumeRolePolicy(context.Context, *iam.UpdateAssumeRolePolicyInput, ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	AttachRolePolicy(context.Context, *iam.AttachRolePolicyInput, ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	DetachRolePolicy(context.Context, *iam.DetachRolePolicyInput, ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListInstanceProfilesForRole(context.Context, *iam.ListInstanceProfilesForRoleInput, ...func(*iam.Options)) (*iam.ListInstanceProfilesForRoleOutput, error)
	TagRole(context.Context, *iam.TagRoleInput, ...func(*iam.Options)) (*iam.TagRoleOutput, error)
	ListRoles(context.Context, *iam.ListRolesInput, ...func(*iam.Options)) (*iam.ListRolesOutput, error)

	CreateOpenIDConnectProvider(context.Context, *iam.CreateOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.CreateOpenIDConnectProviderOutput, error)
	GetOpenIDConnectProvider(context.Context, *iam.GetOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error)
	AddClientIDToOpenIDConnectProvider(context.Context, *iam.AddClientIDToOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.AddClientIDToOpenIDConnectProviderOutput, error)
	DeleteOpenIDConnectProvider(context.Context, *iam.DeleteOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.DeleteOpenIDConnectProviderOutput, error)
	TagOpenIDConnectProvider(context.Context, *iam.TagOpenIDConnectProviderInput, ...func(*iam.Options)) (*iam.TagOpenIDConnectProviderOutput, error)
	ListOpenIDConnectProviders(context.Context, *iam.ListOpenIDConnectProvidersInput, ...func(*iam.Options)) (*iam.ListOpenIDConnectProvidersOutput, error)

	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	CreatePolicy(context.Context, *iam.CreatePolicyInput, ...func(*iam.Options)) (*iam.CreatePolicyOutput, error)
	DeletePolicy(context.Context, *iam.DeletePolicyInput, ...func(*iam.Options)) (*iam.DeletePolicyOutput, error)
	TagPolicy(context.Context, *iam.TagPolicyInput, ...func(*iam.Options)) (*iam.TagPolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	CreatePolicyVersion(context.Context, *iam.CreatePolicyVersionInput, ...func(*iam.Options)) (*iam.CreatePolicyVersionOutput, error)
	ListPolicyVersions(context.Context, *iam.ListPolicyVersionsInput, ...func(*iam.Options)) (*iam.ListPolicyVersionsOutput, error)
	DeletePolicyVersion(context.Context, *iam.DeletePolicyVersionInput, ...func(*iam.Options)) (*iam.DeletePolicyVersionOutput, error)
	ListEntitiesForPolicy(context.Context, *iam.ListEntitiesForPolicyInput, ...func(*iam.Options)) (*iam.ListEntitiesForPolicyOutput, error)
}

// ECR is the part of *ecr.Client the resources call.
type ECR interface {
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	CreateRepository(context.Context, *ecr.CreateRepositoryInput, ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	DeleteRepository(context.Context, *ecr.DeleteRepositoryInput, ...func(*ecr.Options)) (*ecr.DeleteRepositoryOutput, error)
	ListTagsForResource(context.Context, *ecr.ListTagsForResourceInput, ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error)
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)

	PutImageScanningConfiguration(context.Context, *ecr.PutImageScanningConfigurationInput, ...func(*ecr.Options)) (*ecr.PutImageScanningConfigurationOutput, error)
	PutImageTagMutability(context.Context, *ecr.PutImageTagMutabilityInput, ...func(*ecr.Options)) (*ecr.PutImageTagMutabilityOutput, error)
	GetLifecyclePolicy(context.Context, *ecr.GetLifecyclePolicyInput, ...func(*ecr.Options)) (*ecr.GetLifecyclePolicyOutput, error)
	PutLifecyclePolicy(context.Context, *ecr.PutLifecyclePolicyInput, ...func(*ecr.Options)) (*ecr.PutLifecyclePolicyOutput, error)
	DeleteLifecyclePolicy(context.Context, *ecr.DeleteLifecyclePolicyInput, ...func(*ecr.Options)) (*ecr.DeleteLifecyclePolicyOutput, error)

	// The registry's configurations, shared by every repository of the
	// account in the region.
	GetRegistryScanningConfiguration(context.Context, *ecr.GetRegistryScanningConfigurationInput, ...func(*ecr.Options)) (*ecr.GetRegistryScanningConfigurationOutput, error)
	PutRegistryScanningConfiguration(context.Context, *ecr.PutRegistryScanningConfigurationInput, ...func(*ecr.Options)) (*ecr.PutRegistryScanningConfigurationOutput, error)
	GetSigningConfiguration(context.Context, *ecr.GetSigningConfigurationInput, ...func(*ecr.Options)) (*ecr.GetSigningConfigurationOutput, error)
	PutSigningConfiguration(context.Context, *ecr.PutSigningConfigurationInput, ...func(*ecr.Options)) (*ecr.PutSigningConfigurationOutput, error)
	DeleteSigningConfiguration(context.Context, *ecr.DeleteSigningConfigurationInput, ...func(*ecr.Options)) (*ecr.DeleteSigningConfigurationOutput, error)
	// TagResource records setup's signing rule on the repository.
	TagResource(context.Context, *ecr.TagResourceInput, ...func(*ecr.Options)) (*ecr.TagResourceOutput, error)
}

// KMS is the part of *kms.Client the resources call: setup resolves the
// key a repository is to be encrypted with (an alias, to the key's ARN,
// which is what ECR reports).
type KMS interface {
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// The SDK clients satisfy the interfaces with no adapter.
var (
	_ IAM = (*iam.Client)(nil)
	_ ECR = (*ecr.Client)(nil)
	_ KMS = (*kms.Client)(nil)
)

// Env is what the resources of one run share: the clients, the caller's
// identity, the region, where progress goes, and how long to wait for IAM.
type Env struct {
	IAM    IAM
	ECR    ECR
	KMS    KMS // only setup asking for a KMS key calls it
	Caller *awsx.Caller
	Region string
	// ECRIn, when set, is the ECR client of another region, for the
	// repositories teardown finds elsewhere (a policy's ARNs name them).
	ECRIn func(region string) ECR

	// Logf receives progress lines (for stderr), never a secret. Calls are
	// serialised, so it need not be safe for concurrent use.
	Logf func(format string, args ...any)
	// Wait bounds the waits for IAM's eventual consistency; its Now and
	// Sleep are the clock every resource uses.
	Wait awsx.Waiter
	// RaceWait is how long a setup that may have raced another for the
	// user's access key waits for the other's decision (default 5s).
	RaceWait time.Duration

	logMu sync.Mutex
}

// ecrIn is the ECR client of region: ECR's own for the run's region (or
// none named), else ECRIn's.
func (e *Env) ecrIn(region string) ECR {
	if region == "" || region == e.Region || e.ECRIn == nil {
		return e.ECR
	}
	return e.ECRIn(region)
}

// Logf writes a progress line, if anyone listens.
func (e *Env) logf(format string, args ...any) {
	if e.Logf == nil {
		return
	}
	e.logMu.Lock()
	defer e.logMu.Unlock()
	e.Logf(format, args...)
}

// Identity returns the caller's account and partition, asking STS once.
func (e *Env) Identity(ctx context.Context) (awsx.Identity, error) {
	id, err := e.Caller.Identity(ctx)
	if err != nil {
		return awsx.Identity{}, &Error{Doing: "checking the AWS credentials", Call: "sts:GetCallerIdentity", Err: err}
	}
	return id, nil
}

// Purpose says what an observation is for: setup reads what it compares,
// teardown also what stands in the way of a deletion.
type Purpose int

// Purposes.
const (
	ForSetup Purpose = iota
	ForTeardown
)

// Resource is one kind of resource containerise manages.
type Resource interface {
	// Reports are the lines the resource shows (the user and its access
	// key show two).
	Reports() []*Report
	// Observe reads the resource as it is. It makes no change.
	Observe(ctx context.Context, env *Env, purpose Purpose) error
	// Reconcile compares what was observed with what is wanted, sets the
	// reports' statuses and adds the steps that create or correct the
	// resource. It makes no call.
	Reconcile(p *Plan)
	// Delete decides whether the resource is deleted, left alone or
	// blocked, and adds the steps that delete it. It makes no call.
	Delete(p *Plan)
}

// once makes a call that is not idempotent (CreateAccessKey,
// CreatePolicyVersion) take effect at most once. When its answer is lost (a
// dropped connection, a 5xx after the work was done) AWS may have acted
// anyway, and a blind retry, the SDK's included, could act twice. So the
// SDK does not retry it; after an uncertain failure settle looks at what
// happened (cleaning up what cannot be used): done when the call took
// effect after all, else the call is tried again, a few times in all.
func (e *Env) once(ctx context.Context, call func(noRetry func(*iam.Options)) error, settle func(error) (done bool, err error)) error {
	noRetry := func(o *iam.Options) { o.RetryMaxAttempts = 1 }
	w := e.Wait
	// Attempts at 0, 0.5, 1.5 and 3.5 s.
	w.Bound, w.First, w.Max = 3500*time.Millisecond, 500*time.Millisecond, 2*time.Second
	uncertain := func(err error) (string, bool) { return "an answer AWS lost", awsx.Uncertain(err) }
	err := w.Retry(ctx, uncertain, nil, func() error {
		err := call(noRetry)
		if !awsx.Uncertain(err) {
			return err
		}
		done, serr := settle(err)
		switch {
		case serr != nil:
			return serr
		case done:
			return nil
		}
		return err
	})
	var still *awsx.StillPending
	if errors.As(err, &still) {
		return still.Err
	}
	return err
}

// untilFree deletes an IAM entity with call, waiting, within the waiter's
// bound, while IAM still counts something just detached from it
// (DeleteConflict right after a successful detachment).
func (e *Env) untilFree(ctx context.Context, action string, call func() error) error {
	said := false
	err := e.Wait.Retry(ctx, func(err error) (string, bool) { return "IAM to see the detachments", awsx.IsDeleteConflict(err) },
		func(awsx.Attempt) {
			if !said {
				e.logf("%s: IAM still reports it in use; retrying for up to %s", action, e.Wait.Bound)
				said = true
			}
		}, call)
	var still *awsx.StillPending
	if errors.As(err, &still) {
		return still.Err
	}
	return err
}
