package teardown

import (
	"github.com/containerise/containerise/internal/awscfg"
)

// awsError shows an SDK error as "Code: message", without the operation and
// request ID noise, and still unwraps to it so callers can match typed errors.
type awsError struct{ err error }

func (e awsError) Error() string { return awscfg.Describe(e.err) }
func (e awsError) Unwrap() error { return e.err }

// notFound reports whether err says the thing does not exist (any more).
func notFound(err error) bool {
	switch awscfg.ErrorCode(err) {
	case "NoSuchEntity", "RepositoryNotFoundException":
		return true
	}
	return false
}

func isDeleteConflict(err error) bool { return awscfg.ErrorCode(err) == "DeleteConflict" }

func isAccessDenied(err error) bool {
	switch awscfg.ErrorCode(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AccessDeniedFault":
		return true
	}
	return false
}
