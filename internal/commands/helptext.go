package commands

import "github.com/spf13/cobra"

// guides is where the explanations behind each command's short help live.
const guides = "https://github.com/containerise/containerise/blob/main/docs/"

// guideLine closes a command's help: where it is explained (the page's
// name follows).
const guideLine = "\n\nGuide: " + guides

// Command groups of the root help, in the order of the flow.
var commandGroups = []struct {
	group    cobra.Group
	commands []string
}{
	{cobra.Group{ID: "admin", Title: "An admin, once (or to undo it):"}, []string{"setup", "policies", "teardown"}},
	{cobra.Group{ID: "config", Title: "Write the CI job:"}, []string{"circleci-config", "ci-config"}},
	{cobra.Group{ID: "ci", Title: "In the CI job:"}, []string{"push", "scan"}},
}

// groupCommands files root's commands under commandGroups; any other
// command (help, completion, one added later) is listed after them.
func groupCommands(root *cobra.Command) {
	for _, g := range commandGroups {
		root.AddGroup(&cobra.Group{ID: g.group.ID, Title: g.group.Title})
		for _, name := range g.commands {
			for _, c := range root.Commands() {
				if c.Name() == name {
					c.GroupID = g.group.ID
				}
			}
		}
	}
	root.SetHelpCommandGroupID("")
	root.SetCompletionCommandGroupID("")
	root.SetUsageTemplate(rootUsage)
}

// rootUsage is cobra's usage, with the example last: for the root, the
// whole flow, read after the list of commands.
const rootUsage = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Other commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}{{if .HasExample}}

{{if .HasAvailableSubCommands}}The whole flow, start to end:{{else}}Examples:{{end}}
{{.Example}}{{end}}
`

// rootExample is the whole flow, keyless on CircleCI.
const rootExample = `  # 1. An admin, once: the repository, a push-only policy, and a role that
  #    the jobs of one CircleCI project assume with their OIDC token
  containerise setup --auth oidc --circleci-org-id ORG_ID --circleci-project-id PROJECT_ID

  # 2. The job: installs a pinned, checksummed release, pushes, gates on the scan
  containerise circleci-config --auth oidc --circleci-org-id ORG_ID --fail-on HIGH > .circleci/config.yml

  # 3. What the job runs (push --scan --fail-on HIGH does both in one step)
  containerise push --auth oidc --tag "$CIRCLE_SHA1"
  containerise scan --tag "$CIRCLE_SHA1" --fail-on HIGH

  # 4. When done: remove what setup made, and only that
  containerise teardown --yes`
