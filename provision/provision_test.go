package provision

import (
	"context"
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
	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

const (
	account   = "123456789012"
	userARN   = "arn:aws:iam::123456789012:user/circleci"
	roleARN   = "arn:aws:iam::123456789012:role/containerise"
	policyARN = "arn:aws:iam::123456789012:policy/ECRContainerise"
)

var bg = context.Background()

// env is a fake account and a provisioner over it, with a fake clock for
// the propagation waits and a record of the progress log.
type env struct {
	acct *awsfake.Account
	p    *Provisioner
	mu   sync.Mutex
	log  []string
}

func newEnv(t *testing.T, cfg awsfake.Config) *env {
	t.Helper()
	e := &env{acct: awsfake.New(cfg)}
	e.p = e.provisioner()
	return e
}

func (e *env) provisioner() *Provisioner {
	return &Provisioner{
		IAM: e.acct.IAM(), ECR: e.acct.ECR(), STS: e.acct.STS(),
		Logf: func(format string, args ...any) {
			e.mu.Lock()
			e.log = append(e.log, fmt.Sprintf(format, args...))
			e.mu.Unlock()
		},
		now: e.acct.Now,
		sleep: func(ctx context.Context, d time.Duration) error {
			e.acct.Advance(d)
			return ctx.Err()
		},
	}
}

func (e *env) logText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, "\n")
}

func defaults() Options {
	return Options{Repository: names.Repository, Policy: names.Policy, User: names.User, Role: names.Role, Region: "us-east-1"}
}

// run runs setup as a command without a terminal does: a rotation's old
// key is kept, for lack of confirmation.
func (e *env) run(t *testing.T, o Options) *Result {
	t.Helper()
	res := e.runPending(t, o)
	if err := e.p.Finish(bg, res, false); err != nil {
		t.Fatal(err)
	}
	return res
}

// runPending runs setup and leaves a rotation's old key to the test.
func (e *env) runPending(t *testing.T, o Options) *Result {
	t.Helper()
	res, err := e.p.Run(bg, o)
	if err != nil {
		t.Fatalf("setup: %v\nlog:\n%s", err, e.logText())
	}
	return res
}

// report is the result's report on a kind of resource.
func report(r *Result, kind string) *resource.Report {
	for _, rep := range r.Resources {
		if rep.Kind == kind {
			return rep
		}
	}
	return nil
}

// notes are the result's notes, without their ways forward.
func notes(r *Result) []string {
	var out []string
	for _, n := range r.Notes {
		out = append(out, n.Text)
	}
	return out
}

// nextIn reports whether a note suggests next.
func nextIn(r *Result, next hint.Next) bool {
	for _, n := range r.Notes {
		if n.Next == next {
			return true
		}
	}
	return false
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func wantPerms() policies.Document {
	return policies.Permissions(policies.Target{Region: "us-east-1", AccountID: account, Repository: names.Repository}, policies.PermissionOptions{})
}

// checkConverged checks the account holds what setup makes, with exactly
// one access key and wantVersions versions of the policy.
func checkConverged(t *testing.T, a *awsfake.Account, wantVersions int) {
	t.Helper()
	ic, ec := a.IAM(), a.ECR()
	repos, err := ec.DescribeRepositories(bg, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{names.Repository}})
	if err != nil {
		t.Fatalf("repository: %v", err)
	}
	tags := must(ec.ListTagsForResource(bg, &ecr.ListTagsForResourceInput{ResourceArn: repos.Repositories[0].RepositoryArn})).Tags
	if !managed.ECR(tags) {
		t.Errorf("repository not tagged: %+v", tags)
	}
	pol, err := ic.GetPolicy(bg, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	doc := must(ic.GetPolicyVersion(bg, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: pol.Policy.DefaultVersionId}))
	if ok, _ := policies.Equivalent(*doc.PolicyVersion.Document, wantPerms()); !ok {
		t.Errorf("policy document: %s", *doc.PolicyVersion.Document)
	}
	if vs := must(ic.ListPolicyVersions(bg, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(policyARN)})).Versions; len(vs) != wantVersions {
		t.Errorf("policy has %d versions, want %d", len(vs), wantVersions)
	}
	if _, err := ic.GetUser(bg, &iam.GetUserInput{UserName: aws.String(names.User)}); err != nil {
		t.Fatalf("user: %v", err)
	}
	if keys := must(ic.ListAccessKeys(bg, &iam.ListAccessKeysInput{UserName: aws.String(names.User)})).AccessKeyMetadata; len(keys) != 1 {
		t.Errorf("user has %d access keys, want 1", len(keys))
	}
	role, err := ic.GetRole(bg, &iam.GetRoleInput{RoleName: aws.String(names.Role)})
	if err != nil {
		t.Fatalf("role: %v", err)
	}
	if ok, _ := policies.Equivalent(*role.Role.AssumeRolePolicyDocument, policies.Trust(userARN)); !ok {
		d, _ := url.QueryUnescape(*role.Role.AssumeRolePolicyDocument)
		t.Errorf("trust policy: %s", d)
	}
	att := must(ic.ListAttachedRolePolicies(bg, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(names.Role)})).AttachedPolicies
	if len(att) != 1 || *att[0].PolicyArn != policyARN {
		t.Errorf("attached: %+v", att)
	}
}

