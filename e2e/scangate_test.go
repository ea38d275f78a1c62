package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// enhancedFinding is one finding as Amazon Inspector reports it through
// ECR's DescribeImageScanFindings.
func enhancedFinding(id, severity, pkg, version, fix, fixedIn string) map[string]any {
	p := map[string]any{"name": pkg, "version": version, "packageManager": "OS"}
	if fixedIn != "" {
		p["fixedInVersion"] = fixedIn
	}
	return map[string]any{
		"awsAccountId": os.Getenv("STACK_ACCOUNT_ID"), "severity": severity, "status": "ACTIVE", "fixAvailable": fix,
		"title": id + " - " + pkg, "type": "PACKAGE_VULNERABILITY", "findingArn": "arn:aws:inspector2:us-east-1:" + os.Getenv("STACK_ACCOUNT_ID") + ":finding/" + id,
		"packageVulnerabilityDetails": map[string]any{"vulnerabilityId": id, "source": "NVD", "sourceUrl": "https://nvd.nist.gov/vuln/detail/" + id,
			"vulnerablePackages": []map[string]any{p}},
	}
}

// postEnhancedScan tells moto what ECR answers for repo's image with this
// tag: an enhanced scan with this status and these findings, counted by
// severity as ECR counts them.
func postEnhancedScan(t *testing.T, repo, tag, status string, findings []map[string]any) {
	t.Helper()
	counts := map[string]int{}
	for _, f := range findings {
		counts[f["severity"].(string)]++
	}
	res := map[string]any{
		"registryId": os.Getenv("STACK_ACCOUNT_ID"), "repositoryName": repo, "imageId": map[string]string{"imageTag": tag},
		"imageScanStatus": map[string]string{"status": status, "description": "Continuous scan is selected for image."},
	}
	if status == "ACTIVE" || status == "COMPLETE" {
		res["imageScanFindings"] = map[string]any{"findingSeverityCounts": counts, "enhancedFindings": findings,
			"imageScanCompletedAt": time.Now().Unix(), "vulnerabilitySourceUpdatedAt": time.Now().Unix()}
	} else {
		res["imageScanStatus"] = map[string]string{"status": status, "description": "The scan quota per image has been exceeded."}
	}
	body, _ := json.Marshal(map[string]any{"region": awsClients(t).Cfg.Region, "results": []map[string]any{res}})
	resp, err := http.Post(os.Getenv("STACK_MOTO_URL")+"/moto-api/static/ecr/scan-finding-results", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("setting moto's scan findings: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("setting moto's scan findings: HTTP %d", resp.StatusCode)
	}
}

// junitReport is what CI reads of a JUnit file.
type junitReport struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitReport {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the JUnit report: %v", err)
	}
	var doc junitReport
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the JUnit report is not XML: %v\n%s", err, raw)
	}
	if len(doc.Suites) == 0 {
		t.Fatalf("the JUnit report has no suite:\n%s", raw)
	}
	return doc
}

