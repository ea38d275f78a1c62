package commands

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/policies"
	"github.com/containerise/containerise/push"
)

// settingsFlags are setup's repository settings. A flag not given leaves
// its setting as it is; --scan-on-push lives with the grants (grants.go),
// since it also decides what the role may read.
type settingsFlags struct {
	immutableTags bool
	mutableTags   []string
	cacheTag      string
	keepImages    int
	expireDays    int
	kmsKey        string
}

func (s *settingsFlags) add(f *pflag.FlagSet) {
	f.BoolVar(&s.immutableTags, "immutable-tags", false,
		"make the repository's tags immutable: a pushed tag cannot be overwritten (--immutable-tags=false makes them mutable again; not given: left as it is)")
	f.StringArrayVar(&s.mutableTags, "mutable-tag", nil,
		"with --immutable-tags, a tag pattern that stays mutable, such as latest or dev-* ('*' matches any characters); repeatable, at most 5")
	f.StringVar(&s.cacheTag, "cache-tag", push.DefaultCacheTag,
		"with --immutable-tags, the tag of push's registry cache (as push --cache-tag names it), which stays mutable so that every push can rewrite the cache; \"\" exempts no cache tag")
	f.IntVar(&s.keepImages, "keep-images", 0,
		"a lifecycle rule keeping the N most recently pushed images and expiring the others (0 removes setup's rule; not given: left as it is)")
	f.IntVar(&s.expireDays, "expire-untagged-days", 0,
		"a lifecycle rule expiring untagged images D days after their push, such as the cache manifests each push supersedes (0 removes setup's rule; not given: left as it is)")
	f.StringVar(&s.kmsKey, "kms-key", "",
		"encrypt a new repository with this KMS key (key ARN, alias ARN or alias/NAME); ECR sets encryption only at creation")
}

// settings reads the settings asked for; those whose flag was not given
// stay unset, and setup leaves them as they are. Bad values are usage
// errors, before any call.
func (s *settingsFlags) settings(cmd *cobra.Command, grants grantFlags) (resource.Settings, error) {
	given := cmd.Flags().Changed
	var out resource.Settings
	if given("scan-on-push") {
		v := grants.scanOnPush
		out.ScanOnPush = &v
	}
	if given("immutable-tags") {
		v := s.immutableTags
		out.ImmutableTags = &v
	}
	seen := map[string]bool{}
	for _, p := range s.mutableTags {
		if !seen[p] {
			seen[p] = true
			out.MutableTags = append(out.MutableTags, p)
		}
	}
	if given("cache-tag") && (out.ImmutableTags == nil || !*out.ImmutableTags) {
		return resource.Settings{}, clierror.Usagef("--cache-tag needs --immutable-tags: it names push's cache tag, which stays mutable in an immutable repository")
	}
	out.CacheTag = s.cacheTag
	for _, n := range []struct {
		flag  string
		value int
		dest  **int
	}{{"keep-images", s.keepImages, &out.KeepImages}, {"expire-untagged-days", s.expireDays, &out.ExpireUntaggedDays}} {
		if !given(n.flag) {
			continue
		}
		v := n.value
		*n.dest = &v
	}
	if given("kms-key") {
		if s.kmsKey == "" {
			// Given, but empty: the spec would read it as not asked for.
			return resource.Settings{}, validate.KMSKey("--kms-key", s.kmsKey, "")
		}
		out.KMSKey = s.kmsKey
	}
	// The region is not known yet: the key's region is checked with it.
	if err := (resource.Spec{Settings: out}).ValidateSettings(flagLabels); err != nil {
		return resource.Settings{}, err
	}
	return out, nil
}

// settingsJSON is a repository's settings in setup's --output json, as
// they are once the run is done (or would be, in a dry run).
type settingsJSON struct {
	ScanOnPush    bool     `json:"scan_on_push"`
	TagMutability string   `json:"tag_mutability"`
	MutableTags   []string `json:"mutable_tags"`
	// Lifecycle is null when setup did not read it (no lifecycle flag).
	Lifecycle  *lifecycleJSON `json:"lifecycle"`
	Encryption string         `json:"encryption"`
	KMSKey     string         `json:"kms_key,omitempty"`
}

type lifecycleJSON struct {
	// Policy: "containerise" (setup's rules only), "none", or "other" (a
	// policy with rules setup did not write, left alone).
	Policy             string `json:"policy"`
	KeepImages         int    `json:"keep_images"`
	ExpireUntaggedDays int    `json:"expire_untagged_days"`
	ArchiveAfterDays   int    `json:"archive_after_days"`
}

func settingsDoc(s *resource.SettingsState) *settingsJSON {
	if s == nil {
		return nil
	}
	doc := &settingsJSON{ScanOnPush: s.ScanOnPush, TagMutability: string(s.TagMutability), MutableTags: append([]string{}, s.MutableTags...),
		Encryption: string(s.Encryption), KMSKey: s.KMSKey}
	switch {
	case s.LifecycleForeign:
		doc.Lifecycle = &lifecycleJSON{Policy: "other"}
	case s.Lifecycle != nil:
		doc.Lifecycle = &lifecycleJSON{Policy: "containerise", KeepImages: s.Lifecycle.KeepImages, ExpireUntaggedDays: s.Lifecycle.ExpireUntaggedDays,
			ArchiveAfterDays: s.Lifecycle.ArchiveAfterDays}
		if *s.Lifecycle == (policies.Retention{}) {
			doc.Lifecycle.Policy = "none"
		}
	}
	return doc
}

// settingsLine is the settings' status and changes in one line, for the
// dotenv format's stderr.
func settingsLine(r *resource.Report) string {
	line := statusText[r.Status]
	if len(r.Changes) > 0 {
		line += " (" + strings.Join(r.Changes, "; ") + ")"
	}
	return line
}