// policyTags returns the policy's tags by key.
func policyTags(t *testing.T, a *awsfake.Account) map[string]string {
	t.Helper()
	pol, err := a.IAM().GetPolicy(bg, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	out := map[string]string{}
	for _, tag := range pol.Policy.Tags {
		out[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return out
}

func countOp(ops []string, op string) int {
	n := 0
	for _, o := range ops {
		if o == op {
			n++
		}
	}
	return n
}

func statuses(r *Result) string {
	var s []string
	for _, res := range r.Resources {
		s = append(s, res.Kind+"="+string(res.Status))
	}
	return strings.Join(s, " ")
}

func TestColdSetupThenRerun(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.acct.SetLatency(100 * time.Millisecond)
	res := e.run(t, defaults())
	calls, mutating, rounds := len(e.acct.Calls()), len(e.acct.Mutating()), e.acct.Rounds()
	t.Logf("cold setup: %d calls, %d mutating, %d rounds: %s", calls, mutating, rounds, strings.Join(e.acct.Ops(), " "))
	if got := statuses(res); got != "repository=created policy=created user=created access-key=created role=created" {
		t.Fatalf("statuses: %s", got)
	}
	checkConverged(t, e.acct, 1)
	if !res.SecretAvailable || len(res.Variables.SecretAccessKey) != 40 || !strings.HasPrefix(res.Variables.AccessKeyID, "AKIA") {
		t.Fatalf("variables %+v", res.Variables)
	}
	if res.Variables.RoleARN != roleARN || res.Variables.Region != "us-east-1" || res.Account != account {
		t.Fatalf("result %+v", res)
	}
	if strings.Contains(e.logText(), res.Variables.SecretAccessKey) {
		t.Fatal("the secret reached the log")
	}
	if rounds > 6 {
		t.Errorf("cold setup took %d rounds, want at most 6", rounds)
	}
	if calls != 14 || mutating != 6 {
		t.Errorf("cold setup made %d calls, %d mutating (want 14, 6): %v", calls, mutating, e.acct.Ops())
	}
	// The policy's version tags come with CreatePolicy: no TagPolicy.
	if tags := policyTags(t, e.acct); tags[resource.TagDefaultVersion] != "v1" || tags[resource.TagDocumentSHA256] != wantPerms().Digest() || tags[managed.TagKey] != managed.TagValue {
		t.Errorf("policy tags %v", tags)
	}

	e.acct.ResetCalls()
	again := e.run(t, defaults())
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("rerun made mutating calls: %v", m)
	}
	calls, rounds = len(e.acct.Calls()), e.acct.Rounds()
	t.Logf("rerun: %d calls, %d rounds: %s", calls, rounds, strings.Join(e.acct.Ops(), " "))
	// The policy's tags show its default version holds the wanted
	// document: no GetPolicyVersion, so two levels of reads.
	if calls != 8 || rounds != 2 || countOp(e.acct.Ops(), "iam.GetPolicyVersion") != 0 {
		t.Errorf("rerun made %d calls in %d rounds, want 8 in 2 (no GetPolicyVersion): %v", calls, rounds, e.acct.Ops())
	}
	if got := statuses(again); got != "repository=unchanged policy=unchanged user=unchanged access-key=unchanged role=unchanged" {
		t.Fatalf("statuses: %s", got)
	}
	if again.SecretAvailable || again.Variables.SecretAccessKey != "" || again.Variables.AccessKeyID != res.Variables.AccessKeyID {
		t.Fatalf("rerun variables %+v", again.Variables)
	}
	// The command words the way to a new key (setup --rotate-key).
	if !nextIn(again, hint.RotateKey) {
		t.Fatalf("rerun does not say how to get a new key: %q", notes(again))
	}
}

// Managed pieces a test can put in the account before setup runs.
type piece int

const (
	pRepo piece = 1 << iota
	pPolicy
	pUser
	pKey
	pRole
	pAttach
)

func seed(t *testing.T, a *awsfake.Account, have piece, tags bool) {
	t.Helper()
	ic := a.IAM()
	var iamTags []iamtypes.Tag
	var ecrTags []ecrtypes.Tag
	if tags {
		iamTags, ecrTags = managed.IAMTags(), managed.ECRTags()
	}
	if have&pRepo != 0 {
		must(a.ECR().CreateRepository(bg, &ecr.CreateRepositoryInput{RepositoryName: aws.String(names.Repository), Tags: ecrTags}))
	}
	if have&pPolicy != 0 {
		must(ic.CreatePolicy(bg, &iam.CreatePolicyInput{PolicyName: aws.String(names.Policy), PolicyDocument: aws.String(wantPerms().JSON()), Tags: iamTags}))
	}
	if have&(pUser|pRole) != 0 {
		must(ic.CreateUser(bg, &iam.CreateUserInput{UserName: aws.String(names.User), Tags: iamTags}))
	}
	if have&pKey != 0 {
		must(ic.CreateAccessKey(bg, &iam.CreateAccessKeyInput{UserName: aws.String(names.User)}))
	}
	if have&pRole != 0 {
		must(ic.CreateRole(bg, &iam.CreateRoleInput{RoleName: aws.String(names.Role), AssumeRolePolicyDocument: aws.String(policies.Trust(userARN).JSON()), Tags: iamTags}))
	}
	if have&pAttach != 0 {
		must(ic.AttachRolePolicy(bg, &iam.AttachRolePolicyInput{RoleName: aws.String(names.Role), PolicyArn: aws.String(policyARN)}))
	}
	if have&pRole != 0 && have&pUser == 0 {
		// The role outlived its user: its trust now names the user's old ID.
		must(ic.DeleteUser(bg, &iam.DeleteUserInput{UserName: aws.String(names.User)}))
	}
}

func TestPartialState(t *testing.T) {
	for have := piece(0); have < 1<<6; have++ {
		if have&pKey != 0 && have&pUser == 0 || have&pAttach != 0 && (have&pRole == 0 || have&pPolicy == 0) {
			continue
		}
		t.Run(fmt.Sprintf("have=%06b", have), func(t *testing.T) {
			e := newEnv(t, awsfake.Config{})
			seed(t, e.acct, have, true)
			e.acct.ResetCalls()
			res := e.run(t, defaults())
			checkConverged(t, e.acct, 1)
			if res.SecretAvailable != (have&pKey == 0) {
				t.Errorf("secret available %v with have=%06b", res.SecretAvailable, have)
			}
			for _, op := range e.acct.Mutating() {
				if op == "iam.CreateAccessKey" && have&pKey != 0 {
					t.Errorf("a second key was created")
				}
			}
			e.acct.ResetCalls()
			e.run(t, defaults())
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Errorf("rerun made mutating calls: %v", m)
			}
		})
	}
}

func TestDriftRepaired(t *testing.T) {
	other := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`
	ec2Trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	cases := []struct {
		name     string
		drift    func(ic *awsfake.IAM)
		mutating string
		versions int
	}{
		{"policy document", func(ic *awsfake.IAM) {
			must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), PolicyDocument: aws.String(other), SetAsDefault: true}))
		}, "iam.CreatePolicyVersion iam.TagPolicy", 3},
		{"trust", func(ic *awsfake.IAM) {
			must(ic.UpdateAssumeRolePolicy(bg, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(names.Role), PolicyDocument: aws.String(ec2Trust)}))
		}, "iam.UpdateAssumeRolePolicy", 1},
		{"detached", func(ic *awsfake.IAM) {
			must(ic.DetachRolePolicy(bg, &iam.DetachRolePolicyInput{RoleName: aws.String(names.Role), PolicyArn: aws.String(policyARN)}))
		}, "iam.AttachRolePolicy", 1},
		{"all three", func(ic *awsfake.IAM) {
			must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), PolicyDocument: aws.String(other), SetAsDefault: true}))
			must(ic.UpdateAssumeRolePolicy(bg, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(names.Role), PolicyDocument: aws.String(ec2Trust)}))
			must(ic.DetachRolePolicy(bg, &iam.DetachRolePolicyInput{RoleName: aws.String(names.Role), PolicyArn: aws.String(policyARN)}))
		}, "iam.CreatePolicyVersion iam.TagPolicy iam.UpdateAssumeRolePolicy iam.AttachRolePolicy", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, awsfake.Config{})
			e.run(t, defaults())
			c.drift(e.acct.IAM())

			e.acct.ResetCalls()
			plan := e.run(t, Options{Repository: names.Repository, Policy: names.Policy, User: names.User, Role: names.Role, Region: "us-east-1", DryRun: true})
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Fatalf("dry run made mutating calls: %v", m)
			}
			if !strings.Contains(statuses(plan), "would-update") {
				t.Fatalf("dry run plan: %s", statuses(plan))
			}

			e.acct.ResetCalls()
			res := e.run(t, defaults())
			got := e.acct.Mutating()
			for _, op := range strings.Fields(c.mutating) {
				found := false
				for _, g := range got {
					found = found || g == op
				}
				if !found {
					t.Errorf("no %s among %v", op, got)
				}
			}
			if len(got) != len(strings.Fields(c.mutating)) {
				t.Errorf("mutating calls %v, want %s", got, c.mutating)
			}
			if !strings.Contains(statuses(res), "updated") {
				t.Errorf("statuses: %s", statuses(res))
			}
			checkConverged(t, e.acct, c.versions)
			e.acct.ResetCalls()
			e.run(t, defaults())
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Errorf("rerun made mutating calls: %v", m)
			}
			if ops := e.acct.Ops(); len(ops) != 8 || countOp(ops, "iam.GetPolicyVersion") != 0 {
				t.Errorf("rerun after the repair read the policy's document: %v", ops)
			}
		})
	}
}

func TestPolicyVersionLimit(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, defaults())
	ic := e.acct.IAM()
	for i := 2; i <= 5; i++ {
		doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"S%d","Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`, i)
		must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), PolicyDocument: aws.String(doc), SetAsDefault: i == 3}))
	}
	// v3 is the default; v1 the oldest non-default.
	e.acct.ResetCalls()
	e.run(t, defaults())
	if got := strings.Join(e.acct.Mutating(), " "); got != "iam.CreatePolicyVersion iam.DeletePolicyVersion iam.CreatePolicyVersion iam.TagPolicy" {
		t.Fatalf("mutating calls: %s", got)
	}
	if tags := policyTags(t, e.acct); tags[resource.TagDefaultVersion] != "v6" {
		t.Fatalf("policy tags %v, want default version v6", tags)
	}
	vs := must(ic.ListPolicyVersions(bg, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(policyARN)})).Versions
	var ids []string
	for _, v := range vs {
		ids = append(ids, *v.VersionId)
	}
	if strings.Join(ids, ",") != "v6,v5,v4,v3,v2" || !vs[0].IsDefaultVersion {
		t.Fatalf("versions %v", ids)
	}
	checkConverged(t, e.acct, 5)
}

