package commands

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/resource"
)

// flagGroup is a titled section of a command's flags in its help.
type flagGroup struct {
	title string
	flags []string
}

// flagSection is a section every command may show, and the flags that fall
// into it by name: a listed name, or a name with one of the prefixes.
type flagSection struct {
	title    string
	names    []string
	prefixes []string
}

// flagSections is the one mapping from flag names to help sections, for
// every command, in the order sections are shown. A command may place its
// own flags first with groupFlags; any flag it does not place (a flag added
// later included) falls into the first section here that claims its name,
// and only a flag none claims goes under "Other flags".
var flagSections = []flagSection{
	{title: "What it acts on", names: []string{"repository", "tag", "account", "document", "policy", "user", "role"}},
	{title: "How CI assumes the role", names: []string{"auth", "role-arn", "any-project", "branch", "ci"},
		prefixes: []string{"circleci-", "github-", "gitlab-", "bitbucket-", "buildkite-"}},
	{title: "What the role may do", names: []string{"permissions", "registry-cache"}, prefixes: []string{"allow-"}},
	{title: "Repository settings (not given: left as they are)",
		names:    []string{"scan-on-push", "immutable-tags", "mutable-tag", "keep-images", "expire-untagged-days", "kms-key", "scanning", "scan-frequency", "archive-after-days", "signing-profile"},
		prefixes: []string{"scan-filter", "lifecycle-", "signing-"}},
	{title: "The build", names: []string{"context", "file", "build-arg", "target", "label", "builder", "secret", "ssh", "cache-from", "no-cache", "network", "platform"}},
	{title: "BuildKit daemon (--builder remote or container)", names: []string{"cache-tag"}, prefixes: []string{"buildkit-"}},
	{title: "The job's install step", names: []string{"install-version", "release-url", "image"}},
	{title: "Scan gate", names: []string{"scan", "fail-on", "scan-wait", "only-fixable", "ignore", "ignore-file", "junit", "require-signature"}},
	{title: "Where the variables go", names: []string{"env-file", "create-context", "circleci-project", "circleci-context", "circleci-org", "circleci-context-id", "circleci-host"},
		prefixes: []string{"restrict"}},
	{title: "Output and confirmation", names: []string{"output", "dry-run", "yes", "rotate-key", "include-unmanaged", "wait"}, prefixes: []string{"rotat"}},
}

// sectionOf is the title of the section of flagSections that claims name,
// or "" when none does: a section naming it, else the first whose prefix it
// has.
func sectionOf(name string) string {
	for _, s := range flagSections {
		for _, n := range s.names {
			if n == name {
				return s.title
			}
		}
	}
	for _, s := range flagSections {
		for _, p := range s.prefixes {
			if strings.HasPrefix(name, p) {
				return s.title
			}
		}
	}
	return ""
}

// groupFlags shows the command's flags in titled sections: first the
// groups given, in their order, then flagSections for the flags those do
// not place, then "Other flags". Commands with many flags read better so:
// what they set, grouped by what it is about.
func groupFlags(cmd *cobra.Command, groups ...flagGroup) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[sectioned] = "yes"
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		var b strings.Builder
		b.WriteString("Usage:\n  " + c.UseLine() + "\n")
		if c.HasExample() {
			b.WriteString("\nExamples:\n" + c.Example + "\n")
		}
		for _, s := range flagSectionsOf(c, groups) {
			b.WriteString("\n" + s.title + ":\n" + s.set.FlagUsages())
		}
		if c.HasAvailableInheritedFlags() {
			b.WriteString("\nGlobal Flags:\n" + c.InheritedFlags().FlagUsages())
		}
		_, err := c.OutOrStderr().Write([]byte(b.String()))
		return err
	})
}

// sectioned marks a command whose usage shows its flags in sections.
const sectioned = "containerise/flag-sections"

type shownSection struct {
	title string
	set   *pflag.FlagSet
}

// flagSectionsOf sorts c's local flags into sections, dropping empty ones.
func flagSectionsOf(c *cobra.Command, groups []flagGroup) []shownSection {
	var order []string
	sets := map[string]*pflag.FlagSet{}
	add := func(title string, f *pflag.Flag) {
		set, ok := sets[title]
		if !ok {
			set = pflag.NewFlagSet(title, pflag.ContinueOnError)
			set.SortFlags = false
			sets[title] = set
			order = append(order, title)
		}
		set.AddFlag(f)
	}
	// --help closes the last section, whichever it is.
	placed := map[string]bool{"help": true}
	for _, g := range groups {
		for _, name := range g.flags {
			if f := c.LocalFlags().Lookup(name); f != nil && !placed[name] {
				add(g.title, f)
				placed[name] = true
			}
		}
	}
	var rest []*pflag.Flag
	for _, s := range flagSections {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !placed[f.Name] && sectionOf(f.Name) == s.title {
				add(s.title, f)
				placed[f.Name] = true
			}
		})
	}
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if !placed[f.Name] {
			rest = append(rest, f)
		}
	})
	for _, f := range rest {
		add("Other flags", f)
	}
	if f := c.LocalFlags().Lookup("help"); f != nil {
		last := "Other flags"
		if len(order) > 0 {
			last = order[len(order)-1]
		}
		add(last, f)
	}
	out := make([]shownSection, 0, len(order))
	for _, t := range order {
		out = append(out, shownSection{t, sets[t]})
	}
	return out
}

// sectionAll gives every subcommand of root that has not placed its flags
// itself the sections of flagSections.
func sectionAll(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Annotations[sectioned] == "" {
			groupFlags(c)
		}
	}
}

// flagLabels name a spec's values by the flags that set them.
var flagLabels = resource.Labels{
	Repository: "--repository", Policy: "--policy", User: "--user", Role: "--role", Region: "--region",
	MutableTag: "--mutable-tag", ImmutableTags: "--immutable-tags", KMSKey: "--kms-key", CacheTag: "--cache-tag",
	KeepImages: "--keep-images", ExpireUntaggedDays: "--expire-untagged-days",
	ArchiveAfterDays: "--archive-after-days", Scanning: "--scanning", ScanFrequency: "--scan-frequency",
	SigningProfile: "--signing-profile",
}
