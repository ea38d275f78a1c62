package resource

import "strings"

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