func TestHandMadeResourcesAreUsedAsTheyAre(t *testing.T) {
	// The blog's console steps: untagged resources, its own statement IDs,
	// and a user without a key yet.
	e := newEnv(t, awsfake.Config{})
	seed(t, e.acct, pRepo|pUser|pRole, false)
	ic := e.acct.IAM()
	blog := wantPerms()
	for i := range blog.Statement {
		blog.Statement[i].Sid = fmt.Sprintf("VisualEditor%d", i)
	}
	must(ic.CreatePolicy(bg, &iam.CreatePolicyInput{PolicyName: aws.String(names.Policy), PolicyDocument: aws.String(blog.JSON())}))
	must(ic.AttachRolePolicy(bg, &iam.AttachRolePolicyInput{RoleName: aws.String(names.Role), PolicyArn: aws.String(policyARN)}))

	// Unconfirmed, setup adds no key to a user it did not make, and says so.
	e.acct.ResetCalls()
	unconfirmed := e.run(t, defaults())
	if m := e.acct.Mutating(); len(m) != 0 || report(unconfirmed, resource.KindAccessKey).Status != resource.Skipped || !nextIn(unconfirmed, hint.Confirm) {
		t.Fatalf("unconfirmed: mutating calls %v, statuses %s, notes %q", m, statuses(unconfirmed), notes(unconfirmed))
	}

	e.acct.ResetCalls()
	confirmed := defaults()
	confirmed.Confirmed = true
	res := e.run(t, confirmed)
	if got := strings.Join(e.acct.Mutating(), " "); got != "iam.CreateAccessKey" {
		t.Fatalf("mutating calls: %s", got)
	}
	if got := statuses(res); got != "repository=unmanaged policy=unmanaged user=unmanaged access-key=created role=unmanaged" {
		t.Fatalf("statuses: %s", got)
	}
	if len(res.Warnings) != 0 {
		t.Fatalf("warnings about equivalent hand-made resources: %q", res.Warnings)
	}
	if !res.SecretAvailable {
		t.Fatal("no secret for the new key")
	}
	e.acct.ResetCalls()
	e.run(t, defaults())
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("rerun made mutating calls: %v", m)
	}
}

func TestHandMadeRoleThatDiffersIsLeftAlone(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	ic := e.acct.IAM()
	// The blog's first step: a role trusting EC2, nothing attached.
	ec2Trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	must(ic.CreateRole(bg, &iam.CreateRoleInput{RoleName: aws.String(names.Role), AssumeRolePolicyDocument: aws.String(ec2Trust)}))
	e.acct.ResetCalls()
	res := e.run(t, defaults())
	for _, op := range e.acct.Mutating() {
		if op == "iam.UpdateAssumeRolePolicy" || op == "iam.AttachRolePolicy" || op == "iam.CreateRole" {
			t.Fatalf("changed the hand-made role: %v", e.acct.Mutating())
		}
	}
	role := report(res, resource.KindRole)
	if role.Status != resource.Unmanaged || role.Managed || len(role.Changes) == 0 {
		t.Fatalf("role %+v", role)
	}
	w := strings.Join(res.Warnings, "\n")
	if !strings.Contains(w, "role containerise is not managed") || !strings.Contains(w, "policy ECRContainerise is not attached") {
		t.Fatalf("warnings %q", res.Warnings)
	}
	got := must(ic.GetRole(bg, &iam.GetRoleInput{RoleName: aws.String(names.Role)})).Role
	if ok, _ := policies.Equivalent(*got.AssumeRolePolicyDocument, must(policies.Parse(ec2Trust))); !ok {
		t.Fatal("the hand-made role's trust changed")
	}
}

