package teardown

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

func TestTeardownAfterSetupDeletesEverythingInAWSOrder(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 2)

	p, err := w.td.Plan(context.Background(), defaults)
	if err != nil {
		t.Fatal(err)
	}
	if m := w.a.Mutating(); len(m) != 0 {
		t.Fatalf("Plan made mutating calls: %v", m)
	}
	for _, r := range p.Resources {
		if r.State != StateDelete {
			t.Errorf("%s %s planned %s, want delete", r.Kind, r.Name, r.State)
		}
	}
	if repo := reportOf(p, KindRepository); repo.Images == nil || *repo.Images != 2 {
		t.Errorf("repository images = %v, want 2", repo.Images)
	}
	// The command shows each step's action (its tests check the lines).
	if steps := reportOf(p, KindRepository).Steps; len(steps) != 1 || !strings.Contains(steps[0].Action, "its 2 images") {
		t.Errorf("plan does not say how many images the repository holds: %+v", steps)
	}

	if err := w.td.Apply(context.Background(), p); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for k, o := range outcomes(p) {
		if o != OutcomeDeleted {
			t.Errorf("%s outcome %s, want deleted", k, o)
		}
	}
	// The calls of a full teardown: 18 reads, then 6 deletions. Main's 17
	// reads count the policy's document (read for the repositories it
	// grants, issue 24); scan22's 17 the registry scanning configuration
	// (read for setup's rule once the repository is found, issue 22): both
	// together make 18.
	calls := w.a.Calls()
	ops := w.a.Ops()
	mutating := w.a.Mutating()
	w.wantExists(allGone)
	slices.Sort(mutating)
	want := []string{"ecr.DeleteRepository", "iam.DeleteAccessKey", "iam.DeletePolicy", "iam.DeleteRole", "iam.DeleteUser", "iam.DetachRolePolicy"}
	if !slices.Equal(mutating, want) {
		t.Errorf("mutating calls %v, want %v", mutating, want)
	}
	if reads := len(ops) - len(mutating); reads != 18 {
		t.Errorf("%d reads, want 18: %v", reads, ops)
	}
	before(t, ops, "iam.DetachRolePolicy", "iam.DeleteRole")
	before(t, ops, "iam.DetachRolePolicy", "iam.DeletePolicy")
	before(t, ops, "iam.DeleteAccessKey", "iam.DeleteUser")
	// Every read comes before the first change.
	firstChange := slices.IndexFunc(calls, func(c awsfake.Call) bool { return c.Mutating })
	for _, c := range calls[firstChange:] {
		if !c.Mutating {
			t.Errorf("read %s after the first change", c.Op)
		}
	}
}

func TestTeardownRerunFindsEverythingGone(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 1)
	if _, err := w.run(defaults); err != nil {
		t.Fatal(err)
	}
	w.a.ResetCalls()

	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	for k, o := range outcomes(p) {
		if o != OutcomeGone {
			t.Errorf("%s outcome %s, want gone", k, o)
		}
	}
	if m := w.a.Mutating(); len(m) != 0 {
		t.Errorf("rerun made mutating calls: %v", m)
	}
	ops := w.a.Ops()
	slices.Sort(ops)
	// With the role gone, teardown looks for a provider an earlier teardown
	// released but could not delete (none here).
	want := []string{"ecr.DescribeRepositories", "iam.GetPolicy", "iam.GetRole", "iam.GetUser", "iam.ListOpenIDConnectProviders", "sts.GetCallerIdentity"}
	if !slices.Equal(ops, want) {
		t.Errorf("rerun calls %v, want %v", ops, want)
	}
	// The command's "already gone" lines: see its TestTeardownYesDeletesThenRerunSucceeds.
	if len(p.Resources) != 4 {
		t.Errorf("%d resources, want 4", len(p.Resources))
	}
}

