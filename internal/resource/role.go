package resource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// roleDescription is the role's description, from the blog.
const roleDescription = "Allows CircleCI to containerise Docker images"

// Trustee is who may assume the role.
type Trustee interface {
	// TrustPolicy is the role's wanted trust policy; valid once the
	// trustee has reconciled.
	TrustPolicy() policies.Document
	// Ready are the steps after which the trustee exists (none: it does).
	Ready() []*Step
	// Describe names the trustee for people: "user circleci".
	Describe() string
}

// roleTagger is a trustee that wants the role to carry tags of its own,
// beside managed-by=containerise.
type roleTagger interface {
	roleTags() []iamtypes.Tag
}

// Role is the role CI assumes to push: it trusts only the trustee and has
// the policy attached.
type Role struct {
	Name    string
	Trustee Trustee
	Policy  *Policy

	report Report

	// Observed.
	role     *iamtypes.Role
	attached []attachment
	// read is closed once the role itself has been read (or could not be):
	// other resources learn from it what setup made the role trust.
	read     chan struct{}
	readOnce sync.Once
	readAs   *iamtypes.Role // the role as read then, never changed after
	// Teardown.
	inline      []string
	profiles    []string // instance profiles holding the role
	detaches    map[string]*Step
	letGo       *Step   // the last step before DeleteRole
	deleteAfter []*Step // steps DeleteRole waits for
	deleteStep  *Step   // DeleteRole, nil when the role is not deleted

	// Setup.
	trust     policies.Document
	attach    bool // the policy still needs attaching (decided again if the role appears meanwhile)
	trustStep *Step
}

// NewRole is the role called name, trusting trustee, with policy attached.
func NewRole(name string, trustee Trustee, policy *Policy) *Role {
	return &Role{Name: name, Trustee: trustee, Policy: policy, report: Report{Kind: KindRole, Name: name}, read: make(chan struct{})}
}

func (r *Role) markRead() { r.readOnce.Do(func() { close(r.read) }) }

// observedRole waits until Observe has read the role and returns it, nil
// when it does not exist.
func (r *Role) observedRole(ctx context.Context) (*iamtypes.Role, error) {
	select {
	case <-r.read:
		return r.readAs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TrustStep is the step that creates the role or rewrites its trust
// policy, nil when the trust is already right (setup).
func (r *Role) TrustStep() *Step { return r.trustStep }

// Reports is the role's one report.
func (r *Role) Reports() []*Report { return []*Report{&r.report} }

// ARN is the role's ARN, as found or as it will be.
func (r *Role) ARN() string { return r.report.ARN }

func (r *Role) fail(doing, call string, err error) error {
	return fail(KindRole, r.Name, doing, call, err)
}

// Observe reads the role and the policies attached to it; for a teardown,
// also its inline policies and the instance profiles holding it.
func (r *Role) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	defer r.markRead()
	var role *iamtypes.Role
	var attached []attachment
	var inline, profiles []string
	parts := []func(context.Context) error{func(ctx context.Context) error {
		var err error
		attached, err = listAttached(ctx, env, r.Name)
		return r.fail("listing the policies attached to IAM role "+r.Name, "iam:ListAttachedRolePolicies", err)
	}}
	if purpose == ForTeardown {
		parts = append(parts, func(ctx context.Context) error {
			p := iam.NewListRolePoliciesPaginator(env.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(r.Name)})
			err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListRolePoliciesOutput) {
				inline = append(inline, page.PolicyNames...)
			})
			return r.fail("listing the inline policies of IAM role "+r.Name, "iam:ListRolePolicies", err)
		}, func(ctx context.Context) error {
			p := iam.NewListInstanceProfilesForRolePaginator(env.IAM, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(r.Name)})
			err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListInstanceProfilesForRoleOutput) {
				for _, ip := range page.InstanceProfiles {
					profiles = append(profiles, aws.ToString(ip.InstanceProfileName))
				}
			})
			return r.fail("listing the instance profiles of IAM role "+r.Name, "iam:ListInstanceProfilesForRole", err)
		})
	}
	found, err := readEntity(ctx, purpose == ForSetup, func(ctx context.Context) error {
		defer r.markRead()
		out, err := env.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r.Name)})
		if err == nil {
			role, r.readAs = out.Role, out.Role
		}
		return r.fail("reading IAM role "+r.Name, "iam:GetRole", err)
	}, parts...)
	if found {
		r.role, r.attached, r.inline, r.profiles = role, attached, inline, profiles
	}
	return err
}

