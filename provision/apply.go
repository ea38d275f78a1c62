package provision

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awscfg"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// Descriptions, from the blog.
const (
	roleDescription = "Allows CircleCI to containerise Docker images"
	policyPrefix    = "Allows Docker images to be built and pushed to the ECR repository "
)

// gate lets a step wait for another one it depends on.
type gate struct {
	done chan struct{}
	ok   bool
}

func newGate() *gate { return &gate{done: make(chan struct{})} }

func (g *gate) open(ok bool) {
	g.ok = ok
	close(g.done)
}

func (g *gate) wait(ctx context.Context) bool {
	select {
	case <-g.done:
		return g.ok
	case <-ctx.Done():
		return false
	}
}

// applier carries one apply's shared state.
type applier struct {
	p  *Provisioner
	o  Options
	pl *plan

	mu                     sync.Mutex // guards the result's notes and warnings
	userReady, policyReady *gate
	// recordVersion is the policy version to record in the policy's tags
	// once the policy step is done (and the attachment free to go on).
	recordVersion string
}

func (a *applier) note(format string, args ...any) {
	a.mu.Lock()
	a.pl.res.Notes = append(a.pl.res.Notes, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

func (a *applier) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.mu.Lock()
	a.pl.res.Warnings = append(a.pl.res.Warnings, msg)
	a.mu.Unlock()
}

// apply makes the plan's writes: the repository, the policy and the user
// concurrently; the access key and the role as soon as the user exists; the
// attachment as soon as the role and the policy exist. A failed step does
// not stop independent ones; steps needing it are skipped. Afterwards, a
// rotation's old key is deleted if confirmed.
func (p *Provisioner) apply(ctx context.Context, o Options, pl *plan) error {
	a := &applier{p: p, o: o, pl: pl, userReady: newGate(), policyReady: newGate()}
	res := pl.res.Resources
	errs := make([]error, len(res))
	var wg sync.WaitGroup
	step := func(i int, fn func(*Resource) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(&res[i]); err != nil {
				errs[i] = err
				res[i].Status = Failed
			}
		}()
	}
	step(iRepo, func(r *Resource) error { return a.repository(ctx, r) })
	step(iPolicy, func(r *Resource) error {
		err := a.policy(ctx, r)
		a.policyReady.open(err == nil)
		if err == nil {
			a.tagVersion(ctx, a.recordVersion)
		}
		return err
	})
	step(iUser, func(r *Resource) error {
		err := a.user(ctx, r)
		a.userReady.open(err == nil)
		return err
	})
	step(iKey, func(r *Resource) error { return a.accessKey(ctx, r) })
	step(iRole, func(r *Resource) error { return a.role(ctx, r) })
	wg.Wait()

	if err := errors.Join(errs...); err != nil {
		if pl.oldKey != "" && res[iKey].Status == Created {
			res[iKey].Changes = []string{"old key " + pl.oldKey + " kept"}
			a.note("old access key %s of user %s is kept because setup failed; once CI uses the new key, delete it: %s",
				pl.oldKey, o.User, deleteKeyCommand(o.User, pl.oldKey))
		}
		return err
	}
	if pl.oldKey != "" && res[iKey].Status == Created {
		return a.retireOldKey(ctx, &res[iKey])
	}
	return nil
}

func (a *applier) repository(ctx context.Context, r *Resource) error {
	if !a.pl.createRepo {
		return nil
	}
	name := a.o.Repository
	a.p.logf("creating ECR repository %s", name)
	out, err := a.p.ECR.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name), Tags: managed.ECRTags()})
	var exists *ecrtypes.RepositoryAlreadyExistsException
	if errors.As(err, &exists) {
		// Created meanwhile, by another setup or by hand: use it.
		d, err := a.p.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
		if err != nil || len(d.Repositories) == 0 {
			return fail("reading ECR repository "+name+" (it was created meanwhile)", "ecr:DescribeRepositories", err)
		}
		r.ARN = aws.ToString(d.Repositories[0].RepositoryArn)
		tags, err := a.p.repoTags(ctx, r.ARN)
		if err != nil {
			return fail("reading the tags of ECR repository "+name, "ecr:ListTagsForResource", err)
		}
		r.Status, r.Managed = Exists, managed.ECR(tags)
		if !r.Managed {
			r.Status = Unmanaged
		}
		return nil
	}
	if err != nil {
		return fail("creating ECR repository "+name, "ecr:CreateRepository", err)
	}
	r.Status, r.ARN = Created, aws.ToString(out.Repository.RepositoryArn)
	return nil
}

