package teardown

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// What the read stage learns; plain data, so that planning is a pure function.

type accountSnap struct {
	id, partition string
}

type repoSnap struct {
	exists  bool
	arn     string
	managed bool
	images  int
}

type policySnap struct {
	exists   bool
	arn      string
	managed  bool
	versions []string // non-default version IDs, oldest first as IAM lists them
	roles    []string // entities the policy is attached to
	users    []string
	groups   []string
}

type attachment struct{ arn, name string }

type roleSnap struct {
	exists   bool
	arn      string
	managed  bool
	attached []attachment
	inline   []string
	profiles []string // instance profiles holding the role
}

type userSnap struct {
	exists       bool
	arn          string
	managed      bool
	keys         []string
	loginProfile bool
	attached     []attachment
	inline       []string
}

type snapshot struct {
	account accountSnap
	repo    repoSnap
	policy  policySnap
	role    roleSnap
	user    userSnap
}

// read gathers the state of every resource concurrently. Only the policy
// waits, for the account ID its ARN contains.
func (t *Teardown) read(ctx context.Context, o Options) (*snapshot, error) {
	s := &snapshot{}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		id, err := t.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return readError("the AWS account", "", "sts:GetCallerIdentity", err)
		}
		s.account = accountSnap{id: aws.ToString(id.Account), partition: partitionOf(aws.ToString(id.Arn))}
		return t.readPolicy(ctx, policies.PolicyARN(s.account.partition, s.account.id, o.Policy), o.Policy, &s.policy)
	})
	g.Go(func() error { return t.readRepo(ctx, o.Repository, &s.repo) })
	g.Go(func() error { return t.readRole(ctx, o.Role, &s.role) })
	g.Go(func() error { return t.readUser(ctx, o.User, &s.user) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// partitionOf takes the partition from an ARN ("arn:aws-cn:..."), "aws" when
// the ARN is not one.
func partitionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) == 3 && parts[0] == "arn" && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}