func TestAccessKeys(t *testing.T) {
	rotate := func() Options { o := defaults(); o.RotateKey = true; return o }

	t.Run("two keys refuse rotation before any write", func(t *testing.T) {
		e := newEnv(t, awsfake.Config{})
		e.run(t, defaults())
		must(e.acct.IAM().CreateAccessKey(bg, &iam.CreateAccessKeyInput{UserName: aws.String(names.User)}))
		e.acct.ResetCalls()
		_, err := e.p.Run(bg, rotate())
		if err == nil || !strings.Contains(err.Error(), "2 access keys") || !strings.Contains(err.Error(), "aws iam delete-access-key --user-name circleci") {
			t.Fatalf("error: %v", err)
		}
		if m := e.acct.Mutating(); len(m) != 0 {
			t.Fatalf("mutating calls: %v", m)
		}
		// Without --rotate-key two keys are reported, not an error.
		res := e.run(t, defaults())
		if !strings.Contains(strings.Join(notes(res), "\n"), "2 access keys") {
			t.Fatalf("notes %q", notes(res))
		}
	})

	t.Run("rotation without confirmation keeps the old key", func(t *testing.T) {
		e := newEnv(t, awsfake.Config{})
		first := e.run(t, defaults())
		res := e.run(t, rotate())
		if !res.SecretAvailable || res.Variables.AccessKeyID == first.Variables.AccessKeyID {
			t.Fatalf("no new key: %+v", res.Variables)
		}
		keys := must(e.acct.IAM().ListAccessKeys(bg, &iam.ListAccessKeysInput{UserName: aws.String(names.User)})).AccessKeyMetadata
		if len(keys) != 2 {
			t.Fatalf("%d keys", len(keys))
		}
		if n := strings.Join(notes(res), "\n"); !strings.Contains(n, "aws iam delete-access-key --user-name circleci --access-key-id "+first.Variables.AccessKeyID) {
			t.Fatalf("notes do not say how to delete the old key: %q", notes(res))
		}
		e.acct.ResetCalls()
		e.run(t, defaults())
		if m := e.acct.Mutating(); len(m) != 0 {
			t.Fatalf("rerun made mutating calls: %v", m)
		}
	})

	t.Run("confirmed rotation deletes the old key after showing the new one", func(t *testing.T) {
		e := newEnv(t, awsfake.Config{})
		first := e.run(t, defaults())
		res := e.runPending(t, rotate())
		asked := *res.Rotation
		if asked.OldKeyID != first.Variables.AccessKeyID || asked.NewKeyID != res.Variables.AccessKeyID || res.Variables.SecretAccessKey == "" {
			t.Fatalf("asked %+v", asked)
		}
		if err := e.p.Finish(bg, res, true); err != nil {
			t.Fatal(err)
		}
		keys := must(e.acct.IAM().ListAccessKeys(bg, &iam.ListAccessKeysInput{UserName: aws.String(names.User)})).AccessKeyMetadata
		if len(keys) != 1 || *keys[0].AccessKeyId != res.Variables.AccessKeyID {
			t.Fatalf("keys %+v", keys)
		}
		if strings.Contains(e.logText(), res.Variables.SecretAccessKey) {
			t.Fatal("the secret reached the log")
		}
	})

	t.Run("declined rotation", func(t *testing.T) {
		e := newEnv(t, awsfake.Config{})
		e.run(t, defaults())
		res := e.runPending(t, rotate())
		if err := e.p.Finish(bg, res, false); err != nil {
			t.Fatal(err)
		}
		if k := report(res, resource.KindAccessKey); k.Status != resource.Created || !strings.Contains(strings.Join(k.Changes, " "), "kept") {
			t.Fatalf("key %+v", k)
		}
	})

	t.Run("rotation with no key just creates one", func(t *testing.T) {
		e := newEnv(t, awsfake.Config{})
		res := e.run(t, rotate())
		if !res.SecretAvailable {
			t.Fatal("no key")
		}
		checkConverged(t, e.acct, 1)
	})
}

func TestRotationWhoseOldKeyDeletionFails(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	first := e.run(t, defaults())
	e.acct.FailOperation("iam.DeleteAccessKey", awsfake.ServerError())
	o := defaults()
	o.RotateKey = true
	res := e.runPending(t, o)
	err := e.p.Finish(bg, res, true)
	if err == nil || !strings.Contains(err.Error(), "deleting old access key "+first.Variables.AccessKeyID) {
		t.Fatalf("error: %v", err)
	}
	if res == nil || !res.SecretAvailable {
		t.Fatal("the new key's secret was lost")
	}
	e.acct.ClearFaults()
	e.acct.ResetCalls()
	e.run(t, defaults())
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("rerun made mutating calls: %v", m)
	}
	if keys := must(e.acct.IAM().ListAccessKeys(bg, &iam.ListAccessKeysInput{UserName: aws.String(names.User)})).AccessKeyMetadata; len(keys) != 2 {
		t.Fatalf("%d keys", len(keys))
	}
}

func TestInvalidPrincipalIsWaitedOut(t *testing.T) {
	e := newEnv(t, awsfake.Config{PrincipalDelay: 12 * time.Second})
	start := e.acct.Now()
	e.run(t, defaults())
	checkConverged(t, e.acct, 1)
	if waited := e.acct.Now().Sub(start); waited < 12*time.Second || waited > 30*time.Second {
		t.Fatalf("waited %s of fake time", waited)
	}
	if !strings.Contains(e.logText(), "waiting for IAM to propagate user circleci") {
		t.Fatalf("log does not say what it waits for:\n%s", e.logText())
	}
}

// The case: a role refused as "Invalid principal" for 20 s is
// waited out within the default bound.
func TestInvalidPrincipalFor20sIsWaitedOut(t *testing.T) {
	e := newEnv(t, awsfake.Config{PrincipalDelay: 20 * time.Second})
	start := e.acct.Now()
	e.run(t, defaults())
	checkConverged(t, e.acct, 1)
	if waited := e.acct.Now().Sub(start); waited < 20*time.Second || waited > DefaultPropagationWait {
		t.Fatalf("waited %s of fake time; want 20s to %s", waited, DefaultPropagationWait)
	}
}

