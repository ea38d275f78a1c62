package teardown

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// Kind names a resource type.
type Kind string

// The resources teardown removes, in the blog's clean-up order.
const (
	KindRepository Kind = "repository"
	KindPolicy     Kind = "policy"
	KindRole       Kind = "role"
	KindUser       Kind = "user"
)

// State is what the plan does with a resource.
type State string

// Plan states.
const (
	// StateGone: the resource does not exist; nothing to do.
	StateGone State = "gone"
	// StateDelete: the resource will be deleted through its steps.
	StateDelete State = "delete"
	// StateUnmanaged: the resource lacks the tag managed-by=containerise and
	// is left alone (IncludeUnmanaged deletes it).
	StateUnmanaged State = "unmanaged"
	// StateBlocked: something containerise did not make holds the resource;
	// it is not touched, and Apply reports it as failed with Reason.
	StateBlocked State = "blocked"
)

// Outcome is what Apply did with a resource.
type Outcome string

// Outcomes.
const (
	OutcomeDeleted   Outcome = "deleted"
	OutcomeGone      Outcome = "gone"
	OutcomeLeftAlone Outcome = "left-alone"
	OutcomeFailed    Outcome = "failed"
)

// Plan is what teardown found and will do. Apply fills in the outcomes.
type Plan struct {
	Account   string      `json:"account"`
	Resources []*Resource `json:"resources"`

	applied bool
}

// Resource is one resource of the plan.
type Resource struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
	ARN  string `json:"arn,omitempty"`
	// Managed tells whether the resource carries managed-by=containerise
	// (absent when the resource does not exist).
	Managed *bool `json:"managed,omitempty"`
	// Images is how many images the repository holds (repository only,
	// when it exists).
	Images *int  `json:"images,omitempty"`
	State  State `json:"state"`
	// Reason says why a resource is left alone or blocked, and what to do.
	Reason string  `json:"reason,omitempty"`
	Steps  []*Step `json:"steps,omitempty"`

	// Set by Apply.
	Outcome Outcome `json:"outcome,omitempty"`
	Error   string  `json:"error,omitempty"`
	err     error
}

// Err is why the resource failed (nil unless Outcome is OutcomeFailed).
func (r *Resource) Err() error { return r.err }

// Step is one API call of a resource's deletion.
type Step struct {
	Action string `json:"action"` // "detach policy ECRContainerise from role containerise"
	Call   string `json:"call"`   // "iam:DetachRolePolicy"

	do func(context.Context) error
	// final steps delete an IAM entity itself; they run in a second stage,
	// once every other step of every resource has run.
	final bool
	// needs are steps of other resources that must have succeeded first
	// (the role's detachment of the policy, before the policy is deleted).
	needs []*Step
	owner *Resource
	ok    bool
}

// Deletes reports whether the plan would change anything.
func (p *Plan) Deletes() bool {
	for _, r := range p.Resources {
		if r.State == StateDelete {
			return true
		}
	}
	return false
}

// Settled reports whether nothing is left to do: every resource is gone or
// left alone.
func (p *Plan) Settled() bool {
	for _, r := range p.Resources {
		if r.State != StateGone && r.State != StateUnmanaged {
			return false
		}
	}
	return true
}

// Steps counts the API calls the plan would make to delete.
func (p *Plan) Steps() int {
	n := 0
	for _, r := range p.Resources {
		n += len(r.Steps)
	}
	return n
}

// Plan reads the account and decides what to delete. It makes no change.
func (t *Teardown) Plan(ctx context.Context, o Options) (*Plan, error) {
	s, err := t.read(ctx, o)
	if err != nil {
		return nil, err
	}
	return t.plan(s, o), nil
}

const unmanagedReason = "not managed by containerise (no tag " + "managed-by=containerise); --include-unmanaged deletes it"

// decide applies the rules every resource shares: gone, then unmanaged, then
// blocked.
func decide(r *Resource, exists, isManaged bool, o Options, blocked string) {
	if !exists {
		r.State = StateGone
		return
	}
	r.Managed = aws.Bool(isManaged)
	switch {
	case !isManaged && !o.IncludeUnmanaged:
		r.State, r.Reason = StateUnmanaged, unmanagedReason
	case blocked != "":
		r.State, r.Reason = StateBlocked, blocked
	default:
		r.State = StateDelete
	}
}

