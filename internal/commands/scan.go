package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/scan"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/push"
)

// DefaultScanWait bounds the wait for ECR's scan; a basic scan usually
// takes a minute or two.
const DefaultScanWait = 5 * time.Minute

// gateFor returns a scan gate acting as the CI role of o; tests pass one
// over a fake account.
type gateFor func(ctx context.Context, o push.Options, wait time.Duration) (*scan.Gate, error)

// policyFlags are the gate's judging flags, shared by scan and push --scan.
type policyFlags struct {
	FailOn      string
	OnlyFixable bool
	Ignores     []string
	IgnoreFile  string
	JUnit       string
	// RequireSignature also fails an image ECR's managed signing did not sign.
	RequireSignature bool
}

func (p *policyFlags) add(fl *pflag.FlagSet, prefix string) {
	fl.BoolVar(&p.OnlyFixable, "only-fixable", false, prefix+"count only findings with a fix available (enhanced scanning says which)")
	fl.StringArrayVar(&p.Ignores, "ignore", nil, prefix+"a vulnerability ID (CVE-2024-1234) that does not count; repeatable")
	fl.StringVar(&p.IgnoreFile, "ignore-file", "", prefix+"a file of vulnerability IDs that do not count, each with an optional expiry date and reason (see --help)")
	fl.StringVar(&p.JUnit, "junit", "", prefix+"also write the findings as a JUnit XML report to this file (CircleCI: store_test_results)")
	fl.BoolVar(&p.RequireSignature, "require-signature", false,
		prefix+"also fail (exit 1) unless ECR's managed signing signed the image (setup --signing-profile); the report says which profile signed it")
}

// policy checks the flags and reads the ignore file: a usage error (exit 2)
// before any call, naming the file and line at fault.
func (p *policyFlags) policy(threshold scan.Severity) (scan.Policy, error) {
	pol := scan.Policy{Threshold: threshold, OnlyFixable: p.OnlyFixable, RequireSignature: p.RequireSignature}
	for _, id := range p.Ignores {
		if err := scan.CheckID(id); err != nil {
			return pol, clierror.Usagef("--ignore: %v", err)
		}
		pol.Ignores = append(pol.Ignores, scan.Ignore{ID: id, Source: "--ignore"})
	}
	if p.IgnoreFile != "" {
		f, err := os.Open(p.IgnoreFile)
		if err != nil {
			return pol, clierror.Usagef("--ignore-file: %v", err)
		}
		defer f.Close()
		ignores, err := scan.ParseIgnores(p.IgnoreFile, f)
		var le *scan.LineError
		switch {
		case errors.As(err, &le):
			return pol, clierror.Usagef("--ignore-file %s (expected: ID [YYYY-MM-DD] [reason])", le)
		case err != nil:
			return pol, clierror.Usagef("--ignore-file: %v", err)
		}
		pol.Ignores = append(pol.Ignores, ignores...)
	}
	if p.JUnit != "" {
		if st, err := os.Stat(p.JUnit); err == nil && st.IsDir() {
			return pol, clierror.Usagef("--junit %s is a folder: give the report's file name, e.g. %s", p.JUnit, filepath.Join(p.JUnit, "scan.xml"))
		}
	}
	return pol, nil
}

// report writes the JUnit report when asked; it is written whatever the
// verdict, so that CI shows why a job failed.
func (p *policyFlags) report(results []*scan.Result) error {
	if p.JUnit == "" {
		return nil
	}
	if dir := filepath.Dir(p.JUnit); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("writing the JUnit report: %w", err)
		}
	}
	f, err := os.Create(p.JUnit)
	if err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	if err := scan.WriteJUnit(f, results); err != nil {
		f.Close()
		return fmt.Errorf("writing the JUnit report %s: %w", p.JUnit, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the JUnit report %s: %w", p.JUnit, err)
	}
	return nil
}

