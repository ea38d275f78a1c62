package teardown

import (
	"errors"

	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awscfg"
)

// awsError shows an SDK error as "Code: message", without the operation and
// request ID noise, and still unwraps to it so callers can match typed errors.
type awsError struct{ err error }

func (e awsError) Error() string { return awscfg.Describe(e.err) }
func (e awsError) Unwrap() error { return e.err }

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// notFound reports whether err says the thing does not exist (any more).
func notFound(err error) bool {
	switch errorCode(err) {
	case "NoSuchEntity", "RepositoryNotFoundException":
		return true
	}
	return false
}

func isDeleteConflict(err error) bool { return errorCode(err) == "DeleteConflict" }

func isAccessDenied(err error) bool {
	switch errorCode(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AccessDeniedFault":
		return true
	}
	return false
}
