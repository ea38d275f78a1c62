// Package scan is CI's scan gate: it waits for ECR's scan of a pushed image
// (starting one when the repository did not scan it on push), reads every
// finding, basic or enhanced (Amazon Inspector), and judges them against a
// Policy: a threshold, findings to ignore for a time, and optionally only
// the findings that have a fix.
//
// It is its own package, beside push rather than inside it, because it
// needs nothing of a build: only an ECR client signed as the role, which
// both `containerise scan` and `push --scan` get through push's own
// credential path.
//
// The gate fails closed. A scan that ends without a verdict (FAILED,
// UNSUPPORTED_IMAGE, LIMIT_EXCEEDED, FINDINGS_UNAVAILABLE,
// SCAN_ELIGIBILITY_EXPIRED, IMAGE_ARCHIVED), one still running when the
// wait ends, and an enhanced scan that says COMPLETE before its findings
// have arrived never pass as clean: the Result carries a NoVerdict.
// Findings ECR counts but does not list count as failing, since they
// cannot be checked against the ignores. UNDEFINED and UNTRIAGED findings
// are counted and shown, never gated: they have no severity to compare.
package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
)

// ECR is the part of *ecr.Client the gate calls, signed as the CI role.
type ECR interface {
	DescribeImageScanFindings(context.Context, *ecr.DescribeImageScanFindingsInput, ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error)
	StartImageScan(context.Context, *ecr.StartImageScanInput, ...func(*ecr.Options)) (*ecr.StartImageScanOutput, error)
}

var _ ECR = (*ecr.Client)(nil)

// Severity is a finding's severity, as ECR names it.
type Severity string

// Severities a threshold can be, most severe first.
const (
	Critical      Severity = "CRITICAL"
	High          Severity = "HIGH"
	Medium        Severity = "MEDIUM"
	Low           Severity = "LOW"
	Informational Severity = "INFORMATIONAL"
)

// Severities are the gated severities, most severe first.
var Severities = []Severity{Critical, High, Medium, Low, Informational}

// ParseSeverity reads a threshold, in any case.
func ParseSeverity(s string) (Severity, error) {
	for _, sev := range Severities {
		if strings.EqualFold(s, string(sev)) {
			return sev, nil
		}
	}
	return "", fmt.Errorf("unknown severity %q: use CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL", s)
}

// rank orders severities: 0 for CRITICAL, growing; -1 for those without
// a rank (UNDEFINED, UNTRIAGED).
func rank(s string) int {
	for i, sev := range Severities {
		if strings.EqualFold(s, string(sev)) {
			return i
		}
	}
	return -1
}

// AtOrAbove reports whether a finding of severity s fails a threshold.
func (t Severity) AtOrAbove(s string) bool {
	r := rank(s)
	return r >= 0 && r <= rank(string(t))
}

// Target is an image to judge: by digest when known (what a push wrote,
// which no other job can move), else by its tag.
type Target struct {
	Tags   []string
	Digest string
}

// Tag is the image tagged tag.
func Tag(tag string) Target { return Target{Tags: []string{tag}} }

// Digest is the image with this digest, which tags name.
func Digest(digest string, tags ...string) Target { return Target{Tags: tags, Digest: digest} }

func (t Target) id() *ecrtypes.ImageIdentifier {
	if t.Digest != "" {
		return &ecrtypes.ImageIdentifier{ImageDigest: aws.String(t.Digest)}
	}
	return &ecrtypes.ImageIdentifier{ImageTag: aws.String(t.Tags[0])}
}

func (t Target) ref(repository string) string {
	if t.Digest != "" {
		return repository + "@" + t.Digest
	}
	return repository + ":" + t.Tags[0]
}

// Verdict is what the gate made of one finding at or above the threshold.
type Verdict string

// Verdicts.
const (
	// Fails: the finding counts against the image.
	Fails Verdict = "fail"
	// Ignored: an ignore that has not expired names it.
	Ignored Verdict = "ignored"
	// NoFix: the policy counts only fixable findings, and it has no fix.
	NoFix Verdict = "no-fix"
	// Suppressed: Amazon Inspector marks it SUPPRESSED or CLOSED.
	Suppressed Verdict = "suppressed"
)

