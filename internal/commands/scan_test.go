package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/push"
	"github.com/containerise/containerise/internal/scan"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

type scanRun struct {
	stdout, stderr, message string
	code                    int
	gated                   bool   // the gate was reached
	role                    string // the role the gate was asked for
}

// runScanCmd runs `scan args...` with env, its gate over acct's ECR.
func runScanCmd(t *testing.T, acct *awsfake.Account, env map[string]string, args ...string) scanRun {
	t.Helper()
	var out, errw bytes.Buffer
	g := &Globals{In: strings.NewReader(""), Out: &out, Err: &errw}
	var r scanRun
	cmd := newScanCmdWith(g, func(k string) string { return env[k] }, func(_ context.Context, o push.Options, wait time.Duration) (*scan.Gate, error) {
		r.gated, r.role = true, o.RoleARN
		return &scan.Gate{ECR: acct.ECR(), Logf: g.Logf, Wait: awsx.Waiter{Bound: wait, Now: acct.Now,
			Sleep: func(ctx context.Context, d time.Duration) error { acct.Advance(d); return ctx.Err() }}}, nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	r.stdout, r.stderr, r.code = out.String(), errw.String(), exitCodeOf(err)
	if err != nil {
		r.message = hint.Message(err, defaultWords)
	}
	return r
}

func scanAccount(t *testing.T, counts map[string]int32) *awsfake.Account {
	t.Helper()
	acct := awsfake.New(awsfake.Config{})
	must(acct.ECR().CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("circleci-ecr-test"),
		ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: true}}))
	if err := acct.SetScanResult("circleci-ecr-test", awsfake.ScanResult{Duration: 20 * time.Second, Counts: counts}); err != nil {
		t.Fatal(err)
	}
	must(acct.AddImage("circleci-ecr-test", "v1"))
	return acct
}

func TestScanFailsOnFindingsAtOrAboveTheThreshold(t *testing.T) {
	acct := scanAccount(t, map[string]int32{"HIGH": 2, "LOW": 1})
	r := runScanCmd(t, acct, blogEnv(), "--tag", "v1", "--fail-on", "high")
	if r.code != 1 || !strings.Contains(r.message, "scan gate: circleci-ecr-test:v1 has 2 findings at or above HIGH") {
		t.Fatalf("exit %d, message %q\n%s", r.code, r.message, r.stdout)
	}
	for _, want := range []string{"circleci-ecr-test:v1@sha256:", "basic scanning", "  HIGH           2", "  CRITICAL       0", "FAIL: 2 findings at or above HIGH", "HIGH  CVE-FAKE-HIGH  fakepkg 1.0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "waiting for ECR's scan of circleci-ecr-test:v1") {
		t.Errorf("stderr does not say it waits:\n%s", r.stderr)
	}
	if r.role != testRole {
		t.Errorf("gate for role %q", r.role)
	}

	pass := runScanCmd(t, acct, blogEnv(), "--tag", "v1", "--fail-on", "CRITICAL", "--output", "json")
	if pass.code != 0 {
		t.Fatalf("CRITICAL gate: exit %d %s", pass.code, pass.message)
	}
	var doc scanJSON
	if err := json.Unmarshal([]byte(pass.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, pass.stdout)
	}
	img := doc.Images[0]
	if !doc.Passed || doc.Threshold != "CRITICAL" || len(doc.Images) != 1 || img.Counts["HIGH"] != 2 || img.Counts["MEDIUM"] != 0 ||
		img.Failing != 0 || img.Status != "COMPLETE" || img.Scanner != "basic" || !strings.HasPrefix(img.Digest, "sha256:") {
		t.Errorf("json: %+v", doc)
	}
}

func TestScanBadInputExit2BeforeAnyCall(t *testing.T) {
	acct := scanAccount(t, nil)
	noRole := blogEnv()
	delete(noRole, "AWS_IAM_ROLE_ARN")
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{blogEnv(), []string{"--tag", "v1"}, "--fail-on is required"},
		{blogEnv(), []string{"--tag", "v1", "--fail-on", "SEVERE"}, `--fail-on "SEVERE"`},
		{blogEnv(), []string{"--fail-on", "HIGH"}, "--tag is required"},
		{blogEnv(), []string{"--tag", "a:b", "--fail-on", "HIGH"}, "--tag"},
		{blogEnv(), []string{"--tag", "v1", "--fail-on", "HIGH", "--output", "yaml"}, "--output"},
		{blogEnv(), []string{"--tag", "v1", "--fail-on", "HIGH", "--wait", "-1s"}, "--wait"},
		{blogEnv(), []string{"--tag", "v1", "--fail-on", "HIGH", "--repository", "Bad"}, "--repository"},
		{noRole, []string{"--tag", "v1", "--fail-on", "HIGH"}, "AWS_IAM_ROLE_ARN"},
	} {
		acct.ResetCalls()
		r := runScanCmd(t, acct, c.env, c.args...)
		if r.code != clierror.ExitUsage || !strings.Contains(r.message, c.want) {
			t.Errorf("%v: exit %d %q, want 2 naming %s", c.args, r.code, r.message, c.want)
		}
		if r.gated || len(acct.Calls()) != 0 {
			t.Errorf("%v: AWS was called", c.args)
		}
	}
}

func TestScanCannotJudgeExits1WithWhatToDo(t *testing.T) {
	acct := scanAccount(t, nil)
	acct.FailOperation("ecr.DescribeImageScanFindings", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: ecr:DescribeImageScanFindings"})
	r := runScanCmd(t, acct, blogEnv(), "--tag", "v1", "--fail-on", "HIGH")
	if r.code != 1 || !strings.Contains(r.message, "--scan-on-push") || r.stdout != "" {
		t.Errorf("exit %d %q\n%s", r.code, r.message, r.stdout)
	}
	acct.ClearFaults()
	slow := scanAccount(t, nil)
	slow.SetScanResult("circleci-ecr-test", awsfake.ScanResult{Duration: time.Hour})
	must(slow.AddImage("circleci-ecr-test", "v2"))
	r = runScanCmd(t, slow, blogEnv(), "--tag", "v2", "--fail-on", "HIGH", "--wait", "30s")
	if r.code != 1 || !strings.Contains(r.message, "still in progress") || !strings.Contains(r.message, "--wait") {
		t.Errorf("exit %d %q", r.code, r.message)
	}
}

func TestPushScanFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--fail-on", "HIGH"}, "--fail-on needs --scan"},
		{[]string{"--scan"}, "--fail-on is required"},
		{[]string{"--scan", "--fail-on", "bad"}, `--fail-on "bad"`},
		{[]string{"--scan", "--fail-on", "HIGH", "--scan-wait", "-1m"}, "--scan-wait"},
	} {
		_, _, err := runPushCmd(t, blogEnv(), c.args...)
		if exitCodeOf(err) != clierror.ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
	if _, _, err := runPushCmd(t, blogEnv(), "--scan", "--fail-on", "critical"); err != nil {
		t.Errorf("push --scan --fail-on critical: %v", err)
	}
}