func (a *applier) policy(ctx context.Context, r *Resource) error {
	name, doc := a.o.Policy, a.pl.perms.JSON()
	switch {
	case a.pl.createPolicy:
		a.p.logf("creating IAM policy %s", name)
		out, err := a.p.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{
			PolicyName: aws.String(name), PolicyDocument: aws.String(doc),
			Description: aws.String(policyPrefix + a.o.Repository),
			// A new policy's first version is always v1.
			Tags: append(managed.IAMTags(), versionTags("v1", a.pl.perms)...),
		})
		var exists *iamtypes.EntityAlreadyExistsException
		if errors.As(err, &exists) {
			return a.policyCreatedMeanwhile(ctx, r)
		}
		if err != nil {
			return fail("creating policy "+name, "iam:CreatePolicy", err)
		}
		r.Status, r.ARN = Created, aws.ToString(out.Policy.Arn)
		return nil
	case a.pl.updatePolicy:
		version, err := a.newDefaultVersion(ctx)
		if err != nil {
			return err
		}
		r.Status = Updated
		a.recordVersion = version
	case a.pl.retagVersion != "":
		a.recordVersion = a.pl.retagVersion
	}
	return nil
}

// policyCreatedMeanwhile handles a policy another setup created between
// the read and the write: use it, repairing its document if it is ours.
func (a *applier) policyCreatedMeanwhile(ctx context.Context, r *Resource) error {
	name := a.o.Policy
	out, err := a.p.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(a.pl.policyARN)})
	if err != nil {
		return fail("reading policy "+name+" (it was created meanwhile)", "iam:GetPolicy", err)
	}
	have, err := a.p.policyDocument(ctx, out.Policy)
	if err != nil {
		return fail("reading the document of policy "+name, "iam:GetPolicyVersion", err)
	}
	r.Status, r.Managed = Exists, managed.IAM(out.Policy.Tags)
	same, _ := policies.Equivalent(have, a.pl.perms)
	switch {
	case same && r.Managed && !knownCurrent(out.Policy, a.pl.perms):
		a.recordVersion = aws.ToString(out.Policy.DefaultVersionId)
	case same:
	case !r.Managed:
		r.Status, r.Changes = Unmanaged, differences(have, a.pl.perms)
		a.warn("policy %s was created meanwhile, not by containerise, and differs from what setup makes; left as is", name)
	default:
		version, err := a.newDefaultVersion(ctx)
		if err != nil {
			return err
		}
		r.Status, r.Changes = Updated, []string{"new default version"}
		a.recordVersion = version
	}
	if !r.Managed {
		r.Status = Unmanaged
	}
	return nil
}

