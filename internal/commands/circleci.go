package commands

import "github.com/spf13/cobra"

// Placeholder: replaced by the circleci-config command.
func newCircleCIConfigCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "circleci-config", Short: "circleci-config (not yet built)", Args: noArgs}
}
