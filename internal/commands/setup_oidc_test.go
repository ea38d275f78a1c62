package commands

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

var keylessArgs = []string{"--auth", "oidc", "--circleci-org-id", testOrg, "--circleci-project-id", testProject}

func TestSetupKeylessRefusesBadInputBeforeAnyCall(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--auth", "saml"}, "--auth"},
		{[]string{"--auth", "oidc", "--circleci-project-id", testProject}, "--auth oidc needs --circleci-org-id"},
		{[]string{"--auth", "oidc", "--circleci-org-id", "acme", "--circleci-project-id", testProject}, "--circleci-org-id \"acme\" is invalid"},
		{[]string{"--auth", "oidc", "--circleci-org-id", testOrg}, "--auth oidc needs --circleci-project-id"},
		{[]string{"--auth", "oidc", "--circleci-org-id", testOrg, "--circleci-project-id", "my-app"}, "--circleci-project-id \"my-app\" is invalid"},
		{append(append([]string{}, keylessArgs...), "--any-project"), "exclude each other"},
		{append(append([]string{}, keylessArgs...), "--branch", "feature..x"), "--branch \"feature..x\" is invalid"},
		{append(append([]string{}, keylessArgs...), "--rotate-key"), "--rotate-key is for --auth keys"},
		{[]string{"--circleci-org-id", testOrg}, "--circleci-org-id is for keyless setups"},
		{[]string{"--branch", "main"}, "--branch is for keyless setups"},
	} {
		acct := awsfake.New(awsfake.Config{})
		r := runSetupCmd(t, acct, c.args...)
		var u *clierror.UsageError
		if !errors.As(r.err, &u) || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error with %q", c.args, r.err, c.want)
		}
		if r.built || len(acct.Calls()) != 0 {
			t.Errorf("%v: AWS was called", c.args)
		}
	}
}

func TestSetupKeylessOutput(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct, keylessArgs...)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{"oidc-provider  oidc.circleci.com/org/" + testOrg + "  created", "AWS_IAM_ROLE_ARN=arn:aws:iam::123456789012:role/containerise",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "Keyless: no access key"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "AWS_IAM_USER") || strings.Contains(r.stdout, "access-key") || strings.Contains(r.stdout, "user ") {
		t.Errorf("keyless output mentions a key or user:\n%s", r.stdout)
	}

	again := runSetupCmd(t, acct, append([]string{"--output", "json"}, keylessArgs...)...)
	var doc setupJSON
	if err := json.Unmarshal([]byte(again.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, res := range doc.Resources {
		kinds = append(kinds, res.Kind+"="+res.Status)
	}
	if doc.Auth != "oidc" || doc.SecretAvailable || len(doc.Variables) != 3 || strings.Join(kinds, " ") != "repository=unchanged policy=unchanged oidc-provider=unchanged role=unchanged" {
		t.Errorf("json %+v", doc)
	}
	dotenv := runSetupCmd(t, acct, append([]string{"--output", "dotenv"}, keylessArgs...)...)
	if dotenv.stdout != "AWS_IAM_ROLE_ARN=\"arn:aws:iam::123456789012:role/containerise\"\nAWS_REGION=\"us-east-1\"\nAWS_DEFAULT_REGION=\"us-east-1\"\n" || dotenv.stderr != "" {
		t.Errorf("dotenv:\n%s\nstderr:\n%s", dotenv.stdout, dotenv.stderr)
	}
}

// Switching from keys without a terminal or --yes keeps the user, and says
// how to finish: the same command with --yes.
func TestSetupKeylessSwitchNeedsConfirmation(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	if r := runSetupCmd(t, acct); r.err != nil {
		t.Fatal(r.err)
	}
	r := runSetupCmd(t, acct, append(append([]string{}, keylessArgs...), "--branch", "release/v1")...)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "not done without confirmation (no terminal to ask at; pass --yes): delete access key") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	want := "containerise setup --yes --auth oidc --circleci-org-id " + testOrg + " --circleci-project-id " + testProject + " --branch release/v1"
	if !regexp.MustCompile(`(?m)^  user +circleci +kept +no longer used`).MatchString(r.stdout) || !strings.Contains(r.stdout, want) {
		t.Errorf("stdout does not show the kept user and how to finish (%q):\n%s", want, r.stdout)
	}
	for _, op := range acct.Mutating() {
		if op == "iam.DeleteUser" || op == "iam.DeleteAccessKey" {
			t.Errorf("deleted without confirmation: %s", op)
		}
	}
	done := runSetupCmd(t, acct, append(append([]string{}, keylessArgs...), "--branch", "release/v1", "--yes")...)
	if done.err != nil || !strings.Contains(done.stdout, "deleted") {
		t.Fatalf("with --yes: %v\n%s", done.err, done.stdout)
	}
}
