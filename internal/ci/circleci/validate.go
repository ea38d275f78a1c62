package circleci

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Validation of names before any request, so that bad input fails fast. The
// messages name the value and the rule; the command layer adds the flag.

var (
	// CircleCI, like POSIX shells, takes letters, digits and '_', not
	// starting with a digit.
	envVarNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	uuidRE       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// An organisation or repository name as the VCS hosts allow them.
	slugPartRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// vcsSlugs are the first part of a project or organisation slug: GitHub
// (OAuth app) and Bitbucket, short and long, and "circleci" for GitHub App
// and GitLab projects, which are named by organisation and project IDs.
var vcsSlugs = map[string]bool{"gh": true, "github": true, "bb": true, "bitbucket": true, "circleci": true}

// ValidateProjectSlug checks a project slug: vcs/org/repo, such as
// gh/acme/app or bb/acme/app, or circleci/ORG_ID/PROJECT_ID (two UUIDs) for
// GitHub App and GitLab projects.
func ValidateProjectSlug(slug string) error {
	const rule = "a project slug is gh/ORG/REPO, bb/ORG/REPO, or circleci/ORG_ID/PROJECT_ID for GitHub App and GitLab projects"
	parts := strings.Split(slug, "/")
	if len(parts) != 3 || !vcsSlugs[parts[0]] {
		return invalid("project slug", slug, rule)
	}
	if parts[0] == "circleci" {
		if !uuidRE.MatchString(parts[1]) || !uuidRE.MatchString(parts[2]) {
			return invalid("project slug", slug, "after circleci/ come the organization ID and the project ID, both UUIDs (Organization Settings and Project Settings show them)")
		}
		return nil
	}
	for _, p := range parts[1:] {
		if !slugPartRE.MatchString(p) || p == "." || p == ".." {
			return invalid("project slug", slug, rule)
		}
	}
	return nil
}

// ValidateOrgSlug checks an organisation slug: gh/ORG, bb/ORG, or
// circleci/ORG_ID.
func ValidateOrgSlug(slug string) error {
	const rule = "an organization slug is gh/ORG, bb/ORG or circleci/ORG_ID"
	parts := strings.Split(slug, "/")
	if len(parts) != 2 || !vcsSlugs[parts[0]] {
		return invalid("organization slug", slug, rule)
	}
	if parts[0] == "circleci" {
		if !uuidRE.MatchString(parts[1]) {
			return invalid("organization slug", slug, rule)
		}
		return nil
	}
	if !slugPartRE.MatchString(parts[1]) || parts[1] == "." || parts[1] == ".." {
		return invalid("organization slug", slug, rule)
	}
	return nil
}

// ValidateID checks a context or organisation ID: a UUID.
func ValidateID(what, id string) error {
	if !uuidRE.MatchString(id) {
		return invalid(what, id, "CircleCI IDs are UUIDs such as 5f9b0e3c-1a2b-4c5d-8e9f-0a1b2c3d4e5f")
	}
	return nil
}

// ValidateContextName checks a context name: not empty, at most 256
// characters, no control characters.
func ValidateContextName(name string) error {
	if name == "" || len(name) > 256 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("context name", name, "a context name is 1-256 printable characters")
	}
	return nil
}

// ValidateEnvVarName checks an environment variable name.
func ValidateEnvVarName(name string) error {
	if !envVarNameRE.MatchString(name) {
		return invalid("environment variable name", name, "letters, digits and '_', not starting with a digit")
	}
	return nil
}

func invalid(what, value, rule string) error {
	if value == "" {
		return fmt.Errorf("the %s is empty: %s", what, rule)
	}
	return fmt.Errorf("%s %q is invalid: %s", what, value, rule)
}

// projectPath is /project/{vcs}/{org}/{repo}: CircleCI takes the slug's
// slashes literally in the path; each part is escaped on its own.
func projectPath(slug string) string {
	parts := strings.Split(slug, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/project/" + strings.Join(parts, "/")
}
