package resource

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
)

// KindRegistryScanning is the registry scanning rule that covers the
// repository.
const KindRegistryScanning = "registry-scanning"

// Scanning is the registry scanning setup keeps for the repository: the
// registry's scan type (account-wide, in the region) and how often a
// rule covering the repository scans it.
type Scanning struct {
	Type      ecrtypes.ScanType      // BASIC or ENHANCED
	Frequency ecrtypes.ScanFrequency // SCAN_ON_PUSH, or CONTINUOUS_SCAN (enhanced only)
}

// maxScanningRules is how many rules ECR's registry scanning configuration
// holds.
const maxScanningRules = 2

// RegistryScanning is setup's rules in the registry scanning
// configuration of one region: for each of the region's repositories of
// the spec, a repository filter naming exactly the repository, in the
// rule of the frequency asked for. The configuration is one per account
// and region, shared by every repository, and its rules take no tags and
// no description; so there is one RegistryScanning per region (never one
// per repository: their writes would overwrite each other's), setup
// merges its filters into the rules there are and never drops another
// filter, and its own filter is recognised by its shape: one WILDCARD
// filter whose value is the repository's name, with no wildcard in it.
// Teardown removes that filter only when it deletes the repository too (a
// filter naming a repository that no longer exists scans nothing), and
// leaves the registry's scan type as it is.
//
// Changing the registry's scan type (basic to enhanced, or back) changes
// how every repository of the registry is scanned: that write asks for
// confirmation, and a run without it is refused before any change.
type RegistryScanning struct {
	// Region is the registry's; empty: the run's.
	Region string
	// Repos are the region's repositories of the spec.
	Repos []*Repository
	// Want is nil for teardown.
	Want *Scanning

	// report is the region's one: one write covers all its repositories.
	report Report

	// Observed.
	have ecrtypes.RegistryScanningConfiguration
	// denied: teardown may not read the configuration (an admin policy
	// from before registry scanning); it says so and goes on.
	denied bool
}

// NewRegistryScanning is the scanning rules of repos, all in region
// (empty: the run's); want is nil for teardown.
func NewRegistryScanning(region string, repos []*Repository, want *Scanning) *RegistryScanning {
	s := &RegistryScanning{Region: region, Repos: repos, Want: want}
	s.report = Report{Kind: KindRegistryScanning, Name: s.label(), Region: region}
	return s
}

// Reports is the region's one report, named after its repositories;
// teardown shows it only when the registry has a filter of setup's for
// one of them.
func (s *RegistryScanning) Reports() []*Report {
	if s.Want == nil {
		if _, found := s.without(s.have.Rules, "", s.names(nil)); len(found) == 0 {
			return nil
		}
	}
	return []*Report{&s.report}
}

// names are the names of the repositories keep admits (nil: all).
func (s *RegistryScanning) names(keep func(*Repository) bool) map[string]bool {
	m := map[string]bool{}
	for _, r := range s.Repos {
		if keep == nil || keep(r) {
			m[r.Name] = true
		}
	}
	return m
}

// label names the repositories in errors and messages.
func (s *RegistryScanning) label() string { return repositoryList(s.Repos) }

// Observe reads the registry scanning configuration; teardown reads it
// once the repositories are read, and only when one of them exists.
func (s *RegistryScanning) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	if purpose == ForTeardown {
		// Setup's filters go only with their repositories: without one,
		// there is nothing to look for.
		listed, err := anyListed(ctx, s.Repos)
		if err != nil || !listed {
			return err
		}
	}
	out, err := env.ecrIn(s.Region).GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
	if purpose == ForTeardown && awsx.IsAccessDenied(err) {
		s.denied = true
		return nil
	}
	if err != nil {
		return fail(KindRegistryScanning, s.label(), "reading the registry scanning configuration", "ecr:GetRegistryScanningConfiguration", err)
	}
	if c := out.ScanningConfiguration; c != nil {
		s.have = *c
	}
	if s.have.ScanType == "" {
		s.have.ScanType = ecrtypes.ScanTypeBasic
	}
	return nil
}

// Covers reports whether a scanning filter matches a repository name:
// ECR's WILDCARD filters match with '*' standing for any characters.
func Covers(filter, repository string) bool {
	parts := strings.Split(filter, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re, err := regexp.Compile("^" + strings.Join(parts, ".*") + "$")
	return err == nil && re.MatchString(repository)
}

// owner is the repository of names whose filter of setup's f is, "" when
// f is none of setup's.
func owner(f ecrtypes.ScanningRepositoryFilter, names map[string]bool) string {
	if name := aws.ToString(f.Filter); f.FilterType == ecrtypes.ScanningRepositoryFilterTypeWildcard && names[name] {
		return name
	}
	return ""
}

// without returns the rules with setup's filters for the repositories of
// names taken out of those whose frequency is not keep ("" takes them out
// of every rule); a rule left with no filter goes. removed counts the
// filters taken out, per repository.
func (s *RegistryScanning) without(rules []ecrtypes.RegistryScanningRule, keep ecrtypes.ScanFrequency, names map[string]bool) (out []ecrtypes.RegistryScanningRule, removed map[string]int) {
	removed = map[string]int{}
	for _, r := range rules {
		if r.ScanFrequency == keep && keep != "" {
			out = append(out, r)
			continue
		}
		var filters []ecrtypes.ScanningRepositoryFilter
		for _, f := range r.RepositoryFilters {
			if name := owner(f, names); name != "" {
				removed[name]++
				continue
			}
			filters = append(filters, f)
		}
		if len(filters) == 0 && len(r.RepositoryFilters) > 0 {
			continue
		}
		r.RepositoryFilters = filters
		out = append(out, r)
	}
	return out, removed
}

// wanted is the configuration with every repository covered at the wanted
// frequency: unchanged for one a rule of that frequency already covers
// (setup's filter or another's, such as "*"), else setup's filter added to
// that rule, or to a new rule when there is none. coverers name the filter
// that covers each repository; full is set when ECR's two rules are taken
// by other frequencies.
func (s *RegistryScanning) wanted() (rules []ecrtypes.RegistryScanningRule, coverers []string, full bool) {
	w := s.Want
	rules, _ = s.without(s.have.Rules, w.Frequency, s.names(nil))
	for _, repo := range s.Repos {
		coverer := ""
		for _, r := range rules {
			if r.ScanFrequency != w.Frequency {
				continue
			}
			for _, f := range r.RepositoryFilters {
				if coverer == "" && Covers(aws.ToString(f.Filter), repo.Name) {
					coverer = aws.ToString(f.Filter)
				}
			}
		}
		if coverer != "" {
			coverers = append(coverers, coverer)
			continue
		}
		mine := ecrtypes.ScanningRepositoryFilter{Filter: aws.String(repo.Name), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard}
		added := false
		for i, r := range rules {
			if r.ScanFrequency == w.Frequency {
				r.RepositoryFilters = append(append([]ecrtypes.ScanningRepositoryFilter{}, r.RepositoryFilters...), mine)
				rules[i], added = r, true
				break
			}
		}
		if !added {
			if len(rules) >= maxScanningRules {
				return nil, nil, true
			}
			rules = append(rules, ecrtypes.RegistryScanningRule{ScanFrequency: w.Frequency, RepositoryFilters: []ecrtypes.ScanningRepositoryFilter{mine}})
		}
		coverers = append(coverers, repo.Name)
	}
	return rules, coverers, false
}

// ownFilters are the frequencies at which rules hold setup's filter for
// the repository called name.
func ownFilters(rules []ecrtypes.RegistryScanningRule, name string) map[ecrtypes.ScanFrequency]bool {
	m := map[ecrtypes.ScanFrequency]bool{}
	names := map[string]bool{name: true}
	for _, r := range rules {
		for _, f := range r.RepositoryFilters {
			if owner(f, names) != "" {
				m[r.ScanFrequency] = true
			}
		}
	}
	return m
}

func sameFrequencies(a, b map[ecrtypes.ScanFrequency]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// FrequencyWords says a scan frequency as people do.
func FrequencyWords(f ecrtypes.ScanFrequency) string {
	switch f {
	case ecrtypes.ScanFrequencyScanOnPush:
		return "on push"
	case ecrtypes.ScanFrequencyContinuousScan:
		return "continuously"
	}
	return strings.ToLower(string(f))
}

// Reconcile merges setup's rules into the registry's: one write for the
// region when a repository is not covered at the wanted frequency, or the
// registry's scan type differs (that write asks for confirmation first).
// The report says what changes for each repository (a line each when
// there are several).
func (s *RegistryScanning) Reconcile(p *Plan) {
	rep, w := &s.report, s.Want
	rep.Managed, rep.Status = true, Unchanged
	rules, coverers, full := s.wanted()
	if full {
		p.Refuse(&Error{Kind: KindRegistryScanning, Name: s.label(), Doing: "adding a registry scanning rule for repository " + s.label(),
			Err:  fmt.Errorf("the registry scanning configuration already has ECR's %d rules, none scanning %s", maxScanningRules, FrequencyWords(w.Frequency)),
			Hint: "add a filter for the repository to one of them by hand (aws ecr put-registry-scanning-configuration), or ask for the other frequency"})
		return
	}
	typeChange, ruleChange := s.have.ScanType != w.Type, false
	for i, repo := range s.Repos {
		what := fmt.Sprintf("%s scanning %s", strings.ToLower(string(w.Type)), FrequencyWords(w.Frequency))
		if len(s.Repos) > 1 {
			what = repo.Name + ": " + what
		}
		if coverers[i] != repo.Name {
			what += " (covered by the registry's filter " + coverers[i] + ")"
		}
		if !sameFrequencies(ownFilters(rules, repo.Name), ownFilters(s.have.Rules, repo.Name)) {
			ruleChange = true
			what += " (rule for " + repo.Name + " added to the registry's)"
		}
		rep.Changes = append(rep.Changes, what)
	}
	if !typeChange && !ruleChange {
		return
	}
	rep.Status = WouldUpdate
	what := fmt.Sprintf("%s scanning %s for %s", strings.ToLower(string(w.Type)), FrequencyWords(w.Frequency), s.label())
	region := s.region(p.Env)
	step := &Step{Action: "put the registry scanning configuration: " + what, Call: "ecr:PutRegistryScanningConfiguration",
		Do: func(ctx context.Context) error {
			p.Env.logf("putting the registry scanning configuration (%s)", what)
			_, err := p.Env.ecrIn(s.Region).PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: w.Type, Rules: rules})
			if err != nil {
				return fail(KindRegistryScanning, s.label(), "putting the registry scanning configuration", "ecr:PutRegistryScanningConfiguration", err)
			}
			rep.Status = Updated
			return nil
		}}
	if typeChange {
		change := fmt.Sprintf("registry scan type: %s (was %s): this changes how every repository of the registry in %s is scanned", w.Type, s.have.ScanType, region)
		rep.Changes = append([]string{change}, rep.Changes...)
		step.Confirm = fmt.Sprintf("change the registry's scan type from %s to %s, which changes how every repository of account %s in %s is scanned",
			s.have.ScanType, w.Type, p.Identity.Account, region)
		step.Required = func() error {
			return &Error{Kind: KindRegistryScanning, Name: s.label(), Doing: fmt.Sprintf("changing the registry's scan type from %s to %s", s.have.ScanType, w.Type),
				Err:  fmt.Errorf("it changes how every repository of the registry is scanned, so it needs confirmation, and nothing was changed"),
				Next: hint.Confirm}
		}
	}
	p.Add(rep, step)
}

// region is the registry's region.
func (s *RegistryScanning) region(env *Env) string {
	if s.Region != "" {
		return s.Region
	}
	return env.Region
}

// Delete takes setup's filters out of the registry's rules for the
// repositories that go too, in one write for the region; the scan type,
// every other filter and those of kept repositories stay. The report is
// then named after the repositories whose filters were found.
func (s *RegistryScanning) Delete(p *Plan) {
	rep := &s.report
	if s.denied {
		// Teardown shows no notes: its progress lines say it.
		p.Env.logf("warning: the registry scanning configuration could not be read (no ecr:GetRegistryScanningConfiguration), so a scanning rule setup added for repository %s "+
			"was not looked for; if setup ran with --scanning, take the repository's filter out with `aws ecr put-registry-scanning-configuration`", s.label())
	}
	goes := func(r *Repository) bool { return r.report.State == StateDelete }
	_, found := s.without(s.have.Rules, "", s.names(nil))
	rules, _ := s.without(s.have.Rules, "", s.names(goes))
	var with, leaving, kept []*Repository
	for _, repo := range s.Repos {
		switch {
		case found[repo.Name] == 0:
		case goes(repo):
			with, leaving = append(with, repo), append(leaving, repo)
		default:
			with, kept = append(with, repo), append(kept, repo)
		}
	}
	if len(with) > 0 {
		rep.Name = repositoryList(with)
	}
	if !p.decide(rep, len(with) > 0, len(leaving) > 0, "") {
		if len(kept) > 0 {
			rep.Blocker = "stays with " + repositoriesNamed(kept) + " (kept): setup's filter goes only with its repository"
		}
		return
	}
	stays := "the scan type stays " + string(s.have.ScanType)
	if len(kept) > 0 {
		stays += ", and so does the filter of kept " + repositoriesNamed(kept)
	}
	step := p.Add(rep, &Step{Action: "take the filter of " + repositoriesNamed(leaving) + " out of the registry scanning rules (" + stays + ")",
		Call: "ecr:PutRegistryScanningConfiguration", Do: func(ctx context.Context) error {
			_, err := p.Env.ecrIn(s.Region).PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: s.have.ScanType, Rules: rules})
			return fail(KindRegistryScanning, repositoryList(leaving), "putting the registry scanning configuration", "ecr:PutRegistryScanningConfiguration", err)
		}})
	// The repositories go after their filters: were the write to fail, a
	// rerun still finds them, so proves the filters setup's.
	for _, repo := range leaving {
		for _, del := range repo.report.Steps {
			del.Needs = append(del.Needs, step)
		}
	}
}

// regional are a region's repositories.
type regional struct {
	region string
	repos  []*Repository
}

// repositoriesByRegion groups the stack's repositories by region, in the
// order the regions first appear.
func (st *Stack) repositoriesByRegion() []regional {
	var out []regional
	at := map[string]int{}
	for _, r := range st.Repositories {
		i, ok := at[r.Region]
		if !ok {
			i, at[r.Region] = len(out), len(out)
			out = append(out, regional{region: r.Region})
		}
		out[i].repos = append(out[i].repos, r)
	}
	return out
}

// repositoryList names repositories: "a", "a, b".
func repositoryList(repos []*Repository) string {
	var names []string
	for _, r := range repos {
		names = append(names, r.Name)
	}
	return strings.Join(names, ", ")
}

// repositoriesNamed says "repository a", or "repositories a, b".
func repositoriesNamed(repos []*Repository) string {
	if len(repos) == 1 {
		return "repository " + repos[0].Name
	}
	return "repositories " + repositoryList(repos)
}

// anyListed waits until ECR answered whether each repository of repos is
// there, and reports whether one of them is.
func anyListed(ctx context.Context, repos []*Repository) (bool, error) {
	found := false
	for _, r := range repos {
		listed, err := r.wasListed(ctx)
		if err != nil {
			return false, err
		}
		found = found || listed
	}
	return found, nil
}

// readAll waits until every repository of repos was observed.
func readAll(ctx context.Context, repos []*Repository) error {
	for _, r := range repos {
		if err := r.read(ctx); err != nil {
			return err
		}
	}
	return nil
}