func TestTeardownOfClutteredResourcesRemovesWhatBlocksEachDeletion(t *testing.T) {
	w := newWorld(t)
	w.seedCluttered()
	p, err := w.run(defaults)
	if err != nil {
		t.Fatal(err)
	}
	ops := w.a.Ops()
	w.wantExists(allGone)
	for _, c := range []struct{ first, then string }{
		{"iam.DetachRolePolicy", "iam.DeleteRole"},
		{"iam.DeleteRolePolicy", "iam.DeleteRole"},
		{"iam.DeletePolicyVersion", "iam.DeletePolicy"},
		{"iam.DetachRolePolicy", "iam.DeletePolicy"},
		{"iam.DeleteAccessKey", "iam.DeleteUser"},
		{"iam.DeleteLoginProfile", "iam.DeleteUser"},
		{"iam.DetachUserPolicy", "iam.DeleteUser"},
		{"iam.DeleteUserPolicy", "iam.DeleteUser"},
	} {
		before(t, ops, c.first, c.then)
	}
	for op, n := range map[string]int{"iam.DeletePolicyVersion": 2, "iam.DetachRolePolicy": 2, "iam.DeleteAccessKey": 2} {
		if got := count(ops, op); got != n {
			t.Errorf("%s called %d times, want %d", op, got, n)
		}
	}
	// The other policy was only detached: teardown deletes what it names.
	if _, err := w.a.IAM().GetPolicy(context.Background(), &iam.GetPolicyInput{
		PolicyArn: aws.String(fmt.Sprintf("arn:aws:iam::%s:policy/ReadOnlyExtra", w.a.ID()))}); err != nil {
		t.Errorf("ReadOnlyExtra should survive: %v", err)
	}
	if got := len(reportOf(p, KindUser).Steps); got != 6 {
		t.Errorf("user steps %d, want 6 (2 keys, password, detach, inline, user)", got)
	}
}

