package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/push"
	"github.com/containerise/containerise/internal/scan"
	"github.com/containerise/containerise/internal/validate"
)

// DefaultScanWait bounds the wait for ECR's scan; a basic scan usually
// takes a minute or two.
const DefaultScanWait = 5 * time.Minute

// gateFor returns a scan gate acting as the CI role of o; tests pass one
// over a fake account.
type gateFor func(ctx context.Context, o push.Options, wait time.Duration) (*scan.Gate, error)

type scanFlags struct {
	creds                           ciCredentials
	repository, tag, failOn, output string
	wait                            time.Duration
}

func newScanCmd(g *Globals) *cobra.Command {
	return newScanCmdWith(g, os.Getenv, func(ctx context.Context, o push.Options, wait time.Duration) (*scan.Gate, error) {
		return roleGate(ctx, g, o, wait, nil)
	})
}

func newScanCmdWith(g *Globals, getenv func(string) string, gate gateFor) *cobra.Command {
	f := &scanFlags{}
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Fail a CI job when ECR's scan of a pushed image found vulnerabilities at or above a severity",
		Long: `scan is CI's gate on what ECR's image scan found. With the CI role's
credentials (the same variables as push), it waits, up to --wait, for the
scan of the image tagged --tag to complete, starting one when the repository
did not scan the image on push, then prints the findings by severity and
exits 1 when any is at or above --fail-on, 0 otherwise.

The role needs ecr:DescribeImageScanFindings, which setup grants while the
repository scans on push (setup --scan-on-push), and ecr:StartImageScan to
start a scan (setup --allow-scan). ECR runs a basic scan of an image at
most once a day.

Basic scanning reports CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL and
UNDEFINED findings; enhanced scanning (Amazon Inspector) is read the same
way, with its UNTRIAGED findings. UNDEFINED and UNTRIAGED findings are
shown, never gated. A scan that ends without findings (FAILED, an
unsupported image) fails the gate: it cannot judge the image.

Environment: AWS_IAM_USER_ACCESS_KEY_ID, AWS_IAM_USER_SECRET_ACCESS_KEY,
AWS_IAM_ROLE_ARN (or --role-arn) and AWS_REGION (or --region), as for push.

Exit status: 0 no finding at or above --fail-on; 1 findings at or above it,
or the scan could not be judged (failed, still running after --wait, no
permission); 2 invalid input.`,
		Example: `  # After the push, in the same CircleCI job:
  containerise scan --tag "$CIRCLE_SHA1" --fail-on HIGH

  # Another repository, a longer wait, the counts as JSON:
  containerise scan --repository team/api --tag v2 --fail-on CRITICAL --wait 10m --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			threshold, err := f.validate()
			if err != nil {
				return err
			}
			// The CI credentials, from where push gets them.
			o, err := f.creds.read(g, getenv)
			if err != nil {
				return err
			}
			if err := validate.First(validate.Repository("--repository", f.repository), validate.Tag("--tag", f.tag)); err != nil {
				return err
			}
			o.Repository, o.Tags, o.Wait = f.repository, []string{f.tag}, push.DefaultWait
			gt, err := gate(cmd.Context(), o, f.wait)
			if err != nil {
				return err
			}
			results, err := gt.CheckAll(cmd.Context(), o.Repository, o.Tags, threshold)
			if err != nil {
				return err
			}
			if f.output == "json" {
				if err := renderScanJSON(g.Out, threshold, results); err != nil {
					return err
				}
			} else {
				renderScanText(g.Out, results)
			}
			return gateVerdict(results)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tag, "tag", "", "the image's tag (required)")
	fl.StringVar(&f.repository, "repository", push.DefaultRepository, "ECR repository")
	fl.StringVar(&f.failOn, "fail-on", "", "exit 1 when a finding is at or above this severity: CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL (required)")
	fl.DurationVar(&f.wait, "wait", DefaultScanWait, "how long to wait for the scan to complete (0: look once)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.creds.RoleARN, "role-arn", "", "role to assume (default: AWS_IAM_ROLE_ARN)")
	return cmd
}

func (f *scanFlags) validate() (scan.Severity, error) {
	if f.tag == "" {
		return "", clierror.Usagef("--tag is required: the tag of the image whose scan to check")
	}
	threshold, err := failOn(f.failOn)
	if err != nil {
		return "", err
	}
	switch f.output {
	case "text", "json":
	default:
		return "", clierror.Usagef("--output %q is invalid: use text or json", f.output)
	}
	if f.wait < 0 {
		return "", clierror.Usagef("--wait %s is negative", f.wait)
	}
	return threshold, nil
}

// failOn reads --fail-on.
func failOn(value string) (scan.Severity, error) {
	if value == "" {
		return "", clierror.Usagef("--fail-on is required: CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL")
	}
	threshold, err := scan.ParseSeverity(value)
	if err != nil {
		return "", clierror.Usagef("--fail-on %q is invalid: use CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL", value)
	}
	return threshold, nil
}

// roleGate is a scan gate signed as the CI role, reached through push's
// own credential path: the user's keys assume the role (waiting for IAM as
// push does). A pusher already made for the same options is reused.
func roleGate(ctx context.Context, g *Globals, o push.Options, wait time.Duration, p *push.Pusher) (*scan.Gate, error) {
	cfg, err := g.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = push.New(cfg, o.AccessKeyID, o.SecretAccessKey, nil)
		p.Out, p.Err = io.Discard, g.Err
		if g.Verbose {
			p.Debugf = g.Debugf
		}
	}
	creds, err := p.RoleCredentials(ctx, o)
	if err != nil {
		return nil, err
	}
	return &scan.Gate{ECR: ecr.NewFromConfig(push.RoleConfig(cfg, creds)), Logf: g.Logf, Wait: awsx.Waiter{Bound: wait}}, nil
}

// gateVerdict is the gate's exit: an error (exit 1) naming the images with
// findings at or above the threshold.
func gateVerdict(results []*scan.Result) error {
	var failed []string
	for _, r := range results {
		if !r.Passed() {
			failed = append(failed, fmt.Sprintf("%s:%s has %s at or above %s", r.Repository, strings.Join(r.Tags, ","), plural(r.Failing, "finding"), r.Threshold))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("scan gate: %s", strings.Join(failed, "; "))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// severityOrder lists the gated severities, then any other ECR reported.
func severityOrder(counts map[string]int) []string {
	var out []string
	for _, s := range scan.Severities {
		out = append(out, string(s))
	}
	var others []string
	for s := range counts {
		if _, err := scan.ParseSeverity(s); err != nil {
			others = append(others, s)
		}
	}
	sort.Strings(others)
	return append(out, others...)
}

// renderScanText writes each image's counts and verdict.
func renderScanText(w io.Writer, results []*scan.Result) {
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := fmt.Sprintf("%s:%s", r.Repository, strings.Join(r.Tags, ","))
		if r.Digest != "" {
			head += "@" + r.Digest
		}
		var about []string
		if r.Scanner != "" {
			about = append(about, r.Scanner+" scanning")
		}
		about = append(about, "scan "+strings.ToLower(r.Status))
		if r.Started {
			about = append(about, "started by this run")
		}
		if r.CompletedAt != nil {
			about = append(about, "at "+r.CompletedAt.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(w, "%s (%s)\n", head, strings.Join(about, ", "))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range severityOrder(r.Counts) {
			line := fmt.Sprintf("  %s\t%d", s, r.Counts[s])
			if _, err := scan.ParseSeverity(s); err != nil {
				line += "\t(no severity: not gated)"
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
		if r.Passed() {
			fmt.Fprintf(w, "PASS: no finding at or above %s\n", r.Threshold)
			continue
		}
		fmt.Fprintf(w, "FAIL: %s at or above %s\n", plural(r.Failing, "finding"), r.Threshold)
		for _, f := range r.Worst {
			line := "  " + f.Severity + "  " + f.Name
			if f.Package != "" {
				line += "  " + f.Package
			}
			fmt.Fprintln(w, line)
		}
	}
}

// scanJSON is the --output json document. Its keys are stable.
type scanJSON struct {
	Threshold string          `json:"threshold"`
	Passed    bool            `json:"passed"`
	Images    []scanImageJSON `json:"images"`
}

type scanImageJSON struct {
	Repository  string            `json:"repository"`
	Tags        []string          `json:"tags"`
	Digest      string            `json:"digest"`
	Scanner     string            `json:"scanner"`
	Status      string            `json:"status"`
	CompletedAt *time.Time        `json:"completed_at"`
	Started     bool              `json:"started"`
	Counts      map[string]int    `json:"counts"`
	Failing     int               `json:"failing"`
	Passed      bool              `json:"passed"`
	Findings    []scanFindingJSON `json:"findings"`
}

type scanFindingJSON struct {
	Name     string `json:"name"`
	Severity string `json:"severity"`
	Package  string `json:"package"`
}

func renderScanJSON(w io.Writer, threshold scan.Severity, results []*scan.Result) error {
	doc := scanJSON{Threshold: string(threshold), Passed: true, Images: []scanImageJSON{}}
	for _, r := range results {
		img := scanImageJSON{Repository: r.Repository, Tags: r.Tags, Digest: r.Digest, Scanner: r.Scanner, Status: r.Status,
			CompletedAt: r.CompletedAt, Started: r.Started, Counts: map[string]int{}, Failing: r.Failing, Passed: r.Passed(),
			Findings: []scanFindingJSON{}}
		for _, s := range severityOrder(r.Counts) {
			img.Counts[s] = r.Counts[s]
		}
		for _, f := range r.Worst {
			img.Findings = append(img.Findings, scanFindingJSON(f))
		}
		doc.Passed = doc.Passed && r.Passed()
		doc.Images = append(doc.Images, img)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing the JSON result: %w", err)
	}
	return nil
}

// pushGate is push's --scan: the gate on every tag just pushed.
type pushGate struct {
	threshold scan.Severity
	wait      time.Duration
}

// scanGate reads --scan, --fail-on and --scan-wait; nil without --scan.
func (f *pushFlags) scanGate() (*pushGate, error) {
	if !f.Scan {
		if f.FailOn != "" {
			return nil, clierror.Usagef("--fail-on needs --scan: push --scan --fail-on %s", f.FailOn)
		}
		return nil, nil
	}
	threshold, err := failOn(f.FailOn)
	if err != nil {
		return nil, err
	}
	if f.ScanWait < 0 {
		return nil, clierror.Usagef("--scan-wait %s is negative", f.ScanWait)
	}
	return &pushGate{threshold: threshold, wait: f.ScanWait}, nil
}

// run gates the pushed tags (nothing without --scan). stdout keeps only
// push's lines, one per tag; the gate's report goes to stderr.
func (pg *pushGate) run(ctx context.Context, g *Globals, p *push.Pusher, o push.Options) error {
	if pg == nil {
		return nil
	}
	gate, err := roleGate(ctx, g, o, pg.wait, p)
	if err != nil {
		return err
	}
	results, err := gate.CheckAll(ctx, o.Repository, o.Tags, pg.threshold)
	if err != nil {
		return err
	}
	renderScanText(g.Err, results)
	return gateVerdict(results)
}
