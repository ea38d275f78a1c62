package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
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
	"github.com/containerise/containerise/internal/scan"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/push"
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
		{[]string{"--scan"}, "--scan needs --fail-on SEVERITY, the severity that fails the job: e.g. containerise push --scan --fail-on HIGH"},
		{[]string{"--junit", "r.xml"}, "--junit needs --scan: containerise push --scan --fail-on HIGH --junit"},
		{[]string{"--scan", "--fail-on", "HIGH", "--ignore", "not an id"}, "--ignore"},
		{[]string{"--scan", "--fail-on", "bad"}, `--fail-on "bad"`},
		{[]string{"--scan", "--fail-on", "HIGH", "--scan-wait", "-1m"}, "--scan-wait"},
		{[]string{"--require-signature"}, "--require-signature needs --scan: containerise push --scan --fail-on HIGH --require-signature"},
	} {
		_, _, err := runPushCmd(t, blogEnv(), c.args...)
		if exitCodeOf(err) != clierror.ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
	if _, _, err := runPushCmd(t, blogEnv(), "--scan", "--fail-on", "critical"); err != nil {
		t.Errorf("push --scan --fail-on critical: %v", err)
	}
	// push --scan judges the signature as scan does.
	f := &pushFlags{Scan: true}
	f.FailOn, f.RequireSignature = "HIGH", true
	if g, err := f.scanGate(); err != nil || !g.policy.RequireSignature {
		t.Errorf("push --scan --require-signature: gate %+v, %v", g, err)
	}
}

// TestScanPolicyFlags: the image (a fixable HIGH, an unfixable
// CRITICAL, an accepted HIGH) fails --fail-on HIGH, with a JUnit report
// naming the failing CVEs; with --only-fixable and both fixable IDs
// ignored it passes.
func TestScanPolicyFlags(t *testing.T) {
	acct := scanAccount(t, nil)
	must0(acct.SetScanResult("circleci-ecr-test", awsfake.ScanResult{Enhanced: true, Findings: []awsfake.Finding{
		{ID: "CVE-2026-1001", Severity: "HIGH", Package: "openssl", Version: "3.0.2", Fix: "YES", FixedIn: "3.0.7"},
		{ID: "CVE-2026-1002", Severity: "CRITICAL", Package: "zlib", Version: "1.2.11", Fix: "NO"},
		{ID: "CVE-2026-1003", Severity: "HIGH", Package: "curl", Version: "7.88", Fix: "YES", FixedIn: "8.0.1"},
	}}))
	must(acct.AddImage("circleci-ecr-test", "v2"))
	dir := t.TempDir()
	ignores := filepath.Join(dir, "scanignore")
	must0(os.WriteFile(ignores, []byte("# accepted\nCVE-2026-1003 2999-12-31 curl is not reachable\n"), 0o644))
	report := filepath.Join(dir, "results", "scan.xml")

	r := runScanCmd(t, acct, blogEnv(), "--tag", "v2", "--fail-on", "HIGH", "--ignore-file", ignores, "--junit", report)
	if r.code != 1 || !strings.Contains(r.message, "has 2 findings at or above HIGH") {
		t.Fatalf("exit %d %q\n%s", r.code, r.message, r.stdout)
	}
	for _, want := range []string{"enhanced scanning", "FAIL: 2 findings at or above HIGH (1 not counted)", "CRITICAL  CVE-2026-1002  zlib 1.2.11",
		"HIGH  CVE-2026-1001  openssl 3.0.2  (fixed in 3.0.7)", "not counted:", "CVE-2026-1003  curl 7.88  (fixed in 8.0.1): ignored until 2999-12-31 curl is not reachable (" + ignores + ":2)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	x, err := os.ReadFile(report)
	if err != nil || xml.Unmarshal(x, new(struct{})) != nil || !strings.Contains(string(x), `<failure message="CRITICAL CVE-2026-1002 at or above HIGH"`) ||
		!strings.Contains(string(x), `<skipped message="ignored until 2999-12-31 curl is not reachable`) {
		t.Errorf("JUnit report (%v):\n%s", err, x)
	}

	pass := runScanCmd(t, acct, blogEnv(), "--tag", "v2", "--fail-on", "HIGH", "--only-fixable", "--ignore", "CVE-2026-1001", "--ignore-file", ignores, "--output", "json")
	if pass.code != 0 {
		t.Fatalf("exit %d %q\n%s", pass.code, pass.message, pass.stdout)
	}
	var doc scanJSON
	must0(json.Unmarshal([]byte(pass.stdout), &doc))
	if !doc.Passed || !doc.OnlyFixable || len(doc.Ignores) != 2 || doc.Ignores[1].Source != ignores+":2" || doc.Images[0].Verdict != "pass" || len(doc.Images[0].Findings) != 3 {
		t.Errorf("json: %+v", doc)
	}
	for _, f := range doc.Images[0].Findings {
		if f.Verdict == "fail" || (f.Name == "CVE-2026-1002" && (f.Verdict != "no-fix" || f.Fix != "NO")) {
			t.Errorf("finding %+v", f)
		}
	}
}

func TestScanIgnoreFileErrorsExit2BeforeAnyCall(t *testing.T) {
	acct := scanAccount(t, nil)
	dir := t.TempDir()
	bad := filepath.Join(dir, "ignores")
	must0(os.WriteFile(bad, []byte("CVE-2026-1\nCVE-2026-2 2026-02-30 typo in the date\n"), 0o644))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ignore-file", bad}, bad + ":2: \"2026-02-30\" is not a date"},
		{[]string{"--ignore-file", filepath.Join(dir, "missing")}, "--ignore-file: open " + filepath.Join(dir, "missing")},
		{[]string{"--ignore", "CVE 2026"}, `--ignore: "CVE 2026" is not a vulnerability ID`},
		{[]string{"--junit", dir}, "--junit " + dir + " is a folder"},
	} {
		acct.ResetCalls()
		r := runScanCmd(t, acct, blogEnv(), append([]string{"--tag", "v1", "--fail-on", "HIGH"}, c.args...)...)
		if r.code != clierror.ExitUsage || !strings.Contains(r.message, c.want) || r.gated || len(acct.Calls()) != 0 {
			t.Errorf("%v: exit %d %q (gate reached %v), want 2 naming %s", c.args, r.code, r.message, r.gated, c.want)
		}
	}
}