func TestInvalidPrincipalBounded(t *testing.T) {
	e := newEnv(t, awsfake.Config{PrincipalDelay: time.Hour})
	o := defaults()
	o.PropagationWait = 5 * time.Second
	res, err := e.p.Run(bg, o)
	var mal *iamtypes.MalformedPolicyDocumentException
	// The command words the way forward (--wait).
	var re *resource.Error
	if !errors.As(err, &mal) || !strings.Contains(err.Error(), "creating role containerise") || !errors.As(err, &re) || re.Next != hint.WaitLonger {
		t.Fatalf("error: %v", err)
	}
	if res == nil || !res.SecretAvailable {
		t.Fatal("the result of a failed run lost the new key's secret")
	}
	if d := e.acct.Now().Sub(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); d > 6*time.Second {
		t.Fatalf("waited %s, past the bound", d)
	}
	// Once IAM catches up, a rerun converges with the same single key.
	e.acct.SetPrincipalDelay(0)
	e.run(t, defaults())
	checkConverged(t, e.acct, 1)
}

func TestInvalidPrincipalWaitCancelled(t *testing.T) {
	e := newEnv(t, awsfake.Config{PrincipalDelay: time.Hour})
	ctx, cancel := context.WithCancel(bg)
	e.p.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}
	_, err := e.p.Run(ctx, defaults())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error: %v", err)
	}
}

