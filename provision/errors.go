package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awscfg"
)

// StepError is a failed step: what setup was doing, on which resource, why,
// and what to do next. It wraps the SDK's error.
type StepError struct {
	What string // "creating role containerise"
	Hint string // what to do next
	Err  error
}

func (e *StepError) Error() string {
	msg := e.What + ": " + awscfg.Describe(e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// fail wraps err from the API call needing IAM action `action` with a hint.
func fail(what, action string, err error) error {
	if err == nil {
		return nil
	}
	var already *StepError
	if errors.As(err, &already) {
		return err
	}
	return &StepError{What: what, Hint: hint(action, err), Err: err}
}

func hint(action string, err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted; rerun setup to finish: it picks up where it stopped"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out; rerun setup to finish: it picks up where it stopped"
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		return "check the network and AWS_ENDPOINT_URL, then rerun setup"
	}
	switch api.ErrorCode() {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess":
		return fmt.Sprintf("the admin running setup needs %s; see README 'Permissions'", action)
	case "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "InvalidSignatureException":
		return "the admin's AWS credentials were refused: check AWS_PROFILE or --profile, or log in again (aws sso login)"
	case "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded":
		return "AWS kept throttling after retries; wait a minute and rerun setup"
	}
	if api.ErrorFault() == smithy.FaultServer {
		return "AWS kept failing after retries; rerun setup later: it picks up where it stopped"
	}
	return "rerun setup once fixed: it picks up where it stopped"
}
