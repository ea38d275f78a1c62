package policies

import (
	"sort"
	"strings"
)

// RepositoryRef is an ECR repository as an ARN names it. Its region is part
// of its identity: my-app in eu-west-1 and my-app in us-east-1 are two
// repositories.
type RepositoryRef struct {
	Partition, Region, Account, Name string
}

// String is how people see a repository: region/name.
func (r RepositoryRef) String() string { return r.Region + "/" + r.Name }

// ARN is the repository's ARN.
func (r RepositoryRef) ARN() string {
	return RepositoryARN(r.Partition, r.Region, r.Account, r.Name)
}

// ParseRepositoryARN reads arn:PARTITION:ecr:REGION:ACCOUNT:repository/NAME;
// ok is false for any other ARN (and for a wildcard name).
func ParseRepositoryARN(arn string) (RepositoryRef, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ecr" || parts[3] == "" || parts[4] == "" {
		return RepositoryRef{}, false
	}
	name, ok := strings.CutPrefix(parts[5], "repository/")
	if !ok || name == "" || strings.ContainsAny(name, "*?") {
		return RepositoryRef{}, false
	}
	return RepositoryRef{Partition: parts[1], Region: parts[3], Account: parts[4], Name: name}, true
}

// Repositories are the repositories d's Allow statements grant anything on,
// named by their ARNs, each once, sorted by region then name.
func (d Document) Repositories() []RepositoryRef {
	seen := map[string]bool{}
	var out []RepositoryRef
	for _, s := range d.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, res := range s.Resource {
			if r, ok := ParseRepositoryARN(res); ok && !seen[r.ARN()] {
				seen[r.ARN()] = true
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Dropped are the repositories have grants and want does not: what CI
// could no longer push to once want replaces have.
func Dropped(have, want Document) []RepositoryRef {
	kept := map[string]bool{}
	for _, r := range want.Repositories() {
		kept[r.ARN()] = true
	}
	var out []RepositoryRef
	for _, r := range have.Repositories() {
		if !kept[r.ARN()] {
			out = append(out, r)
		}
	}
	return out
}
