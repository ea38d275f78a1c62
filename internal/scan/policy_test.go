package scan

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

// mixed is the image: a fixable HIGH, an unfixable CRITICAL and a
// HIGH the team accepts, as Amazon Inspector lists them, over two pages.
var mixed = awsfake.ScanResult{Enhanced: true, PageSize: 2, Findings: []awsfake.Finding{
	{ID: "CVE-2026-1001", Severity: "HIGH", Package: "openssl", Version: "3.0.2", Fix: "YES", FixedIn: "3.0.7"},
	{ID: "CVE-2026-1002", Severity: "CRITICAL", Package: "zlib", Version: "1.2.11", Fix: "NO", FixedIn: "NotAvailable"},
	{ID: "CVE-2026-1003", Severity: "HIGH", Package: "curl", Version: "7.88", Fix: "YES", FixedIn: "8.0.1"},
	{ID: "CVE-2026-1004", Severity: "MEDIUM", Package: "bash", Version: "5.1", Fix: "YES"},
	{ID: "CVE-2026-1005", Severity: "HIGH", Package: "tar", Version: "1.34", Fix: "YES", Status: "SUPPRESSED"},
}}

var today = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

func verdicts(r *Result) map[string]Verdict {
	out := map[string]Verdict{}
	for _, f := range r.Findings {
		out[f.ID] = f.Verdict
	}
	return out
}

func TestPolicyIgnoresAndFixableFindings(t *testing.T) {
	a, g, _ := account(t, true, mixed)
	a.AddImage(repo, "v1")
	accepted := Ignore{ID: "cve-2026-1003", Reason: "curl is not reachable", Source: "ignores:3"}

	r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High, Ignores: []Ignore{accepted}, Now: today})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Verdict{"CVE-2026-1001": Fails, "CVE-2026-1002": Fails, "CVE-2026-1003": Ignored, "CVE-2026-1005": Suppressed}
	if r.Passed() || r.Failing != 2 || r.Unlisted != 0 || len(r.Findings) != 4 || r.Scanner != "enhanced" {
		t.Fatalf("result %+v", r)
	}
	for id, v := range want {
		if verdicts(r)[id] != v {
			t.Errorf("%s: %s, want %s (%+v)", id, verdicts(r)[id], v, r.Findings)
		}
	}
	if f := r.Findings[0]; f.ID != "CVE-2026-1002" || f.Package != "zlib 1.2.11" || f.FixedIn != "" || f.Fix != "NO" {
		t.Errorf("most severe first, Inspector's ID and package, no fixed-in for NotAvailable: %+v", f)
	}
	for _, f := range r.Findings {
		if f.ID == "CVE-2026-1001" && (f.FixedIn != "3.0.7" || f.Package != "openssl 3.0.2" || !strings.Contains(f.URI, "CVE-2026-1001")) {
			t.Errorf("fixable finding: %+v", f)
		}
		if f.ID == "CVE-2026-1003" && !strings.Contains(f.Reason, "curl is not reachable") {
			t.Errorf("ignored finding's reason: %q", f.Reason)
		}
	}

	// Only the fixable ones count, and both of those are ignored: a pass.
	r, err = g.Check(bg, repo, Tag("v1"), Policy{Threshold: High, OnlyFixable: true, Now: today,
		Ignores: []Ignore{accepted, {ID: "CVE-2026-1001", Until: today.AddDate(0, 1, 0), Source: "--ignore"}}})
	if err != nil || !r.Passed() || verdicts(r)["CVE-2026-1002"] != NoFix {
		t.Errorf("err %v, result %+v", err, r)
	}

	// An ignore counts through its last day, then the finding fails again.
	for _, c := range []struct {
		now  time.Time
		pass bool
	}{{time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC), true}, {time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), false}} {
		r, _ := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High, OnlyFixable: true, Now: c.now,
			Ignores: []Ignore{accepted, {ID: "CVE-2026-1001", Until: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), Source: "f:1"}}})
		if r.Passed() != c.pass {
			t.Errorf("at %s: passed %v, want %v (%+v)", c.now, r.Passed(), c.pass, r.Findings)
		}
		if !c.pass && !strings.Contains(r.Findings[len(r.Findings)-1].Expired+r.Findings[0].Expired+r.Findings[1].Expired, "expired on 2026-12-31") {
			t.Errorf("expired ignore not shown: %+v", r.Findings)
		}
	}
}

