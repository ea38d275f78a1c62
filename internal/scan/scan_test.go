package scan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

var bg = context.Background()

const repo = "circleci-ecr-test"

// account is a fake account with the repository, scanning on push or not,
// and a gate over it whose waits advance the fake clock.
func account(t *testing.T, scanOnPush bool, result awsfake.ScanResult) (*awsfake.Account, *Gate, *[]string) {
	t.Helper()
	a := awsfake.New(awsfake.Config{})
	if _, err := a.ECR().CreateRepository(bg, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo),
		ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: scanOnPush}}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetScanResult(repo, result); err != nil {
		t.Fatal(err)
	}
	var log []string
	g := &Gate{ECR: a.ECR(), Logf: func(f string, args ...any) { log = append(log, fmt.Sprintf(f, args...)) },
		Wait: awsx.Waiter{Bound: 5 * time.Minute, Now: a.Now, Sleep: func(ctx context.Context, d time.Duration) error { a.Advance(d); return ctx.Err() }}}
	return a, g, &log
}

func TestFindingsAtOrAboveTheThresholdFail(t *testing.T) {
	a, g, _ := account(t, true, awsfake.ScanResult{Counts: map[string]int32{"HIGH": 2, "MEDIUM": 1, "LOW": 4, "UNDEFINED": 1}})
	digest, _ := a.AddImage(repo, "v1")
	a.ResetCalls()
	for _, c := range []struct {
		threshold Severity
		failing   int
	}{{Critical, 0}, {High, 2}, {Medium, 3}, {Low, 7}, {Informational, 7}} {
		r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: c.threshold})
		if err != nil {
			t.Fatalf("%s: %v", c.threshold, err)
		}
		if r.Failing != c.failing || r.Passed() != (c.failing == 0) {
			t.Errorf("%s: %d failing, passed %v; want %d", c.threshold, r.Failing, r.Passed(), c.failing)
		}
		if r.Digest != digest || r.Scanner != "basic" || r.Status != "COMPLETE" || r.Started || r.Counts["UNDEFINED"] != 1 || r.Counts["HIGH"] != 2 {
			t.Errorf("%s: result %+v", c.threshold, r)
		}
	}
	r, _ := g.Check(bg, repo, Tag("v1"), Policy{Threshold: Medium})
	if len(r.Findings) != 2 || r.Findings[0].Severity != "HIGH" || r.Findings[1].Severity != "MEDIUM" || r.Findings[0].Package != "fakepkg 1.0" ||
		r.Findings[0].Verdict != Fails || r.Failing != 3 || r.Unlisted != 1 {
		t.Errorf("findings: %+v", r)
	}
	// Only reads: the repository scanned on push.
	if m := a.Mutating(); len(m) != 0 {
		t.Errorf("the gate wrote: %v", m)
	}
}

// TestGateStartsAScanAndWaits: an image the repository did not scan gets a
// scan, and the gate polls until it completes, within its bound.
func TestGateStartsAScanAndWaits(t *testing.T) {
	a, g, log := account(t, false, awsfake.ScanResult{Duration: 40 * time.Second, Counts: map[string]int32{"LOW": 1}})
	a.AddImage(repo, "v1")
	start := a.Now()
	r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Started || !r.Passed() || r.Counts["LOW"] != 1 {
		t.Errorf("result %+v", r)
	}
	if waited := a.Now().Sub(start); waited < 40*time.Second || waited > 60*time.Second {
		t.Errorf("waited %s on the fake clock for a 40 s scan", waited)
	}
	if n := strings.Count(strings.Join(a.Ops(), " "), "ecr.StartImageScan"); n != 1 {
		t.Errorf("StartImageScan %d times: %v", n, a.Ops())
	}
	if len(*log) == 0 || !strings.Contains((*log)[0], "starting ECR's scan") {
		t.Errorf("log %q", *log)
	}
}

