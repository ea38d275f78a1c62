// Package scan is CI's scan gate: it waits for ECR's scan of a pushed image
// (starting one when the repository did not scan it on push), counts the
// findings by severity, and says whether any is at or above a threshold.
//
// It is its own package, beside push rather than inside it, because it
// needs nothing of a build: only an ECR client signed as the role, which
// both `containerise scan` and `push --scan` get through push's own
// credential path.
//
// Basic scanning reports findings with a severity of CRITICAL, HIGH,
// MEDIUM, LOW, INFORMATIONAL or UNDEFINED. Enhanced scanning (Amazon
// Inspector) reports through the same call with its own statuses (ACTIVE
// while it monitors the image) and findings (enhancedFindings); its counts
// by severity are read the same way, so both are gated. UNDEFINED and
// UNTRIAGED findings are counted and shown, never gated: they have no
// severity to compare.
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

// Finding is one finding at or above the threshold, to show.
type Finding struct {
	Name     string // CVE-2024-1234
	Severity string
	Package  string // "openssl 3.0.2", when ECR says
}

// Result is what ECR's scan of one image found.
type Result struct {
	Repository string
	Tags       []string // the tags checked that name this image
	Digest     string
	// Scanner is "basic" or "enhanced" when the answer shows which, else "".
	Scanner     string
	Status      string // COMPLETE, or ACTIVE for enhanced scanning
	CompletedAt *time.Time
	// Started: this run started the scan (the repository had not scanned
	// the image).
	Started bool
	// Counts are the findings by severity, every severity ECR reported.
	Counts    map[string]int
	Threshold Severity
	// Failing counts the findings at or above Threshold; Worst lists the
	// first of them, most severe first.
	Failing int
	Worst   []Finding
}

// Passed reports whether no finding is at or above the threshold.
func (r *Result) Passed() bool { return r.Failing == 0 }

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

// Error is a gate that could not judge an image: what was done, AWS's
// error or the scan's status, why, and what to do; Next is a way forward
// the command words.
type Error = awsx.Failure

// errPending is a scan that has not completed yet.
var errPending = errors.New("the scan has not completed")

// CheckAll checks the scan of every tag; tags naming the same image share
// one result. It stops at the first image it cannot judge.
func (g *Gate) CheckAll(ctx context.Context, repository string, tags []string, threshold Severity) ([]*Result, error) {
	var out []*Result
	byDigest := map[string]*Result{}
	for _, tag := range tags {
		r, err := g.Check(ctx, repository, tag, threshold)
		if err != nil {
			return out, err
		}
		if same, ok := byDigest[r.Digest]; ok && r.Digest != "" {
			same.Tags = append(same.Tags, tag)
			continue
		}
		byDigest[r.Digest] = r
		out = append(out, r)
	}
	return out, nil
}

// Check waits, within g.Wait's bound, for the scan of repository:tag to
// complete (starting it when there is none), and counts its findings.
func (g *Gate) Check(ctx context.Context, repository, tag string, threshold Severity) (*Result, error) {
	ref := repository + ":" + tag
	res := &Result{Repository: repository, Tags: []string{tag}, Threshold: threshold, Counts: map[string]int{}}
	w := g.Wait
	if w.First <= 0 {
		w.First = 5 * time.Second
	}
	if w.Max <= 0 {
		w.Max = 15 * time.Second
	}
	id := &ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)}
	var out *ecr.DescribeImageScanFindingsOutput
	err := w.Retry(ctx, func(err error) (string, bool) {
		return "ECR's scan of " + ref, errors.Is(err, errPending)
	}, func(a awsx.Attempt) {
		g.logf("waiting for ECR's scan of %s; checking again in %s, for up to %s more", ref, a.Pause.Round(time.Second), a.Left.Round(time.Second))
	}, func() error {
		o, err := g.ECR.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String(repository), ImageId: id})
		var none *ecrtypes.ScanNotFoundException
		switch {
		case errors.As(err, &none) && res.Started:
			return errPending // a scan just started may not show yet
		case errors.As(err, &none):
			if err := g.start(ctx, repository, tag); err != nil {
				return err
			}
			res.Started = true
			return errPending
		case err != nil:
			return describeError(ref, repository, err)
		}
		if o.ImageScanStatus != nil {
			switch o.ImageScanStatus.Status {
			case ecrtypes.ScanStatusInProgress, ecrtypes.ScanStatusPending:
				return errPending
			}
		}
		out = o
		return nil
	})
	var still *awsx.StillPending
	switch {
	case errors.As(err, &still), errors.Is(err, errPending):
		return nil, &Error{Doing: "waiting for ECR's scan of " + ref, Err: errors.New("the scan is still in progress"),
			Hint: "rerun the gate once ECR has finished", Next: hint.WaitLonger}
	case err != nil:
		return nil, err
	}
	return res, g.judge(res, ref, out)
}