// Finding is one finding at or above the threshold, with the gate's
// verdict on it.
type Finding struct {
	ID       string // CVE-2024-1234: Inspector's vulnerability ID, else ECR's name
	Severity string
	Package  string // "openssl 3.0.2", when ECR says
	FixedIn  string // the version that fixes it, when Inspector says
	// Fix is Inspector's fixAvailable: YES, NO, PARTIAL; "" when ECR does
	// not say (basic scanning).
	Fix   string
	Title string
	URI   string
	// Verdict, and why a finding that does not fail does not (the ignore's
	// reason, its expiry and where it was given).
	Verdict Verdict
	Reason  string
	// Expired names an ignore of this finding that has expired, so that it
	// fails again.
	Expired string
}

// NoVerdict is why the gate could not judge an image, and what to do.
type NoVerdict struct {
	Status string // ECR's scan status, e.g. LIMIT_EXCEEDED
	Why    string
	Do     string
	Next   hint.Next
}

// Result is what ECR's scan of one image found, judged.
type Result struct {
	Repository string
	Tags       []string // the tags that name this image
	Digest     string
	// Scanner is "basic" or "enhanced" when the answer shows which, else "".
	Scanner           string
	Status            string // COMPLETE, or ACTIVE for enhanced scanning
	StatusDescription string
	CompletedAt       *time.Time
	// Started: this run started the scan (the repository had not scanned
	// the image).
	Started bool
	// Counts are the findings by severity, every severity ECR reported.
	Counts map[string]int
	Policy Policy
	// Findings are those at or above the threshold that ECR listed, most
	// severe first, each with its verdict.
	Findings []Finding
	// Unlisted counts the findings at or above the threshold that ECR
	// counted but did not list: they fail, as no ignore can be checked.
	Unlisted int
	// Failing counts the findings that fail the image.
	Failing int
	// NoVerdict is set when the scan cannot judge the image.
	NoVerdict *NoVerdict
	// Signature is the image's managed signing status, when the policy
	// requires a signature.
	Signature *Signature
}

// Threshold is the severity the result was judged against.
func (r *Result) Threshold() Severity { return r.Policy.Threshold }

// Passed reports whether the image was judged and no finding fails it.
func (r *Result) Passed() bool { return r.NoVerdict == nil && r.Failing == 0 && !r.Unsigned() }

// Unsigned reports whether a signature is required and the image has none.
func (r *Result) Unsigned() bool {
	return r.Policy.RequireSignature && (r.Signature == nil || !r.Signature.Signed)
}

