package teardown

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

var defaults = Options{Repository: DefaultRepository, Policy: DefaultPolicy, Role: DefaultRole, User: DefaultUser}

// The names the tests use for what the resource model reports.
type (
	Kind     = string
	Outcome  = resource.Outcome
	Resource = resource.Report
)

const (
	DefaultRepository = names.Repository
	DefaultPolicy     = names.Policy
	DefaultRole       = names.Role
	DefaultUser       = names.User

	KindRepository = resource.KindRepository
	KindPolicy     = resource.KindPolicy
	KindRole       = resource.KindRole
	KindUser       = resource.KindUser

	StateDelete    = resource.StateDelete
	StateUnmanaged = resource.StateUnmanaged
	StateBlocked   = resource.StateBlocked
	StateGone      = resource.StateGone

	OutcomeDeleted   = resource.OutcomeDeleted
	OutcomeGone      = resource.OutcomeGone
	OutcomeLeftAlone = resource.OutcomeLeftAlone
	OutcomeFailed    = resource.OutcomeFailed
)

// errText is a resource's error as the plan's JSON shows it.
func errText(r *Resource) string {
	if r.Err == nil {
		return ""
	}
	return r.Err.Error()
}

// world is a fake account and a Teardown over it.
type world struct {
	t  *testing.T
	a  *awsfake.Account
	td *Teardown
	// log collects the progress lines.
	log strings.Builder
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, a: awsfake.New(awsfake.Config{})}
	w.td = New(w.a.IAM(), w.a.ECR(), w.a.STS(), &w.log)
	w.td.Region = w.a.Region()
	// The fake is consistent: a DeleteConflict is real, or injected.
	w.td.conflictWait, w.td.conflictPoll = 50*time.Millisecond, time.Millisecond
	return w
}

func (w *world) policyARN() string {
	return policies.PolicyARN(w.a.Partition(), w.a.ID(), DefaultPolicy)
}

// tags returns the managed tag, or none for resources made by hand.
func iamTags(isManaged bool) []iamtypes.Tag {
	if isManaged {
		return managed.IAMTags()
	}
	return nil
}

// seed makes what `containerise setup` makes (isManaged) or what the blog's
// reader clicks together (not managed): a repository holding images, the
// policy, the user with one access key, and the role that user may assume
// with the policy attached.
func (w *world) seed(isManaged bool, imageCount int) {
	w.t.Helper()
	w.seedWith(map[Kind]bool{KindRepository: isManaged, KindPolicy: isManaged, KindRole: isManaged, KindUser: isManaged}, imageCount)
}

// seedWith is seed with the managed tag on the kinds marked true only.
func (w *world) seedWith(isManaged map[Kind]bool, imageCount int) {
	w.t.Helper()
	ctx := context.Background()
	in := &ecr.CreateRepositoryInput{RepositoryName: aws.String(DefaultRepository)}
	if isManaged[KindRepository] {
		in.Tags = managed.ECRTags()
	}
	must(w.a.ECR().CreateRepository(ctx, in))
	for i := range imageCount {
		if _, err := w.a.AddImage(DefaultRepository, fmt.Sprintf("v%d", i+1)); err != nil {
			w.t.Fatal(err)
		}
	}
	doc := policies.Permissions(policies.Target{Region: w.a.Region(), AccountID: w.a.ID(), Repository: DefaultRepository}, policies.PermissionOptions{})
	must(w.a.IAM().CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName: aws.String(DefaultPolicy), PolicyDocument: aws.String(doc.JSON()), Tags: iamTags(isManaged[KindPolicy])}))
	must(w.a.IAM().CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(DefaultUser), Tags: iamTags(isManaged[KindUser])}))
	must(w.a.IAM().CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(DefaultUser)}))
	w.createRole(DefaultRole, isManaged[KindRole])
	must(w.a.IAM().AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(DefaultRole), PolicyArn: aws.String(w.policyARN())}))
	w.a.ResetCalls()
}

// createRole makes a role the CI user may assume.
func (w *world) createRole(name string, isManaged bool) {
	w.t.Helper()
	trust := policies.Trust(policies.UserARN(w.a.Partition(), w.a.ID(), DefaultUser))
	must(w.a.IAM().CreateRole(context.Background(), &iam.CreateRoleInput{
		RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust.JSON()), Tags: iamTags(isManaged)}))
}

