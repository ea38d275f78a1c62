// Package provision is the logic of `containerise setup`: it creates, or
// corrects, what the blog post clicks into existence (an ECR repository, a
// managed policy that may push to it, an IAM user with one access key, and a
// role with the policy attached that only that user may assume), then
// reports the CircleCI variables.
//
// It reads the account's state first, concurrently, then makes only the
// writes that are needed, independent ones concurrently. Rerunning it makes
// no mutating call when nothing drifted and never creates a second access
// key. What it creates carries the tag managed-by=containerise; resources
// without the tag (made by hand) are used as they are and reported as
// unmanaged, with what differs.
package provision

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/validate"
)

// iamAPI is the part of *iam.Client setup uses.
type iamAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	CreateUser(context.Context, *iam.CreateUserInput, ...func(*iam.Options)) (*iam.CreateUserOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	CreateAccessKey(context.Context, *iam.CreateAccessKeyInput, ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	DeleteAccessKey(context.Context, *iam.DeleteAccessKeyInput, ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	UpdateAssumeRolePolicy(context.Context, *iam.UpdateAssumeRolePolicyInput, ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	AttachRolePolicy(context.Context, *iam.AttachRolePolicyInput, ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	TagPolicy(context.Context, *iam.TagPolicyInput, ...func(*iam.Options)) (*iam.TagPolicyOutput, error)
	CreatePolicy(context.Context, *iam.CreatePolicyInput, ...func(*iam.Options)) (*iam.CreatePolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	CreatePolicyVersion(context.Context, *iam.CreatePolicyVersionInput, ...func(*iam.Options)) (*iam.CreatePolicyVersionOutput, error)
	ListPolicyVersions(context.Context, *iam.ListPolicyVersionsInput, ...func(*iam.Options)) (*iam.ListPolicyVersionsOutput, error)
	DeletePolicyVersion(context.Context, *iam.DeletePolicyVersionInput, ...func(*iam.Options)) (*iam.DeletePolicyVersionOutput, error)
}

// ecrAPI is the part of *ecr.Client setup uses.
type ecrAPI interface {
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	CreateRepository(context.Context, *ecr.CreateRepositoryInput, ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	ListTagsForResource(context.Context, *ecr.ListTagsForResourceInput, ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error)
}

// stsAPI is the part of *sts.Client setup uses.
type stsAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Defaults are the blog's names.
const (
	DefaultRepository = names.Repository
	DefaultPolicy     = names.Policy
	DefaultUser       = names.User
	DefaultRole       = names.Role
	// DefaultPropagationWait bounds how long setup waits for IAM to accept a
	// new user as a role's principal (Terraform's AWS provider waits as long).
	DefaultPropagationWait = 2 * time.Minute
)

// Options say what to set up.
type Options struct {
	Repository, Policy, User, Role string
	// Region is the region of the repository (the SDK config's region).
	Region string
	// AllowDescribeImages adds ecr:DescribeImages to the policy, for
	// `push --skip-existing`.
	AllowDescribeImages bool
	// DryRun reads and plans, and makes no mutating call.
	DryRun bool
	// RotateKey creates a new access key when the user has one, and deletes
	// the old one only if ConfirmDeleteKey agrees.
	RotateKey bool
	// ConfirmDeleteKey is asked, after a new key was created and everything
	// else succeeded, whether to delete the old key now. nil means no: the
	// old key is kept and the result says how to delete it later.
	ConfirmDeleteKey func(ctx context.Context, r Rotation) (bool, error)
	// PropagationWait bounds the wait for IAM to accept a new user as the
	// role's principal; 0 means DefaultPropagationWait.
	PropagationWait time.Duration
}

// rotateCommand is the setup command line that rotates this user's key,
// naming every non-default resource so that copying it acts on the same set.
func (o Options) rotateCommand() string {
	cmd := "containerise setup --rotate-key"
	for _, f := range []struct{ flag, value, def string }{
		{"--repository", o.Repository, DefaultRepository},
		{"--policy", o.Policy, DefaultPolicy},
		{"--user", o.User, DefaultUser},
		{"--role", o.Role, DefaultRole},
	} {
		if f.value != "" && f.value != f.def {
			cmd += " " + f.flag + " " + f.value
		}
	}
	if o.AllowDescribeImages {
		cmd += " --allow-skip-existing"
	}
	return cmd
}

// Rotation describes a key rotation awaiting confirmation. NewSecret is the
// new key's secret: show it to the user (never log it) before asking.
type Rotation struct {
	User                string
	NewKeyID, NewSecret string
	OldKeyID            string
	Variables           Variables
	DeleteCommandOldKey string // the aws CLI command deleting the old key
}

// Validate checks the names and region before any API call.
func (o Options) Validate() error {
	return validate.First(
		validate.Repository("--repository", o.Repository),
		validate.PolicyName("--policy", o.Policy),
		validate.UserName("--user", o.User),
		validate.RoleName("--role", o.Role),
		validate.Region("--region", o.Region),
	)
}

// Provisioner runs setup with the given clients. *iam.Client, *ecr.Client
// and *sts.Client satisfy the field types.
type Provisioner struct {
	IAM iamAPI
	ECR ecrAPI
	STS stsAPI
	// Logf receives progress lines (for stderr). It never receives a secret.
	// Calls are serialised, so it need not be safe for concurrent use.
	Logf  func(format string, args ...any)
	logMu sync.Mutex

	// Test hooks: the clock, the sleep between retries, and how long to wait
	// for a concurrent setup's decision about its access key (default 5s).
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	raceWait time.Duration
}

func (p *Provisioner) logf(format string, args ...any) {
	if p.Logf != nil {
		p.logMu.Lock()
		defer p.logMu.Unlock()
		p.Logf(format, args...)
	}
}

func (p *Provisioner) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func (p *Provisioner) wait(ctx context.Context, d time.Duration) error {
	if p.sleep != nil {
		return p.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Status is what setup did, or would do, to a resource.
type Status string

// Statuses.
const (
	Created     Status = "created"
	Updated     Status = "updated"
	Unchanged   Status = "unchanged"
	Exists      Status = "exists" // created meanwhile by another setup
	Unmanaged   Status = "unmanaged"
	WouldCreate Status = "would-create"
	WouldUpdate Status = "would-update"
	Failed      Status = "failed"
	Skipped     Status = "skipped" // not attempted because a step it needs failed
)

// Resource kinds.
const (
	KindRepository = "repository"
	KindPolicy     = "policy"
	KindUser       = "user"
	KindAccessKey  = "access-key"
	KindRole       = "role"
)

// Resource is one resource's outcome.
type Resource struct {
	Kind    string
	Name    string
	ARN     string
	Status  Status
	Managed bool
	// Changes lists what was (or would be) changed; for an unmanaged
	// resource, what differs from what setup would make.
	Changes []string
}

// Variables are the CircleCI environment variables, under the blog's names.
type Variables struct {
	AccessKeyID     string // AWS_IAM_USER_ACCESS_KEY_ID
	SecretAccessKey string // AWS_IAM_USER_SECRET_ACCESS_KEY; only when just created
	RoleARN         string // AWS_IAM_ROLE_ARN
	Region          string // AWS_REGION
}

// Variable names.
const (
	VarAccessKeyID     = "AWS_IAM_USER_ACCESS_KEY_ID"
	VarSecretAccessKey = "AWS_IAM_USER_SECRET_ACCESS_KEY"
	VarRoleARN         = "AWS_IAM_ROLE_ARN"
	VarRegion          = "AWS_REGION"
	// VarDefaultRegion repeats the region: boto3 reads it from this name, not AWS_REGION.
	VarDefaultRegion = "AWS_DEFAULT_REGION"
)

// Pairs returns the variables as name/value pairs in the blog's order,
// without the secret when it is not available.
func (v Variables) Pairs() [][2]string {
	out := [][2]string{{VarAccessKeyID, v.AccessKeyID}}
	if v.SecretAccessKey != "" {
		out = append(out, [2]string{VarSecretAccessKey, v.SecretAccessKey})
	}
	return append(out, [2]string{VarRoleARN, v.RoleARN}, [2]string{VarRegion, v.Region}, [2]string{VarDefaultRegion, v.Region})
}

// Result is what setup did, for the command to render.
type Result struct {
	Account, Region, Partition string
	DryRun                     bool
	Resources                  []Resource
	Variables                  Variables
	// SecretAvailable: the access key was created by this run, so its
	// secret is in Variables. It exists nowhere else.
	SecretAvailable bool
	// Notes are things the user should know or do next.
	Notes []string
	// Warnings concern unmanaged resources that differ from what setup
	// would make.
	Warnings []string
}

// Resource returns the resource of a kind, or nil.
func (r *Result) Resource(kind string) *Resource {
	for i := range r.Resources {
		if r.Resources[i].Kind == kind {
			return &r.Resources[i]
		}
	}
	return nil
}

func (o Options) wait() time.Duration {
	if o.PropagationWait > 0 {
		return o.PropagationWait
	}
	return DefaultPropagationWait
}

// deleteKeyCommand is the aws CLI command deleting a key.
func deleteKeyCommand(user, keyID string) string {
	return fmt.Sprintf("aws iam delete-access-key --user-name %s --access-key-id %s", user, keyID)
}

// The SDK clients satisfy the interfaces with no adapter.
var (
	_ iamAPI = (*iam.Client)(nil)
	_ ecrAPI = (*ecr.Client)(nil)
	_ stsAPI = (*sts.Client)(nil)
)