func (r *Resource) add(s *Step) *Step {
	s.owner = r
	r.Steps = append(r.Steps, s)
	return s
}

// plan turns a snapshot into a plan. It is pure: no call is made.
func (t *Teardown) plan(s *snapshot, o Options) *Plan {
	repo := &Resource{Kind: KindRepository, Name: o.Repository, ARN: s.repo.arn}
	policy := &Resource{Kind: KindPolicy, Name: o.Policy, ARN: s.policy.arn}
	role := &Resource{Kind: KindRole, Name: o.Role, ARN: s.role.arn}
	user := &Resource{Kind: KindUser, Name: o.User, ARN: s.user.arn}

	// The repository: one call, with Force, removes it and its images.
	decide(repo, s.repo.exists, s.repo.managed, o, "")
	if s.repo.exists {
		repo.Images = aws.Int(s.repo.images)
	}
	if repo.State == StateDelete {
		action := "delete repository " + o.Repository + " (it holds no images)"
		if s.repo.images > 0 {
			action = fmt.Sprintf("delete repository %s and its %s", o.Repository, images(s.repo.images))
		}
		repo.add(&Step{
			// Nothing waits for it, so it runs with the first stage.
			Action: action, Call: "ecr:DeleteRepository",
			do: func(ctx context.Context) error {
				_, err := t.ecr.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(o.Repository), Force: true})
				return err
			},
		})
	}

	// The role: AWS refuses DeleteRole while policies are attached or
	// inline, or while an instance profile holds it. containerise never
	// creates instance profiles, so any one blocks the role.
	decide(role, s.role.exists, s.role.managed, o, roleBlocker(o.Role, s.role.profiles))
	roleDetaches := map[string]*Step{}
	if role.State == StateDelete {
		for _, a := range s.role.attached {
			roleDetaches[a.arn] = role.add(&Step{
				Action: fmt.Sprintf("detach policy %s from role %s", a.name, o.Role),
				Call:   "iam:DetachRolePolicy",
				do: func(ctx context.Context) error {
					_, err := t.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(o.Role), PolicyArn: aws.String(a.arn)})
					return err
				},
			})
		}
		for _, name := range s.role.inline {
			role.add(&Step{
				Action: fmt.Sprintf("delete inline policy %s of role %s", name, o.Role),
				Call:   "iam:DeleteRolePolicy",
				do: func(ctx context.Context) error {
					_, err := t.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(o.Role), PolicyName: aws.String(name)})
					return err
				},
			})
		}
		role.add(&Step{
			Action: "delete role " + o.Role, Call: "iam:DeleteRole", final: true,
			do: func(ctx context.Context) error {
				_, err := t.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(o.Role)})
				return err
			},
		})
	}

	// The user: AWS refuses DeleteUser while it has access keys, a console
	// password, attached or inline policies.
	decide(user, s.user.exists, s.user.managed, o, "")
	userDetaches := map[string]*Step{}
	if user.State == StateDelete {
		for _, key := range s.user.keys {
			user.add(&Step{
				Action: fmt.Sprintf("delete access key %s of user %s", key, o.User),
				Call:   "iam:DeleteAccessKey",
				do: func(ctx context.Context) error {
					_, err := t.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(o.User), AccessKeyId: aws.String(key)})
					return err
				},
			})
		}
		if s.user.loginProfile {
			user.add(&Step{
				Action: fmt.Sprintf("delete the console password of user %s", o.User),
				Call:   "iam:DeleteLoginProfile",
				do: func(ctx context.Context) error {
					_, err := t.iam.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String(o.User)})
					return err
				},
			})
		}
		for _, a := range s.user.attached {
			userDetaches[a.arn] = user.add(&Step{
				Action: fmt.Sprintf("detach policy %s from user %s", a.name, o.User),
				Call:   "iam:DetachUserPolicy",
				do: func(ctx context.Context) error {
					_, err := t.iam.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(o.User), PolicyArn: aws.String(a.arn)})
					return err
				},
			})
		}
		for _, name := range s.user.inline {
			user.add(&Step{
				Action: fmt.Sprintf("delete inline policy %s of user %s", name, o.User),
				Call:   "iam:DeleteUserPolicy",
				do: func(ctx context.Context) error {
					_, err := t.iam.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(o.User), PolicyName: aws.String(name)})
					return err
				},
			})
		}
		user.add(&Step{
			Action: "delete user " + o.User, Call: "iam:DeleteUser", final: true,
			do: func(ctx context.Context) error {
				_, err := t.iam.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(o.User)})
				return err
			},
		})
	}

	// The policy: AWS refuses DeletePolicy while it is attached anywhere or
	// has versions besides the default. Its attachment to the role is setup's
	// own; one to the user is removed with the user. Any other attachment was
	// made by someone else, and blocks the policy.
	decide(policy, s.policy.exists, s.policy.managed, o,
		policyBlocker(o, s.policy, user.State == StateDelete))
	if policy.State == StateDelete {
		var needs []*Step
		for _, name := range s.policy.roles {
			if name != o.Role {
				continue
			}
			if d, ok := roleDetaches[s.policy.arn]; ok {
				needs = append(needs, d) // the role's own steps detach it
				continue
			}
			policy.add(&Step{
				Action: fmt.Sprintf("detach policy %s from role %s", o.Policy, o.Role),
				Call:   "iam:DetachRolePolicy",
				do: func(ctx context.Context) error {
					_, err := t.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(o.Role), PolicyArn: aws.String(s.policy.arn)})
					return err
				},
			})
		}
		for _, name := range s.policy.users {
			if d, ok := userDetaches[s.policy.arn]; ok && name == o.User {
				needs = append(needs, d)
			}
		}
		for _, v := range s.policy.versions {
			policy.add(&Step{
				Action: fmt.Sprintf("delete version %s of policy %s", v, o.Policy),
				Call:   "iam:DeletePolicyVersion",
				do: func(ctx context.Context) error {
					_, err := t.iam.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(s.policy.arn), VersionId: aws.String(v)})
					return err
				},
			})
		}
		action := "delete policy " + o.Policy
		if len(needs) > 0 {
			var after []string
			for _, n := range needs {
				after = append(after, string(n.owner.Kind)+" "+n.owner.Name)
			}
			action += " (after " + strings.Join(after, " and ") + " let go of it)"
		}
		policy.add(&Step{
			Action: action, Call: "iam:DeletePolicy", final: true, needs: needs,
			do: func(ctx context.Context) error {
				_, err := t.iam.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(s.policy.arn)})
				return err
			},
		})
	}

	return &Plan{Account: s.account.id, Resources: []*Resource{repo, policy, role, user}}
}

