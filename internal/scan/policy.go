package scan

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Policy is how the gate judges findings.
type Policy struct {
	// Threshold: findings at or above it are judged.
	Threshold Severity
	// OnlyFixable counts only findings with a fix available (Inspector's
	// fixAvailable YES or PARTIAL, or a fixed-in version). A finding whose
	// fix ECR does not report (basic scanning) still counts: the gate
	// cannot tell it has none.
	OnlyFixable bool
	// Ignores are vulnerability IDs that do not count until they expire.
	Ignores []Ignore
	// RequireSignature fails an image that ECR's managed signing has not
	// signed (signature.go).
	RequireSignature bool
	// Now is the time expiries are compared with; zero means time.Now.
	Now time.Time
}

func (p Policy) now() time.Time {
	if p.Now.IsZero() {
		return time.Now()
	}
	return p.Now
}

// Ignore is one vulnerability ID the gate does not count.
type Ignore struct {
	ID string
	// Until is the last day (UTC) it applies; the finding counts again
	// from the next day. Zero: no expiry.
	Until time.Time
	// Reason is shown in the report.
	Reason string
	// Source says where it was given: "--ignore" or "FILE:LINE".
	Source string
}

// Active reports whether the ignore applies at now.
func (i Ignore) Active(now time.Time) bool {
	return i.Until.IsZero() || now.UTC().Before(i.Until.AddDate(0, 0, 1))
}

// describe is the ignore as the report shows it.
func (i Ignore) describe() string {
	var parts []string
	if !i.Until.IsZero() {
		parts = append(parts, "until "+i.Until.Format(time.DateOnly))
	}
	if i.Reason != "" {
		parts = append(parts, i.Reason)
	}
	parts = append(parts, "("+i.Source+")")
	return strings.Join(parts, " ")
}

// decide sets the verdict of a finding at or above the threshold.
func (p Policy) decide(f *Finding, now time.Time) {
	if f.Verdict == Suppressed {
		return
	}
	for _, ig := range p.Ignores {
		if !strings.EqualFold(ig.ID, f.ID) {
			continue
		}
		if ig.Active(now) {
			f.Verdict, f.Reason, f.Expired = Ignored, "ignored "+ig.describe(), ""
			return
		}
		f.Expired = "ignore expired on " + ig.Until.Format(time.DateOnly) + " " + "(" + ig.Source + ")"
	}
	f.Verdict = Fails
	if !p.OnlyFixable {
		return
	}
	switch {
	case f.Fix == "YES" || f.Fix == "PARTIAL" || (f.Fix == "" && f.FixedIn != ""):
	case f.Fix == "":
		f.Reason = "ECR does not say whether a fix exists (basic scanning), so it counts"
	default:
		f.Verdict, f.Reason = NoFix, "no fix available (fixAvailable "+f.Fix+"), and only fixable findings count"
	}
}

// idPattern is what a vulnerability ID looks like: CVE-2024-1234,
// GHSA-xxxx-xxxx-xxxx, ALAS2-2023-1234, RHSA-2023:1234, ...
var idPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$`)

// datePattern is an expiry's shape, YYYY-MM-DD.
var datePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// CheckID checks a vulnerability ID given to ignore.
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%q is not a vulnerability ID such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx", id)
	}
	return nil
}

// LineError is a line of an ignore file that cannot be read.
type LineError struct {
	File    string
	Line    int
	Problem string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Problem) }

// IgnoreFileFormat describes an ignore file, for help texts.
const IgnoreFileFormat = `One ID a line, then optionally the last day it is
ignored (YYYY-MM-DD, UTC; from the next day it counts
again), then optionally a reason, which the report
shows. Blank lines and # lines are skipped:
  CVE-2024-1234 2026-12-31 no fixed base image yet
  GHSA-abcd-efgh-ijkl code path not reachable
  CVE-2023-9999`

// ParseIgnores reads an ignore file (IgnoreFileFormat); name is how errors
// and the report name it.
func ParseIgnores(name string, r io.Reader) ([]Ignore, error) {
	var out []Ignore
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return &LineError{File: name, Line: n, Problem: fmt.Sprintf(format, args...)}
		}
		fields := strings.Fields(line)
		ig := Ignore{ID: fields[0], Source: fmt.Sprintf("%s:%d", name, n)}
		if err := CheckID(ig.ID); err != nil {
			return nil, bad("%v", err)
		}
		if prev, ok := seen[strings.ToUpper(ig.ID)]; ok {
			return nil, bad("%s is already listed on line %d", ig.ID, prev)
		}
		seen[strings.ToUpper(ig.ID)] = n
		rest := fields[1:]
		if len(rest) > 0 && datePattern.MatchString(rest[0]) {
			until, err := time.Parse(time.DateOnly, rest[0])
			if err != nil {
				return nil, bad("%q is not a date: give the last day the finding is ignored as YYYY-MM-DD", rest[0])
			}
			ig.Until, rest = until, rest[1:]
		} else if len(rest) > 0 && strings.IndexFunc(rest[0], func(r rune) bool { return r < '0' || r > '9' }) != 0 && strings.Count(rest[0], "-")+strings.Count(rest[0], "/") >= 2 {
			// Looks like a date in another shape (2026/12/31, 31-12-2026).
			return nil, bad("%q is not a date as YYYY-MM-DD", rest[0])
		}
		ig.Reason = strings.Join(rest, " ")
		out = append(out, ig)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}