// start starts a basic scan of an image the repository did not scan.
func (g *Gate) start(ctx context.Context, repository, tag string) error {
	ref := repository + ":" + tag
	g.logf("%s has not been scanned: starting ECR's scan", ref)
	_, err := g.ECR.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String(repository), ImageId: &ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)}})
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
		e.Hint = "push it first, or check the tag"
	case errors.As(err, &noRepo):
		e.Why = "repository " + repository + " does not exist"
		e.Hint = "check the repository's name, or run setup"
	case awsx.IsAccessDenied(err):
		e.Why = "the role may not read scan findings (ecr:DescribeImageScanFindings)"
		e.Next = hint.AllowScan
	}
	return e
}

// judge reads a completed scan into res: the counts, the findings at or
// above the threshold. A scan that ended without findings to judge
// (FAILED, UNSUPPORTED_IMAGE, ...) is an error: the gate fails closed.
func (g *Gate) judge(res *Result, ref string, out *ecr.DescribeImageScanFindingsOutput) error {
	if out.ImageId != nil {
		res.Digest = aws.ToString(out.ImageId.ImageDigest)
	}
	var status ecrtypes.ScanStatus
	var desc string
	if out.ImageScanStatus != nil {
		status, desc = out.ImageScanStatus.Status, aws.ToString(out.ImageScanStatus.Description)
	}
	res.Status = string(status)
	if status != ecrtypes.ScanStatusComplete && status != ecrtypes.ScanStatusActive {
		why := "the scan ended without findings to judge, so the gate fails"
		if desc != "" {
			why = desc + "; " + why
		}
		if status == "" {
			status = "no status"
		}
		return &Error{Doing: "reading ECR's scan of " + ref, Err: fmt.Errorf("scan status %s", status), Why: why}
	}
	f := out.ImageScanFindings
	if f == nil {
		f = &ecrtypes.ImageScanFindings{}
	}
	res.CompletedAt = f.ImageScanCompletedAt
	switch {
	case len(f.EnhancedFindings) > 0 || status == ecrtypes.ScanStatusActive:
		res.Scanner = "enhanced"
	case len(f.Findings) > 0:
		res.Scanner = "basic"
	}
	for sev, n := range f.FindingSeverityCounts {
		res.Counts[strings.ToUpper(sev)] += int(n)
		if res.Threshold.AtOrAbove(sev) {
			res.Failing += int(n)
		}
	}
	for _, x := range f.Findings {
		if res.Threshold.AtOrAbove(string(x.Severity)) {
			fd := Finding{Name: aws.ToString(x.Name), Severity: string(x.Severity)}
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
			res.Worst = append(res.Worst, fd)
		}
	}
	for _, x := range f.EnhancedFindings {
		sev := aws.ToString(x.Severity)
		if !res.Threshold.AtOrAbove(sev) {
			continue
		}
		fd := Finding{Name: aws.ToString(x.Title), Severity: strings.ToUpper(sev)}
		if d := x.PackageVulnerabilityDetails; d != nil {
			if id := aws.ToString(d.VulnerabilityId); id != "" {
				fd.Name = id
			}
			if len(d.VulnerablePackages) > 0 {
				p := d.VulnerablePackages[0]
				fd.Package = strings.TrimSpace(aws.ToString(p.Name) + " " + aws.ToString(p.Version))
			}
		}
		res.Worst = append(res.Worst, fd)
	}
	sort.SliceStable(res.Worst, func(i, j int) bool { return rank(res.Worst[i].Severity) < rank(res.Worst[j].Severity) })
	const shown = 5
	if len(res.Worst) > shown {
		res.Worst = res.Worst[:shown]
	}
	return nil
}
