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

// groupFlags shows the command's flags in titled sections, in the order
// given; a flag in no section goes under "Other flags". Commands with many
// flags read better so: what they set, grouped by what it is about.
func groupFlags(cmd *cobra.Command, groups ...flagGroup) {
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		out := c.OutOrStderr()
		var b strings.Builder
		b.WriteString("Usage:\n  " + c.UseLine() + "\n")
		if c.HasExample() {
			b.WriteString("\nExamples:\n" + c.Example + "\n")
		}
		placed := map[string]bool{}
		for _, g := range groups {
			set := pflag.NewFlagSet(g.title, pflag.ContinueOnError)
			set.SortFlags = false
			for _, name := range g.flags {
				if f := c.LocalFlags().Lookup(name); f != nil {
					set.AddFlag(f)
					placed[name] = true
				}
			}
			if set.HasFlags() {
				b.WriteString("\n" + g.title + ":\n" + set.FlagUsages())
			}
		}
		rest := pflag.NewFlagSet("other", pflag.ContinueOnError)
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !placed[f.Name] {
				rest.AddFlag(f)
			}
		})
		if rest.HasFlags() {
			b.WriteString("\nOther flags:\n" + rest.FlagUsages())
		}
		if c.HasAvailableInheritedFlags() {
			b.WriteString("\nGlobal Flags:\n" + c.InheritedFlags().FlagUsages())
		}
		_, err := out.Write([]byte(b.String()))
		return err
	})
}

// flagLabels name a spec's values by the flags that set them.
var flagLabels = resource.Labels{
	Repository: "--repository", Policy: "--policy", User: "--user", Role: "--role", Region: "--region",
	MutableTag: "--mutable-tag", ImmutableTags: "--immutable-tags", KMSKey: "--kms-key", CacheTag: "--cache-tag",
	KeepImages: "--keep-images", ExpireUntaggedDays: "--expire-untagged-days",
	ArchiveAfterDays: "--archive-after-days", Scanning: "--scanning", ScanFrequency: "--scan-frequency",
	SigningProfile: "--signing-profile",
}
