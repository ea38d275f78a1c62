package provision

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// state is what exists in the account, as read before any write. A nil
// pointer means absent.
type state struct {
	account, partition string

	repo        *ecrtypes.Repository
	repoManaged bool

	user *iamtypes.User
	keys []iamtypes.AccessKeyMetadata

	role         *iamtypes.Role
	roleAttached []iamtypes.AttachedPolicy

	policy    *iamtypes.Policy
	policyDoc string // the default version's document, as IAM returns it
	// policyCurrent: the policy's tags show its default version holds the
	// wanted document, which was therefore not read (policyDoc is empty).
	policyCurrent bool
}

func isNoSuchEntity(err error) bool {
	var e *iamtypes.NoSuchEntityException
	return errors.As(err, &e)
}

func isRepositoryNotFound(err error) bool {
	var e *ecrtypes.RepositoryNotFoundException
	return errors.As(err, &e)
}

// read reads the account in concurrent rounds: everything named by the
// options, then what needs the account ID (the policy) or the repository's
// ARN (its tags), then, only when the policy's tags do not show that its
// default version holds the wanted document, that version's document.
func (p *Provisioner) read(ctx context.Context, o Options) (*state, error) {
	s := &state{}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		out, err := p.STS.GetCallerIdentity(gctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return fail("checking the AWS credentials", "sts:GetCallerIdentity", err)
		}
		s.account = aws.ToString(out.Account)
		s.partition = "aws"
		if a, err := arn.Parse(aws.ToString(out.Arn)); err == nil {
			s.partition = a.Partition
		} else {
			s.partition = policies.PartitionOf(o.Region)
		}
		return nil
	})
	g.Go(func() error {
		out, err := p.ECR.DescribeRepositories(gctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{o.Repository}})
		switch {
		case isRepositoryNotFound(err):
			return nil
		case err != nil:
			return fail("reading ECR repository "+o.Repository, "ecr:DescribeRepositories", err)
		}
		for i := range out.Repositories {
			if aws.ToString(out.Repositories[i].RepositoryName) == o.Repository {
				s.repo = &out.Repositories[i]
			}
		}
		return nil
	})
	g.Go(func() error {
		out, err := p.IAM.GetUser(gctx, &iam.GetUserInput{UserName: aws.String(o.User)})
		switch {
		case isNoSuchEntity(err):
			return nil
		case err != nil:
			return fail("reading IAM user "+o.User, "iam:GetUser", err)
		}
		s.user = out.User
		return nil
	})
	g.Go(func() error {
		out, err := p.IAM.ListAccessKeys(gctx, &iam.ListAccessKeysInput{UserName: aws.String(o.User)})
		switch {
		case isNoSuchEntity(err):
			return nil
		case err != nil:
			return fail("listing the access keys of IAM user "+o.User, "iam:ListAccessKeys", err)
		}
		s.keys = out.AccessKeyMetadata
		return nil
	})
	g.Go(func() error {
		out, err := p.IAM.GetRole(gctx, &iam.GetRoleInput{RoleName: aws.String(o.Role)})
		switch {
		case isNoSuchEntity(err):
			return nil
		case err != nil:
			return fail("reading IAM role "+o.Role, "iam:GetRole", err)
		}
		s.role = out.Role
		return nil
	})
	g.Go(func() error {
		var marker *string
		for {
			out, err := p.IAM.ListAttachedRolePolicies(gctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(o.Role), Marker: marker})
			switch {
			case isNoSuchEntity(err):
				return nil
			case err != nil:
				return fail("listing the policies attached to IAM role "+o.Role, "iam:ListAttachedRolePolicies", err)
			}
			s.roleAttached = append(s.roleAttached, out.AttachedPolicies...)
			if !out.IsTruncated || out.Marker == nil {
				return nil
			}
			marker = out.Marker
		}
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if s.user == nil {
		s.keys = nil // listed before a concurrent deletion: ignore
	}
	if s.role == nil {
		s.roleAttached = nil
	}

	g, gctx = errgroup.WithContext(ctx)
	policyARN := policies.PolicyARN(s.partition, s.account, o.Policy)
	g.Go(func() error {
		out, err := p.IAM.GetPolicy(gctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
		switch {
		case isNoSuchEntity(err):
			return nil
		case err != nil:
			return fail("reading IAM policy "+o.Policy, "iam:GetPolicy", err)
		}
		s.policy = out.Policy
		return nil
	})
	if s.repo != nil {
		g.Go(func() error {
			tags, err := p.repoTags(gctx, aws.ToString(s.repo.RepositoryArn))
			if isRepositoryNotFound(err) {
				s.repo = nil // deleted meanwhile
				return nil
			}
			if err != nil {
				return fail("reading the tags of ECR repository "+o.Repository, "ecr:ListTagsForResource", err)
			}
			s.repoManaged = managed.ECR(tags)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	if s.policy != nil && knownCurrent(s.policy, wantPermissions(o, s.partition, s.account)) {
		s.policyCurrent = true
	} else if s.policy != nil {
		doc, err := p.policyDocument(ctx, s.policy)
		if isNoSuchEntity(err) {
			s.policy = nil // deleted meanwhile
		} else if err != nil {
			return nil, fail("reading the document of IAM policy "+o.Policy, "iam:GetPolicyVersion", err)
		}
		s.policyDoc = doc
	}
	return s, nil
}

func (p *Provisioner) repoTags(ctx context.Context, repoARN string) ([]ecrtypes.Tag, error) {
	out, err := p.ECR.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String(repoARN)})
	if err != nil {
		return nil, err
	}
	return out.Tags, nil
}

// policyDocument returns the default version's document (URL-encoded, as
// IAM returns it).
func (p *Provisioner) policyDocument(ctx context.Context, pol *iamtypes.Policy) (string, error) {
	out, err := p.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: pol.Arn, VersionId: pol.DefaultVersionId})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.PolicyVersion.Document), nil
}

// attachedTo reports whether the policy ARN is among the attached policies.
func attachedTo(list []iamtypes.AttachedPolicy, policyARN string) bool {
	for _, a := range list {
		if strings.EqualFold(aws.ToString(a.PolicyArn), policyARN) {
			return true
		}
	}
	return false
}
