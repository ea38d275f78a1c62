package awsfake

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// ScanResult is what ECR's scan of an image reports (SetScanResult).
type ScanResult struct {
	// Status once the scan is over: COMPLETE (the default), FAILED,
	// UNSUPPORTED_IMAGE, or ACTIVE as enhanced scanning reports it.
	Status      ecrtypes.ScanStatus
	Description string
	// Counts are the findings by severity ("HIGH": 2); one finding of each
	// is listed.
	Counts map[string]int32
	// Enhanced lists the findings as Amazon Inspector's enhanced findings.
	Enhanced bool
	// Duration is how long a scan stays IN_PROGRESS on the fake clock.
	Duration time.Duration
	// Findings, when set, are listed as they are (enhanced findings when
	// Enhanced, else basic ones) in place of one per severity of Counts;
	// Counts then defaults to theirs.
	Findings []Finding
	// Arriving is how long after Duration the scan says COMPLETE (or
	// Status) with neither findings nor a completion time, as enhanced
	// scanning does before Inspector's findings arrive.
	Arriving time.Duration
	// PageSize, when set, pages the findings: NextToken is the index of
	// the next one.
	PageSize int
}

// Finding is one finding a fake scan lists.
type Finding struct {
	ID, Severity, Package, Version string
	// Fix is Inspector's fixAvailable (YES, NO, PARTIAL); FixedIn the
	// version that fixes it (Inspector says NotAvailable when none does).
	Fix, FixedIn string
	// Status is Inspector's finding status (ACTIVE, SUPPRESSED, CLOSED).
	Status string
}

type scan struct {
	started time.Time
	result  ScanResult
}

// SetScanResult sets what scans of images in the repository report from now
// on (scans already started keep theirs).
func (a *Account) SetScanResult(repository string, r ScanResult) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	rp, err := a.repo(repository)
	if err != nil {
		return err
	}
	rp.scanResult = r
	return nil
}

// startScan starts a scan of img (under the lock).
func (a *Account) startScan(r *repo, img *image) {
	img.scan = &scan{started: a.now, result: r.scanResult}
}

func (a *Account) image(r *repo, id *ecrtypes.ImageIdentifier) (*image, error) {
	if id != nil {
		for _, img := range r.images {
			if id.ImageDigest != nil && *id.ImageDigest != img.digest {
				continue
			}
			if id.ImageTag != nil && !slices.Contains(img.tags, *id.ImageTag) {
				continue
			}
			if id.ImageDigest != nil || id.ImageTag != nil {
				return img, nil
			}
		}
	}
	var tag, digest string
	if id != nil {
		tag, digest = str(id.ImageTag), str(id.ImageDigest)
	}
	return nil, &ecrtypes.ImageNotFoundException{Message: aws.String(fmt.Sprintf(
		"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
		digest, tag, r.name, a.id))}
}

func imageID(img *image, asked *ecrtypes.ImageIdentifier) *ecrtypes.ImageIdentifier {
	out := &ecrtypes.ImageIdentifier{ImageDigest: aws.String(img.digest)}
	if asked != nil && asked.ImageTag != nil {
		out.ImageTag = aws.String(*asked.ImageTag)
	}
	return out
}

// StartImageScan starts a basic scan of an image; ECR allows one per image
// every 24 hours.
func (f *ECR) StartImageScan(ctx context.Context, in *ecr.StartImageScanInput, _ ...func(*ecr.Options)) (*ecr.StartImageScanOutput, error) {
	var out *ecr.StartImageScanOutput
	err := f.a.call(ctx, "ecr.StartImageScan", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		img, err := f.a.image(r, in.ImageId)
		if err != nil {
			return err
		}
		if img.scan != nil && f.a.now.Sub(img.scan.started) < 24*time.Hour {
			return &ecrtypes.LimitExceededException{Message: aws.String("The scan quota per image has been exceeded. Wait and try again.")}
		}
		f.a.startScan(r, img)
		out = &ecr.StartImageScanOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name), ImageId: imageID(img, in.ImageId),
			ImageScanStatus: &ecrtypes.ImageScanStatus{Status: ecrtypes.ScanStatusInProgress}}
		return nil
	})
	return out, err
}