func TestFailureAtEachStepThenRerunConverges(t *testing.T) {
	type scenario struct {
		name    string
		prepare func(t *testing.T, e *env)
		op      string
		version int // policy versions at the end
	}
	var scenarios []scenario
	for _, op := range []string{"ecr.CreateRepository", "iam.CreatePolicy", "iam.CreateUser", "iam.CreateAccessKey", "iam.CreateRole", "iam.AttachRolePolicy"} {
		scenarios = append(scenarios, scenario{name: "cold/" + op, op: op, version: 1})
	}
	drift := func(t *testing.T, e *env) {
		e.run(t, defaults())
		ic := e.acct.IAM()
		for i := 2; i <= 5; i++ {
			must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), SetAsDefault: true,
				PolicyDocument: aws.String(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"S%d","Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`, i))}))
		}
		must(ic.UpdateAssumeRolePolicy(bg, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(names.Role),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}))
		must(ic.DetachRolePolicy(bg, &iam.DetachRolePolicyInput{RoleName: aws.String(names.Role), PolicyArn: aws.String(policyARN)}))
	}
	for _, op := range []string{"iam.CreatePolicyVersion", "iam.ListPolicyVersions", "iam.DeletePolicyVersion", "iam.UpdateAssumeRolePolicy", "iam.AttachRolePolicy"} {
		scenarios = append(scenarios, scenario{name: "drift/" + op, prepare: drift, op: op, version: 5})
	}
	// One drifted version: CreatePolicyVersion needs no pruning.
	scenarios = append(scenarios, scenario{name: "small-drift/iam.CreatePolicyVersion", op: "iam.CreatePolicyVersion", version: 3,
		prepare: func(t *testing.T, e *env) {
			e.run(t, defaults())
			must(e.acct.IAM().CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), SetAsDefault: true,
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`)}))
		}})

	for _, sc := range scenarios {
		for _, applied := range []bool{false, true} {
			name := sc.name
			if applied {
				name += "/response-lost"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, awsfake.Config{})
				if sc.prepare != nil {
					sc.prepare(t, e)
				}
				fault := awsfake.Fault{Op: sc.op, Times: 1, Applied: applied, Err: awsfake.ServerError()}
				if sc.op == "iam.CreateAccessKey" || sc.op == "iam.CreatePolicyVersion" {
					fault.Times = 0 // setup retries this one itself: make it keep failing
				}
				e.acct.Inject(fault)
				// A version made despite the error is seen, and no other made.
				recovers := applied && sc.op == "iam.CreatePolicyVersion" && sc.version == 3
				if _, err := e.p.Run(bg, defaults()); err == nil {
					if !recovers {
						t.Fatal("no error from the failing run")
					}
				} else if !strings.Contains(err.Error(), "ServiceUnavailable") || !strings.Contains(err.Error(), "rerun setup") {
					t.Fatalf("error does not say what to do: %v", err)
				}
				e.acct.ClearFaults()
				e.run(t, defaults())
				checkConverged(t, e.acct, sc.version)
				e.acct.ResetCalls()
				e.run(t, defaults())
				if m := e.acct.Mutating(); len(m) != 0 {
					t.Fatalf("third run made mutating calls: %v", m)
				}
			})
		}
	}
}

// A CreateAccessKey whose answer is lost has made a key whose secret
// nobody has: setup deletes it and creates another, so the key the user is
// left with is the one it printed.
func TestLostCreateAccessKeyAnswer(t *testing.T) {
	for _, fault := range []error{awsfake.ServerError(), awsfake.Throttling()} {
		e := newEnv(t, awsfake.Config{})
		e.acct.Inject(awsfake.Fault{Op: "iam.CreateAccessKey", Times: 2, Applied: true, Err: fault})
		res := e.run(t, defaults())
		keys := must(e.acct.IAM().ListAccessKeys(bg, &iam.ListAccessKeysInput{UserName: aws.String(names.User)})).AccessKeyMetadata
		if len(keys) != 1 || *keys[0].AccessKeyId != res.Variables.AccessKeyID || !res.SecretAvailable {
			t.Fatalf("keys %v, printed %s (secret %v)", keys, res.Variables.AccessKeyID, res.SecretAvailable)
		}
		if got := strings.Count(strings.Join(e.acct.Mutating(), " "), "iam.DeleteAccessKey"); got != 2 {
			t.Fatalf("%d orphan keys deleted, want 2: %v", got, e.acct.Mutating())
		}
	}

	// Answers lost every time: setup gives up, leaving no key without a
	// secret behind, so a rerun creates one.
	e := newEnv(t, awsfake.Config{})
	e.acct.Inject(awsfake.Fault{Op: "iam.CreateAccessKey", Applied: true, Err: awsfake.ServerError()})
	if _, err := e.p.Run(bg, defaults()); err == nil {
		t.Fatal("no error")
	}
	if keys := must(e.acct.IAM().ListAccessKeys(bg, &iam.ListAccessKeysInput{UserName: aws.String(names.User)})).AccessKeyMetadata; len(keys) != 0 {
		t.Fatalf("keys left whose secret is lost: %v", keys)
	}
	e.acct.ClearFaults()
	if res := e.run(t, defaults()); !res.SecretAvailable {
		t.Fatal("the rerun did not create a key")
	}
	checkConverged(t, e.acct, 1)
}

func TestLostCreatePolicyVersionAnswerLeavesNoStrayVersion(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, defaults())
	must(e.acct.IAM().CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), SetAsDefault: true,
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`)}))
	e.acct.Inject(awsfake.Fault{Op: "iam.CreatePolicyVersion", Times: 1, Applied: true, Err: awsfake.ServerError()})
	e.run(t, defaults())
	checkConverged(t, e.acct, 3)

	// Throttled, not made: tried again.
	must(e.acct.IAM().CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), SetAsDefault: true,
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`)}))
	e.acct.Inject(awsfake.Fault{Op: "iam.CreatePolicyVersion", Times: 1, Err: awsfake.Throttling()})
	e.run(t, defaults())
	checkConverged(t, e.acct, 5)
}

func TestConcurrentSetupsConverge(t *testing.T) {
	for i := 0; i < 5; i++ {
		e := newEnv(t, awsfake.Config{})
		e.acct.SetLatency(5 * time.Millisecond)
		var wg sync.WaitGroup
		results := make([]*Result, 2)
		errs := make([]error, 2)
		for j := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := e.provisioner()
				p.now, p.sleep, p.raceWait = nil, nil, 200*time.Millisecond // real time: the other run must move on
				results[j], errs[j] = p.Run(bg, defaults())
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		checkConverged(t, e.acct, 1)
		keys := must(e.acct.IAM().ListAccessKeys(bg, &iam.ListAccessKeysInput{UserName: aws.String(names.User)})).AccessKeyMetadata
		shown := 0
		for _, r := range results {
			if r.Variables.AccessKeyID != *keys[0].AccessKeyId {
				t.Fatalf("a run reports key %s, the user has %s", r.Variables.AccessKeyID, *keys[0].AccessKeyId)
			}
			if r.SecretAvailable {
				shown++
			}
		}
		if shown != 1 {
			t.Fatalf("%d runs showed the secret", shown)
		}
	}
}

func TestDryRunMakesNoMutatingCall(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	o := defaults()
	o.DryRun = true
	res := e.run(t, o)
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("mutating calls: %v", m)
	}
	if got := statuses(res); got != "repository=would-create policy=would-create user=would-create access-key=would-create role=would-create" {
		t.Fatalf("statuses: %s", got)
	}
	if !res.DryRun || res.SecretAvailable || res.Variables.RoleARN != roleARN {
		t.Fatalf("result %+v", res)
	}
}

func TestErrorsSayWhatFailedAndWhatToDo(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.acct.FailOperation("iam.CreateRole", e.acct.AccessDenied("iam:CreateRole"))
	res, err := e.p.Run(bg, defaults())
	want := "creating role containerise: AccessDenied: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "needs iam:CreateRole; see README 'Permissions'") {
		t.Fatalf("error: %v", err)
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
		t.Fatal("the SDK error is not wrapped")
	}
	if report(res, resource.KindRole).Status != resource.Failed || report(res, resource.KindUser).Status != resource.Created {
		t.Fatalf("statuses: %s", statuses(res))
	}

	e = newEnv(t, awsfake.Config{})
	e.acct.FailOperation("iam.GetUser", awsfake.Throttling())
	if _, err := e.p.Run(bg, defaults()); err == nil || !strings.Contains(err.Error(), "reading IAM user circleci: Throttling") {
		t.Fatalf("error: %v", err)
	}
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("a failed read went on to write: %v", m)
	}
}

func TestInvalidNamesRefusedBeforeAnyCall(t *testing.T) {
	for _, o := range []Options{
		{Repository: "Bad_Repo", Policy: "p", User: "u", Role: "r", Region: "us-east-1"},
		{Repository: "repo", Policy: "p p", User: "u", Role: "r", Region: "us-east-1"},
		{Repository: "repo", Policy: "p", User: "u/x", Role: "r", Region: "us-east-1"},
		{Repository: "repo", Policy: "p", User: "u", Role: strings.Repeat("r", 65), Region: "us-east-1"},
		{Repository: "repo", Policy: "p", User: "u", Role: "r", Region: "mars"},
	} {
		e := newEnv(t, awsfake.Config{})
		_, err := e.p.Run(bg, o)
		var u *clierror.UsageError
		if !errors.As(err, &u) {
			t.Fatalf("%+v: error %v is not a usage error", o, err)
		}
		if n := len(e.acct.Calls()); n != 0 {
			t.Fatalf("%d calls before refusing %+v", n, o)
		}
	}
}

// A rerun skips reading the policy's document (GetPolicyVersion) only when
// the policy's tags show its default version holds the wanted document.
// Whatever else happened to the policy, it reads and compares, repairs
// drift, and, when the document is right but the tags are stale, re-tags
// once; the rerun after that makes no mutating call and no read of the
// document.
func TestRerunReadsThePolicyDocumentUnlessItsTagsProveIt(t *testing.T) {
	other := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`
	arn := aws.String(policyARN)
	tag := func(k, v string) iamtypes.Tag { return iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)} }
	withDescribe := func() Options { o := defaults(); o.Grants.AllowDescribeImages = true; return o }
	// Same grants, written differently from setup's JSON.
	sameGrants := wantPerms()
	sameGrants.Statement[0], sameGrants.Statement[1] = sameGrants.Statement[1], sameGrants.Statement[0]

	cases := []struct {
		name    string
		change  func(t *testing.T, e *env) // after a clean setup
		opts    func() Options
		read    bool            // the next run reads the document
		mutates string          // its mutating calls
		status  resource.Status // the policy's status
		version string          // the default version tagged afterwards
	}{
		{name: "plain rerun", change: func(*testing.T, *env) {}, status: resource.Unchanged, version: "v1"},
		{name: "another version made default by hand", change: func(t *testing.T, e *env) {
			ic := e.acct.IAM()
			must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(other)}))
			must(ic.SetDefaultPolicyVersion(bg, &iam.SetDefaultPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v2")}))
		}, read: true, mutates: "iam.CreatePolicyVersion iam.TagPolicy", status: resource.Updated, version: "v3"},
		{name: "an equivalent version made default by hand", change: func(t *testing.T, e *env) {
			ic := e.acct.IAM()
			must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(sameGrants.JSON()), SetAsDefault: true}))
		}, read: true, mutates: "iam.TagPolicy", status: resource.Unchanged, version: "v2"},
		{name: "drifted and tagged as its own version", change: func(t *testing.T, e *env) {
			// Tags naming the drifted default, with that document's digest:
			// consistent, but not the wanted document.
			ic := e.acct.IAM()
			must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: aws.String(other), SetAsDefault: true}))
			must(ic.TagPolicy(bg, &iam.TagPolicyInput{PolicyArn: arn, Tags: []iamtypes.Tag{
				tag(resource.TagDefaultVersion, "v2"), tag(resource.TagDocumentSHA256, must(policies.Parse(other)).Digest())}}))
		}, read: true, mutates: "iam.CreatePolicyVersion iam.TagPolicy", status: resource.Updated, version: "v3"},
		{name: "digest tag edited", change: func(t *testing.T, e *env) {
			must(e.acct.IAM().TagPolicy(bg, &iam.TagPolicyInput{PolicyArn: arn, Tags: []iamtypes.Tag{tag(resource.TagDocumentSHA256, strings.Repeat("0", 64))}}))
		}, read: true, mutates: "iam.TagPolicy", status: resource.Unchanged, version: "v1"},
		{name: "version tag edited", change: func(t *testing.T, e *env) {
			must(e.acct.IAM().TagPolicy(bg, &iam.TagPolicyInput{PolicyArn: arn, Tags: []iamtypes.Tag{tag(resource.TagDefaultVersion, "v7")}}))
		}, read: true, mutates: "iam.TagPolicy", status: resource.Unchanged, version: "v1"},
		{name: "tags emptied", change: func(t *testing.T, e *env) {
			must(e.acct.IAM().TagPolicy(bg, &iam.TagPolicyInput{PolicyArn: arn, Tags: []iamtypes.Tag{tag(resource.TagDefaultVersion, ""), tag(resource.TagDocumentSHA256, "")}}))
		}, read: true, mutates: "iam.TagPolicy", status: resource.Unchanged, version: "v1"},
		{name: "--allow-skip-existing added", change: func(*testing.T, *env) {}, opts: withDescribe,
			read: true, mutates: "iam.CreatePolicyVersion iam.TagPolicy", status: resource.Updated, version: "v2"},
		{name: "--allow-skip-existing dropped", change: func(t *testing.T, e *env) {
			e.run(t, withDescribe())
		}, read: true, mutates: "iam.CreatePolicyVersion iam.TagPolicy", status: resource.Updated, version: "v3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, awsfake.Config{})
			e.acct.SetLatency(20 * time.Millisecond)
			e.run(t, defaults())
			c.change(t, e)
			o := defaults()
			if c.opts != nil {
				o = c.opts()
			}

			// A dry run plans the same reads and changes nothing.
			e.acct.ResetCalls()
			dry := o
			dry.DryRun = true
			e.run(t, dry)
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Fatalf("dry run made mutating calls: %v", m)
			}

			e.acct.ResetCalls()
			res := e.run(t, o)
			ops, rounds := e.acct.Ops(), e.acct.Rounds()
			if read := countOp(ops, "iam.GetPolicyVersion") == 1; read != c.read {
				t.Errorf("read the document: %v, want %v: %v", read, c.read, ops)
			}
			if got := strings.Join(e.acct.Mutating(), " "); got != c.mutates {
				t.Errorf("mutating calls %q, want %q", got, c.mutates)
			}
			if got := report(res, resource.KindPolicy).Status; got != c.status {
				t.Errorf("policy status %s, want %s", got, c.status)
			}
			if !c.read && (len(ops) != 8 || rounds != 2) {
				t.Errorf("%d calls in %d rounds, want 8 in 2: %v", len(ops), rounds, ops)
			}
			tags := policyTags(t, e.acct)
			want := policies.Permissions(policies.Target{Region: o.Region, AccountID: account, Repository: o.Repository}, policies.PermissionOptions{AllowDescribeImages: o.Grants.AllowDescribeImages})
			if tags[resource.TagDefaultVersion] != c.version || tags[resource.TagDocumentSHA256] != want.Digest() {
				t.Errorf("tags %v, want version %s and digest %s", tags, c.version, want.Digest())
			}
			pol := must(e.acct.IAM().GetPolicy(bg, &iam.GetPolicyInput{PolicyArn: arn})).Policy
			doc := must(e.acct.IAM().GetPolicyVersion(bg, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: pol.DefaultVersionId}))
			if same, _ := policies.Equivalent(*doc.PolicyVersion.Document, want); !same || *pol.DefaultVersionId != c.version {
				t.Errorf("default version %s holds %s", *pol.DefaultVersionId, *doc.PolicyVersion.Document)
			}

			// Then a rerun knows the document from the tags.
			e.acct.ResetCalls()
			again := e.run(t, o)
			ops, rounds = e.acct.Ops(), e.acct.Rounds()
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Errorf("the next rerun made mutating calls: %v", m)
			}
			if len(ops) != 8 || rounds != 2 || countOp(ops, "iam.GetPolicyVersion") != 0 {
				t.Errorf("the next rerun: %d calls in %d rounds, want 8 in 2 without GetPolicyVersion: %v", len(ops), rounds, ops)
			}
			if got := statuses(again); got != "repository=unchanged policy=unchanged user=unchanged access-key=unchanged role=unchanged" {
				t.Errorf("statuses: %s", got)
			}
		})
	}
}

