package commands

import "github.com/spf13/cobra"

// Placeholder: replaced by the setup command.
func newSetupCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "setup", Short: "setup (not yet built)", Args: noArgs}
}
