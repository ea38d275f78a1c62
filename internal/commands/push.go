package commands

import "github.com/spf13/cobra"

// Placeholder: replaced by the push command.
func newPushCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "push", Short: "push (not yet built)", Args: noArgs}
}
