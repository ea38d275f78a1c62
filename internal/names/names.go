// Package names holds the blog's names: the resources' defaults every
// command shares, the CircleCI environment variables that carry setup's
// results to push, and the check of a set of resource names against AWS's
// rules.
package names

import "github.com/containerise/containerise/internal/validate"

// The blog's resource names.
const (
	Repository = "circleci-ecr-test"
	Policy     = "ECRContainerise"
	User       = "circleci"
	Role       = "containerise"
)

// The CircleCI environment variables, under the blog's names.
const (
	EnvAccessKeyID     = "AWS_IAM_USER_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_IAM_USER_SECRET_ACCESS_KEY"
	EnvRoleARN         = "AWS_IAM_ROLE_ARN"
	EnvRegion          = "AWS_REGION"
	// EnvDefaultRegion repeats the region: boto3 (the blog's script) and
	// the AWS CLI read it from this name, not AWS_REGION.
	EnvDefaultRegion = "AWS_DEFAULT_REGION"
)

// Set names the four resources setup creates and teardown removes.
type Set struct {
	Repository, Policy, User, Role string
}

// Validate checks each name against its service's rules, naming the flag.
func (s Set) Validate() error {
	return s.ValidateAs("--repository", "--policy", "--user", "--role")
}

// ValidateAs checks each name, naming it with the given labels.
func (s Set) ValidateAs(repository, policy, user, role string) error {
	return validate.First(
		validate.Repository(repository, s.Repository),
		validate.PolicyName(policy, s.Policy),
		validate.UserName(user, s.User),
		validate.RoleName(role, s.Role),
	)
}