type scanFlags struct {
	creds                   ciCredentials
	repository, tag, output string
	wait                    time.Duration
	policyFlags
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
		Long: `Run in the CI job after push: wait for ECR's scan of the image tagged --tag,
print its findings by severity, and exit 1 when any counts at or above
--fail-on, or when the scan gives no verdict. It reads the same variables as
push; the role may read findings after setup --scan-on-push, and start a
scan after setup --allow-scan.

Ignore file (--ignore-file):
` + indent(scan.IgnoreFileFormat, "  ") + guideLine + "scan.md",
		Example: `  # After the push, in the same CircleCI job:
  containerise scan --tag "$CIRCLE_SHA1" --fail-on HIGH

  # Only what can be fixed, minus accepted CVEs, with a JUnit report:
  containerise scan --tag v2 --fail-on HIGH --only-fixable --ignore-file .scanignore --junit test-results/scan.xml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pol, err := f.validate()
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
			var targets []scan.Target
			for _, tag := range o.Tags {
				targets = append(targets, scan.Tag(tag))
			}
			results, err := gt.CheckAll(cmd.Context(), o.Repository, targets, pol)
			if err != nil {
				return err
			}
			if err := f.report(results); err != nil {
				return err
			}
			if f.output == "json" {
				if err := renderScanJSON(g.Out, pol, results); err != nil {
					return err
				}
			} else {
				renderScanText(g.Out, results)
			}
			return gateVerdict(results, "--wait")
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tag, "tag", "", "the image's tag (required)")
	fl.StringVar(&f.repository, "repository", push.DefaultRepository, "ECR repository")
	fl.StringVar(&f.FailOn, "fail-on", "", "exit 1 when a finding counts at or above this severity: CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL (required)")
	f.policyFlags.add(fl, "")
	fl.DurationVar(&f.wait, "wait", DefaultScanWait, "how long to wait for the scan to complete (0: look once)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.creds.RoleARN, "role-arn", "", "role to assume (default: AWS_IAM_ROLE_ARN)")
	return cmd
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func (f *scanFlags) validate() (scan.Policy, error) {
	if f.tag == "" {
		return scan.Policy{}, clierror.Usagef("--tag is required: the tag of the image whose scan to check")
	}
	if f.FailOn == "" {
		return scan.Policy{}, clierror.Usagef("--fail-on is required: e.g. containerise scan --tag %s --fail-on HIGH (CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL)", shellQuote(f.tag))
	}
	threshold, err := failOn(f.FailOn)
	if err != nil {
		return scan.Policy{}, err
	}
	switch f.output {
	case "text", "json":
	default:
		return scan.Policy{}, clierror.Usagef("--output %q is invalid: use text or json", f.output)
	}
	if f.wait < 0 {
		return scan.Policy{}, clierror.Usagef("--wait %s is negative", f.wait)
	}
	return f.policy(threshold)
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
// findings that count, and those without a verdict, saying why and what to
// do; waitFlag is the flag that allows a longer wait.
func gateVerdict(results []*scan.Result, waitFlag string) error {
	var failed []string
	for _, r := range results {
		ref := r.Repository + ":" + strings.Join(r.Tags, ",")
		if len(r.Tags) == 0 {
			ref = r.Repository + "@" + r.Digest
		}
		switch {
		case r.NoVerdict != nil:
			nv := r.NoVerdict
			do := nv.Do
			if nv.Next == hint.WaitLonger {
				do += ", or allow longer with " + waitFlag
			}
			failed = append(failed, fmt.Sprintf("%s has no verdict, so it does not pass: scan status %s: %s; %s", ref, nv.Status, nv.Why, do))
		case r.Failing > 0:
			failed = append(failed, fmt.Sprintf("%s has %s at or above %s", ref, plural(r.Failing, "finding"), r.Threshold()))
		}
		if r.Unsigned() {
			failed = append(failed, unsignedText(ref, r.Signature))
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

// shownFailing bounds the failing findings the text lists; JSON and JUnit
// list them all.
const shownFailing = 10

// renderScanText writes each image's counts and verdict.
func renderScanText(w io.Writer, results []*scan.Result) {
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
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
		fmt.Fprintf(w, "%s (%s)\n", r.Ref(), strings.Join(about, ", "))
		if nv := r.NoVerdict; nv != nil {
			fmt.Fprintf(w, "NO VERDICT: scan status %s: %s\n  what to do: %s\n", nv.Status, nv.Why, nv.Do)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range severityOrder(r.Counts) {
			line := fmt.Sprintf("  %s\t%d", s, r.Counts[s])
			if _, err := scan.ParseSeverity(s); err != nil {
				line += "\t(no severity: not gated)"
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
		var failing, skipped []scan.Finding
		for _, f := range r.Findings {
			if f.Verdict == scan.Fails {
				failing = append(failing, f)
			} else {
				skipped = append(skipped, f)
			}
		}
		renderSignature(w, r)
		if r.Passed() {
			fmt.Fprintf(w, "PASS: no finding counts at or above %s", r.Threshold())
		} else if r.Failing > 0 {
			fmt.Fprintf(w, "FAIL: %s at or above %s", plural(r.Failing, "finding"), r.Threshold())
		} else {
			fmt.Fprintf(w, "FAIL: not signed; no finding counts at or above %s", r.Threshold())
		}
		if len(skipped) > 0 {
			fmt.Fprintf(w, " (%d not counted)", len(skipped))
		}
		fmt.Fprintln(w)
		for i, f := range failing {
			if i == shownFailing {
				fmt.Fprintf(w, "  ... and %d more (all of them in --output json and --junit)\n", len(failing)-shownFailing)
				break
			}
			fmt.Fprintln(w, "  "+findingLine(f))
		}
		if r.Unlisted > 0 {
			fmt.Fprintf(w, "  %s ECR counted but did not list: they count, as no ignore can be checked\n", plural(r.Unlisted, "finding"))
		}
		if len(skipped) > 0 {
			fmt.Fprintln(w, "not counted:")
			for _, f := range skipped {
				fmt.Fprintf(w, "  %s: %s\n", findingLine(f), f.Reason)
			}
		}
	}
}

func findingLine(f scan.Finding) string {
	line := f.Severity + "  " + f.ID
	if f.Package != "" {
		line += "  " + f.Package
	}
	if f.FixedIn != "" {
		line += "  (fixed in " + f.FixedIn + ")"
	}
	if f.Expired != "" {
		line += "  [" + f.Expired + "]"
	}
	return line
}

// scanJSON is the --output json document. Its keys are stable.
type scanJSON struct {
	Threshold   string           `json:"threshold"`
	OnlyFixable bool             `json:"only_fixable"`
	Ignores     []scanIgnoreJSON `json:"ignores"`
	Passed      bool             `json:"passed"`
	Images      []scanImageJSON  `json:"images"`
}

type scanIgnoreJSON struct {
	ID     string `json:"id"`
	Until  string `json:"until,omitempty"`
	Reason string `json:"reason"`
	Source string `json:"source"`
	Active bool   `json:"active"`
}

type scanImageJSON struct {
	Repository        string            `json:"repository"`
	Tags              []string          `json:"tags"`
	Digest            string            `json:"digest"`
	Scanner           string            `json:"scanner"`
	Status            string            `json:"status"`
	StatusDescription string            `json:"status_description"`
	CompletedAt       *time.Time        `json:"completed_at"`
	Started           bool              `json:"started"`
	Counts            map[string]int    `json:"counts"`
	Failing           int               `json:"failing"`
	Unlisted          int               `json:"unlisted"`
	Passed            bool              `json:"passed"`
	Verdict           string            `json:"verdict"` // pass, fail or none
	NoVerdict         *scanNoVerdict    `json:"no_verdict"`
	Findings          []scanFindingJSON `json:"findings"`
	// Signature is null unless --require-signature asked for it.
	Signature *scanSignatureJSON `json:"signature"`
}

type scanNoVerdict struct {
	Status string `json:"status"`
	Why    string `json:"why"`
	Do     string `json:"do"`
}

type scanFindingJSON struct {
	Name     string `json:"name"` // the vulnerability ID
	Severity string `json:"severity"`
	Package  string `json:"package"`
	FixedIn  string `json:"fixed_in"`
	Fix      string `json:"fix_available"`
	Title    string `json:"title"`
	URI      string `json:"uri"`
	Verdict  string `json:"verdict"` // fail, ignored, no-fix, suppressed
	Reason   string `json:"reason"`
	Expired  string `json:"expired_ignore"`
}

func renderScanJSON(w io.Writer, pol scan.Policy, results []*scan.Result) error {
	doc := scanJSON{Threshold: string(pol.Threshold), OnlyFixable: pol.OnlyFixable, Ignores: []scanIgnoreJSON{}, Passed: true, Images: []scanImageJSON{}}
	now := time.Now()
	for _, ig := range pol.Ignores {
		j := scanIgnoreJSON{ID: ig.ID, Reason: ig.Reason, Source: ig.Source, Active: ig.Active(now)}
		if !ig.Until.IsZero() {
			j.Until = ig.Until.Format(time.DateOnly)
		}
		doc.Ignores = append(doc.Ignores, j)
	}
	for _, r := range results {
		img := scanImageJSON{Repository: r.Repository, Tags: r.Tags, Digest: r.Digest, Scanner: r.Scanner, Status: r.Status,
			StatusDescription: r.StatusDescription, CompletedAt: r.CompletedAt, Started: r.Started, Counts: map[string]int{},
			Failing: r.Failing, Unlisted: r.Unlisted, Passed: r.Passed(), Verdict: "pass", Findings: []scanFindingJSON{}}
		if img.Tags == nil {
			img.Tags = []string{}
		}
		switch {
		case r.NoVerdict != nil:
			img.Verdict = "none"
			img.NoVerdict = &scanNoVerdict{Status: r.NoVerdict.Status, Why: r.NoVerdict.Why, Do: r.NoVerdict.Do}
		case !r.Passed():
			img.Verdict = "fail"
		}
		if r.NoVerdict == nil {
			for _, s := range severityOrder(r.Counts) {
				img.Counts[s] = r.Counts[s]
			}
		}
		for _, f := range r.Findings {
			img.Findings = append(img.Findings, scanFindingJSON{Name: f.ID, Severity: f.Severity, Package: f.Package, FixedIn: f.FixedIn,
				Fix: f.Fix, Title: f.Title, URI: f.URI, Verdict: string(f.Verdict), Reason: f.Reason, Expired: f.Expired})
		}
		if sig := r.Signature; sig != nil {
			img.Signature = &scanSignatureJSON{Signed: sig.Signed, Profiles: append([]string{}, sig.Profiles...), Problems: append([]string{}, sig.Problems...)}
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

// pushGate is push's --scan: the gate on the images just pushed.
type pushGate struct {
	policy scan.Policy
	wait   time.Duration
	flags  policyFlags
}

// scanGate reads --scan and the gate's flags; nil without --scan.
func (f *pushFlags) scanGate() (*pushGate, error) {
	if !f.Scan {
		for _, fl := range []struct {
			name string
			set  bool
		}{{"--fail-on", f.FailOn != ""}, {"--only-fixable", f.OnlyFixable}, {"--ignore", len(f.Ignores) > 0},
			{"--ignore-file", f.IgnoreFile != ""}, {"--junit", f.JUnit != ""}, {"--require-signature", f.RequireSignature}} {
			if fl.set && fl.name == "--fail-on" {
				return nil, clierror.Usagef("--fail-on needs --scan: containerise push --scan --fail-on %s", f.FailOn)
			}
			if fl.set {
				return nil, clierror.Usagef("%s needs --scan: containerise push --scan --fail-on %s %s ...", fl.name, orHigh(f.FailOn), fl.name)
			}
		}
		return nil, nil
	}
	if f.FailOn == "" {
		return nil, clierror.Usagef("--scan needs --fail-on SEVERITY, the severity that fails the job: e.g. containerise push --scan --fail-on HIGH (CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL)")
	}
	threshold, err := failOn(f.FailOn)
	if err != nil {
		return nil, err
	}
	if f.ScanWait < 0 {
		return nil, clierror.Usagef("--scan-wait %s is negative", f.ScanWait)
	}
	pol, err := f.policyFlags.policy(threshold)
	if err != nil {
		return nil, err
	}
	return &pushGate{policy: pol, wait: f.ScanWait, flags: f.policyFlags}, nil
}

func orHigh(s string) string {
	if s == "" {
		return "HIGH"
	}
	return s
}

// run gates the images this push wrote, by digest, so that a tag another
// job moves meanwhile cannot change what is judged (nothing without
// --scan). stdout keeps only push's lines, one per tag; the gate's report
// goes to stderr.
func (pg *pushGate) run(ctx context.Context, g *Globals, p *push.Pusher, o push.Options, pushed []push.Pushed) error {
	if pg == nil {
		return nil
	}
	gate, err := roleGate(ctx, g, o, pg.wait, p)
	if err != nil {
		return err
	}
	results, err := gate.CheckAll(ctx, o.Repository, pushedTargets(pushed), pg.policy)
	if err != nil {
		return err
	}
	if err := pg.flags.report(results); err != nil {
		return err
	}
	renderScanText(g.Err, results)
	return gateVerdict(results, "--scan-wait")
}

// pushedTargets groups the pushed tags by the digest each names.
func pushedTargets(pushed []push.Pushed) []scan.Target {
	var out []scan.Target
	at := map[string]int{}
	for _, p := range pushed {
		if i, ok := at[p.Digest]; ok {
			out[i].Tags = append(out[i].Tags, p.Tag)
			continue
		}
		at[p.Digest] = len(out)
		out = append(out, scan.Digest(p.Digest, p.Tag))
	}
	return out
}
