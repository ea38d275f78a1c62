// Package names holds the blog's resource names, the defaults every command
// shares, and the check of a set of names against AWS's rules.
package names

import "github.com/containerise/containerise/internal/validate"

// The blog's names.
const (
	Repository = "circleci-ecr-test"
	Policy     = "ECRContainerise"
	User       = "circleci"
	Role       = "containerise"
)

// Set names the four resources setup creates and teardown removes.
type Set struct {
	Repository, Policy, User, Role string
}

// Validate checks each name against its service's rules, naming the flag.
func (s Set) Validate() error {
	return validate.First(
		validate.Repository("--repository", s.Repository),
		validate.PolicyName("--policy", s.Policy),
		validate.UserName("--user", s.User),
		validate.RoleName("--role", s.Role),
	)
}
