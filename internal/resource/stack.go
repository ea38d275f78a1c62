package resource

import (
	"slices"
	"strings"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/policies"
)

// Spec is what setup makes and teardown removes, in one description:
// the commands turn their flags into it, Validate checks it once, and
// NewStack wires every kind from it.
type Spec struct {
	Repository, Policy, User, Role string
	// Repositories, when set, are every repository of the set, and
	// Repository is ignored: setup's are all in Region; teardown's are
	// where the policy's ARNs put them (no region: Region).
	Repositories []RepositoryAt
	// Region is the repository's region.
	Region string
	// Grants choose the policy's statements. Setup's grant of scan findings
	// follows Settings.ScanOnPush when it is given, and the repository's
	// own scanning when it is not (the policy's variant).
	Grants policies.PermissionOptions
	// Settings are the repository settings to hold; unset ones are left.
	Settings Settings
	// Scanning, when set, is the registry scanning rule that covers the
	// repository (registry_scanning.go).
	Scanning *Scanning
	// SigningProfile, when set, is the AWS Signer profile of the registry's
	// managed signing rule for the repository (signing.go).
	SigningProfile string
	// RotateKey makes a new access key beside the user's one.
	RotateKey bool
	// Trust are the CI jobs a keyless role trusts, one trust statement
	// each; none: the role trusts the user, whose keys CI holds.
	Trust []ci.Selector
	// CircleCI, when set, is where setup writes the variables itself.
	CircleCI *CircleCITarget
	// IncludeUnmanaged: teardown also deletes what lacks the managed-by tag.
	IncludeUnmanaged bool
}

// Labels name a spec's values in errors: the command layer's flags, or
// the values' meaning when a library caller validates.
type Labels struct {
	Repository, Policy, User, Role, Region string
	MutableTag, ImmutableTags, KMSKey      string
	CacheTag                               string
	KeepImages, ExpireUntaggedDays         string
	ArchiveAfterDays                       string
	Scanning, ScanFrequency                string
	SigningProfile                         string
}

// Meaning labels values by what they are, for callers without flags.
var Meaning = Labels{
	Repository: "the repository name", Policy: "the policy name", User: "the user name", Role: "the role name", Region: "the region",
	MutableTag: "a mutable tag pattern", ImmutableTags: "immutable tags", KMSKey: "the KMS key", CacheTag: "the cache tag",
	KeepImages: "the count of images to keep", ExpireUntaggedDays: "the days before untagged images expire",
	ArchiveAfterDays: "the days without a pull before images are archived",
	Scanning:         "the registry scan type", ScanFrequency: "the scan frequency",
	SigningProfile: "the signing profile",
}

// ValidateNames checks the names against their services' rules.
func (s Spec) ValidateNames(l Labels) error {
	var repos []error
	for _, r := range s.Repos() {
		repos = append(repos, validate.Repository(l.Repository, r.Name))
	}
	return validate.First(append(repos,
		validate.PolicyName(l.Policy, s.Policy),
		validate.UserName(l.User, s.User),
		validate.RoleName(l.Role, s.Role),
	)...)
}

