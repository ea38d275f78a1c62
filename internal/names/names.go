// Package names holds the blog's names: the resources' defaults every
// command shares, and the CircleCI environment variables that carry setup's
// results to push. The names are checked with the rest of the spec
// (resource.Spec.Validate).
package names

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
