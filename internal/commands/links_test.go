package commands

import (
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

var (
	mdLink  = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6} (.+)$`)
	// What GitHub drops from a heading when it makes its anchor.
	notInAnchor = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// TestDocLinksResolve: every link from the README, and between the pages
// of docs/, names a file of the repository, and a #fragment names a heading
// of that page, so the front door leads somewhere.
func TestDocLinksResolve(t *testing.T) {
	links := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile("../../" + page)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range outsideFences(string(text)) {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				file, fragment, _ := strings.Cut(target, "#")
				resolved := page
				if file != "" {
					resolved = path.Clean(path.Join(path.Dir(page), file))
				}
				if resolved == ".." || strings.HasPrefix(resolved, "../") || path.IsAbs(file) {
					t.Errorf("%s line %d: %s leads out of the repository", page, i+1, target)
					continue
				}
				info, err := os.Stat("../../" + resolved)
				if err != nil {
					t.Errorf("%s line %d: %s: no such file in the repository (%s)", page, i+1, target, resolved)
					continue
				}
				if info.IsDir() {
					t.Errorf("%s line %d: %s is a folder: link to a file in it", page, i+1, target)
					continue
				}
				if fragment != "" && !hasAnchor(t, resolved, fragment) {
					t.Errorf("%s line %d: %s: %s has no heading #%s", page, i+1, target, resolved, fragment)
				}
			}
		}
	}
	if links < 30 {
		t.Errorf("only %d links found; the parser has lost track of them", links)
	}
}

// outsideFences is text's lines, with those inside ``` fences blanked.
func outsideFences(text string) []string {
	lines := strings.Split(text, "\n")
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			lines[i] = ""
		} else if fenced {
			lines[i] = ""
		}
	}
	return lines
}

// hasAnchor says whether the page has a heading whose GitHub anchor is
// fragment: lower case, punctuation dropped, spaces as '-'.
func hasAnchor(t *testing.T, page, fragment string) bool {
	t.Helper()
	text, err := os.ReadFile("../../" + page)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range outsideFences(string(text)) {
		if m := heading.FindStringSubmatch(line); m != nil {
			a := strings.ReplaceAll(notInAnchor.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), ""), " ", "-")
			if a == fragment {
				return true
			}
		}
	}
	return false
}