// Ref names the image: repository:tags@digest.
func (r *Result) Ref() string {
	s := r.Repository
	if len(r.Tags) > 0 {
		s += ":" + strings.Join(r.Tags, ",")
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Gate checks images' scans.
type Gate struct {
	ECR ECR
	// Logf receives progress lines (for stderr); nil logs nothing.
	Logf func(format string, args ...any)
	// Wait bounds the wait for a scan to complete (Bound; zero: no wait),
	// polling from First (default 5s) to Max (default 15s).
	Wait awsx.Waiter
}

func (g *Gate) logf(format string, args ...any) {
	if g.Logf != nil {
		g.Logf(format, args...)
	}
}

// Error is a gate that could not ask ECR: what was done, AWS's error, why,
// and what to do; Next is a way forward the command words.
type Error = awsx.Failure

// errPending is a scan that has not completed yet; errArriving is an
// enhanced scan that says it is complete before its findings arrived.
var (
	errPending  = errors.New("the scan has not completed")
	errArriving = errors.New("the scan's findings have not arrived")
)

// CheckAll checks every target; targets naming the same image share one
// result. It stops at the first error from ECR (an image it cannot read);
// an image whose scan gives no verdict has a result with NoVerdict set.
func (g *Gate) CheckAll(ctx context.Context, repository string, targets []Target, p Policy) ([]*Result, error) {
	var out []*Result
	byDigest := map[string]*Result{}
	for _, t := range targets {
		r, err := g.Check(ctx, repository, t, p)
		if err != nil {
			return out, err
		}
		if same, ok := byDigest[r.Digest]; ok && r.Digest != "" {
			same.Tags = append(same.Tags, r.Tags...)
			continue
		}
		byDigest[r.Digest] = r
		out = append(out, r)
	}
	if p.RequireSignature {
		if err := g.signatures(ctx, repository, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Check waits, within g.Wait's bound, for the scan of the target to
// complete (starting it when there is none), reads every finding and
// judges them.
func (g *Gate) Check(ctx context.Context, repository string, t Target, p Policy) (*Result, error) {
	ref := t.ref(repository)
	res := &Result{Repository: repository, Tags: append([]string(nil), t.Tags...), Digest: t.Digest, Policy: p, Counts: map[string]int{}}
	w := g.Wait
	if w.First <= 0 {
		w.First = 5 * time.Second
	}
	if w.Max <= 0 {
		w.Max = 15 * time.Second
	}
	var pages []*ecr.DescribeImageScanFindingsOutput
	var last error
	err := w.Retry(ctx, func(err error) (string, bool) {
		return "ECR's scan of " + ref, errors.Is(err, errPending) || errors.Is(err, errArriving)
	}, func(a awsx.Attempt) {
		what := "ECR's scan of " + ref
		if errors.Is(last, errArriving) {
			what = "the findings of " + ref + " (ECR says the scan is complete; Amazon Inspector's findings arrive after it)"
		}
		g.logf("waiting for %s; checking again in %s, for up to %s more", what, a.Pause.Round(time.Second), a.Left.Round(time.Second))
	}, func() error {
		var err error
		pages, err = g.read(ctx, repository, t, res)
		last = err
		return err
	})
	var still *awsx.StillPending
	switch {
	case errors.As(err, &still), errors.Is(err, errPending), errors.Is(err, errArriving):
		res.NoVerdict = &NoVerdict{Status: string(ecrtypes.ScanStatusInProgress), Why: "the scan was still in progress when the wait ended",
			Do: "rerun the gate once ECR has finished", Next: hint.WaitLonger}
		if errors.Is(err, errArriving) {
			res.NoVerdict.Status = res.Status
			res.NoVerdict.Why = "ECR says the scan is " + res.Status + ", but its findings had not arrived when the wait ended (enhanced scanning reports them after the status)"
			res.NoVerdict.Do = "rerun the gate in a few minutes"
		}
		if res.Status == "" {
			res.Status = string(ecrtypes.ScanStatusInProgress)
		}
		return res, nil
	case err != nil:
		return nil, err
	}
	g.judge(res, pages)
	return res, nil
}

// read asks ECR for the scan once, every page of it, and says whether it
// is still pending (errPending, errArriving). It fills res's scan facts.
func (g *Gate) read(ctx context.Context, repository string, t Target, res *Result) ([]*ecr.DescribeImageScanFindingsOutput, error) {
	ref := t.ref(repository)
	in := &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String(repository), ImageId: t.id(), MaxResults: aws.Int32(1000)}
	var pages []*ecr.DescribeImageScanFindingsOutput
	pg := ecr.NewDescribeImageScanFindingsPaginator(g.ECR, in)
	err := awsx.Pages(ctx, pg.HasMorePages, pg.NextPage, func(o *ecr.DescribeImageScanFindingsOutput) { pages = append(pages, o) })
	var none *ecrtypes.ScanNotFoundException
	switch {
	case errors.As(err, &none) && res.Started:
		return nil, errPending // a scan just started may not show yet
	case errors.As(err, &none):
		if err := g.start(ctx, repository, t); err != nil {
			return nil, err
		}
		res.Started = true
		return nil, errPending
	case err != nil:
		return nil, describeError(ref, repository, err)
	}
	first := pages[0]
	if first.ImageId != nil && aws.ToString(first.ImageId.ImageDigest) != "" {
		res.Digest = aws.ToString(first.ImageId.ImageDigest)
	}
	if first.ImageScanStatus != nil {
		res.Status = string(first.ImageScanStatus.Status)
		res.StatusDescription = aws.ToString(first.ImageScanStatus.Description)
	}
	switch ecrtypes.ScanStatus(res.Status) {
	case ecrtypes.ScanStatusInProgress, ecrtypes.ScanStatusPending:
		return nil, errPending
	case ecrtypes.ScanStatusComplete, ecrtypes.ScanStatusActive:
		if arriving(pages) {
			return nil, errArriving
		}
	}
	return pages, nil
}

// arriving reports the window in which ECR says an enhanced scan is
// COMPLETE (or ACTIVE) but Amazon Inspector's findings have not arrived:
// the answer has no completion time, no counts and no findings at all. A
// scan that found nothing still says when it completed.
func arriving(pages []*ecr.DescribeImageScanFindingsOutput) bool {
	for _, p := range pages {
		f := p.ImageScanFindings
		if f != nil && (f.ImageScanCompletedAt != nil || len(f.FindingSeverityCounts) > 0 || len(f.Findings) > 0 || len(f.EnhancedFindings) > 0) {
			return false
		}
	}
	return true
}

// start starts a basic scan of an image the repository did not scan.
func (g *Gate) start(ctx context.Context, repository string, t Target) error {
	ref := t.ref(repository)
	g.logf("%s has not been scanned: starting ECR's scan", ref)
	_, err := g.ECR.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String(repository), ImageId: t.id()})
	if err == nil {
		return nil
	}
	e := &Error{Doing: "starting ECR's scan of " + ref, Err: err}
	var limit *ecrtypes.LimitExceededException
	var unsupported *ecrtypes.UnsupportedImageTypeException
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case awsx.IsAccessDenied(err):
		e.Why = "the image has not been scanned, and the role may not start a scan"
		e.Next = hint.AllowScan
	case errors.As(err, &limit):
		e.Why = "ECR scans an image at most once a day, and has no scan of it to show"
	case errors.As(err, &unsupported):
		e.Why = "ECR cannot scan this kind of image"
	case awsx.ErrorCode(err) == "ValidationException":
		e.Why = "with enhanced scanning (Amazon Inspector) ECR scans on push and continuously, not on request: check the registry's scanning rules cover this repository"
	default:
		return describeError(ref, repository, err)
	}
	return e
}

func describeError(ref, repository string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	e := &Error{Doing: "reading ECR's scan of " + ref, Err: err}
	var noImage *ecrtypes.ImageNotFoundException
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case errors.As(err, &noImage):
		e.Why = "no image has that tag"
		if strings.Contains(ref, "@") {
			e.Why = "no image has that digest"
		}
		e.Hint = "push it first, or check the tag"
	case errors.As(err, &noRepo):
		e.Why = "repository " + repository + " does not exist"
		e.Hint = "check the repository's name, or run setup"
	case awsx.IsAccessDenied(err) && strings.Contains(err.Error(), "inspector2"):
		e.Why = "under enhanced scanning ECR reads the findings from Amazon Inspector as the role, which then needs inspector2:ListFindings too"
		e.Hint = "grant the role inspector2:ListFindings (it takes no resource: \"*\")"
	case awsx.IsAccessDenied(err):
		e.Why = "the role may not read scan findings (ecr:DescribeImageScanFindings)"
		e.Next = hint.AllowScan
	}
	return e
}

