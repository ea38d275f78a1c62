package commands

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCommandDocsAreCurrent fails when docs/commands no longer says what
// --help says: the pages are generated, never edited by hand.
func TestCommandDocsAreCurrent(t *testing.T) {
	const committed = "../../docs/commands"
	fresh := t.TempDir()
	if err := WriteDocs(fresh); err != nil {
		t.Fatal(err)
	}
	want := pages(t, fresh)
	got := pages(t, committed)
	for name, page := range want {
		if have, ok := got[name]; !ok {
			t.Errorf("docs/commands/%s is missing: run `make docs` and commit the result", name)
		} else if have != page {
			t.Errorf("docs/commands/%s is stale (the command's help changed): run `make docs` and commit the result", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/commands/%s documents no command: run `make docs` (it removes it) and commit the result", name)
		}
	}
}

func pages(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}