// seedCluttered is seed plus everything else AWS makes teardown remove
// first: more policy versions, an inline and a second attached policy on the
// role, and on the user a second key, a console password, an inline policy
// and an attached policy.
func (w *world) seedCluttered() {
	w.t.Helper()
	w.seed(true, 3)
	ctx := context.Background()
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:DescribeImages","Resource":"*"}]}`
	for range 2 {
		must(w.a.IAM().CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{
			PolicyArn: aws.String(w.policyARN()), PolicyDocument: aws.String(doc), SetAsDefault: true}))
	}
	extra := must(w.a.IAM().CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("ReadOnlyExtra"), PolicyDocument: aws.String(doc)}))
	must(w.a.IAM().AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(DefaultRole), PolicyArn: extra.Policy.Arn}))
	must(w.a.IAM().PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(DefaultRole), PolicyName: aws.String("inline-role"), PolicyDocument: aws.String(doc)}))
	must(w.a.IAM().CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(DefaultUser)}))
	must(w.a.IAM().CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(DefaultUser), Password: aws.String("Correct-Horse-9")}))
	must(w.a.IAM().PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(DefaultUser), PolicyName: aws.String("inline-user"), PolicyDocument: aws.String(doc)}))
	must(w.a.IAM().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(DefaultUser), PolicyArn: extra.Policy.Arn}))
	w.a.ResetCalls()
}

// must returns v, or stops the test (by a panic, which fails it with a
// trace) when preparing the fake failed.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("preparing the fake: %v", err))
	}
	return v
}

// run plans and applies with o, and returns the plan and Apply's error.
func (w *world) run(o Options) (*Plan, error) {
	w.t.Helper()
	p, err := w.td.Plan(context.Background(), o)
	if err != nil {
		return nil, err
	}
	return p, w.td.Apply(context.Background(), p)
}

// exists reports which of the four resources the account still holds.
func (w *world) exists() map[Kind]bool {
	w.t.Helper()
	ctx := context.Background()
	check := func(err error) bool {
		if err == nil {
			return true
		}
		if !awsx.IsNotFound(err) {
			w.t.Fatalf("checking the fake: %v", err)
		}
		return false
	}
	_, repoErr := w.a.ECR().DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{DefaultRepository}})
	_, policyErr := w.a.IAM().GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(w.policyARN())})
	_, roleErr := w.a.IAM().GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(DefaultRole)})
	_, userErr := w.a.IAM().GetUser(ctx, &iam.GetUserInput{UserName: aws.String(DefaultUser)})
	return map[Kind]bool{KindRepository: check(repoErr), KindPolicy: check(policyErr), KindRole: check(roleErr), KindUser: check(userErr)}
}

func (w *world) wantExists(want map[Kind]bool) {
	w.t.Helper()
	got := w.exists()
	for _, k := range []Kind{KindRepository, KindPolicy, KindRole, KindUser} {
		if got[k] != want[k] {
			w.t.Errorf("%s exists = %v, want %v", k, got[k], want[k])
		}
	}
}

var allGone = map[Kind]bool{}

func outcomes(p *Plan) map[Kind]Outcome {
	m := map[Kind]Outcome{}
	for _, r := range p.Resources {
		m[r.Kind] = r.Outcome
	}
	return m
}

func reportOf(p *Plan, k Kind) *Resource {
	for _, r := range p.Resources {
		if r.Kind == k {
			return r
		}
	}
	return nil
}

// indexOf returns the position of the first call of op in ops, -1 if none.
func lastIndex(ops []string, op string) int {
	i := -1
	for j, o := range ops {
		if o == op {
			i = j
		}
	}
	return i
}

func count(ops []string, op string) int {
	n := 0
	for _, o := range ops {
		if o == op {
			n++
		}
	}
	return n
}

// before checks that every call of first happened before the first call of then.
func before(t *testing.T, ops []string, first, then string) {
	t.Helper()
	j := slices.Index(ops, then)
	if j < 0 {
		t.Errorf("%s was never called; calls: %v", then, ops)
		return
	}
	if i := lastIndex(ops, first); i > j {
		t.Errorf("%s called after %s; calls: %v", first, then, ops)
	}
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }
