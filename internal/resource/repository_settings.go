package resource

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/policies"
)

// Settings are the repository settings setup is asked to hold. A setting
// not asked for (a nil field, an empty KMSKey) is left as it is.
type Settings struct {
	// ScanOnPush turns ECR's basic scanning on push on or off.
	ScanOnPush *bool
	// ImmutableTags makes tags immutable (or mutable again); MutableTags
	// are ECR's exclusion filters (wildcard patterns such as "latest" or
	// "dev-*") for tags that stay mutable in an immutable repository.
	ImmutableTags *bool
	MutableTags   []string
	// CacheTag is the tag push keeps its registry cache under and rewrites
	// on every push. With immutable tags it joins the exclusion filters, so
	// the cache stays writable; empty exempts nothing more.
	CacheTag string
	// KeepImages and ExpireUntaggedDays are setup's lifecycle rules; 0
	// removes the rule, and the policy once no rule of setup's is left.
	KeepImages         *int
	ExpireUntaggedDays *int
	// ArchiveAfterDays is setup's rule moving images not pulled for that
	// many days to ECR's archive storage class; 0 removes it.
	ArchiveAfterDays *int
	// KMSKey is the KMS key (ARN, alias ARN or alias/NAME) to encrypt the
	// repository with. ECR sets encryption only at creation.
	KMSKey string
}

// Any reports whether any setting is asked for.
func (s Settings) Any() bool {
	return s.ScanOnPush != nil || s.ImmutableTags != nil || s.lifecycleAsked() || s.KMSKey != ""
}

// exempt are the exclusion filters asked for: the mutable tag patterns,
// then the cache tag unless a pattern covers it already.
func (s Settings) exempt() []string {
	if s.ImmutableTags == nil || !*s.ImmutableTags || s.CacheTag == "" ||
		slices.ContainsFunc(s.MutableTags, func(p string) bool { return covers(p, s.CacheTag) }) {
		return s.MutableTags
	}
	return append(slices.Clip(s.MutableTags), s.CacheTag)
}

// covers reports whether an exclusion filter matches tag. Filters hold
// only tag characters and '*' (validate.TagFilter), and tags no '/', so
// path.Match reads them as ECR does.
func covers(filter, tag string) bool {
	ok, err := path.Match(filter, tag)
	return err == nil && ok
}

func (s Settings) lifecycleAsked() bool {
	return s.KeepImages != nil || s.ExpireUntaggedDays != nil || s.ArchiveAfterDays != nil
}

// SettingsState is what a repository's settings are, or will be once the
// run is done. Lifecycle is nil when setup did not read the policy (no
// lifecycle setting was asked for) or the policy is not setup's.
type SettingsState struct {
	ScanOnPush       bool
	TagMutability    ecrtypes.ImageTagMutability
	MutableTags      []string
	Lifecycle        *policies.Retention
	LifecycleForeign bool // the repository's lifecycle policy has rules setup did not write
	Encryption       ecrtypes.EncryptionType
	KMSKey           string
}

// RepositorySettings are the settings of the repository setup manages:
// scanning on push, tag mutability, setup's lifecycle rules and the
// encryption key. They are created with the repository, compared on every
// run and corrected when they drift, one write per changed setting; a
// different encryption key cannot be corrected in place and fails the
// settings with what to do instead.
//
// Reads: the repository's own description (DescribeRepositories, read by
// the repository) holds scanning, mutability and encryption, so they cost
// nothing; the lifecycle policy is read (ecr:GetLifecyclePolicy) and the
// KMS key resolved (kms:DescribeKey) only when asked for, alongside the
// other first reads, so a rerun takes no extra round.
type RepositorySettings struct {
	Repo *Repository
	Want Settings

	report Report
	mu     sync.Mutex // guards report.Status while independent writes run

	// Observed.
	lifecycle string // the lifecycle policy's text; "" when there is none
	keyARN    string // the key Want.KMSKey names, as ECR reports it
	keyID     string
}

// NewRepositorySettings are the settings of repo; they join its creation.
func NewRepositorySettings(repo *Repository, want Settings) *RepositorySettings {
	s := &RepositorySettings{Repo: repo, Want: want, report: Report{Kind: KindSettings, Name: repo.Name, Region: repo.Region}}
	repo.settings = s
	return s
}

// Reports is the settings' one report.
func (s *RepositorySettings) Reports() []*Report { return []*Report{&s.report} }

func (s *RepositorySettings) fail(doing, call string, err error) error {
	return fail(KindSettings, s.Repo.Name, doing, call, err)
}

// Observe reads what the repository's description does not hold: the
// lifecycle policy, and the KMS key asked for. Teardown reads nothing: the
// settings go with the repository.
func (s *RepositorySettings) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	if purpose != ForSetup {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.Want.lifecycleAsked() {
		g.Go(func() error {
			out, err := env.ECR.GetLifecyclePolicy(gctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(s.Repo.Name)})
			if awsx.IsNotFound(err) { // no policy, or no repository yet
				return nil
			}
			if err != nil {
				return s.fail("reading the lifecycle policy of ECR repository "+s.Repo.Name, "ecr:GetLifecyclePolicy", err)
			}
			s.lifecycle = aws.ToString(out.LifecyclePolicyText)
			return nil
		})
	}
	if s.Want.KMSKey != "" {
		g.Go(func() error { return s.resolveKey(gctx, env) })
	}
	return g.Wait()
}

// resolveKey finds the key Want.KMSKey names, so that an alias can be
// compared with the key ARN ECR reports, and a key that does not exist
// stops setup before it creates anything.
func (s *RepositorySettings) resolveKey(ctx context.Context, env *Env) error {
	key := s.Want.KMSKey
	if env.KMS == nil {
		return s.fail("looking up KMS key "+key, "kms:DescribeKey", fmt.Errorf("no KMS client"))
	}
	out, err := env.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if awsx.ErrorCode(err) == "NotFoundException" {
		e := &Error{Kind: KindSettings, Name: s.Repo.Name, Doing: "looking up KMS key " + key, Call: "kms:DescribeKey", Err: err,
			Hint: fmt.Sprintf("no such key or alias in region %s: check it with `aws kms list-aliases`; the key must be in the repository's region", env.Region)}
		return e
	}
	if err != nil {
		return s.fail("looking up KMS key "+key, "kms:DescribeKey", err)
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.Arn) == "" {
		return s.fail("looking up KMS key "+key, "kms:DescribeKey", fmt.Errorf("KMS returned no key"))
	}
	s.keyARN, s.keyID = aws.ToString(out.KeyMetadata.Arn), aws.ToString(out.KeyMetadata.KeyId)
	return nil
}

// apply adds the settings asked for to the repository's creation; the
// lifecycle policy follows it (ECR takes none at creation).
func (s *RepositorySettings) apply(in *ecr.CreateRepositoryInput) {
	w := s.Want
	if w.ScanOnPush != nil {
		in.ImageScanningConfiguration = &ecrtypes.ImageScanningConfiguration{ScanOnPush: *w.ScanOnPush}
	}
	if w.ImmutableTags != nil {
		in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters = mutability(*w.ImmutableTags, w.exempt())
	}
	if w.KMSKey != "" {
		in.EncryptionConfiguration = &ecrtypes.EncryptionConfiguration{EncryptionType: ecrtypes.EncryptionTypeKms, KmsKey: aws.String(s.keyARN)}
	}
}

// mutability is ECR's setting for immutable (or not) tags, except those
// matching the filters.
func mutability(immutable bool, except []string) (ecrtypes.ImageTagMutability, []ecrtypes.ImageTagMutabilityExclusionFilter) {
	if !immutable {
		return ecrtypes.ImageTagMutabilityMutable, nil
	}
	if len(except) == 0 {
		return ecrtypes.ImageTagMutabilityImmutable, nil
	}
	var filters []ecrtypes.ImageTagMutabilityExclusionFilter
	for _, f := range except {
		filters = append(filters, ecrtypes.ImageTagMutabilityExclusionFilter{Filter: aws.String(f), FilterType: ecrtypes.ImageTagMutabilityExclusionFilterTypeWildcard})
	}
	return ecrtypes.ImageTagMutabilityImmutableWithExclusion, filters
}

func filterValues(filters []ecrtypes.ImageTagMutabilityExclusionFilter) []string {
	var out []string
	for _, f := range filters {
		out = append(out, aws.ToString(f.Filter))
	}
	sort.Strings(out)
	return out
}

// describeMutability words a mutability setting: "immutable except
// buildcache (push's cache), latest"; the filter that is the cache tag says so.
func describeMutability(m ecrtypes.ImageTagMutability, except []string, cacheTag string) string {
	word := "mutable"
	if m == ecrtypes.ImageTagMutabilityImmutable || m == ecrtypes.ImageTagMutabilityImmutableWithExclusion {
		word = "immutable"
	}
	if len(except) > 0 {
		named := make([]string, len(except))
		for i, f := range except {
			named[i] = f
			if cacheTag != "" && covers(f, cacheTag) {
				named[i] += " (push's cache)"
			}
		}
		word += " except " + strings.Join(named, ", ")
	}
	return word
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// change is one setting that differs from what is wanted: how to say it,
// and the step that corrects it. Without do it is only said: setup leaves
// that setting alone.
type change struct {
	text   string
	action string
	call   string
	do     func(ctx context.Context, env *Env) error
}

// Reconcile compares the repository's settings with those asked for. A new
// repository is created with them (the lifecycle policy follows); an
// existing managed one gets one write per setting that drifted; an
// unmanaged one is left as it is, with a warning saying what differs.
func (s *RepositorySettings) Reconcile(p *Plan) {
	rep, repo := &s.report, s.Repo
	rep.ARN, rep.Managed, rep.Status = repo.ARN(), true, Unchanged
	if !repo.exists {
		s.reconcileNew(p)
		return
	}
	var warnings []string
	changes, state := s.compare(repo.described, func(w string) { warnings = append(warnings, w) })
	rep.Settings = state
	var texts []string
	writes := 0
	for _, c := range changes {
		texts = append(texts, c.text)
		if c.do != nil {
			writes++
		}
	}
	if !repo.managed {
		rep.Status, rep.Managed, rep.Changes = Unmanaged, false, texts
		if len(texts) > 0 {
			p.Warn(fmt.Sprintf("repository %s is not managed by containerise and its settings differ from those asked for (%s); left as is",
				repo.Name, strings.Join(texts, "; ")))
		}
		return
	}
	for _, w := range warnings {
		p.Warn(w)
	}
	rep.Changes = texts
	if writes == 0 {
		return
	}
	rep.Status = WouldUpdate
	for _, c := range changes {
		if c.do == nil {
			continue
		}
		p.Add(rep, &Step{Action: c.action, Call: c.call, Do: func(ctx context.Context) error {
			if err := c.do(ctx, p.Env); err != nil {
				return err
			}
			s.mu.Lock()
			if rep.Status == WouldUpdate {
				rep.Status = Updated
			}
			s.mu.Unlock()
			return nil
		}})
	}
}

// reconcileNew plans the settings of a repository setup creates: they go
// into CreateRepository, then the lifecycle policy is put.
func (s *RepositorySettings) reconcileNew(p *Plan) {
	rep, repo, w := &s.report, s.Repo, s.Want
	rep.Status = WouldCreate
	state := &SettingsState{TagMutability: ecrtypes.ImageTagMutabilityMutable, Encryption: ecrtypes.EncryptionTypeAes256}
	if w.ScanOnPush != nil {
		state.ScanOnPush = *w.ScanOnPush
		rep.Changes = append(rep.Changes, "scan on push: "+onOff(*w.ScanOnPush))
	}
	if w.ImmutableTags != nil {
		m, f := mutability(*w.ImmutableTags, w.exempt())
		state.TagMutability, state.MutableTags = m, filterValues(f)
		rep.Changes = append(rep.Changes, "tags: "+describeMutability(m, state.MutableTags, w.CacheTag))
	}
	retention := s.wantedRetention(policies.Retention{})
	doc, hasPolicy := policies.LifecyclePolicy(retention)
	if s.Want.lifecycleAsked() {
		state.Lifecycle = &retention
	}
	if hasPolicy {
		rep.Changes = append(rep.Changes, "lifecycle: "+retention.Describe())
	}
	if w.KMSKey != "" {
		state.Encryption, state.KMSKey = ecrtypes.EncryptionTypeKms, s.keyARN
		rep.Changes = append(rep.Changes, "encryption: KMS key "+s.keyARN)
	}
	rep.Settings = state

	action, call := "record the settings of new repository "+repo.Name, ""
	if hasPolicy {
		action, call = "put the lifecycle policy of repository "+repo.Name, "ecr:PutLifecyclePolicy"
	}
	var needs []*Step
	if repo.created != nil {
		needs = append(needs, repo.created)
	}
	p.Add(rep, &Step{Action: action, Call: call, Needs: needs,
		Do: func(ctx context.Context) error {
			switch repo.report.Status {
			case Created:
			case Unmanaged:
				// Made by hand meanwhile: used as it is, like the repository.
				rep.Status, rep.Managed, rep.Changes, rep.Settings = Unmanaged, false, nil, nil
				return nil
			default:
				// Another setup created it meanwhile, perhaps with other
				// settings: the next run compares them.
				rep.Status, rep.Changes, rep.Settings = Exists, nil, nil
				p.Note(Note{Text: fmt.Sprintf("repository %s was created meanwhile by another setup; its settings were not compared: rerun setup to check them", repo.Name)})
				return nil
			}
			if hasPolicy {
				if err := s.putLifecycle(ctx, p.Env, doc); err != nil {
					return err
				}
			}
			rep.Status = Created
			return nil
		},
		Skipped: func(ctx context.Context, _ *Step) error {
			rep.Status, rep.Changes = Skipped, []string{"not set: the repository could not be created (see its error)"}
			return ctx.Err()
		}})
}

// wantedRetention is the retention asked for: the current one with the
// rules asked for replaced.
func (s *RepositorySettings) wantedRetention(current policies.Retention) policies.Retention {
	r := current
	if s.Want.KeepImages != nil {
		r.KeepImages = *s.Want.KeepImages
	}
	if s.Want.ExpireUntaggedDays != nil {
		r.ExpireUntaggedDays = *s.Want.ExpireUntaggedDays
	}
	if s.Want.ArchiveAfterDays != nil {
		r.ArchiveAfterDays = *s.Want.ArchiveAfterDays
	}
	return r
}

// compare lists the settings of an existing repository that differ from
// those asked for, with the writes that correct them, and the state the
// settings will be in once corrected.
func (s *RepositorySettings) compare(have *ecrtypes.Repository, warn func(string)) ([]change, *SettingsState) {
	if have == nil {
		have = &ecrtypes.Repository{}
	}
	name, w := s.Repo.Name, s.Want
	state := &SettingsState{TagMutability: have.ImageTagMutability, MutableTags: filterValues(have.ImageTagMutabilityExclusionFilters),
		Encryption: ecrtypes.EncryptionTypeAes256}
	if state.TagMutability == "" {
		state.TagMutability = ecrtypes.ImageTagMutabilityMutable
	}
	if c := have.ImageScanningConfiguration; c != nil {
		state.ScanOnPush = c.ScanOnPush
	}
	if e := have.EncryptionConfiguration; e != nil {
		state.Encryption, state.KMSKey = e.EncryptionType, aws.ToString(e.KmsKey)
	}
	var changes []change

	if w.ScanOnPush != nil && state.ScanOnPush != *w.ScanOnPush {
		want := *w.ScanOnPush
		changes = append(changes, change{
			text:   fmt.Sprintf("scan on push: %s (was %s)", onOff(want), onOff(state.ScanOnPush)),
			action: "turn scan on push " + onOff(want) + " for repository " + name, call: "ecr:PutImageScanningConfiguration",
			do: func(ctx context.Context, env *Env) error {
				env.logf("turning scan on push %s for ECR repository %s", onOff(want), name)
				_, err := env.ECR.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{
					RepositoryName: aws.String(name), ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: want}})
				return s.fail("turning scan on push "+onOff(want)+" for ECR repository "+name, "ecr:PutImageScanningConfiguration", err)
			}})
		state.ScanOnPush = want
	}

	if w.ImmutableTags != nil {
		m, filters := mutability(*w.ImmutableTags, w.exempt())
		except := filterValues(filters)
		if m != state.TagMutability || !slices.Equal(except, state.MutableTags) {
			was, now := describeMutability(state.TagMutability, state.MutableTags, w.CacheTag), describeMutability(m, except, w.CacheTag)
			changes = append(changes, change{
				text:   fmt.Sprintf("tags: %s (was %s)", now, was),
				action: "make the tags of repository " + name + " " + now, call: "ecr:PutImageTagMutability",
				do: func(ctx context.Context, env *Env) error {
					env.logf("making the tags of ECR repository %s %s", name, now)
					_, err := env.ECR.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{
						RepositoryName: aws.String(name), ImageTagMutability: m, ImageTagMutabilityExclusionFilters: filters})
					return s.fail("making the tags of ECR repository "+name+" "+now, "ecr:PutImageTagMutability", err)
				}})
			state.TagMutability, state.MutableTags = m, except
		}
	}

	if w.lifecycleAsked() {
		changes = append(changes, s.compareLifecycle(state, warn)...)
	}

	if w.KMSKey != "" && !s.keyMatches(state) {
		have := string(state.Encryption)
		if state.KMSKey != "" {
			have += " with key " + state.KMSKey
		}
		text := fmt.Sprintf("encryption: %s, not KMS key %s; ECR sets a repository's encryption only when it creates it", have, w.KMSKey)
		warn(fmt.Sprintf("repository %s is encrypted with %s, not with KMS key %s, and ECR cannot change that in place: the other settings are corrected, the encryption is not",
			name, have, w.KMSKey))
		changes = append(changes, change{
			text:   text,
			action: "encrypt repository " + name + " with KMS key " + w.KMSKey + " (cannot be done in place)",
			do: func(context.Context, *Env) error {
				return &Error{Kind: KindSettings, Name: name, Doing: "encrypting ECR repository " + name + " with KMS key " + w.KMSKey,
					Err:  fmt.Errorf("the repository is encrypted with %s, and ECR sets encryption only when it creates a repository", have),
					Hint: "to use this key, set up a new repository with it, or tear this one down (its images go with it) and run setup again",
					Next: hint.RecreateRepository}
			}})
	}
	return changes, state
}

// keyMatches reports whether the repository is encrypted with the key
// asked for: ECR reports a key's ARN; moto, and ECR for some keys, what it
// was given.
func (s *RepositorySettings) keyMatches(state *SettingsState) bool {
	if state.Encryption != ecrtypes.EncryptionTypeKms {
		return false
	}
	switch state.KMSKey {
	case s.Want.KMSKey, s.keyARN, s.keyID:
		return state.KMSKey != ""
	}
	return false
}

// compareLifecycle compares setup's lifecycle rules with those asked for.
// A policy holding any rule setup did not write is left alone: it is
// someone else's.
func (s *RepositorySettings) compareLifecycle(state *SettingsState, warn func(string)) []change {
	name := s.Repo.Name
	current := policies.Retention{}
	if s.lifecycle != "" {
		r, ours := policies.SetupRetention(s.lifecycle)
		if !ours {
			state.LifecycleForeign = true
			warn(fmt.Sprintf("repository %s has a lifecycle policy with rules containerise did not write; left as is "+
				"(to have setup manage it instead, delete it with `aws ecr delete-lifecycle-policy --repository-name %s` and rerun setup)", name, name))
			return []change{{text: "lifecycle: the repository's own policy, with rules containerise did not write: left as is"}}
		}
		current = r
	}
	want := s.wantedRetention(current)
	state.Lifecycle = &want
	doc, hasPolicy := policies.LifecyclePolicy(want)
	switch {
	case !hasPolicy && s.lifecycle == "":
		return nil
	case !hasPolicy:
		return []change{{
			text:   "lifecycle: none (was " + current.Describe() + ")",
			action: "delete the lifecycle policy setup wrote on repository " + name, call: "ecr:DeleteLifecyclePolicy",
			do: func(ctx context.Context, env *Env) error {
				env.logf("deleting the lifecycle policy of ECR repository %s", name)
				_, err := env.ECR.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String(name)})
				if awsx.IsNotFound(err) {
					return nil // gone already
				}
				return s.fail("deleting the lifecycle policy of ECR repository "+name, "ecr:DeleteLifecyclePolicy", err)
			}}}
	}
	if s.lifecycle != "" {
		if same, _ := policies.LifecycleEquivalent(s.lifecycle, doc); same {
			return nil
		}
	}
	text := "lifecycle: " + want.Describe() + " (was " + current.Describe() + ")"
	if s.lifecycle == "" {
		text = "lifecycle: " + want.Describe() + " (was none)"
	} else if want == current {
		text = "lifecycle: " + want.Describe() + " (rules rewritten: they were edited)"
	}
	return []change{{
		text:   text,
		action: "put the lifecycle policy of repository " + name, call: "ecr:PutLifecyclePolicy",
		do: func(ctx context.Context, env *Env) error { return s.putLifecycle(ctx, env, doc) },
	}}
}

func (s *RepositorySettings) putLifecycle(ctx context.Context, env *Env, doc policies.Lifecycle) error {
	name := s.Repo.Name
	env.logf("putting the lifecycle policy of ECR repository %s", name)
	_, err := env.ECR.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(name), LifecyclePolicyText: aws.String(doc.JSON())})
	return s.fail("putting the lifecycle policy of ECR repository "+name, "ecr:PutLifecyclePolicy", err)
}

// Delete does nothing: the settings go with the repository.
func (s *RepositorySettings) Delete(*Plan) {}