func listAttached(ctx context.Context, env *Env, role string) ([]attachment, error) {
	var out []attachment
	p := iam.NewListAttachedRolePoliciesPaginator(env.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListAttachedRolePoliciesOutput) {
		for _, a := range page.AttachedPolicies {
			out = append(out, attachment{arn: aws.ToString(a.PolicyArn), name: aws.ToString(a.PolicyName)})
		}
	})
	return out, err
}

// Reconcile creates the role, or restores its trust policy and its
// attachment when they drifted.
func (r *Role) Reconcile(p *Plan) {
	rep := &r.report
	rep.ARN = policies.RoleARN(p.Identity.Partition, p.Identity.Account, r.Name)
	if r.role != nil && r.role.Arn != nil {
		rep.ARN = *r.role.Arn
	}
	r.trust = r.Trustee.TrustPolicy()
	who, policy := r.Trustee.Describe(), r.Policy.Name
	rep.Managed, rep.Status = true, Unchanged
	if r.role == nil {
		rep.Status = WouldCreate
		rep.Changes = []string{"trusts " + who, "policy " + policy + " attached"}
		r.attach = true
		r.addSteps(p, true, false)
		return
	}
	rep.Managed = managed.IAM(r.role.Tags)
	doc := aws.ToString(r.role.AssumeRolePolicyDocument)
	trustOK, _ := policies.Equivalent(doc, r.trust)
	attached := attachedTo(r.attached, r.Policy.ARN())
	var changes []string
	if !trustOK {
		switch {
		case !rep.Managed:
			changes = append(changes, "trust policy does not let exactly "+who+" assume the role")
		case switched(doc, r.trust):
			// Saying what it trusted says everything that changes.
			changes = append(changes, "trust switched to "+who+" (it trusted "+trustedBy(doc)+")")
		case len(r.trust.FederatedPrincipals()) > 0:
			changes = append(changes, "trust policy rewritten: only "+who+" may assume the role")
		default:
			changes = append(changes, "trust policy restored: only "+who+" may assume the role")
		}
		if !rep.Managed || !switched(doc, r.trust) {
			changes = append(changes, differences(doc, r.trust)...)
		}
	}
	if !attached {
		if rep.Managed {
			changes = append(changes, "policy "+policy+" re-attached")
		} else {
			changes = append(changes, "policy "+policy+" is not attached")
		}
	}
	switch {
	case !rep.Managed:
		rep.Status, rep.Changes = Unmanaged, changes
		if len(changes) > 0 {
			p.Warn(fmt.Sprintf("role %s is not managed by containerise and differs from what setup makes (%s); left as is, so CI may not be able to push",
				r.Name, strings.Join(changes, "; ")))
		}
	case len(changes) > 0:
		rep.Status, rep.Changes = WouldUpdate, changes
		r.attach = !attached
		r.addSteps(p, false, !trustOK)
	}
	if rep.Managed {
		r.addTagStep(p)
	}
}

// switched reports whether a trust policy moves between a user's keys and
// a federated (OIDC) principal.
func switched(have string, want policies.Document) bool {
	d, err := policies.Parse(have)
	if err != nil {
		return false
	}
	return (len(d.FederatedPrincipals()) > 0) != (len(want.FederatedPrincipals()) > 0)
}