// ValidateSettings checks the repository settings asked for.
func (s Spec) ValidateSettings(l Labels) error {
	st := s.Settings
	if len(st.MutableTags) > 0 && (st.ImmutableTags == nil || !*st.ImmutableTags) {
		return clierror.Usagef("%s needs %s: it names the tags that stay mutable in an immutable repository", l.MutableTag, l.ImmutableTags)
	}
	if len(st.MutableTags) > validate.MaxTagFilters {
		return clierror.Usagef("%s given %d times: ECR takes at most %d patterns", l.MutableTag, len(st.MutableTags), validate.MaxTagFilters)
	}
	for _, f := range st.MutableTags {
		if err := validate.TagFilter(l.MutableTag, f); err != nil {
			return err
		}
	}
	if st.CacheTag != "" {
		if err := validate.Tag(l.CacheTag, st.CacheTag); err != nil {
			return err
		}
	}
	if n := len(st.exempt()); n > validate.MaxTagFilters {
		return clierror.Usagef("%s given %d times, and the cache tag %s stays mutable too: ECR takes at most %d patterns: drop one, or let one cover the cache tag (build* covers buildcache)",
			l.MutableTag, len(st.MutableTags), st.CacheTag, validate.MaxTagFilters)
	}
	for _, n := range []struct {
		label string
		value *int
	}{{l.KeepImages, st.KeepImages}, {l.ExpireUntaggedDays, st.ExpireUntaggedDays}, {l.ArchiveAfterDays, st.ArchiveAfterDays}} {
		if n.value != nil && *n.value < 0 {
			return clierror.Usagef("%s %d is negative: give a positive number, or 0 to remove setup's rule", n.label, *n.value)
		}
	}
	if err := validate.First(s.validateScanning(l), s.validateSigning(l)); err != nil {
		return err
	}
	if st.KMSKey != "" {
		return validate.KMSKey(l.KMSKey, st.KMSKey, s.Region)
	}
	return nil
}