func (t *Teardown) readRepo(ctx context.Context, name string, s *repoSnap) error {
	out, err := t.ecr.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return readError("repository", name, "ecr:DescribeRepositories", err)
	}
	if len(out.Repositories) == 0 {
		return nil
	}
	arn := aws.ToString(out.Repositories[0].RepositoryArn)
	var tagged bool
	var images int
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		tags, err := t.ecr.ListTagsForResource(gctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil {
			return readError("repository", name, "ecr:ListTagsForResource", err)
		}
		tagged = managed.ECR(tags.Tags)
		return nil
	})
	g.Go(func() error {
		p := ecr.NewDescribeImagesPaginator(t.ecr, &ecr.DescribeImagesInput{RepositoryName: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("repository", name, "ecr:DescribeImages", err)
			}
			images += len(page.ImageDetails)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if notFound(err) { // deleted while we looked: it is gone
			return nil
		}
		return err
	}
	*s = repoSnap{exists: true, arn: arn, managed: tagged, images: images}
	return nil
}

func (t *Teardown) readPolicy(ctx context.Context, arn, name string, s *policySnap) error {
	out, err := t.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return readError("policy", name, "iam:GetPolicy", err)
	}
	snap := policySnap{exists: true, arn: arn, managed: managed.IAM(out.Policy.Tags)}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		p := iam.NewListPolicyVersionsPaginator(t.iam, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("policy", name, "iam:ListPolicyVersions", err)
			}
			for _, v := range page.Versions {
				if !v.IsDefaultVersion {
					snap.versions = append(snap.versions, aws.ToString(v.VersionId))
				}
			}
		}
		return nil
	})
	g.Go(func() error {
		p := iam.NewListEntitiesForPolicyPaginator(t.iam, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("policy", name, "iam:ListEntitiesForPolicy", err)
			}
			for _, r := range page.PolicyRoles {
				snap.roles = append(snap.roles, aws.ToString(r.RoleName))
			}
			for _, u := range page.PolicyUsers {
				snap.users = append(snap.users, aws.ToString(u.UserName))
			}
			for _, gr := range page.PolicyGroups {
				snap.groups = append(snap.groups, aws.ToString(gr.GroupName))
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	*s = snap
	return nil
}

func (t *Teardown) readRole(ctx context.Context, name string, s *roleSnap) error {
	out, err := t.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return readError("role", name, "iam:GetRole", err)
	}
	snap := roleSnap{exists: true, arn: aws.ToString(out.Role.Arn), managed: managed.IAM(out.Role.Tags)}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		p := iam.NewListAttachedRolePoliciesPaginator(t.iam, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("role", name, "iam:ListAttachedRolePolicies", err)
			}
			for _, a := range page.AttachedPolicies {
				snap.attached = append(snap.attached, attachment{arn: aws.ToString(a.PolicyArn), name: aws.ToString(a.PolicyName)})
			}
		}
		return nil
	})
	g.Go(func() error {
		p := iam.NewListRolePoliciesPaginator(t.iam, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("role", name, "iam:ListRolePolicies", err)
			}
			snap.inline = append(snap.inline, page.PolicyNames...)
		}
		return nil
	})
	g.Go(func() error {
		p := iam.NewListInstanceProfilesForRolePaginator(t.iam, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("role", name, "iam:ListInstanceProfilesForRole", err)
			}
			for _, ip := range page.InstanceProfiles {
				snap.profiles = append(snap.profiles, aws.ToString(ip.InstanceProfileName))
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	*s = snap
	return nil
}

func (t *Teardown) readUser(ctx context.Context, name string, s *userSnap) error {
	out, err := t.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(name)})
	if notFound(err) {
		return nil
	}
	if err != nil {
		return readError("user", name, "iam:GetUser", err)
	}
	snap := userSnap{exists: true, arn: aws.ToString(out.User.Arn), managed: managed.IAM(out.User.Tags)}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		p := iam.NewListAccessKeysPaginator(t.iam, &iam.ListAccessKeysInput{UserName: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("user", name, "iam:ListAccessKeys", err)
			}
			for _, k := range page.AccessKeyMetadata {
				snap.keys = append(snap.keys, aws.ToString(k.AccessKeyId))
			}
		}
		return nil
	})
	g.Go(func() error {
		_, err := t.iam.GetLoginProfile(gctx, &iam.GetLoginProfileInput{UserName: aws.String(name)})
		switch {
		case err == nil:
			snap.loginProfile = true
		case notFound(err):
			// No console password (the usual case). The user's own absence,
			// should it vanish meanwhile, shows in the other calls.
		default:
			return readError("user", name, "iam:GetLoginProfile", err)
		}
		return nil
	})
	g.Go(func() error {
		p := iam.NewListAttachedUserPoliciesPaginator(t.iam, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("user", name, "iam:ListAttachedUserPolicies", err)
			}
			for _, a := range page.AttachedPolicies {
				snap.attached = append(snap.attached, attachment{arn: aws.ToString(a.PolicyArn), name: aws.ToString(a.PolicyName)})
			}
		}
		return nil
	})
	g.Go(func() error {
		p := iam.NewListUserPoliciesPaginator(t.iam, &iam.ListUserPoliciesInput{UserName: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return readError("user", name, "iam:ListUserPolicies", err)
			}
			snap.inline = append(snap.inline, page.PolicyNames...)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	*s = snap
	return nil
}

// readError explains a failed read. Nothing has been deleted when one
// happens: the plan is made before any change.
func readError(kind, name, action string, err error) error {
	what := "reading " + kind
	if name != "" {
		what += " " + name
	}
	hint := "check the credentials and region, then rerun teardown"
	if isAccessDenied(err) {
		hint = "the credentials in use do not allow " + action + ": run teardown as an administrator, e.g. with --profile"
	}
	return fmt.Errorf("%s (%s): %w (nothing was deleted; %s)", what, action, awsError{err}, hint)
}