func TestGateWaitIsBounded(t *testing.T) {
	a, g, _ := account(t, true, awsfake.ScanResult{Duration: time.Hour})
	a.AddImage(repo, "v1")
	g.Wait.Bound = time.Minute
	start := a.Now()
	r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High})
	if err != nil || r.Passed() || r.NoVerdict == nil || r.NoVerdict.Next != hint.WaitLonger || !strings.Contains(r.NoVerdict.Why, "still in progress") {
		t.Fatalf("err %v, result %+v", err, r)
	}
	if waited := a.Now().Sub(start); waited > time.Minute {
		t.Errorf("waited %s, bound 1m", waited)
	}
	// No wait at all: one look.
	g.Wait.Bound = 0
	a.ResetCalls()
	if r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High}); err != nil || r.Passed() || len(a.Calls()) != 1 {
		t.Errorf("--wait 0: err %v, passed %v after %d calls", err, r.Passed(), len(a.Calls()))
	}
}

// TestScanWithoutVerdictNeverPasses: every status that ends a scan
// without findings fails the gate, naming the status, why and what to do.
func TestScanWithoutVerdictNeverPasses(t *testing.T) {
	for status, want := range map[ecrtypes.ScanStatus]string{
		ecrtypes.ScanStatusFailed:                 "scan of the image failed",
		ecrtypes.ScanStatusUnsupportedImage:       "cannot scan this image",
		ecrtypes.ScanStatusLimitExceeded:          "quota",
		ecrtypes.ScanStatusFindingsUnavailable:    "no findings for this image",
		ecrtypes.ScanStatusScanEligibilityExpired: "rescan duration",
		ecrtypes.ScanStatusImageArchived:          "archive",
	} {
		a, g, _ := account(t, true, awsfake.ScanResult{Status: status, Description: "ECR's own words"})
		a.AddImage(repo, "v1")
		r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: Critical})
		if err != nil || r.Passed() || r.NoVerdict == nil {
			t.Fatalf("%s: err %v, result %+v", status, err, r)
		}
		nv := r.NoVerdict
		if nv.Status != string(status) || !strings.Contains(nv.Why, want) || !strings.Contains(nv.Why, "ECR's own words") || nv.Do == "" {
			t.Errorf("%s: %+v", status, nv)
		}
	}
}

// TestEnhancedFindingsStillArriving: ECR says COMPLETE before Inspector's
// findings arrive; the gate waits that out instead of passing an empty
// answer, and fails closed when the wait ends first.
func TestEnhancedFindingsStillArriving(t *testing.T) {
	a, g, log := account(t, true, awsfake.ScanResult{Enhanced: true, Duration: 10 * time.Second, Arriving: 50 * time.Second,
		Findings: []awsfake.Finding{{ID: "CVE-2026-1", Severity: "HIGH", Package: "openssl", Version: "3.0.2", Fix: "YES", FixedIn: "3.0.7"}}})
	a.AddImage(repo, "v1")
	start := a.Now()
	r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High})
	if err != nil || r.Passed() || r.Failing != 1 || r.NoVerdict != nil {
		t.Fatalf("err %v, result %+v", err, r)
	}
	if waited := a.Now().Sub(start); waited < time.Minute {
		t.Errorf("judged after %s; the findings arrive after 60 s", waited)
	}
	if !strings.Contains(strings.Join(*log, "\n"), "the findings of") {
		t.Errorf("log does not say it waits for the findings: %q", *log)
	}
	// The wait ends in the window: no verdict, never a pass.
	a2, g2, _ := account(t, true, awsfake.ScanResult{Enhanced: true, Status: ecrtypes.ScanStatusActive, Arriving: time.Hour})
	a2.AddImage(repo, "v1")
	g2.Wait.Bound = time.Minute
	r, err = g2.Check(bg, repo, Tag("v1"), Policy{Threshold: High})
	if err != nil || r.Passed() || r.NoVerdict == nil || r.NoVerdict.Status != "ACTIVE" || !strings.Contains(r.NoVerdict.Why, "findings had not arrived") || r.NoVerdict.Next != hint.WaitLonger {
		t.Errorf("err %v, result %+v", err, r)
	}
	// A clean scan says when it completed: it passes at once.
	a3, g3, _ := account(t, true, awsfake.ScanResult{Enhanced: true, Status: ecrtypes.ScanStatusActive})
	a3.AddImage(repo, "v1")
	if r, err := g3.Check(bg, repo, Tag("v1"), Policy{Threshold: Low}); err != nil || !r.Passed() {
		t.Errorf("clean enhanced scan: err %v, result %+v", err, r)
	}
}