// Validate checks everything setup is given, before any call: the names,
// the region, the settings and, keyless, what the role trusts.
func (s Spec) Validate(l Labels) error {
	if err := validate.First(s.ValidateNames(l), validate.Region(l.Region, s.Region), s.ValidateSettings(l)); err != nil {
		return err
	}
	for _, r := range s.Repos() {
		if r.Region != s.Region {
			return clierror.Usagef("repository %s is not in %s: setup makes the repositories of the region it runs in", r, s.Region)
		}
	}
	if !s.Keyless() {
		return nil
	}
	if s.RotateKey {
		return clierror.Usagef("keyless setup has no access key to rotate")
	}
	for _, sel := range s.Trust {
		if err := sel.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Keyless reports whether CI assumes the role with its OIDC token.
func (s Spec) Keyless() bool { return len(s.Trust) > 0 }

// Stack is every resource of one setup or teardown with the edges between
// them, wired once from a Spec: who the role trusts, the policy's variants,
// the user retired once CI is keyless, what teardown detaches before it
// deletes, and the provider kept while a role uses it. Setup, teardown,
// their dry runs and the policies command all read from it.
type Stack struct {
	Spec    Spec
	Purpose Purpose

	Repositories []*Repository
	Settings     []*RepositorySettings // one per repository; none: no setting asked for
	// The registry's configurations are one per account and region, shared
	// by its repositories: one kind per region, covering the region's
	// repositories of the spec. Setup's: none when not asked for.
	Scanning   []*RegistryScanning
	Signing    []*Signing
	Policy     *Policy
	User       *User // the user CI's keys belong to; nil in a keyless setup
	Former     *Retired
	Federation *Federation     // the role's trustee in a keyless setup
	Found      *FoundProviders // the providers teardown finds through the role
	Role       *Role
	Variables  *CircleCIVariables // nil: no CircleCI target
	Leftovers  *CircleCILeftovers // teardown's CircleCI variables; nil: no target

	resources []Resource
}

// NewStack wires the resources of spec for purpose; api writes the
// variables when spec names a CircleCI target. It makes no call.
func NewStack(spec Spec, purpose Purpose, api CircleCIAPI) *Stack {
	st := &Stack{Spec: spec, Purpose: purpose}
	if purpose == ForTeardown {
		st.teardown(api)
	} else {
		st.setup(api)
	}
	return st
}

// setup: the repository, the policy (whose scan grant follows the
// repository), the role's trustee (the user, or the OIDC provider with the
// old user retired behind the role's new trust), the settings, the
// variables.
func (st *Stack) setup(api CircleCIAPI) {
	s := st.Spec
	st.repositories()
	grants, variant := st.grants()
	st.Policy = NewPolicy(s.Policy, st.repositoryNames(), st.permissions(grants))
	if variant != nil {
		st.Policy.Variant, st.Policy.UseVariant = st.permissions(*variant), st.anyScansOnPush
	}
	if s.Keyless() {
		st.Federation = Federate(s.Trust)
		st.Role = NewRole(s.Role, st.Federation, st.Policy)
		st.Former = Retire(NewUser(s.User, false), "CI assumes the role with its OIDC token")
		role := st.Role
		st.Former.Gate = func() ([]*Step, string) {
			if rep := role.Reports()[0]; !rep.Managed {
				return nil, "role " + s.Role + " is not managed by containerise, so setup did not switch its trust"
			}
			if step := role.TrustStep(); step != nil {
				return []*Step{step}, ""
			}
			return nil, ""
		}
		st.resources = append(st.repositoryResources(), st.Policy)
		for _, o := range st.Federation.Providers {
			st.resources = append(st.resources, o)
		}
		st.resources = append(st.resources, st.Role, st.Former)
	} else {
		st.User = NewUser(s.User, s.RotateKey)
		st.Role = NewRole(s.Role, st.User, st.Policy)
		st.resources = append(st.repositoryResources(), st.Policy, st.User, st.Role)
	}
	if s.Settings.Any() {
		for _, r := range st.Repositories {
			set := NewRepositorySettings(r, s.Settings)
			st.Settings = append(st.Settings, set)
			st.resources = append(st.resources, set)
		}
	}
	// Setup's repositories are all in its region (Validate): one
	// configuration each.
	if s.Scanning != nil {
		sc := NewRegistryScanning(s.Region, st.Repositories, s.Scanning)
		st.Scanning = append(st.Scanning, sc)
		st.resources = append(st.resources, sc)
	}
	if s.SigningProfile != "" {
		sg := NewSigning(s.Region, st.Repositories, s.SigningProfile)
		st.Signing = append(st.Signing, sg)
		st.resources = append(st.resources, sg)
	}
	if s.CircleCI != nil {
		st.Variables = NewCircleCIVariables(api, *s.CircleCI, s.Region, st.Role, st.User)
		st.resources = append(st.resources, st.Variables)
		if st.User != nil {
			st.User.NamedKey = st.Variables.NamedKey
		}
	}
}

// teardown: every kind setup may have made, found by name; the provider
// through the role; the policy detached by the role and user teardown
// deletes; the provider kept while a role that stays trusts it; and, with
// a CircleCI target, the variables there naming the key and the role.
func (st *Stack) teardown(api CircleCIAPI) {
	s := st.Spec
	st.repositories()
	st.Policy = NewPolicy(s.Policy, st.repositoryNames(), nil)
	st.User = NewUser(s.User, false)
	st.Role = NewRole(s.Role, st.User, st.Policy)
	st.Policy.Role, st.Policy.User = st.Role, st.User
	st.Found = &FoundProviders{Role: st.Role, Find: issuersOfRole}
	st.resources = st.repositoryResources()
	// The registry's rules decide after the repositories (they go only
	// with them), and the repositories are deleted after them: one
	// configuration per region among the repositories teardown deletes.
	for _, in := range st.repositoriesByRegion() {
		sc, sg := NewRegistryScanning(in.region, in.repos, nil), NewSigning(in.region, in.repos, "")
		st.Scanning, st.Signing = append(st.Scanning, sc), append(st.Signing, sg)
		st.resources = append(st.resources, sc, sg)
	}
	st.resources = append(st.resources, st.Policy, st.Found, st.Role, st.User)
	if s.CircleCI != nil {
		st.Leftovers = NewCircleCILeftovers(api, *s.CircleCI, st.Role, st.User)
		st.resources = append(st.resources, st.Leftovers)
	}
}

// Resources are the stack's resources, in the order their reports show.
func (st *Stack) Resources() []Resource { return st.resources }

// grants are the policy's grants and, when the scan grant follows the
// repository's own scanning, the variant for a repository that scans.
func (st *Stack) grants() (policies.PermissionOptions, *policies.PermissionOptions) {
	s := st.Spec
	grants := s.Grants
	grants.SigningProfile = s.SigningProfile
	if s.Scanning != nil {
		// The registry's rule scans the repository, whatever its own
		// (deprecated) setting; enhanced findings come from Inspector.
		grants.ScanFindings = true
		grants.EnhancedFindings = s.Scanning.Type == ecrtypes.ScanTypeEnhanced
		return grants, nil
	}
	if s.Settings.ScanOnPush != nil {
		grants.ScanFindings = *s.Settings.ScanOnPush
		return grants, nil
	}
	if grants.ScanFindings {
		return grants, nil
	}
	scanning := grants
	scanning.ScanFindings = true
	return grants, &scanning
}

func (st *Stack) permissions(grants policies.PermissionOptions) func(awsx.Identity) policies.Document {
	s := st.Spec
	return func(id awsx.Identity) policies.Document {
		var names []string
		for _, r := range s.Repos() {
			names = append(names, r.Name)
		}
		return policies.Permissions(policies.Target{Partition: id.Partition, Region: s.Region, AccountID: id.Account, Repositories: names}, grants)
	}
}

// Documents are the IAM documents setup writes in the account of id.
type Documents struct {
	// Permissions is the policy's document; ScanningPermissions, when not
	// nil, is the one setup writes instead while the repository scans on
	// push (no scan setting was asked for).
	Permissions, ScanningPermissions *policies.Document
	Trust                            policies.Document
}

// Documents are what setup writes in the account of id, from the same
// functions setup's resources use, without reading anything.
func (st *Stack) Documents(id awsx.Identity) Documents {
	s := st.Spec
	grants, variant := st.grants()
	perms := st.permissions(grants)(id)
	out := Documents{Permissions: &perms}
	if variant != nil {
		v := st.permissions(*variant)(id)
		out.ScanningPermissions = &v
	}
	if s.Keyless() {
		out.Trust = Federate(s.Trust).trust(func(o *OIDCProvider) string { return policies.OIDCProviderARN(id.Partition, id.Account, o.URL) })
	} else {
		out.Trust = policies.Trust(policies.UserARN(id.Partition, id.Account, s.User))
	}
	return out
}

// issuersOfRole finds the issuers a role trusts or trusted: those its tags
// name (CircleCI's organisation, the other CIs' issuers; setup leaves them
// when it switches the role back to keys or to other CIs), then every OIDC
// provider of the account its trust names.
func issuersOfRole(id awsx.Identity, tags map[string]string, trust policies.Document) []string {
	var out []string
	add := func(url string) {
		if !slices.Contains(out, url) {
			out = append(out, url)
		}
	}
	if org := tags[circleci.TagOrg]; org != "" {
		add(circleci.Issuer(org))
	}
	for _, url := range ci.TaggedIssuers(tags) {
		add(url)
	}
	prefix := policies.OIDCProviderARN(id.Partition, id.Account, "")
	for _, p := range trust.FederatedPrincipals() {
		if host, ok := strings.CutPrefix(p, prefix); ok && host != "" {
			add("https://" + host)
		}
	}
	return out
}

// validateScanning checks the registry scanning asked for: BASIC scans on
// push only; ENHANCED on push or continuously.
func (s Spec) validateScanning(l Labels) error {
	sc := s.Scanning
	if sc == nil {
		return nil
	}
	switch sc.Type {
	case ecrtypes.ScanTypeBasic, ecrtypes.ScanTypeEnhanced:
	default:
		return clierror.Usagef("%s %q is invalid: use basic or enhanced", l.Scanning, strings.ToLower(string(sc.Type)))
	}
	switch sc.Frequency {
	case ecrtypes.ScanFrequencyScanOnPush:
	case ecrtypes.ScanFrequencyContinuousScan:
		if sc.Type != ecrtypes.ScanTypeEnhanced {
			return clierror.Usagef("%s continuous needs %s enhanced: ECR's basic scanning scans on push only", l.ScanFrequency, l.Scanning)
		}
	default:
		return clierror.Usagef("%s %q is invalid: use on-push or continuous", l.ScanFrequency, sc.Frequency)
	}
	return nil
}
