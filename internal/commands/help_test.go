package commands

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var (
	sectionTitle = regexp.MustCompile(`^[A-Z][^:]*:$`)
	flagLine     = regexp.MustCompile(`^  (?:-[a-z], |    )--([a-z0-9-]+)`)
)

// help runs `containerise ARGS --help` and returns what it printed.
func help(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	g := &Globals{In: strings.NewReader(""), Out: &out, Err: &out}
	root := NewRoot("test", g)
	root.SetArgs(append(args, "--help"))
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Each command's help can be read at the prompt: a few sentences and a link
// to its guide, examples, and every flag once, in a named section.
func TestEveryCommandsHelpIsShortAndSectioned(t *testing.T) {
	g := &Globals{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	root := NewRoot("test", g)
	for _, c := range root.Commands() {
		text := help(t, c.Name())
		intro, _, found := strings.Cut(text, "\nUsage:")
		if !found {
			t.Errorf("%s --help has no Usage:\n%s", c.Name(), text)
			continue
		}
		prose, _, _ := strings.Cut(c.Long, "\n\n")
		if n := strings.Count(prose, ". ") + strings.Count(prose, ".\n") + 1; n > 4 || strings.Count(prose, "\n") > 6 {
			t.Errorf("%s --help opens with %d sentences on %d lines, want at most 3 or 4 on 6:\n%s", c.Name(), n, strings.Count(prose, "\n")+1, prose)
		}
		if !strings.Contains(intro, "Guide: "+guides) || !strings.Contains(text, "\nExamples:\n") {
			t.Errorf("%s --help lacks its guide or examples:\n%s", c.Name(), text)
		}
		checkGuide(t, c.Name(), c.Long)
		if c.Annotations[sectioned] == "" {
			t.Errorf("%s shows its flags in one list", c.Name())
		}
		// The sections, as printed: from the first title after the
		// examples to the global flags.
		seen := map[string]int{}
		_, usage, _ := strings.Cut(text, "\nUsage:")
		_, afterExamples, _ := strings.Cut(usage, "\nExamples:\n")
		sections := 0
		inFlags := false
		for _, line := range strings.Split(afterExamples, "\n") {
			switch {
			case line == "Global Flags:":
				inFlags = false
			case sectionTitle.MatchString(line):
				inFlags = true
				sections++
				if line == "Other flags:" {
					t.Errorf("%s --help has flags in no section: add them to flagSections", c.Name())
				}
			case inFlags:
				if m := flagLine.FindStringSubmatch(line); m != nil {
					seen[m[1]]++
				}
			}
		}
		if sections < 2 {
			t.Errorf("%s --help shows %d flag sections", c.Name(), sections)
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if seen[f.Name] != 1 {
				t.Errorf("%s --help shows --%s %d times", c.Name(), f.Name, seen[f.Name])
			}
		})
	}
}

// checkGuide: the guide a help names is a page of docs/.
func checkGuide(t *testing.T, name, long string) {
	t.Helper()
	_, page, found := strings.Cut(long, "Guide: "+guides)
	if !found {
		return
	}
	page = strings.TrimSpace(page)
	if info, err := os.Stat("../../docs/" + page); err != nil || info.IsDir() {
		t.Errorf("%s --help names the guide docs/%s, which is not a page of the repository", name, page)
	}
}

// The root help lists every command and ends with the whole flow.
func TestRootHelpListsEveryCommandAndEndsWithTheFlow(t *testing.T) {
	text := help(t)
	g := &Globals{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	checkGuide(t, "containerise", NewRoot("test", g).Long)
	for _, c := range []string{"setup", "policies", "teardown", "circleci-config", "ci-config", "push", "scan", "completion", "help"} {
		if !strings.Contains(text, "\n  "+c+" ") {
			t.Errorf("the root help does not list %s:\n%s", c, text)
		}
	}
	_, flow, found := strings.Cut(text, "The whole flow, start to end:\n")
	if !found {
		t.Fatalf("the root help has no flow:\n%s", text)
	}
	at := -1
	for _, step := range []string{"containerise setup ", "containerise circleci-config ", "containerise push ", "containerise scan ", "containerise teardown "} {
		i := strings.Index(flow, step)
		if i <= at {
			t.Errorf("the flow lacks %q after the step before:\n%s", step, flow)
		}
		at = i
	}
	if !strings.HasSuffix(strings.TrimSpace(text), "containerise teardown --yes") {
		t.Errorf("the root help does not end with the flow:\n%s", text)
	}
}

// A tag in a form that does not work is refused with the form that does.
func TestTagAndGateErrorsNameTheFormThatWorks(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"circleci-config", "--tag", "$CIRCLE_SHA1"}, "--tag '${CIRCLE_SHA1}'"},
		{[]string{"circleci-config", "--tag", "${CIRCLE_SHA1"}, "--tag '${CIRCLE_SHA1}'"},
		{[]string{"circleci-config", "--tag", "${HOME}"}, "--tag '${CIRCLE_SHA1}'"},
		{[]string{"circleci-config", "--tag", "${CIRCLE_SHA1}!"}, "--tag 'v1-${CIRCLE_SHA1}'"},
		{[]string{"ci-config", "--ci", "github", "--tag", "$GITHUB_SHA"}, "--tag '${GITHUB_SHA}'"},
		{[]string{"ci-config", "--ci", "gitlab", "--tag", "${GITHUB_SHA}"}, "--tag '${CI_COMMIT_SHA}'"},
		{[]string{"ci-config", "--ci", "circleci", "--tag", "$CIRCLE_SHA1"}, "--tag '${CIRCLE_SHA1}'"},
		{[]string{"push", "--scan"}, "containerise push --scan --fail-on HIGH"},
		{[]string{"push", "--only-fixable"}, "containerise push --scan --fail-on HIGH --only-fixable"},
	} {
		out, errOut, code := runCLI(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 naming %s", tc.args, code, errOut, tc.want)
		}
	}
	// push gets tags as the job's shell expands them.
	_, _, err := runPushCmd(t, blogEnv(), "--tag", "${CIRCLE_SHA1}")
	if err == nil || !strings.Contains(err.Error(), `--tag "$CIRCLE_SHA1" (double quotes`) {
		t.Errorf("push --tag '${CIRCLE_SHA1}': %v", err)
	}
}
