package jobconfig

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/containerise/containerise/internal/clierror"
)

// RelativePath refuses what cannot be a path relative to the repository
// root (empty, not UTF-8, control characters, absolute or ~). A CI adds
// its own rules.
func RelativePath(flag, p string) error {
	switch {
	case p == "":
		return clierror.Usagef("%s is empty: give a path relative to the repository root, such as . or app/Dockerfile", flag)
	case !utf8.ValidString(p):
		return clierror.Usagef("%s %q is invalid: it is not valid UTF-8", flag, p)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return clierror.Usagef("%s %q is invalid: a path here may not contain control characters such as a newline", flag, p)
	case path.IsAbs(p) || strings.HasPrefix(p, "~"):
		return clierror.Usagef("%s %q is invalid: the job checks the repository out in its own folder, so give a path relative to the repository root", flag, p)
	}
	return nil
}