func TestGateCannotAsk(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(a *awsfake.Account)
		tag   string
		want  string
		next  hint.Next
	}{
		{"no such tag", func(*awsfake.Account) {}, "v9", "no image has that tag", hint.None},
		{"the role may not read findings", func(a *awsfake.Account) {
			a.FailOperation("ecr.DescribeImageScanFindings", accessDenied("ecr:DescribeImageScanFindings"))
		}, "v1", "ecr:DescribeImageScanFindings", hint.AllowScan},
		{"the role may not read Inspector's findings", func(a *awsfake.Account) {
			a.FailOperation("ecr.DescribeImageScanFindings", accessDenied("inspector2:ListFindings"))
		}, "v1", "needs inspector2:ListFindings too", hint.None},
		{"the role may not start a scan", func(a *awsfake.Account) {
			a.FailOperation("ecr.StartImageScan", accessDenied("ecr:StartImageScan"))
		}, "v1", "may not start a scan", hint.AllowScan},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, g, _ := account(t, false, awsfake.ScanResult{})
			a.AddImage(repo, "v1")
			c.setup(a)
			_, err := g.Check(bg, repo, Tag(c.tag), Policy{Threshold: High})
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), c.want) || e.Next != c.next {
				t.Errorf("err %v, want one saying %q (next %v)", err, c.want, c.next)
			}
		})
	}
}

func accessDenied(action string) error {
	return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/containerise/ci is not authorized to perform: " + action}
}

// TestEnhancedScanningIsGatedToo: Amazon Inspector's answer (ACTIVE,
// enhanced findings) is counted the same way; UNTRIAGED is shown, not
// gated.
func TestEnhancedScanningIsGatedToo(t *testing.T) {
	a, g, _ := account(t, true, awsfake.ScanResult{Status: ecrtypes.ScanStatusActive, Enhanced: true, Counts: map[string]int32{"HIGH": 1, "UNTRIAGED": 3}})
	a.AddImage(repo, "v1")
	r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scanner != "enhanced" || r.Failing != 1 || r.Counts["UNTRIAGED"] != 3 || len(r.Findings) != 1 || r.Findings[0].ID != "CVE-FAKE-HIGH" {
		t.Errorf("result %+v", r)
	}
	if r, _ := g.Check(bg, repo, Tag("v1"), Policy{Threshold: Critical}); !r.Passed() {
		t.Errorf("UNTRIAGED findings failed a CRITICAL gate: %+v", r)
	}
}

func TestCheckAllJudgesEachImageOnce(t *testing.T) {
	a, g, _ := account(t, true, awsfake.ScanResult{Counts: map[string]int32{"CRITICAL": 1}})
	a.AddImage(repo, "v1", "latest")
	a.AddImage(repo, "v2")
	rs, err := g.CheckAll(bg, repo, []Target{Tag("v1"), Tag("latest"), Tag("v2")}, Policy{Threshold: Critical})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || strings.Join(rs[0].Tags, ",") != "v1,latest" || strings.Join(rs[1].Tags, ",") != "v2" || rs[0].Passed() {
		t.Errorf("results: %+v %+v", rs[0], rs[1])
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{"high": High, "CRITICAL": Critical, "Informational": Informational} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "UNDEFINED", "severe"} {
		if _, err := ParseSeverity(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