// TestScanWithoutVerdict: LIMIT_EXCEEDED fails the gate, the message and
// the JSON say why and what to do.
func TestScanWithoutVerdict(t *testing.T) {
	acct := scanAccount(t, nil)
	must0(acct.SetScanResult("circleci-ecr-test", awsfake.ScanResult{Status: ecrtypes.ScanStatusLimitExceeded, Description: "The scan quota has been exceeded."}))
	must(acct.AddImage("circleci-ecr-test", "v3"))
	r := runScanCmd(t, acct, blogEnv(), "--tag", "v3", "--fail-on", "CRITICAL", "--output", "json")
	if r.code != 1 || !strings.Contains(r.message, "circleci-ecr-test:v3 has no verdict, so it does not pass: scan status LIMIT_EXCEEDED: ECR's scan quota was exceeded") ||
		!strings.Contains(r.message, "rerun the gate once the quota allows") {
		t.Fatalf("exit %d %q", r.code, r.message)
	}
	var doc scanJSON
	must0(json.Unmarshal([]byte(r.stdout), &doc))
	img := doc.Images[0]
	if doc.Passed || img.Verdict != "none" || img.NoVerdict == nil || img.NoVerdict.Status != "LIMIT_EXCEEDED" || !strings.Contains(img.NoVerdict.Why, "The scan quota has been exceeded") || img.NoVerdict.Do == "" {
		t.Errorf("json: %+v", r.stdout)
	}
}

func must0(err error) {
	if err != nil {
		panic(err)
	}
}

// TestPushGateJudgesPushedDigests: push --scan names each image by the
// digest the push wrote, with the tags that name it.
func TestPushGateJudgesPushedDigests(t *testing.T) {
	got := pushedTargets([]push.Pushed{{Tag: "v1", Digest: "sha256:a"}, {Tag: "latest", Digest: "sha256:a"}, {Tag: "v2", Digest: "sha256:b"}})
	want := []scan.Target{scan.Digest("sha256:a", "v1", "latest"), scan.Digest("sha256:b", "v2")}
	if len(got) != 2 || got[0].Digest != want[0].Digest || strings.Join(got[0].Tags, ",") != "v1,latest" || got[1].Digest != want[1].Digest || strings.Join(got[1].Tags, ",") != "v2" {
		t.Errorf("targets %+v, want %+v", got, want)
	}
}
