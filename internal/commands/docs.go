package commands

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra/doc"
)

// WriteDocs writes the command reference, one Markdown page per command,
// into dir from the commands' own help, so that it cannot drift from
// --help. Pages of commands that no longer exist are removed.
func WriteDocs(dir string) error {
	old, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("removing the old page %s: %w", f, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	g := &Globals{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	root := NewRoot("", g)
	// No "Auto generated ... on <date>" line: the pages change only when
	// the help does.
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		return fmt.Errorf("writing the command reference into %s: %w", dir, err)
	}
	return nil
}
