package resource

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/policies"
)

// RepositoryAt is a repository in a region: its region is part of its
// identity (my-app in eu-west-1 is not my-app in us-east-1).
type RepositoryAt struct{ Region, Name string }

// String is region/name, as people see a repository.
func (r RepositoryAt) String() string { return r.Region + "/" + r.Name }

// Repos are the spec's repositories, each once, in the order given, each
// with its region (Region when it names none).
func (s Spec) Repos() []RepositoryAt {
	list := s.Repositories
	if len(list) == 0 {
		list = []RepositoryAt{{Name: s.Repository}}
	}
	seen := map[RepositoryAt]bool{}
	var out []RepositoryAt
	for _, r := range list {
		if r.Region == "" {
			r.Region = s.Region
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// repositories wires one Repository per repository of the spec.
func (st *Stack) repositories() {
	for _, r := range st.Spec.Repos() {
		st.Repositories = append(st.Repositories, NewRepositoryIn(r.Region, r.Name))
	}
}

func (st *Stack) repositoryResources() []Resource {
	var out []Resource
	for _, r := range st.Repositories {
		out = append(out, r)
	}
	return out
}

// repositoryNames name the repositories in the policy's description.
func (st *Stack) repositoryNames() string {
	var names []string
	for _, r := range st.Repositories {
		names = append(names, r.Name)
	}
	return strings.Join(names, ", ")
}

// anyScansOnPush: the policy's scan grant follows the repositories' own
// scanning, and reading findings is wanted as soon as one of them scans.
func (st *Stack) anyScansOnPush() bool {
	for _, r := range st.Repositories {
		if r.ScansOnPush() {
			return true
		}
	}
	return false
}

// Granted is what the managed policy grants, as read before the stack is
// wired: teardown finds setup's repositories in it.
type Granted struct {
	// Repositories are those the default version grants, as its ARNs name
	// them (region and account included).
	Repositories []policies.RepositoryRef
	// Found: the policy exists.
	Found bool

	policy *iamtypes.Policy
}

// ReadGranted reads the managed policy called name and the repositories
// its default version grants. Give the result to the stack's Policy
// (Known), so that it is not read twice.
func ReadGranted(ctx context.Context, env *Env, name string) (*Granted, error) {
	id, err := env.Identity(ctx)
	if err != nil {
		return nil, err
	}
	arn := policies.PolicyARN(id.Partition, id.Account, name)
	out, err := env.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if awsx.IsNotFound(err) {
		return &Granted{}, nil
	}
	if err != nil {
		return nil, fail(KindPolicy, name, "reading IAM policy "+name, "iam:GetPolicy", err)
	}
	text, err := policyDocument(ctx, env, out.Policy)
	if awsx.IsNotFound(err) {
		return &Granted{}, nil // deleted meanwhile
	}
	if err != nil {
		return nil, fail(KindPolicy, name, "reading the document of IAM policy "+name, "iam:GetPolicyVersion", err)
	}
	g := &Granted{Found: true, policy: out.Policy}
	if doc, err := policies.Parse(text); err == nil {
		g.Repositories = doc.Repositories()
	}
	return g, nil
}