// newDefaultVersion makes the wanted document the policy's default version,
// first deleting the oldest non-default version when the policy already has
// the five AWS allows. It returns the new default version's ID.
func (a *applier) newDefaultVersion(ctx context.Context) (string, error) {
	name, arn := a.o.Policy, a.pl.policyARN
	var version string
	// CreatePolicyVersion is not idempotent either: after an uncertain
	// failure, look whether the version was made before trying again, so
	// that a lost answer leaves no stray version.
	create := func() error {
		noRetry := func(o *iam.Options) { o.RetryMaxAttempts = 1 }
		backoff := 500 * time.Millisecond
		for attempt := 1; ; attempt++ {
			out, err := a.p.IAM.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{
				PolicyArn: aws.String(arn), PolicyDocument: aws.String(a.pl.perms.JSON()), SetAsDefault: true,
			}, noRetry)
			if err == nil && out.PolicyVersion != nil {
				version = aws.ToString(out.PolicyVersion.VersionId)
			}
			if err == nil || !uncertain(err) || ctx.Err() != nil {
				return err
			}
			if pol, gerr := a.p.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}); gerr == nil {
				if have, verr := a.p.policyDocument(ctx, pol.Policy); verr == nil {
					if same, _ := policies.Equivalent(have, a.pl.perms); same {
						version = aws.ToString(pol.Policy.DefaultVersionId)
						return nil // made despite the error
					}
				}
			}
			if attempt == 4 {
				return err
			}
			if werr := a.p.wait(ctx, backoff); werr != nil {
				return werr
			}
			backoff *= 2
		}
	}
	a.p.logf("updating IAM policy %s: its document drifted; adding a new default version", name)
	err := create()
	var limit *iamtypes.LimitExceededException
	if !errors.As(err, &limit) {
		return version, fail("updating policy "+name+" (new default version)", "iam:CreatePolicyVersion", err)
	}
	out, lerr := a.p.IAM.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
	if lerr != nil {
		return "", fail("listing the versions of policy "+name, "iam:ListPolicyVersions", lerr)
	}
	oldest := oldestNonDefault(out.Versions)
	if oldest == "" {
		return "", fail("updating policy "+name, "iam:CreatePolicyVersion", err)
	}
	a.p.logf("policy %s has the %d versions AWS allows: deleting the oldest non-default one, %s", name, len(out.Versions), oldest)
	_, derr := a.p.IAM.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String(oldest)})
	if derr != nil && !isNoSuchEntity(derr) {
		return "", fail(fmt.Sprintf("deleting version %s of policy %s", oldest, name), "iam:DeletePolicyVersion", derr)
	}
	err = create()
	return version, fail("updating policy "+name+" (new default version)", "iam:CreatePolicyVersion", err)
}

// oldestNonDefault returns the ID of the oldest non-default version.
func oldestNonDefault(versions []iamtypes.PolicyVersion) string {
	var cands []iamtypes.PolicyVersion
	for _, v := range versions {
		if !v.IsDefaultVersion {
			cands = append(cands, v)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := aws.ToTime(cands[i].CreateDate), aws.ToTime(cands[j].CreateDate)
		if !a.Equal(b) {
			return a.Before(b)
		}
		return versionNumber(cands[i].VersionId) < versionNumber(cands[j].VersionId)
	})
	if len(cands) == 0 {
		return ""
	}
	return aws.ToString(cands[0].VersionId)
}

func versionNumber(id *string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(aws.ToString(id), "v"))
	return n
}

func (a *applier) user(ctx context.Context, r *Resource) error {
	if !a.pl.createUser {
		return nil
	}
	name := a.o.User
	a.p.logf("creating IAM user %s", name)
	out, err := a.p.IAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Tags: managed.IAMTags()})
	var exists *iamtypes.EntityAlreadyExistsException
	if errors.As(err, &exists) {
		got, err := a.p.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(name)})
		if err != nil {
			return fail("reading IAM user "+name+" (it was created meanwhile)", "iam:GetUser", err)
		}
		r.Status, r.Managed, r.ARN = Exists, managed.IAM(got.User.Tags), aws.ToString(got.User.Arn)
		if !r.Managed {
			r.Status = Unmanaged
		}
		return nil
	}
	if err != nil {
		return fail("creating IAM user "+name, "iam:CreateUser", err)
	}
	r.Status, r.ARN = Created, aws.ToString(out.User.Arn)
	return nil
}