// TestBasicFindingsWithOnlyFixable: basic scanning does not say whether a
// fix exists, so its findings still count.
func TestBasicFindingsWithOnlyFixable(t *testing.T) {
	a, g, _ := account(t, true, awsfake.ScanResult{Counts: map[string]int32{"HIGH": 1}})
	a.AddImage(repo, "v1")
	r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High, OnlyFixable: true})
	if err != nil || r.Passed() || r.Findings[0].Verdict != Fails || !strings.Contains(r.Findings[0].Reason, "does not say") {
		t.Errorf("err %v, result %+v", err, r)
	}
}

// TestGateJudgesTheDigest: a push judges the digest it wrote even when its
// tag has moved to another image since.
func TestGateJudgesTheDigest(t *testing.T) {
	a, g, _ := account(t, true, awsfake.ScanResult{Counts: map[string]int32{"CRITICAL": 1}})
	pushed, _ := a.AddImage(repo, "v1")
	a.SetScanResult(repo, awsfake.ScanResult{})
	moved, _ := a.AddImage(repo, "v1") // another job moves the tag to a clean image
	if moved == pushed {
		t.Fatal("the fake gave both images one digest")
	}
	r, err := g.Check(bg, repo, Digest(pushed, "v1"), Policy{Threshold: High})
	if err != nil || r.Passed() || r.Digest != pushed || strings.Join(r.Tags, ",") != "v1" {
		t.Errorf("err %v, result %+v", err, r)
	}
	if r, _ := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High}); !r.Passed() || r.Digest != moved {
		t.Errorf("by tag: %+v", r)
	}
}

func TestParseIgnores(t *testing.T) {
	file := `# accepted risks
CVE-2026-1003 2026-12-31 curl is not reachable from the service

GHSA-abcd-efgh-ijkl no fix upstream
  RHSA-2026:1234
`
	got, err := ParseIgnores(".scanignore", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "CVE-2026-1003" || got[0].Until.Format(time.DateOnly) != "2026-12-31" || got[0].Reason != "curl is not reachable from the service" ||
		got[0].Source != ".scanignore:2" || !got[1].Until.IsZero() || got[1].Reason != "no fix upstream" || got[2].ID != "RHSA-2026:1234" || got[2].Source != ".scanignore:5" {
		t.Errorf("%+v", got)
	}
	for _, c := range []struct{ text, want string }{
		{"CVE-2026-1\nnot_an_id reason", ".scanignore:2: \"not_an_id\" is not a vulnerability ID"},
		{"CVE-2026-1 2026-13-01 reason", ".scanignore:1: \"2026-13-01\" is not a date"},
		{"CVE-2026-1 31/12/2026 reason", ".scanignore:1: \"31/12/2026\" is not a date as YYYY-MM-DD"},
		{"CVE-2026-1\n\ncve-2026-1 again", ".scanignore:3: cve-2026-1 is already listed on line 1"},
	} {
		_, err := ParseIgnores(".scanignore", strings.NewReader(c.text))
		var le *LineError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.text, err, c.want)
		}
	}
}

func TestJUnitReport(t *testing.T) {
	a, g, _ := account(t, true, mixed)
	a.AddImage(repo, "v1")
	r, err := g.Check(bg, repo, Tag("v1"), Policy{Threshold: High, Now: today, Ignores: []Ignore{{ID: "CVE-2026-1003", Reason: "curl is not reachable", Source: "f:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	limited := &Result{Repository: repo, Tags: []string{"v2"}, Status: "LIMIT_EXCEEDED", Policy: Policy{Threshold: High},
		NoVerdict: &NoVerdict{Status: "LIMIT_EXCEEDED", Why: "quota <exceeded> & more", Do: "rerun tomorrow"}}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, []*Result{r, limited}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	if doc.Tests != 5 || doc.Failures != 2 || doc.Skipped != 2 || doc.Errors != 1 || len(doc.Suites) != 2 {
		t.Fatalf("counts: %+v\n%s", doc, buf.String())
	}
	c := doc.Suites[0].Cases[0]
	if !strings.HasPrefix(c.Name, "CVE-2026-1002 (CRITICAL) in zlib") || c.Failure == nil || !strings.Contains(c.Failure.Text, "Fix available: NO") {
		t.Errorf("first case: %+v", c)
	}
	var skippedReasons []string
	for _, c := range doc.Suites[0].Cases {
		if c.Skipped != nil {
			skippedReasons = append(skippedReasons, c.Skipped.Message)
		}
	}
	if !strings.Contains(strings.Join(skippedReasons, "|"), "curl is not reachable") {
		t.Errorf("skipped reasons: %q", skippedReasons)
	}
	if e := doc.Suites[1].Cases[0].Error; e == nil || !strings.Contains(e.Message, "LIMIT_EXCEEDED: quota <exceeded> & more") {
		t.Errorf("no-verdict case: %+v", doc.Suites[1].Cases)
	}
}