// DescribeImageScanFindings reports an image's scan: IN_PROGRESS for the
// result's Duration after it started, then its status and findings.
func (f *ECR) DescribeImageScanFindings(ctx context.Context, in *ecr.DescribeImageScanFindingsInput, _ ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error) {
	var out *ecr.DescribeImageScanFindingsOutput
	err := f.a.call(ctx, "ecr.DescribeImageScanFindings", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		img, err := f.a.image(r, in.ImageId)
		if err != nil {
			return err
		}
		if img.scan == nil {
			return &ecrtypes.ScanNotFoundException{Message: aws.String(fmt.Sprintf(
				"Image scan does not exist for the image with '{imageDigest:'%s', imageTag:'%s'}' in the repository with name '%s' in the registry with id '%s'",
				img.digest, str(in.ImageId.ImageTag), r.name, f.a.id))}
		}
		out = &ecr.DescribeImageScanFindingsOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name), ImageId: imageID(img, in.ImageId)}
		res := img.scan.result
		done := img.scan.started.Add(res.Duration)
		if f.a.now.Before(done) {
			out.ImageScanStatus = &ecrtypes.ImageScanStatus{Status: ecrtypes.ScanStatusInProgress}
			return nil
		}
		status := res.Status
		if status == "" {
			status = ecrtypes.ScanStatusComplete
		}
		desc := res.Description
		if desc == "" && status == ecrtypes.ScanStatusComplete {
			desc = "The scan was completed successfully."
		}
		out.ImageScanStatus = &ecrtypes.ImageScanStatus{Status: status, Description: aws.String(desc)}
		if status != ecrtypes.ScanStatusComplete && status != ecrtypes.ScanStatusActive {
			return nil
		}
		if f.a.now.Before(done.Add(res.Arriving)) {
			out.ImageScanFindings = &ecrtypes.ImageScanFindings{}
			return nil
		}
		findings := &ecrtypes.ImageScanFindings{ImageScanCompletedAt: tp(done.Add(res.Arriving)), FindingSeverityCounts: map[string]int32{}}
		listed := res.Findings
		counts := res.Counts
		if listed == nil {
			var severities []string
			for sev, n := range res.Counts {
				if n > 0 {
					severities = append(severities, sev)
				}
			}
			sort.Strings(severities)
			for _, sev := range severities {
				listed = append(listed, Finding{ID: "CVE-FAKE-" + sev, Severity: sev, Package: "fakepkg", Version: "1.0"})
			}
		} else if counts == nil {
			counts = map[string]int32{}
			for _, x := range listed {
				counts[x.Severity]++
			}
		}
		for sev, n := range counts {
			if n > 0 {
				findings.FindingSeverityCounts[sev] = n
			}
		}
		from := 0
		if in.NextToken != nil {
			fmt.Sscan(*in.NextToken, &from)
		}
		if from > len(listed) {
			from = len(listed)
		}
		page := listed[from:]
		if res.PageSize > 0 && len(page) > res.PageSize {
			page = page[:res.PageSize]
			out.NextToken = aws.String(fmt.Sprint(from + res.PageSize))
		}
		for _, x := range page {
			if res.Enhanced {
				e := ecrtypes.EnhancedImageScanFinding{
					Severity: aws.String(x.Severity), Title: aws.String(x.ID + " - " + x.Package), Status: aws.String("ACTIVE"),
					PackageVulnerabilityDetails: &ecrtypes.PackageVulnerabilityDetails{VulnerabilityId: aws.String(x.ID),
						SourceUrl:          aws.String("https://nvd.nist.gov/vuln/detail/" + x.ID),
						VulnerablePackages: []ecrtypes.VulnerablePackage{{Name: aws.String(x.Package), Version: aws.String(x.Version)}}},
				}
				if x.Fix != "" {
					e.FixAvailable = aws.String(x.Fix)
				}
				if x.FixedIn != "" {
					e.PackageVulnerabilityDetails.VulnerablePackages[0].FixedInVersion = aws.String(x.FixedIn)
				}
				if x.Status != "" {
					e.Status = aws.String(x.Status)
				}
				findings.EnhancedFindings = append(findings.EnhancedFindings, e)
				continue
			}
			findings.Findings = append(findings.Findings, ecrtypes.ImageScanFinding{
				Name: aws.String(x.ID), Severity: ecrtypes.FindingSeverity(x.Severity),
				Attributes: []ecrtypes.Attribute{{Key: aws.String("package_name"), Value: aws.String(x.Package)}, {Key: aws.String("package_version"), Value: aws.String(x.Version)}},
			})
		}
		out.ImageScanFindings = findings
		return nil
	})
	return out, err
}