func (a *applier) accessKey(ctx context.Context, r *Resource) error {
	if !a.pl.createKey {
		return nil
	}
	if !a.userReady.wait(ctx) {
		r.Status, r.Name = Skipped, ""
		return nil
	}
	user := a.o.User
	a.p.logf("creating an access key for IAM user %s", user)
	out, err := a.createKey(ctx)
	if err != nil {
		var limit *iamtypes.LimitExceededException
		if errors.As(err, &limit) {
			return &StepError{What: "creating an access key for user " + user, Err: err,
				Hint: "the user has the 2 keys AWS allows, created meanwhile; delete one with 'aws iam delete-access-key' and rerun"}
		}
		return fail("creating an access key for user "+user, "iam:CreateAccessKey", err)
	}
	id := aws.ToString(out.AccessKey.AccessKeyId)
	res := a.pl.res
	r.Status, r.Name, r.Managed = Created, id, true
	res.Variables.AccessKeyID, res.Variables.SecretAccessKey = id, aws.ToString(out.AccessKey.SecretAccessKey)
	res.SecretAvailable = true

	// Two setups running at once would each create a key; the user must
	// keep one.
	keeper, err := a.settleKeyRace(ctx, id)
	if err != nil {
		a.p.logf("warning: could not check for an access key created at the same time by another setup: %v", err)
		return nil
	}
	if keeper == id {
		return nil
	}
	a.p.logf("another setup created access key %s for user %s at the same time; deleting this run's key %s", keeper, user, id)
	if _, err := a.p.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id)}); err != nil && !isNoSuchEntity(err) {
		return fail(fmt.Sprintf("deleting access key %s of user %s (a concurrent setup created %s)", id, user, keeper), "iam:DeleteAccessKey", err)
	}
	r.Status, r.Name, r.Changes = Exists, keeper, []string{"created at the same time by another setup, which showed its secret"}
	res.Variables.AccessKeyID, res.Variables.SecretAccessKey, res.SecretAvailable = keeper, "", false
	a.note("access key %s of user %s was created by another setup running at the same time, which showed its secret. For a new key: %s", keeper, user, a.o.rotateCommand())
	return nil
}

// createKey creates an access key, exactly one. CreateAccessKey is not
// idempotent: when its answer is lost (a dropped connection, a 5xx after the
// work was done) AWS may hold a key whose secret nobody saw, and a blind
// retry, the SDK's included, would add a second. So the SDK does not retry
// this call; after an uncertain failure setup deletes the keys that appeared
// meanwhile (useless without their secret) and tries again, a few times.
func (a *applier) createKey(ctx context.Context) (*iam.CreateAccessKeyOutput, error) {
	user := a.o.User
	noRetry := func(o *iam.Options) { o.RetryMaxAttempts = 1 }
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := a.p.IAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)}, noRetry)
		if err == nil || !uncertain(err) || ctx.Err() != nil {
			return out, err
		}
		a.p.logf("creating an access key for IAM user %s failed (%s); AWS may have created it anyway, so checking for a key whose secret was lost",
			user, awscfg.Describe(err))
		list, lerr := a.p.IAM.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
		if lerr != nil {
			return nil, err
		}
		for _, k := range list.AccessKeyMetadata {
			id := aws.ToString(k.AccessKeyId)
			if a.pl.initialKeys[id] {
				continue
			}
			a.p.logf("deleting access key %s of IAM user %s: its creation's answer was lost, so its secret is unknown", id, user)
			if _, derr := a.p.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id)}); derr != nil && !isNoSuchEntity(derr) {
				return nil, fail(fmt.Sprintf("deleting access key %s of user %s (created by a call whose answer was lost)", id, user), "iam:DeleteAccessKey", derr)
			}
		}
		if attempt == 4 {
			return nil, err
		}
		if werr := a.p.wait(ctx, backoff); werr != nil {
			return nil, werr
		}
		backoff *= 2
	}
}

// uncertain reports whether a failed call may still have taken effect, or
// is worth retrying: no answer, a server fault or throttling. A client
// fault (AccessDenied, LimitExceeded, NoSuchEntity) is certain.
func uncertain(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		return true
	}
	switch api.ErrorCode() {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded":
		return true
	}
	return api.ErrorFault() == smithy.FaultServer
}