// trustedBy names the principals of a trust policy for people.
func trustedBy(doc string) string {
	d, err := policies.Parse(doc)
	if err != nil {
		return "an unreadable trust policy"
	}
	var who []string
	for _, s := range d.Statement {
		if s.Principal == nil {
			continue
		}
		for _, p := range s.Principal.AWS {
			if i := strings.Index(p, ":user/"); i >= 0 {
				p = "user " + p[strings.LastIndexByte(p, '/')+1:]
			}
			who = append(who, p)
		}
		for _, p := range s.Principal.Federated {
			if _, rest, ok := strings.Cut(p, ":oidc-provider/"); ok {
				p = "OIDC provider " + rest
			}
			who = append(who, p)
		}
		who = append(who, s.Principal.Service...)
	}
	if len(who) == 0 {
		return "nobody"
	}
	return strings.Join(who, ", ")
}

// addTagStep gives a managed role the tags its trustee asks for, when it
// lacks them; nothing waits for it, and the role's status stays as it is.
func (r *Role) addTagStep(p *Plan) {
	tagger, ok := r.Trustee.(roleTagger)
	if !ok || r.role == nil {
		return
	}
	var missing []iamtypes.Tag
	for _, want := range tagger.roleTags() {
		have := false
		for _, t := range r.role.Tags {
			have = have || (aws.ToString(t.Key) == aws.ToString(want.Key) && aws.ToString(t.Value) == aws.ToString(want.Value))
		}
		if !have {
			missing = append(missing, want)
		}
	}
	if len(missing) == 0 {
		return
	}
	var needs []*Step
	if r.trustStep != nil {
		needs = append(needs, r.trustStep)
	}
	p.Add(&r.report, &Step{Action: "tag role " + r.Name + " with what it trusts", Call: "iam:TagRole", Needs: needs,
		Do: func(ctx context.Context) error {
			// The tag only helps a later teardown find the provider once the
			// trust no longer names it: failing to write it fails nothing,
			// and the next setup writes it.
			_, err := p.Env.IAM.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(r.Name), Tags: missing})
			if err != nil {
				p.Env.logf("warning: could not tag IAM role %s with what it trusts (%s); the next setup tags it", r.Name, awsx.Describe(err))
			}
			return nil
		}})
}

// addSteps adds the role's steps: creating it or rewriting its trust policy
// once the trustee exists, then attaching the policy once the policy is
// set up.
func (r *Role) addSteps(p *Plan, create, updateTrust bool) {
	rep := &r.report
	var roleStep *Step
	if create || updateTrust {
		var needs []*Step
		needs = append(needs, r.Trustee.Ready()...)
		action, call := "update the trust policy of role "+r.Name, "iam:UpdateAssumeRolePolicy"
		if create {
			action, call = "create role "+r.Name, "iam:CreateRole"
		}
		roleStep = p.Add(rep, &Step{Action: action, Call: call, Needs: needs,
			Do: func(ctx context.Context) error {
				if create {
					return r.create(ctx, p)
				}
				if err := r.updateTrust(ctx, p.Env); err != nil {
					return err
				}
				rep.Status = Updated
				return nil
			},
			Skipped: func(ctx context.Context, _ *Step) error {
				rep.Status = Skipped
				rep.Changes = []string{"not changed: " + r.Trustee.Describe() + " is missing (see its error)"}
				return ctx.Err()
			}})
		r.trustStep = roleStep
	}
	if !r.attach && !create {
		return
	}
	var needs []*Step
	if roleStep != nil {
		needs = append(needs, roleStep)
	}
	policyReady := r.Policy.Ready()
	if policyReady != nil {
		needs = append(needs, policyReady)
	}
	p.Add(rep, &Step{Action: fmt.Sprintf("attach policy %s to role %s", r.Policy.Name, r.Name), Call: "iam:AttachRolePolicy", Needs: needs,
		Do: func(ctx context.Context) error {
			if rep.Status == WouldUpdate {
				rep.Status = Updated
			}
			if !r.attach {
				return nil
			}
			p.Env.logf("attaching policy %s to role %s", r.Policy.Name, r.Name)
			_, err := p.Env.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(r.Name), PolicyArn: aws.String(r.Policy.ARN())})
			return r.fail(fmt.Sprintf("attaching policy %s to role %s", r.Policy.Name, r.Name), "iam:AttachRolePolicy", err)
		},
		Skipped: func(ctx context.Context, cause *Step) error {
			if cause != policyReady || (roleStep != nil && !roleStep.OK()) {
				return nil // the role's own failure is reported
			}
			if rep.Status == WouldUpdate {
				rep.Status = Updated
			}
			rep.Changes = append(rep.Changes, "policy "+r.Policy.Name+" not attached: the policy could not be set up (see its error)")
			return ctx.Err()
		}})
}