// A policy made by an earlier containerise carries only managed-by: the
// first rerun reads its document and tags it, once.
func TestPolicyWithoutVersionTagsIsTaggedOnce(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	seed(t, e.acct, pRepo|pPolicy|pUser|pKey|pRole|pAttach, true)
	e.acct.ResetCalls()
	res := e.run(t, defaults())
	if got := strings.Join(e.acct.Mutating(), " "); got != "iam.TagPolicy" || countOp(e.acct.Ops(), "iam.GetPolicyVersion") != 1 {
		t.Fatalf("calls %v", e.acct.Ops())
	}
	if got := statuses(res); got != "repository=unchanged policy=unchanged user=unchanged access-key=unchanged role=unchanged" {
		t.Fatalf("statuses: %s", got)
	}
	if !strings.Contains(e.logText(), "tagging IAM policy ECRContainerise: its default version v1 holds setup's document") {
		t.Fatalf("the log does not say why the rerun tagged the policy:\n%s", e.logText())
	}
	e.acct.ResetCalls()
	e.run(t, defaults())
	if ops := e.acct.Ops(); len(ops) != 8 || len(e.acct.Mutating()) != 0 {
		t.Fatalf("rerun after tagging: %v", ops)
	}
}

// A policy setup does not manage is read and compared on every run and
// never tagged, even when it carries version tags (copied, say) that would
// match.
func TestUnmanagedPolicyIsAlwaysReadAndNeverTagged(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	seed(t, e.acct, pRepo|pUser|pKey|pRole, true)
	ic := e.acct.IAM()
	must(ic.CreatePolicy(bg, &iam.CreatePolicyInput{PolicyName: aws.String(names.Policy), PolicyDocument: aws.String(wantPerms().JSON()),
		Tags: []iamtypes.Tag{{Key: aws.String(resource.TagDefaultVersion), Value: aws.String("v1")}, {Key: aws.String(resource.TagDocumentSHA256), Value: aws.String(wantPerms().Digest())}}}))
	must(ic.AttachRolePolicy(bg, &iam.AttachRolePolicyInput{RoleName: aws.String(names.Role), PolicyArn: aws.String(policyARN)}))
	for run := 1; run <= 2; run++ {
		e.acct.ResetCalls()
		res := e.run(t, defaults())
		if countOp(e.acct.Ops(), "iam.GetPolicyVersion") != 1 || len(e.acct.Mutating()) != 0 {
			t.Fatalf("run %d: calls %v", run, e.acct.Ops())
		}
		if p := report(res, resource.KindPolicy); p.Status != resource.Unmanaged || p.Managed {
			t.Fatalf("run %d: policy %+v", run, p)
		}
	}
	// Its document changed by hand: reported, left alone, still untagged.
	must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), SetAsDefault: true,
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`)}))
	e.acct.ResetCalls()
	res := e.run(t, defaults())
	if len(e.acct.Mutating()) != 0 || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "policy ECRContainerise is not managed") {
		t.Fatalf("calls %v, warnings %q", e.acct.Mutating(), res.Warnings)
	}
	if tags := policyTags(t, e.acct); tags[resource.TagDefaultVersion] != "v1" {
		t.Fatalf("tags %v", tags)
	}
}

// TagPolicy failing after a new default version fails nothing: the policy
// is right. The rerun reads the document (the tags name the old version),
// finds no drift, and tags it; the rerun after that is a plain one.
func TestTagPolicyFailureAfterNewVersionThenRerunConverges(t *testing.T) {
	drift := func(t *testing.T, e *env) {
		must(e.acct.IAM().CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), SetAsDefault: true,
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`)}))
	}
	for _, c := range []struct {
		name   string
		fault  func(a *awsfake.Account) awsfake.Fault
		retags bool // the rerun must tag
	}{
		{"server error", func(*awsfake.Account) awsfake.Fault {
			return awsfake.Fault{Op: "iam.TagPolicy", Err: awsfake.ServerError()}
		}, true},
		{"access denied", func(a *awsfake.Account) awsfake.Fault {
			return awsfake.Fault{Op: "iam.TagPolicy", Err: a.AccessDenied("iam:TagPolicy")}
		}, true},
		{"response lost", func(*awsfake.Account) awsfake.Fault {
			return awsfake.Fault{Op: "iam.TagPolicy", Applied: true, Err: awsfake.ServerError()}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, awsfake.Config{})
			e.run(t, defaults())
			drift(t, e)
			e.acct.Inject(c.fault(e.acct))
			e.acct.ResetCalls()
			res, err := e.p.Run(bg, defaults())
			if err != nil {
				t.Fatalf("a failed TagPolicy failed setup: %v", err)
			}
			if got := strings.Join(e.acct.Mutating(), " "); got != "iam.CreatePolicyVersion iam.TagPolicy" {
				t.Fatalf("mutating calls: %s", got)
			}
			if p := report(res, resource.KindPolicy); p.Status != resource.Updated {
				t.Fatalf("policy %+v", p)
			}
			if !strings.Contains(e.logText(), "warning: could not tag IAM policy ECRContainerise with its default version") {
				t.Fatalf("no warning in the log:\n%s", e.logText())
			}
			checkConverged(t, e.acct, 3)
			e.acct.ClearFaults()

			e.acct.ResetCalls()
			again := e.run(t, defaults())
			wantMut, wantRead := "", 0
			if c.retags {
				wantMut, wantRead = "iam.TagPolicy", 1
			}
			if got := strings.Join(e.acct.Mutating(), " "); got != wantMut || countOp(e.acct.Ops(), "iam.GetPolicyVersion") != wantRead {
				t.Fatalf("rerun: mutating %q (want %q), calls %v", got, wantMut, e.acct.Ops())
			}
			if p := report(again, resource.KindPolicy); p.Status != resource.Unchanged {
				t.Fatalf("rerun: policy %+v", p)
			}
			if tags := policyTags(t, e.acct); tags[resource.TagDefaultVersion] != "v3" || tags[resource.TagDocumentSHA256] != wantPerms().Digest() {
				t.Fatalf("tags %v", tags)
			}

			e.acct.ResetCalls()
			e.run(t, defaults())
			if ops := e.acct.Ops(); len(ops) != 8 || len(e.acct.Mutating()) != 0 {
				t.Fatalf("third run: %v", ops)
			}
			checkConverged(t, e.acct, 3)
		})
	}
}