func roleBlocker(role string, profiles []string) string {
	if len(profiles) == 0 {
		return ""
	}
	var cmds []string
	for _, p := range profiles {
		cmds = append(cmds, fmt.Sprintf("`aws iam remove-role-from-instance-profile --instance-profile-name %s --role-name %s`", p, role))
	}
	noun := "instance profile"
	if len(profiles) > 1 {
		noun = "instance profiles"
	}
	return fmt.Sprintf("role %s is in %s %s, which containerise did not create (an EC2 instance may be using it): remove it with %s, then rerun teardown",
		role, noun, strings.Join(profiles, ", "), strings.Join(cmds, " and "))
}

// policyBlocker names the attachments teardown must not undo: every one but
// the role's and, when the user is being deleted, the user's.
func policyBlocker(o Options, s policySnap, userDeleted bool) string {
	var who, cmds []string
	for _, r := range s.roles {
		if r != o.Role {
			who = append(who, "role "+r)
			cmds = append(cmds, fmt.Sprintf("`aws iam detach-role-policy --role-name %s --policy-arn %s`", r, s.arn))
		}
	}
	for _, u := range s.users {
		if u != o.User || !userDeleted {
			who = append(who, "user "+u)
			cmds = append(cmds, fmt.Sprintf("`aws iam detach-user-policy --user-name %s --policy-arn %s`", u, s.arn))
		}
	}
	for _, g := range s.groups {
		who = append(who, "group "+g)
		cmds = append(cmds, fmt.Sprintf("`aws iam detach-group-policy --group-name %s --policy-arn %s`", g, s.arn))
	}
	if len(who) == 0 {
		return ""
	}
	return fmt.Sprintf("policy %s is also attached to %s, which containerise did not attach: if nothing there needs it, detach it with %s, then rerun teardown",
		o.Policy, strings.Join(who, ", "), strings.Join(cmds, " and "))
}

func images(n int) string {
	switch n {
	case 0:
		return "no images"
	case 1:
		return "1 image"
	default:
		return fmt.Sprintf("%d images", n)
	}
}
