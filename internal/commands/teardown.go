package commands

import "github.com/spf13/cobra"

// Placeholder: replaced by the teardown command.
func newTeardownCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "teardown", Short: "teardown (not yet built)", Args: noArgs}
}