// A policy another setup created between the read and CreatePolicy carries
// its version tags already: used as it is, with no TagPolicy.
func TestPolicyCreatedMeanwhileIsNotRetagged(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.acct.Inject(awsfake.Fault{Op: "iam.CreatePolicy", Times: 1, Applied: true,
		Err: &iamtypes.EntityAlreadyExistsException{Message: aws.String("A policy called ECRContainerise already exists.")}})
	res := e.run(t, defaults())
	if p := report(res, resource.KindPolicy); p.Status != resource.Exists || !p.Managed {
		t.Fatalf("policy %+v", p)
	}
	if n := countOp(e.acct.Mutating(), "iam.TagPolicy"); n != 0 {
		t.Fatalf("tagged a policy whose tags were right: %v", e.acct.Mutating())
	}
	checkConverged(t, e.acct, 1)
	e.acct.ResetCalls()
	e.run(t, defaults())
	if ops := e.acct.Ops(); len(ops) != 8 || len(e.acct.Mutating()) != 0 {
		t.Fatalf("rerun: %v", ops)
	}
}

// Tagging the new version does not hold up the attachment: repairing all
// three drifts takes as many rounds as before the tags existed (3 of reads,
// CreatePolicyVersion ‖ UpdateAssumeRolePolicy, TagPolicy ‖ AttachRolePolicy).
func TestTaggingDoesNotDelayTheAttachment(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, defaults())
	ic := e.acct.IAM()
	must(ic.CreatePolicyVersion(bg, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), SetAsDefault: true,
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`)}))
	must(ic.UpdateAssumeRolePolicy(bg, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(names.Role),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}))
	must(ic.DetachRolePolicy(bg, &iam.DetachRolePolicyInput{RoleName: aws.String(names.Role), PolicyArn: aws.String(policyARN)}))
	e.acct.SetLatency(30 * time.Millisecond)
	e.acct.ResetCalls()
	e.run(t, defaults())
	if n, r := len(e.acct.Calls()), e.acct.Rounds(); n != 13 || r != 5 {
		t.Errorf("repair: %d calls in %d rounds, want 13 in 5: %v", n, r, e.acct.Ops())
	}
	checkConverged(t, e.acct, 3)
}
