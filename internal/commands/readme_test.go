package commands

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var (
	headingCmd = regexp.MustCompile("^#+ containerise ([a-z][a-z-]*)")
	invocation = regexp.MustCompile("(?:^|[\\s`(])containerise ([a-z][a-z-]*)([^`|>;&]*)")
	flagToken  = regexp.MustCompile(`(?:^|[\s` + "`" + `(])(--[a-z][a-z0-9-]*)`)
)

// docPages are the pages written by hand: the README and docs/, less the
// generated command reference, relative to the repository root.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md"}
	err := filepath.WalkDir("../../docs", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		if d.IsDir() && filepath.ToSlash(rel) == "docs/commands" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			pages = append(pages, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// TestREADMEFlagsExist checks that every flag the README and docs/ show for
// a command exists on that command, so the documentation cannot drift from
// the binary.
func TestREADMEFlagsExist(t *testing.T) {
	checked := 0
	for _, page := range docPages(t) {
		checked += checkFlagsOf(t, page)
	}
	if checked < 100 {
		t.Errorf("only %d flags found in README.md and docs/; the parser has lost track of them", checked)
	}
}

// checkFlagsOf checks one page and returns how many flags it checked.
func checkFlagsOf(t *testing.T, page string) int {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("../..", page))
	if err != nil {
		t.Fatal(err)
	}
	g := &Globals{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	root := NewRoot("test", g)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag()
	root.InitDefaultHelpFlag()

	lookup := func(sub string) *cobra.Command {
		cmd, _, err := root.Find([]string{sub})
		if err != nil || cmd == root {
			return nil
		}
		return cmd
	}
	hasFlag := func(cmd *cobra.Command, flag string) bool {
		name := strings.TrimPrefix(flag, "--")
		return cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil ||
			root.PersistentFlags().Lookup(name) != nil
	}

	checked := 0
	section := ""
	for i, line := range strings.Split(string(readme), "\n") {
		if m := headingCmd.FindStringSubmatch(line); m != nil {
			section = m[1]
		} else if strings.HasPrefix(line, "#") {
			section = ""
		}
		// Flag tables and "Flags:" lines document the section's command.
		if section != "" && (strings.HasPrefix(line, "| `--") || strings.HasPrefix(line, "Flags:") || strings.HasPrefix(line, "`--")) {
			cmd := lookup(section)
			if cmd == nil {
				t.Errorf("%s line %d: heading names unknown command %q", page, i+1, section)
				continue
			}
			documented := line
			if strings.HasPrefix(line, "|") {
				// Only the first cell names the flag; descriptions may mention others.
				documented = strings.SplitN(line, "|", 3)[1]
			}
			for _, m := range flagToken.FindAllStringSubmatch(documented, -1) {
				checked++
				if !hasFlag(cmd, m[1]) {
					t.Errorf("%s line %d: %s is not a flag of containerise %s", page, i+1, m[1], section)
				}
			}
		}
		// Invocations anywhere: "containerise push --tag v1".
		for _, m := range invocation.FindAllStringSubmatch(line, -1) {
			flags := flagToken.FindAllStringSubmatch(m[2], -1)
			cmd := lookup(m[1])
			if cmd == nil {
				if len(flags) > 0 {
					t.Errorf("%s line %d: %q is not a containerise command", page, i+1, m[1])
				}
				continue
			}
			for _, f := range flags {
				checked++
				if !hasFlag(cmd, f[1]) {
					t.Errorf("%s line %d: %s is not a flag of containerise %s", page, i+1, f[1], m[1])
				}
			}
		}
	}
	return checked
}