func TestTeardownUserWithTwoKeysInlinePolicyAndPassword(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 0)
	ctx := context.Background()
	must(w.a.IAM().CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(DefaultUser)}))
	must(w.a.IAM().PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(DefaultUser), PolicyName: aws.String("extra"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`)}))
	must(w.a.IAM().CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(DefaultUser), Password: aws.String("Correct-Horse-9")}))
	w.a.ResetCalls()

	p, err := w.run(defaults)
	if err != nil {
		t.Fatal(err)
	}
	if o := reportOf(p, KindUser).Outcome; o != OutcomeDeleted {
		t.Fatalf("user outcome %s", o)
	}
	ops := w.a.Ops()
	if n := count(ops, "iam.DeleteAccessKey"); n != 2 {
		t.Errorf("DeleteAccessKey called %d times, want 2", n)
	}
	before(t, ops, "iam.DeleteAccessKey", "iam.DeleteUser")
	before(t, ops, "iam.DeleteUserPolicy", "iam.DeleteUser")
	before(t, ops, "iam.DeleteLoginProfile", "iam.DeleteUser")
	w.wantExists(allGone)
}

func TestTeardownLeavesUnmanagedResourcesAlone(t *testing.T) {
	w := newWorld(t)
	w.seed(false, 2)

	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("a plain teardown of hand-made resources should succeed: %v", err)
	}
	for _, r := range p.Resources {
		if r.State != StateUnmanaged || r.Outcome != OutcomeLeftAlone {
			t.Errorf("%s: state %s outcome %s, want unmanaged, left alone", r.Kind, r.State, r.Outcome)
		}
	}
	if m := w.a.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls on unmanaged resources: %v", m)
	}
	w.wantExists(map[Kind]bool{KindRepository: true, KindPolicy: true, KindRole: true, KindUser: true})

	o := defaults
	o.IncludeUnmanaged = true
	p, err = w.run(o)
	if err != nil {
		t.Fatalf("--include-unmanaged: %v", err)
	}
	for k, out := range outcomes(p) {
		if out != OutcomeDeleted {
			t.Errorf("%s outcome %s, want deleted", k, out)
		}
	}
	w.wantExists(allGone)
}

func TestTeardownManagedPolicyOnHandMadeRole(t *testing.T) {
	// The blog's reader made the role by hand; setup then attached its
	// policy to it. Teardown removes the policy (detaching it from the role)
	// and leaves the role.
	w := newWorld(t)
	w.seedWith(map[Kind]bool{KindRepository: true, KindPolicy: true, KindRole: false, KindUser: true}, 0)
	p, err := w.run(defaults)
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(p); o[KindPolicy] != OutcomeDeleted || o[KindRole] != OutcomeLeftAlone {
		t.Errorf("outcomes %v", o)
	}
	w.wantExists(map[Kind]bool{KindRole: true})
}

func TestTeardownPolicyAttachedToForeignRoleIsNotForced(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 1)
	ctx := context.Background()
	w.createRole("deploy", false)
	must(w.a.IAM().AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("deploy"), PolicyArn: aws.String(w.policyARN())}))
	w.a.ResetCalls()

	p, err := w.run(defaults)
	if err == nil {
		t.Fatal("want an error for the policy attached to role deploy")
	}
	policy := reportOf(p, KindPolicy)
	if policy.Outcome != OutcomeFailed {
		t.Fatalf("policy outcome %s, want failed", policy.Outcome)
	}
	for _, s := range []string{"role deploy", "aws iam detach-role-policy --role-name deploy --policy-arn " + w.policyARN(), "rerun teardown"} {
		if !strings.Contains(errText(policy), s) || !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q: %v", s, err)
		}
	}
	if slices.Contains(w.a.Mutating(), "iam.DeletePolicy") {
		t.Error("DeletePolicy called on a policy attached to a foreign role")
	}
	// What is safe is still removed.
	w.wantExists(map[Kind]bool{KindPolicy: true})
	entities := must(w.a.IAM().ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(w.policyARN())}))
	if len(entities.PolicyRoles) != 1 || aws.ToString(entities.PolicyRoles[0].RoleName) != "deploy" {
		t.Errorf("policy attachments %+v, want role deploy only", entities.PolicyRoles)
	}

	// Done what the error says: the rerun completes.
	must(w.a.IAM().DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("deploy"), PolicyArn: aws.String(w.policyARN())}))
	if _, err := w.run(defaults); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	w.wantExists(allGone)
}

func TestTeardownRoleInForeignInstanceProfileIsNotForced(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 1)
	if err := w.a.AddInstanceProfile("web-servers", DefaultRole); err != nil {
		t.Fatal(err)
	}

	p, err := w.run(defaults)
	if err == nil {
		t.Fatal("want an error for the role in instance profile web-servers")
	}
	role := reportOf(p, KindRole)
	if role.State != StateBlocked || role.Outcome != OutcomeFailed {
		t.Fatalf("role state %s outcome %s, want blocked, failed", role.State, role.Outcome)
	}
	for _, s := range []string{"instance profile web-servers", "containerise did not create",
		"aws iam remove-role-from-instance-profile --instance-profile-name web-servers --role-name containerise", "rerun teardown"} {
		if !strings.Contains(errText(role), s) {
			t.Errorf("role error does not contain %q: %s", s, errText(role))
		}
	}
	for _, op := range []string{"iam.RemoveRoleFromInstanceProfile", "iam.DeleteRole"} {
		if slices.Contains(w.a.Mutating(), op) {
			t.Errorf("%s called on a role in a foreign instance profile", op)
		}
	}
	if o := outcomes(p); o[KindPolicy] != OutcomeDeleted || o[KindUser] != OutcomeDeleted || o[KindRepository] != OutcomeDeleted {
		t.Errorf("the rest should be deleted: %v", o)
	}
	w.wantExists(map[Kind]bool{KindRole: true})

	must(w.a.IAM().RemoveRoleFromInstanceProfile(context.Background(), &iam.RemoveRoleFromInstanceProfileInput{
		InstanceProfileName: aws.String("web-servers"), RoleName: aws.String(DefaultRole)}))
	if _, err := w.run(defaults); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	w.wantExists(allGone)
}

func TestTeardownPolicyAttachedToTheUser(t *testing.T) {
	ctx := context.Background()
	t.Run("user deleted too: detached with it", func(t *testing.T) {
		w := newWorld(t)
		w.seed(true, 0)
		must(w.a.IAM().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(DefaultUser), PolicyArn: aws.String(w.policyARN())}))
		w.a.ResetCalls()
		if _, err := w.run(defaults); err != nil {
			t.Fatal(err)
		}
		before(t, w.a.Ops(), "iam.DetachUserPolicy", "iam.DeletePolicy")
		w.wantExists(allGone)
	})
	t.Run("user left alone: the policy is blocked", func(t *testing.T) {
		w := newWorld(t)
		w.seedWith(map[Kind]bool{KindRepository: true, KindPolicy: true, KindRole: true, KindUser: false}, 0)
		must(w.a.IAM().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(DefaultUser), PolicyArn: aws.String(w.policyARN())}))
		w.a.ResetCalls()
		p, err := w.run(defaults)
		if err == nil || !strings.Contains(errText(reportOf(p, KindPolicy)), "user circleci") {
			t.Fatalf("want the policy blocked by user circleci, got %v", err)
		}
		w.wantExists(map[Kind]bool{KindPolicy: true, KindUser: true})
	})
}

// Every mutating operation of a cluttered teardown fails in turn, once
// without effect and once after taking effect (the response was lost). The
// run reports the failure, naming the resource; the rerun completes; a third
// run finds everything gone.
func TestTeardownFailureAtEachStepThenRerunCompletes(t *testing.T) {
	ops := []string{
		"ecr.DeleteRepository",
		"iam.DetachRolePolicy", "iam.DeleteRolePolicy", "iam.DeleteRole",
		"iam.DeletePolicyVersion", "iam.DeletePolicy",
		"iam.DeleteAccessKey", "iam.DeleteLoginProfile", "iam.DetachUserPolicy", "iam.DeleteUserPolicy", "iam.DeleteUser",
	}
	for _, op := range ops {
		for _, applied := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s applied=%v", op, applied), func(t *testing.T) {
				w := newWorld(t)
				w.seedCluttered()
				w.a.Inject(awsfake.Fault{Op: op, Times: 1, Applied: applied, Err: w.a.AccessDenied(strings.Replace(op, ".", ":", 1))})

				p, err := w.run(defaults)
				if err == nil {
					t.Fatal("want the injected failure reported")
				}
				var failed []*Resource
				for _, r := range p.Resources {
					if r.Outcome == OutcomeFailed {
						failed = append(failed, r)
					}
				}
				if len(failed) == 0 {
					t.Fatalf("no resource failed; err %v", err)
				}
				for _, r := range failed {
					prefix := fmt.Sprintf("%s %s", r.Kind, r.Label())
					if !strings.HasPrefix(errText(r), prefix) || !strings.Contains(errText(r), "rerun") {
						t.Errorf("error does not name %s or say to rerun: %s", prefix, errText(r))
					}
				}
				if !strings.Contains(err.Error(), "AccessDenied") {
					t.Errorf("error hides the cause: %v", err)
				}

				w.a.ClearFaults()
				if _, err := w.run(defaults); err != nil {
					t.Fatalf("rerun: %v", err)
				}
				w.wantExists(allGone)
				w.a.ResetCalls()
				if _, err := w.run(defaults); err != nil {
					t.Fatalf("third run: %v", err)
				}
				if m := w.a.Mutating(); len(m) != 0 {
					t.Errorf("third run made mutating calls: %v", m)
				}
			})
		}
	}
}

// Any single call failing, reads included, leaves a state the rerun
// finishes. A failed read stops before any change.
func TestTeardownFailureAtEachCallThenRerunCompletes(t *testing.T) {
	probe := newWorld(t)
	probe.seedCluttered()
	if _, err := probe.run(defaults); err != nil {
		t.Fatal(err)
	}
	n := len(probe.a.Calls())
	for i := 1; i <= n; i++ {
		t.Run(fmt.Sprint("call ", i), func(t *testing.T) {
			w := newWorld(t)
			w.seedCluttered()
			w.a.FailCall(i, awsfake.ServerError())
			p, err := w.td.Plan(context.Background(), defaults)
			if err != nil {
				if !strings.Contains(err.Error(), "nothing was deleted") {
					t.Errorf("read error does not say nothing was deleted: %v", err)
				}
				if m := w.a.Mutating(); len(m) != 0 {
					t.Errorf("mutating calls after a failed read: %v", m)
				}
			} else if err := w.td.Apply(context.Background(), p); err == nil {
				t.Fatalf("call %d failed but Apply reported success", i)
			}
			w.a.ClearFaults()
			if _, err := w.run(defaults); err != nil {
				t.Fatalf("rerun: %v", err)
			}
			w.wantExists(allGone)
		})
	}
}

func TestTeardownStalePlanTreatsNoSuchEntityAsDone(t *testing.T) {
	// Two teardowns at once: the second applies a plan made before the first
	// deleted everything.
	w := newWorld(t)
	w.seedCluttered()
	stale, err := w.td.Plan(context.Background(), defaults)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.run(defaults); err != nil {
		t.Fatal(err)
	}
	if err := w.td.Apply(context.Background(), stale); err != nil {
		t.Fatalf("applying a stale plan: %v", err)
	}
	for k, o := range outcomes(stale) {
		if o != OutcomeDeleted {
			t.Errorf("%s outcome %s, want deleted", k, o)
		}
	}
	if !strings.Contains(w.log.String(), "already done") {
		t.Errorf("progress does not say steps were already done:\n%s", w.log.String())
	}
}

func TestTeardownPlanMakesNoChange(t *testing.T) {
	w := newWorld(t)
	w.seedCluttered()
	p, err := w.td.Plan(context.Background(), Options{Repository: DefaultRepository, Policy: DefaultPolicy, Role: DefaultRole, User: DefaultUser, IncludeUnmanaged: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := w.a.Mutating(); len(m) != 0 {
		t.Errorf("Plan made mutating calls: %v", m)
	}
	if p.Steps() == 0 || !p.Deletes() {
		t.Errorf("plan has no steps: %+v", p)
	}
	w.wantExists(map[Kind]bool{KindRepository: true, KindPolicy: true, KindRole: true, KindUser: true})
}

func TestTeardownRunsIndependentCallsConcurrently(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 1)
	w.a.SetLatency(20 * time.Millisecond)
	if _, err := w.run(defaults); err != nil {
		t.Fatal(err)
	}
	// Reads: identity, the policy, its document (the repositories it
	// grants: what the stack is wired from), then every resource, two
	// rounds deep (5 rounds); deletions: one round of
	// detach/key/repository, one of role/user/policy.
	if r := w.a.Rounds(); r > 7 {
		t.Errorf("teardown took %d sequential rounds of calls, want at most 7", r)
	}
}

func TestTeardownCancelled(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 1)
	p, err := w.td.Plan(context.Background(), defaults)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = w.td.Apply(ctx, p)
	if !isCanceled(err) || !strings.Contains(err.Error(), "rerun") {
		t.Fatalf("want a cancellation that says to rerun, got %v", err)
	}
	if m := w.a.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls after cancel: %v", m)
	}
	if _, err := w.run(defaults); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	w.wantExists(allGone)
}

func TestTeardownReadErrorSaysWhatToDo(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 1)
	w.a.FailOperation("iam.GetRole", w.a.AccessDenied("iam:GetRole"))
	_, err := w.td.Plan(context.Background(), defaults)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"reading role containerise", "iam:GetRole", "AccessDenied", "nothing was deleted", "administrator"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q: %v", s, err)
		}
	}
	if strings.Contains(err.Error(), "RequestID") || strings.Contains(err.Error(), "operation error") {
		t.Errorf("error carries SDK noise: %v", err)
	}
}

func TestDeleteUserConflictExplainsWhatElseHoldsTheUser(t *testing.T) {
	w := newWorld(t)
	w.seed(true, 0)
	w.a.FailOperation("iam.DeleteUser", &iamtypes.DeleteConflictException{Message: aws.String("Cannot delete entity, must remove users from group first.")})
	p, err := w.run(defaults)
	if err == nil {
		t.Fatal("want an error")
	}
	if e := errText(reportOf(p, KindUser)); !strings.Contains(e, "aws iam list-groups-for-user --user-name circleci") || !strings.Contains(e, "MFA") {
		t.Errorf("user error does not say what else to remove: %s", e)
	}
}

func TestTeardownRetriesDeleteConflictWhileIAMCatchesUp(t *testing.T) {
	// Right after the detachment, IAM may still count it for a moment.
	w := newWorld(t)
	w.seed(true, 0)
	for _, op := range []string{"iam.DeleteRole", "iam.DeletePolicy", "iam.DeleteUser"} {
		w.a.FailOperationTimes(op, 2, &iamtypes.DeleteConflictException{Message: aws.String("Cannot delete entity, must detach all policies first.")})
	}
	if _, err := w.run(defaults); err != nil {
		t.Fatalf("a passing conflict should be waited out: %v", err)
	}
	w.wantExists(allGone)
	for _, op := range []string{"iam.DeleteRole", "iam.DeletePolicy", "iam.DeleteUser"} {
		if n := count(w.a.Ops(), op); n != 3 {
			t.Errorf("%s called %d times, want 3", op, n)
		}
	}
}
