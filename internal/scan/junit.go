package scan

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnit XML, as CI systems read it (CircleCI's store_test_results among
// them): one suite per image, one test case per finding at or above the
// threshold. A finding that fails the image is a failed case; an ignored,
// unfixable or suppressed one is skipped with its reason; an image without
// a verdict is one case in error; a clean image is one passing case.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the results as a JUnit XML report.
func WriteJUnit(w io.Writer, results []*Result) error {
	doc := junitSuites{Name: "containerise scan"}
	for _, r := range results {
		s := junitSuite{Name: "ECR scan of " + r.Ref()}
		s.Properties = []junitProperty{{"threshold", string(r.Policy.Threshold)}, {"status", r.Status}, {"scanner", r.Scanner},
			{"digest", r.Digest}, {"only_fixable", fmt.Sprint(r.Policy.OnlyFixable)}}
		class := r.Repository
		switch {
		case r.NoVerdict != nil:
			s.Cases = append(s.Cases, junitCase{Name: "ECR scan gives a verdict", Classname: class,
				Error: &junitProblem{Message: "scan status " + r.NoVerdict.Status + ": " + r.NoVerdict.Why, Type: r.NoVerdict.Status, Text: "What to do: " + r.NoVerdict.Do}})
			s.Errors++
		case len(r.Findings) == 0 && r.Unlisted == 0:
			s.Cases = append(s.Cases, junitCase{Name: "no finding at or above " + string(r.Policy.Threshold), Classname: class})
		}
		for _, f := range r.Findings {
			c := junitCase{Name: f.ID + " (" + f.Severity + ")", Classname: class}
			if f.Package != "" {
				c.Name += " in " + f.Package
			}
			switch f.Verdict {
			case Fails:
				c.Failure = &junitProblem{Message: f.Severity + " " + f.ID + " at or above " + string(r.Policy.Threshold), Type: f.Severity, Text: findingDetails(f)}
				s.Failures++
			default:
				c.Skipped = &junitProblem{Message: f.Reason}
				s.Skipped++
			}
			s.Cases = append(s.Cases, c)
		}
		if r.Unlisted > 0 {
			s.Cases = append(s.Cases, junitCase{Name: fmt.Sprintf("%d findings ECR counted but did not list", r.Unlisted), Classname: class,
				Failure: &junitProblem{Message: "ECR counts findings at or above " + string(r.Policy.Threshold) + " that it does not list; they cannot be checked against the ignores, so they fail", Type: "UNLISTED"}})
			s.Failures++
		}
		s.Tests = len(s.Cases)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func findingDetails(f Finding) string {
	var lines []string
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, k+": "+v)
		}
	}
	add("Title", f.Title)
	add("Package", f.Package)
	add("Fixed in", f.FixedIn)
	add("Fix available", f.Fix)
	add("Details", f.URI)
	add("Note", f.Reason)
	add("Note", f.Expired)
	return strings.Join(lines, "\n")
}