func (r *Role) create(ctx context.Context, p *Plan) error {
	rep, env := &r.report, p.Env
	env.logf("creating IAM role %s, trusting %s", r.Name, r.Trustee.Describe())
	var out *iam.CreateRoleOutput
	err := r.retryPrincipal(ctx, env, "creating role "+r.Name, "iam:CreateRole", func() error {
		var err error
		out, err = env.IAM.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: aws.String(r.Name), AssumeRolePolicyDocument: aws.String(r.trust.JSON()),
			Description: aws.String(roleDescription), Tags: r.tags(),
		})
		return err
	})
	switch {
	case awsx.IsAlreadyExists(err):
		return r.createdMeanwhile(ctx, p)
	case err != nil:
		return err
	}
	rep.ARN, rep.Status = aws.ToString(out.Role.Arn), Created
	return nil
}

// createdMeanwhile handles a role another setup (or a person) created
// between the read and the write.
// tags are the tags of a new role.
func (r *Role) tags() []iamtypes.Tag {
	tags := managed.IAMTags()
	if t, ok := r.Trustee.(roleTagger); ok {
		tags = append(tags, t.roleTags()...)
	}
	return tags
}

func (r *Role) createdMeanwhile(ctx context.Context, p *Plan) error {
	rep, env := &r.report, p.Env
	got, err := env.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r.Name)})
	if err != nil {
		return r.fail("reading role "+r.Name+" (it was created meanwhile)", "iam:GetRole", err)
	}
	rep.ARN, rep.Managed, rep.Changes = aws.ToString(got.Role.Arn), managed.IAM(got.Role.Tags), nil
	if !rep.Managed {
		rep.Status, r.attach = Unmanaged, false
		p.Warn(fmt.Sprintf("role %s was created meanwhile, not by containerise; left as is", r.Name))
		return nil
	}
	rep.Status = Exists
	if same, _ := policies.Equivalent(aws.ToString(got.Role.AssumeRolePolicyDocument), r.trust); !same {
		if err := r.updateTrust(ctx, env); err != nil {
			return err
		}
		rep.Changes = append(rep.Changes, "trust policy restored: only "+r.Trustee.Describe()+" may assume the role")
	}
	attached, err := listAttached(ctx, env, r.Name)
	if err != nil {
		return r.fail("listing the policies attached to role "+r.Name, "iam:ListAttachedRolePolicies", err)
	}
	r.attach = !attachedTo(attached, r.Policy.ARN())
	return nil
}

func (r *Role) updateTrust(ctx context.Context, env *Env) error {
	env.logf("updating the trust policy of IAM role %s: only %s may assume it", r.Name, r.Trustee.Describe())
	return r.retryPrincipal(ctx, env, "updating the trust policy of role "+r.Name, "iam:UpdateAssumeRolePolicy", func() error {
		_, err := env.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName: aws.String(r.Name), PolicyDocument: aws.String(r.trust.JSON()),
		})
		return err
	})
}

func isInvalidPrincipal(err error) bool {
	var m *iamtypes.MalformedPolicyDocumentException
	return errors.As(err, &m) && strings.Contains(strings.ToLower(m.ErrorMessage()), "invalid principal")
}