// TestScanGateEnhancedFindings: an image with a fixable HIGH, an unfixable
// CRITICAL and an accepted HIGH, as Amazon Inspector reports them through
// ECR, fails --fail-on HIGH with a JUnit report naming the failing CVEs;
// with --only-fixable and both fixable IDs ignored it passes.
func TestScanGateEnhancedFindings(t *testing.T) {
	resetAWS(t)
	r := run(t, nil, "setup", "--output", "dotenv", "--scan-on-push")
	if r.Code != 0 {
		t.Fatalf("setup --scan-on-push:\n%s", r)
	}
	vars := ciVars(dotenv(r.Stdout))
	tag := "enhanced-" + nonce()
	if p := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, tag)}, "push", "--tag", tag); p.Code != 0 {
		t.Fatalf("push:\n%s", p)
	}
	postEnhancedScan(t, pushRepo, tag, "ACTIVE", []map[string]any{
		enhancedFinding("CVE-2099-1001", "HIGH", "openssl", "3.0.2", "YES", "3.0.7"),
		enhancedFinding("CVE-2099-1002", "CRITICAL", "zlib", "1.2.11", "NO", "NotAvailable"),
		enhancedFinding("CVE-2099-1003", "HIGH", "curl", "7.88.1", "YES", "8.0.1"),
	})
	dir := t.TempDir()
	ignores := filepath.Join(dir, ".scanignore")
	if err := os.WriteFile(ignores, []byte("# accepted until the base image moves\nCVE-2099-1003 2999-01-31 curl is not reachable from the service\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "test-results", "scan.xml")

	fail := run(t, vars.env(), "scan", "--tag", tag, "--fail-on", "HIGH", "--ignore-file", ignores, "--junit", report)
	if fail.Code != 1 || !strings.Contains(fail.Stdout, "FAIL: 2 findings at or above HIGH (1 not counted)") ||
		!strings.Contains(fail.Stdout, "CRITICAL  CVE-2099-1002  zlib 1.2.11") || !strings.Contains(fail.Stdout, "HIGH  CVE-2099-1001  openssl 3.0.2  (fixed in 3.0.7)") ||
		!strings.Contains(fail.Stdout, "ignored until 2999-01-31 curl is not reachable from the service") ||
		!strings.Contains(fail.Stderr, "has 2 findings at or above HIGH") {
		t.Errorf("scan --fail-on HIGH of a fixable HIGH, an unfixable CRITICAL and an ignored HIGH:\n%s", fail)
	}
	doc := readJUnit(t, report)
	failed := map[string]bool{}
	var skipped []string
	for _, c := range doc.Suites[0].Cases {
		if c.Failure != nil {
			failed[strings.Fields(c.Name)[0]] = true
		}
		if c.Skipped != nil {
			skipped = append(skipped, c.Name+": "+c.Skipped.Message)
		}
	}
	if doc.Tests != 3 || doc.Failures != 2 || doc.Skipped != 1 || !failed["CVE-2099-1001"] || !failed["CVE-2099-1002"] ||
		len(skipped) != 1 || !strings.Contains(skipped[0], "CVE-2099-1003") || !strings.Contains(skipped[0], "curl is not reachable") {
		t.Errorf("JUnit report: %+v (failed %v, skipped %q)", doc, failed, skipped)
	}

	pass := run(t, vars.env(), "scan", "--tag", tag, "--fail-on", "HIGH", "--only-fixable", "--ignore", "CVE-2099-1001", "--ignore-file", ignores, "--output", "json")
	var out struct {
		Passed bool
		Images []struct {
			Scanner, Verdict string
			Findings         []struct{ Name, Verdict, Reason string }
		}
	}
	if pass.Code != 0 || json.Unmarshal([]byte(pass.Stdout), &out) != nil || !out.Passed || out.Images[0].Scanner != "enhanced" || len(out.Images[0].Findings) != 3 {
		t.Fatalf("scan --only-fixable with both fixable IDs ignored:\n%s", pass)
	}
	for _, f := range out.Images[0].Findings {
		want := map[string]string{"CVE-2099-1001": "ignored", "CVE-2099-1002": "no-fix", "CVE-2099-1003": "ignored"}[f.Name]
		if f.Verdict != want || f.Reason == "" {
			t.Errorf("finding %+v: want verdict %s with its reason", f, want)
		}
	}
}

// TestScanGateLimitExceeded: a scan ECR could not run for its quota is no
// verdict, never a pass: scan and push --scan exit 1 saying why; push
// --scan judges the digest it pushed, and its JUnit report shows the error.
func TestScanGateLimitExceeded(t *testing.T) {
	resetAWS(t)
	r := run(t, nil, "setup", "--output", "dotenv", "--scan-on-push")
	if r.Code != 0 {
		t.Fatalf("setup --scan-on-push:\n%s", r)
	}
	vars := ciVars(dotenv(r.Stdout))
	tag := "quota-" + nonce()
	if p := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, tag)}, "push", "--tag", tag); p.Code != 0 {
		t.Fatalf("push:\n%s", p)
	}
	postEnhancedScan(t, pushRepo, tag, "LIMIT_EXCEEDED", nil)
	s := run(t, vars.env(), "scan", "--tag", tag, "--fail-on", "CRITICAL", "--output", "json")
	var doc struct {
		Passed bool
		Images []struct {
			Verdict   string
			NoVerdict struct{ Status, Why, Do string } `json:"no_verdict"`
		}
	}
	if s.Code != 1 || !strings.Contains(s.Stderr, "has no verdict, so it does not pass: scan status LIMIT_EXCEEDED: ECR's scan quota was exceeded") ||
		json.Unmarshal([]byte(s.Stdout), &doc) != nil || doc.Passed || doc.Images[0].Verdict != "none" || doc.Images[0].NoVerdict.Status != "LIMIT_EXCEEDED" || doc.Images[0].NoVerdict.Do == "" {
		t.Errorf("scan of an image whose scan status is LIMIT_EXCEEDED:\n%s", s)
	}

	gated := "quota-gated-" + nonce()
	postEnhancedScan(t, pushRepo, gated, "LIMIT_EXCEEDED", nil)
	report := filepath.Join(t.TempDir(), "scan.xml")
	pg := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, gated)}, "push", "--tag", gated, "--scan", "--fail-on", "HIGH", "--junit", report)
	digest := pushedDigests(t, pg, gated)[gated]
	if pg.Code != 1 || !strings.Contains(pg.Stderr, "scan status LIMIT_EXCEEDED") || !strings.Contains(pg.Stderr, pushRepo+":"+gated+"@"+digest) {
		t.Errorf("push --scan of an image whose scan status is LIMIT_EXCEEDED:\n%s", pg)
	}
	j := readJUnit(t, report)
	if j.Errors != 1 || j.Suites[0].Cases[0].Error == nil || !strings.Contains(j.Suites[0].Cases[0].Error.Message, "LIMIT_EXCEEDED") {
		t.Errorf("push --scan's JUnit report: %+v", j)
	}
}