// noVerdicts says, for each scan status that ends without findings to
// judge, why and what to do.
var noVerdicts = map[ecrtypes.ScanStatus][2]string{
	ecrtypes.ScanStatusFailed: {"ECR's scan of the image failed",
		"push the image again, or start a new scan (aws ecr start-image-scan), then rerun the gate"},
	ecrtypes.ScanStatusUnsupportedImage: {"ECR cannot scan this image: its media type, operating system or package manager is not supported",
		"build on a base image ECR can scan, or gate this image with another scanner"},
	ecrtypes.ScanStatusLimitExceeded: {"ECR's scan quota was exceeded (basic scanning scans an image at most once a day), so the image was not scanned",
		"rerun the gate once the quota allows a new scan (within 24 hours), or push a new image"},
	ecrtypes.ScanStatusFindingsUnavailable: {"ECR has no findings for this image (Amazon Inspector could not produce them, or has dropped them)",
		"push the image again for a fresh scan, and check Amazon Inspector's coverage of this repository"},
	ecrtypes.ScanStatusScanEligibilityExpired: {"Amazon Inspector no longer scans this image: its rescan duration has passed, so its findings are not kept up to date",
		"push the image again, or lengthen the ECR rescan duration in Amazon Inspector's settings"},
	ecrtypes.ScanStatusImageArchived: {"the image is in ECR's archive storage class, which is not scanned",
		"restore the image from the archive, then rerun the gate"},
}

