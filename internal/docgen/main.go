// Command docgen writes the command reference (docs/commands) from the
// commands' own help: `make docs`.
package main

import (
	"fmt"
	"os"

	"github.com/containerise/containerise/internal/commands"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: docgen DIR (make docs writes docs/commands)")
		os.Exit(2)
	}
	if err := commands.WriteDocs(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}