// retryPrincipal runs call until IAM stops refusing the trust policy's
// principal as invalid (one created moments ago has not propagated), within
// the wait's bound.
func (r *Role) retryPrincipal(ctx context.Context, env *Env, doing, op string, call func() error) error {
	who := r.Trustee.Describe()
	err := env.Wait.Retry(ctx, func(err error) (string, bool) { return "IAM to propagate " + who, isInvalidPrincipal(err) },
		func(a awsx.Attempt) {
			env.logf("waiting for IAM to propagate %s before it can be role %s's principal (attempt %d refused: Invalid principal); retrying in %s, for up to %s",
				who, r.Name, a.N, a.Pause.Round(time.Millisecond), env.Wait.Bound)
		}, call)
	var still *awsx.StillPending
	if errors.As(err, &still) {
		return &Error{Kind: KindRole, Name: r.Name, Doing: doing, Call: op, Err: err, Next: hint.WaitLonger, Hint: fmt.Sprintf(
			"IAM still refused %s as the role's principal after %s; IAM can be slow to propagate a new principal, or it was deleted meanwhile: rerun setup",
			who, still.Waited)}
	}
	return r.fail(doing, op, err)
}

// attachedTo reports whether the policy ARN is among the attached policies.
func attachedTo(list []attachment, policyARN string) bool {
	for _, a := range list {
		if strings.EqualFold(a.arn, policyARN) {
			return true
		}
	}
	return false
}

// Delete removes the role, first what IAM refuses DeleteRole for: attached
// and inline policies. containerise never puts a role in an instance
// profile, so one that holds it blocks the role.
func (r *Role) Delete(p *Plan) {
	rep := &r.report
	if r.role != nil {
		rep.ARN = aws.ToString(r.role.Arn)
	}
	if !p.decide(rep, r.role != nil, r.role != nil && managed.IAM(r.role.Tags), r.blocker()) {
		return
	}
	add := p.chain(rep)
	iamc := p.Env.IAM
	r.detaches = map[string]*Step{}
	var last *Step
	for _, a := range r.attached {
		last = add(&Step{Action: fmt.Sprintf("detach policy %s from role %s", a.name, r.Name), Call: "iam:DetachRolePolicy",
			Do: func(ctx context.Context) error {
				_, err := iamc.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(r.Name), PolicyArn: aws.String(a.arn)})
				return err
			}})
		r.detaches[a.arn] = last
	}
	for _, name := range r.inline {
		last = add(&Step{Action: fmt.Sprintf("delete inline policy %s of role %s", name, r.Name), Call: "iam:DeleteRolePolicy",
			Do: func(ctx context.Context) error {
				_, err := iamc.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(r.Name), PolicyName: aws.String(name)})
				return err
			}})
	}
	r.letGo = last
	action := "delete role " + r.Name
	r.deleteStep = add(&Step{Action: action, Call: "iam:DeleteRole", Needs: r.deleteAfter, Do: func(ctx context.Context) error {
		return p.Env.untilFree(ctx, action, func() error {
			_, err := iamc.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(r.Name)})
			return err
		})
	}})
}

// detachment is the teardown step after which the role has let go of the
// policy (and of every other policy it held), nil when the role is not being
// deleted or does not hold it.
func (r *Role) detachment(policyARN string) *Step {
	if r.detaches[policyARN] == nil {
		return nil
	}
	return r.letGo
}

func (r *Role) blocker() string {
	if len(r.profiles) == 0 {
		return ""
	}
	var cmds []string
	for _, p := range r.profiles {
		cmds = append(cmds, fmt.Sprintf("`aws iam remove-role-from-instance-profile --instance-profile-name %s --role-name %s`", p, r.Name))
	}
	noun := "instance profile"
	if len(r.profiles) > 1 {
		noun = "instance profiles"
	}
	return fmt.Sprintf("role %s is in %s %s, which containerise did not create (an EC2 instance may be using it): remove it with %s, then rerun teardown",
		r.Name, noun, strings.Join(r.profiles, ", "), strings.Join(cmds, " and "))
}