// judge reads a scan's pages into res: the counts, every finding at or
// above the threshold and its verdict, or why there is no verdict.
func (g *Gate) judge(res *Result, pages []*ecr.DescribeImageScanFindingsOutput) {
	status := ecrtypes.ScanStatus(res.Status)
	if status != ecrtypes.ScanStatusComplete && status != ecrtypes.ScanStatusActive {
		nv := &NoVerdict{Status: res.Status, Why: "the scan ended without findings to judge", Do: "look at the scan in ECR's console, and rerun the gate once it has completed"}
		if res.Status == "" {
			nv.Status = "none"
			nv.Why = "ECR's answer has no scan status"
		}
		if w, ok := noVerdicts[status]; ok {
			nv.Why, nv.Do = w[0], w[1]
		}
		if res.StatusDescription != "" {
			nv.Why += " (ECR: " + strings.TrimSuffix(res.StatusDescription, ".") + ")"
		}
		res.NoVerdict = nv
		return
	}
	now := res.Policy.now()
	listed := map[string]int{} // listed findings by severity
	for i, p := range pages {
		f := p.ImageScanFindings
		if f == nil {
			continue
		}
		if i == 0 {
			res.CompletedAt = f.ImageScanCompletedAt
			for sev, n := range f.FindingSeverityCounts {
				res.Counts[strings.ToUpper(sev)] += int(n)
			}
		}
		if len(f.EnhancedFindings) > 0 || status == ecrtypes.ScanStatusActive {
			res.Scanner = "enhanced"
		} else if len(f.Findings) > 0 && res.Scanner == "" {
			res.Scanner = "basic"
		}
		for _, x := range f.Findings {
			listed[strings.ToUpper(string(x.Severity))]++
			if res.Policy.Threshold.AtOrAbove(string(x.Severity)) {
				res.Findings = append(res.Findings, basicFinding(x))
			}
		}
		for _, x := range f.EnhancedFindings {
			fd := enhancedFinding(x)
			listed[fd.Severity]++
			if res.Policy.Threshold.AtOrAbove(fd.Severity) {
				res.Findings = append(res.Findings, fd)
			}
		}
	}
	// A listed finding ECR did not count (an answer without counts) is
	// counted here, so the counts shown are never fewer than the listing.
	for sev, n := range listed {
		if n > res.Counts[sev] {
			res.Counts[sev] = n
		}
	}
	for i := range res.Findings {
		res.Policy.decide(&res.Findings[i], now)
		if res.Findings[i].Verdict == Fails {
			res.Failing++
		}
	}
	for sev, n := range res.Counts {
		if res.Policy.Threshold.AtOrAbove(sev) && n > listed[sev] {
			res.Unlisted += n - listed[sev]
		}
	}
	res.Failing += res.Unlisted
	sort.SliceStable(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		if rank(a.Severity) != rank(b.Severity) {
			return rank(a.Severity) < rank(b.Severity)
		}
		return a.ID < b.ID
	})
}

func basicFinding(x ecrtypes.ImageScanFinding) Finding {
	fd := Finding{ID: aws.ToString(x.Name), Severity: strings.ToUpper(string(x.Severity)), URI: aws.ToString(x.Uri), Title: aws.ToString(x.Description)}
	var name, version string
	for _, a := range x.Attributes {
		switch aws.ToString(a.Key) {
		case "package_name":
			name = aws.ToString(a.Value)
		case "package_version":
			version = aws.ToString(a.Value)
		}
	}
	fd.Package = strings.TrimSpace(name + " " + version)
	return fd
}

// enhancedFinding prefers Inspector's vulnerability ID, packages and
// fixed-in versions to the finding's title.
func enhancedFinding(x ecrtypes.EnhancedImageScanFinding) Finding {
	fd := Finding{ID: aws.ToString(x.Title), Severity: strings.ToUpper(aws.ToString(x.Severity)), Title: aws.ToString(x.Title),
		Fix: strings.ToUpper(aws.ToString(x.FixAvailable))}
	if st := strings.ToUpper(aws.ToString(x.Status)); st == "SUPPRESSED" || st == "CLOSED" {
		fd.Verdict, fd.Reason = Suppressed, "Amazon Inspector marks it "+st
	}
	d := x.PackageVulnerabilityDetails
	if d == nil {
		return fd
	}
	if id := aws.ToString(d.VulnerabilityId); id != "" {
		fd.ID = id
	}
	fd.URI = aws.ToString(d.SourceUrl)
	if fd.URI == "" && len(d.ReferenceUrls) > 0 {
		fd.URI = d.ReferenceUrls[0]
	}
	var pkgs, fixed []string
	for _, p := range d.VulnerablePackages {
		pkgs = append(pkgs, strings.TrimSpace(aws.ToString(p.Name)+" "+aws.ToString(p.Version)))
		// Inspector says NotAvailable where no version fixes it.
		if v := aws.ToString(p.FixedInVersion); v != "" && !strings.EqualFold(v, "NotAvailable") {
			fixed = append(fixed, v)
		}
	}
	fd.Package = strings.Join(pkgs, ", ")
	fd.FixedIn = strings.Join(fixed, ", ")
	return fd
}
