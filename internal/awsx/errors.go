package awsx

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/hint"
)

// ErrorCode returns the AWS error code of err ("NoSuchEntity", "Throttling"),
// "cancelled" for a cancelled context, or "error" when err carries none.
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return "error"
}

// Describe turns an SDK error into "Code: message" without the operation and
// request ID noise, for messages shown to users.
func Describe(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if msg := apiErr.ErrorMessage(); msg != "" {
			return apiErr.ErrorCode() + ": " + msg
		}
		return apiErr.ErrorCode()
	}
	return err.Error()
}

// Quiet wraps err so that its message is Describe's, while errors.As and
// errors.Is still reach the SDK's typed error.
func Quiet(err error) error {
	if err == nil {
		return nil
	}
	return quiet{err}
}

type quiet struct{ err error }

func (q quiet) Error() string { return Describe(q.err) }
func (q quiet) Unwrap() error { return q.err }

// IsNotFound reports whether err says the resource does not exist (any
// more), whichever service said it.
func IsNotFound(err error) bool {
	switch ErrorCode(err) {
	case "NoSuchEntity", "RepositoryNotFoundException", "LifecyclePolicyNotFoundException":
		return true
	}
	return false
}

// IsAlreadyExists reports whether a create call found the resource there.
func IsAlreadyExists(err error) bool {
	switch ErrorCode(err) {
	case "EntityAlreadyExists", "RepositoryAlreadyExistsException":
		return true
	}
	return false
}

// IsAccessDenied reports whether the caller lacks a permission.
func IsAccessDenied(err error) bool {
	switch ErrorCode(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess", "AccessDeniedFault":
		return true
	}
	return false
}

// IsCredentialsRefused reports whether AWS refused the caller's credentials
// themselves (unknown, expired or mis-signed), rather than a permission.
func IsCredentialsRefused(err error) bool {
	switch ErrorCode(err) {
	case "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
		"ExpiredToken", "ExpiredTokenException", "InvalidSignatureException":
		return true
	}
	return false
}

// IsDeleteConflict reports IAM's refusal to delete what something still uses.
func IsDeleteConflict(err error) bool { return ErrorCode(err) == "DeleteConflict" }

// IsThrottled reports an error the SDK's retryer treats as throttling.
func IsThrottled(err error) bool {
	_, ok := retry.DefaultThrottleErrorCodes[ErrorCode(err)]
	return ok
}

// IsServerFault reports an error AWS blames on itself (5xx).
func IsServerFault(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorFault() == smithy.FaultServer
}

// IsCancelled reports an interruption or a deadline, not a fault of AWS.
func IsCancelled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Uncertain reports whether a failed call may still have taken effect: no
// answer came (a transport error), AWS failed on its side, or it
// throttled. A client fault (AccessDenied, LimitExceeded, NoSuchEntity) is
// certain. Callers of calls that are not idempotent check what happened
// before they try again.
func Uncertain(err error) bool {
	if err == nil || IsCancelled(err) {
		return false
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		return true
	}
	return IsThrottled(err) || api.ErrorFault() == smithy.FaultServer
}

// Failure is a failed step that called AWS: what was being done, AWS's
// error (still reachable with errors.As), why that happens and what to do
// next. Next is a way forward the command layer words with its flags.
type Failure struct {
	Doing string
	Err   error
	Why   string
	Hint  string
	Next  hint.Next
	After string // a last word, after the hint
}

func (e *Failure) Error() string { return e.Explain(nil) }

// Explain is the message with the way forward worded by words.
func (e *Failure) Explain(words hint.Words) string {
	msg := e.Doing + ": " + Describe(e.Err)
	if e.Why != "" {
		msg += ": " + e.Why
	}
	if h := hint.Append(e.Hint, e.Next, words); h != "" {
		msg += " (" + h + ")"
	}
	if e.After != "" {
		msg += "; " + e.After
	}
	return msg
}

func (e *Failure) Unwrap() error { return e.Err }
