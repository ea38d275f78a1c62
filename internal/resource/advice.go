package resource

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
)

// Run names what failed: a setup's write, a teardown's read, a teardown's
// deletion. Each word the same error classes their own way.
type Run int

// Runs.
const (
	SetupWrite Run = iota
	TeardownRead
	TeardownDelete
)

// adviceRow is one error class and what to do about it in each run; an
// empty text means the class has no advice of its own there, and the next
// row that matches gives it. %[1]s is the call, %[2]s the resource's name.
type adviceRow struct {
	is   func(error) bool
	text map[Run]string
	next hint.Next
}

func notAPIError(err error) bool {
	var api smithy.APIError
	return !errors.As(err, &api)
}

// userDeleteConflict is what holds a user teardown cannot delete.
const userDeleteConflict = "the user still has something teardown does not remove: a group membership, an MFA device, a signing certificate, an SSH public key or a service-specific credential; " +
	"find them with `aws iam list-groups-for-user --user-name %[2]s`, `aws iam list-mfa-devices --user-name %[2]s`, `aws iam list-signing-certificates --user-name %[2]s`, " +
	"`aws iam list-ssh-public-keys --user-name %[2]s` and `aws iam list-service-specific-credentials --user-name %[2]s`, remove them, then rerun teardown"

// advice is the one table of ways forward after a failed call, in order.
var advice = []adviceRow{
	{func(err error) bool { return errors.Is(err, context.Canceled) }, map[Run]string{
		SetupWrite:     "interrupted; rerun setup to finish: it picks up where it stopped",
		TeardownDelete: "teardown was interrupted; rerun it to finish",
	}, hint.None},
	{func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }, map[Run]string{
		SetupWrite:     "timed out; rerun setup to finish: it picks up where it stopped",
		TeardownDelete: "teardown was interrupted; rerun it to finish",
	}, hint.None},
	{notAPIError, map[Run]string{
		SetupWrite: "check the network and AWS_ENDPOINT_URL, then rerun setup",
	}, hint.None},
	{awsx.IsAccessDenied, map[Run]string{
		SetupWrite: "the admin running setup needs %[1]s; see README 'Permissions'",
	}, hint.None},
	{awsx.IsAccessDenied, map[Run]string{
		TeardownRead:   "the credentials in use do not allow %[1]s: run teardown as an administrator",
		TeardownDelete: "the credentials in use do not allow %[1]s: rerun teardown as an administrator",
	}, hint.AdminCredentials},
	{awsx.IsCredentialsRefused, map[Run]string{
		SetupWrite: "the admin's AWS credentials were refused: log in again (aws sso login), or use another profile",
	}, hint.AdminCredentials},
	{awsx.IsThrottled, map[Run]string{
		SetupWrite: "AWS kept throttling after retries; wait a minute and rerun setup",
	}, hint.None},
	{awsx.IsServerFault, map[Run]string{
		SetupWrite: "AWS kept failing after retries; rerun setup later: it picks up where it stopped",
	}, hint.None},
	{awsx.IsDeleteConflict, map[Run]string{
		TeardownDelete: "something was added to it since teardown read the account; rerun teardown to see what",
	}, hint.None},
}

// fallback is the advice when no row matches.
var fallback = map[Run]string{
	SetupWrite:     "rerun setup once fixed: it picks up where it stopped",
	TeardownRead:   "check the credentials and region, then rerun teardown",
	TeardownDelete: "rerun teardown: it continues where this run stopped",
}

// Advice is the way forward after call failed with err on the resource of
// kind and name, in run.
func Advice(run Run, kind, name, call string, err error) (string, hint.Next) {
	if run == TeardownDelete && kind == KindUser && awsx.IsDeleteConflict(err) {
		return fill(userDeleteConflict, call, name), hint.None
	}
	for _, row := range advice {
		if text := row.text[run]; text != "" && row.is(err) {
			return fill(text, call, name), row.next
		}
	}
	return fallback[run], hint.None
}

// fill puts the call and the name into a text that asks for them.
func fill(text, call, name string) string {
	if !strings.Contains(text, "%") {
		return text
	}
	return fmt.Sprintf(text, call, name)
}
