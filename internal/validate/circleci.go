package validate

import (
	"regexp"
	"strings"
)

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// UUID checks an ID such as CircleCI's organisation and project IDs.
func UUID(flag, id, where string) error {
	if !uuidRE.MatchString(id) {
		return bad(flag, id, "expected a UUID such as 0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0 ("+where+")")
	}
	return nil
}

// Branch checks a git branch name by the rules of git check-ref-format
// (for refs/heads/<name>), plus git's own refusal of a branch called HEAD
// or starting with '-'. A name may be given as refs/heads/<name>.
func Branch(flag, name string) error {
	short := strings.TrimPrefix(name, "refs/heads/")
	if why := refRule(short); why != "" {
		return bad(flag, name, "a git branch name "+why)
	}
	// CircleCI's v2 subject ends /vcs-ref/<ref>; the trust refuses any
	// subject naming /vcs-ref/ twice, so such a branch could never push.
	if strings.Contains("refs/heads/"+short, "/vcs-ref/") {
		return bad(flag, name, "a branch name does not put '/vcs-ref/' in its ref: CircleCI's token subject uses it as a separator, so the role's trust would refuse every job of that branch")
	}
	return nil
}

// refRule returns the check-ref-format rule name breaks, "" when none.
func refRule(name string) string {
	switch {
	case name == "":
		return "is not empty"
	case name == "HEAD":
		return "is not HEAD"
	case name == "@":
		return "is not the single character '@'"
	case strings.HasPrefix(name, "-"):
		return "does not start with '-'"
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		return "does not start or end with '/' nor contain '//'"
	case strings.HasSuffix(name, "."):
		return "does not end with '.'"
	case strings.Contains(name, ".."):
		return "does not contain '..'"
	case strings.Contains(name, "@{"):
		return "does not contain '@{'"
	case strings.ContainsAny(name, " ~^:?*[\\"):
		return "has no space, '~', '^', ':', '?', '*', '[' or '\\'"
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return "has no control characters"
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return "has no part that starts with '.' or ends with '.lock'"
		}
	}
	return ""
}
