package resource

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/hint"
)

// The one advice table words each error class for the run it failed in,
// with the call and the resource filled in, and nothing else appended.
func TestAdviceTable(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "no"}
	conflict := &smithy.GenericAPIError{Code: "DeleteConflict", Message: "in use"}
	for _, c := range []struct {
		run        Run
		kind, call string
		err        error
		want       string
		next       hint.Next
	}{
		{SetupWrite, KindRole, "iam:CreateRole", denied, "the admin running setup needs iam:CreateRole; see README 'Permissions'", hint.None},
		{SetupWrite, KindRole, "iam:CreateRole", context.Canceled, "interrupted; rerun setup to finish: it picks up where it stopped", hint.None},
		{SetupWrite, KindRole, "iam:CreateRole", errors.New("dial tcp: refused"), "check the network and AWS_ENDPOINT_URL, then rerun setup", hint.None},
		{TeardownRead, KindRole, "iam:GetRole", denied, "the credentials in use do not allow iam:GetRole: run teardown as an administrator", hint.AdminCredentials},
		{TeardownRead, KindRole, "iam:GetRole", errors.New("dial tcp: refused"), "check the credentials and region, then rerun teardown", hint.None},
		{TeardownDelete, KindRole, "iam:DeleteRole", denied, "the credentials in use do not allow iam:DeleteRole: rerun teardown as an administrator", hint.AdminCredentials},
		{TeardownDelete, KindRole, "iam:DeleteRole", conflict, "something was added to it since teardown read the account; rerun teardown to see what", hint.None},
		{TeardownDelete, KindRole, "iam:DeleteRole", context.DeadlineExceeded, "teardown was interrupted; rerun it to finish", hint.None},
	} {
		got, next := Advice(c.run, c.kind, "ci", c.call, c.err)
		if got != c.want || next != c.next {
			t.Errorf("%v %s %v: %q (%v), want %q (%v)", c.run, c.call, c.err, got, next, c.want, c.next)
		}
	}
	got, _ := Advice(TeardownDelete, KindUser, "ci-bot", "iam:DeleteUser", conflict)
	if !strings.Contains(got, "aws iam list-mfa-devices --user-name ci-bot") || strings.Contains(got, "%!") {
		t.Errorf("a user held by what teardown does not remove: %q", got)
	}
}