// settleKeyRace decides which key stays when another setup created a key
// for the user at the same time as this run created key mine, and returns
// it. Creation times tie (AWS has second resolution) and neither run knows
// whether the other saw its key, so: a run that sees another new key deletes
// its own, except the run whose key sorts first, which waits a while for the
// other key to go. If it goes, the other run saw both and deferred; if it
// stays, the other run never saw this one's key and kept its own, so this
// run deletes its own instead.
func (a *applier) settleKeyRace(ctx context.Context, mine string) (string, error) {
	fresh := func() ([]iamtypes.AccessKeyMetadata, error) {
		list, err := a.p.IAM.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(a.o.User)})
		if err != nil {
			return nil, fail("listing the access keys of user "+a.o.User, "iam:ListAccessKeys", err)
		}
		var out []iamtypes.AccessKeyMetadata
		for _, k := range list.AccessKeyMetadata {
			if !a.pl.initialKeys[aws.ToString(k.AccessKeyId)] {
				out = append(out, k)
			}
		}
		sortKeys(out)
		return out, nil
	}
	keys, err := fresh()
	if err != nil || len(keys) < 2 {
		return mine, err
	}
	other := ""
	for _, k := range keys {
		if id := aws.ToString(k.AccessKeyId); id != mine && other == "" {
			other = id
		}
	}
	if aws.ToString(keys[0].AccessKeyId) != mine {
		return other, nil
	}
	wait := a.p.raceWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	for waited := time.Duration(0); waited < wait; waited += wait / 10 {
		if err := a.p.wait(ctx, wait/10); err != nil {
			return mine, err
		}
		keys, err := fresh()
		if err != nil {
			return mine, err
		}
		if len(keys) < 2 {
			return mine, nil
		}
	}
	return other, nil
}

// retireOldKey deletes a rotation's old key if the user confirms.
func (a *applier) retireOldKey(ctx context.Context, r *Resource) error {
	user, old, res := a.o.User, a.pl.oldKey, a.pl.res
	ok := false
	if a.o.ConfirmDeleteKey != nil {
		var err error
		ok, err = a.o.ConfirmDeleteKey(ctx, Rotation{
			User: user, NewKeyID: res.Variables.AccessKeyID, NewSecret: res.Variables.SecretAccessKey,
			OldKeyID: old, Variables: res.Variables, DeleteCommandOldKey: deleteKeyCommand(user, old),
		})
		if err != nil {
			r.Changes = []string{"old key " + old + " kept"}
			a.note("old access key %s of user %s is kept; once CI uses the new key, delete it: %s", old, user, deleteKeyCommand(user, old))
			return &StepError{What: "confirming the deletion of old access key " + old, Err: err, Hint: "the new key works; delete the old one later"}
		}
	}
	if !ok {
		r.Changes = []string{"old key " + old + " kept"}
		a.note("old access key %s of user %s is kept; once CI uses the new key, delete it: %s",
			old, user, deleteKeyCommand(user, old))
		return nil
	}
	a.p.logf("deleting old access key %s of IAM user %s", old, user)
	_, err := a.p.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(old)})
	if err != nil && !isNoSuchEntity(err) {
		r.Changes = []string{"old key " + old + " kept"}
		return fail(fmt.Sprintf("deleting old access key %s of user %s", old, user), "iam:DeleteAccessKey", err)
	}
	r.Changes = []string{"replaces " + old + ", deleted"}
	return nil
}

func (a *applier) role(ctx context.Context, r *Resource) error {
	name, pl := a.o.Role, a.pl
	if !pl.createRole && !pl.updateTrust && !pl.attach {
		return nil
	}
	if pl.createRole || pl.updateTrust {
		if !a.userReady.wait(ctx) {
			r.Status = Skipped
			r.Changes = []string{"not changed: IAM user " + a.o.User + " is missing (see its error)"}
			return ctx.Err()
		}
	}
	attach := pl.attach
	status := Updated
	switch {
	case pl.createRole:
		a.p.logf("creating IAM role %s, trusting user %s", name, a.o.User)
		var out *iam.CreateRoleOutput
		err := a.retryPrincipal(ctx, "creating role "+name, func() error {
			var err error
			out, err = a.p.IAM.CreateRole(ctx, &iam.CreateRoleInput{
				RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(pl.trust.JSON()),
				Description: aws.String(roleDescription), Tags: managed.IAMTags(),
			})
			return err
		})
		var exists *iamtypes.EntityAlreadyExistsException
		switch {
		case errors.As(err, &exists):
			var done bool
			if attach, done, err = a.roleCreatedMeanwhile(ctx, r); err != nil || done {
				return err
			}
			status = Exists
		case err != nil:
			return fail("creating role "+name, "iam:CreateRole", err)
		default:
			r.ARN, status = aws.ToString(out.Role.Arn), Created
			a.pl.res.Variables.RoleARN = r.ARN
		}
	case pl.updateTrust:
		if err := a.updateTrust(ctx); err != nil {
			return err
		}
	}
	if attach {
		if !a.policyReady.wait(ctx) {
			r.Status = status
			r.Changes = append(r.Changes, "policy "+a.o.Policy+" not attached: the policy could not be set up (see its error)")
			return ctx.Err()
		}
		a.p.logf("attaching policy %s to role %s", a.o.Policy, name)
		_, err := a.p.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(pl.policyARN)})
		if err != nil {
			return fail(fmt.Sprintf("attaching policy %s to role %s", a.o.Policy, name), "iam:AttachRolePolicy", err)
		}
	}
	r.Status = status
	return nil
}

// roleCreatedMeanwhile handles a role another setup (or a person) created
// between the read and the write. It reports whether the policy still needs
// attaching, and done when nothing more is to be done (an unmanaged role).
func (a *applier) roleCreatedMeanwhile(ctx context.Context, r *Resource) (attach, done bool, err error) {
	name := a.o.Role
	got, err := a.p.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		return false, true, fail("reading role "+name+" (it was created meanwhile)", "iam:GetRole", err)
	}
	r.ARN, r.Managed, r.Changes = aws.ToString(got.Role.Arn), managed.IAM(got.Role.Tags), nil
	if !r.Managed {
		r.Status = Unmanaged
		a.warn("role %s was created meanwhile, not by containerise; left as is", name)
		return false, true, nil
	}
	if same, _ := policies.Equivalent(aws.ToString(got.Role.AssumeRolePolicyDocument), a.pl.trust); !same {
		if err := a.updateTrust(ctx); err != nil {
			return false, true, err
		}
		r.Changes = append(r.Changes, "trust policy restored: only user "+a.o.User+" may assume the role")
	}
	attached, err := a.p.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return false, true, fail("listing the policies attached to role "+name, "iam:ListAttachedRolePolicies", err)
	}
	return !attachedTo(attached.AttachedPolicies, a.pl.policyARN), false, nil
}

func (a *applier) updateTrust(ctx context.Context) error {
	name := a.o.Role
	a.p.logf("updating the trust policy of IAM role %s: only user %s may assume it", name, a.o.User)
	err := a.retryPrincipal(ctx, "updating the trust policy of role "+name, func() error {
		_, err := a.p.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName: aws.String(name), PolicyDocument: aws.String(a.pl.trust.JSON()),
		})
		return err
	})
	return fail("updating the trust policy of role "+name, "iam:UpdateAssumeRolePolicy", err)
}

func isInvalidPrincipal(err error) bool {
	var m *iamtypes.MalformedPolicyDocumentException
	return errors.As(err, &m) && strings.Contains(strings.ToLower(m.ErrorMessage()), "invalid principal")
}

// retryPrincipal runs fn until IAM stops refusing the trust policy's
// principal as invalid (a user created moments ago has not propagated), with
// backoff, for at most the propagation wait, or until ctx ends.
func (a *applier) retryPrincipal(ctx context.Context, what string, fn func() error) error {
	bound := a.o.wait()
	deadline := a.p.clock().Add(bound)
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if !isInvalidPrincipal(err) {
			return err
		}
		left := deadline.Sub(a.p.clock())
		if left <= 0 {
			return &StepError{What: what, Err: err, Hint: fmt.Sprintf(
				"IAM still refused user %s as the role's principal after %s; IAM can be slow to propagate a new user, or the user was deleted meanwhile: rerun setup, or allow longer with --wait",
				a.o.User, bound)}
		}
		d := min(backoff, left)
		a.p.logf("waiting for IAM to propagate user %s before it can be role %s's principal (attempt %d refused: Invalid principal); retrying in %s, for up to %s",
			a.o.User, a.o.Role, attempt, d.Round(time.Millisecond), bound)
		if err := a.p.wait(ctx, d); err != nil {
			return err
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
