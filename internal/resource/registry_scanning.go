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

// RegistryScanning is setup's rule in the registry scanning configuration:
// a repository filter naming exactly the repository, in the rule of the
// frequency asked for. The configuration is one per account and region,
// shared by every repository, and its rules take no tags and no
// description; so setup merges its filter into the rules there are and
// never drops another filter, and its own filter is recognised by its
// shape: one WILDCARD filter whose value is the repository's name, with no
// wildcard in it. Teardown removes that filter only when it deletes the
// repository too (a filter naming a repository that no longer exists
// scans nothing), and leaves the registry's scan type as it is.
//
// Changing the registry's scan type (basic to enhanced, or back) changes
// how every repository of the registry is scanned: that write asks for
// confirmation, and a run without it is refused before any change.
type RegistryScanning struct {
	Repo *Repository
	// Want is nil for teardown.
	Want *Scanning

	report Report

	// Observed.
	have ecrtypes.RegistryScanningConfiguration
	// denied: teardown may not read the configuration (an admin policy
	// from before registry scanning); it says so and goes on.
	denied bool
}

// NewRegistryScanning is the scanning rule of repo; want is nil for
// teardown.
func NewRegistryScanning(repo *Repository, want *Scanning) *RegistryScanning {
	return &RegistryScanning{Repo: repo, Want: want, report: Report{Kind: KindRegistryScanning, Name: repo.Name}}
}

// Reports is the rule's one report; teardown shows it only when the
// registry has setup's filter for the repository.
func (s *RegistryScanning) Reports() []*Report {
	if s.Want == nil {
		if _, n := s.without(s.have.Rules, ""); n == 0 {
			return nil
		}
	}
	return []*Report{&s.report}
}

// Observe reads the registry scanning configuration; teardown reads it
// once the repository is found.
func (s *RegistryScanning) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	if purpose == ForTeardown {
		// Setup's filter goes only with the repository: without one,
		// there is nothing to look for.
		if err := s.Repo.read(ctx); err != nil {
			return err
		}
		if !s.Repo.exists {
			return nil
		}
	}
	out, err := env.ECR.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
	if purpose == ForTeardown && awsx.IsAccessDenied(err) {
		s.denied = true
		return nil
	}
	if err != nil {
		return fail(KindRegistryScanning, s.Repo.Name, "reading the registry scanning configuration", "ecr:GetRegistryScanningConfiguration", err)
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

// own reports whether f is setup's filter for the repository.
func (s *RegistryScanning) own(f ecrtypes.ScanningRepositoryFilter) bool {
	return f.FilterType == ecrtypes.ScanningRepositoryFilterTypeWildcard && aws.ToString(f.Filter) == s.Repo.Name
}

// without returns the rules with setup's filter taken out of those whose
// frequency is not keep ("" takes it out of every rule); a rule left with
// no filter goes. removed counts the filters taken out.
func (s *RegistryScanning) without(rules []ecrtypes.RegistryScanningRule, keep ecrtypes.ScanFrequency) (out []ecrtypes.RegistryScanningRule, removed int) {
	for _, r := range rules {
		if r.ScanFrequency == keep && keep != "" {
			out = append(out, r)
			continue
		}
		var filters []ecrtypes.ScanningRepositoryFilter
		for _, f := range r.RepositoryFilters {
			if s.own(f) {
				removed++
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

// wanted is the configuration with the repository covered at the wanted
// frequency: unchanged when a rule of that frequency already covers it
// (setup's filter or another's, such as "*"), else setup's filter added to
// that rule, or a new rule when there is none. coverer names the filter
// that covers it; full is set when ECR's two rules are taken by other
// frequencies.
func (s *RegistryScanning) wanted() (rules []ecrtypes.RegistryScanningRule, coverer string, full bool) {
	w := s.Want
	rules, _ = s.without(s.have.Rules, w.Frequency)
	for _, r := range rules {
		if r.ScanFrequency != w.Frequency {
			continue
		}
		for _, f := range r.RepositoryFilters {
			if Covers(aws.ToString(f.Filter), s.Repo.Name) {
				return rules, aws.ToString(f.Filter), false
			}
		}
	}
	mine := ecrtypes.ScanningRepositoryFilter{Filter: aws.String(s.Repo.Name), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard}
	for i, r := range rules {
		if r.ScanFrequency == w.Frequency {
			r.RepositoryFilters = append(append([]ecrtypes.ScanningRepositoryFilter{}, r.RepositoryFilters...), mine)
			rules[i] = r
			return rules, s.Repo.Name, false
		}
	}
	if len(rules) >= maxScanningRules {
		return nil, "", true
	}
	return append(rules, ecrtypes.RegistryScanningRule{ScanFrequency: w.Frequency, RepositoryFilters: []ecrtypes.ScanningRepositoryFilter{mine}}), s.Repo.Name, false
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

// Reconcile merges setup's rule into the registry's: one write when the
// repository is not covered at the wanted frequency, or the registry's
// scan type differs (that write asks for confirmation first).
func (s *RegistryScanning) Reconcile(p *Plan) {
	rep, w := &s.report, s.Want
	rep.Managed, rep.Status = true, Unchanged
	rules, coverer, full := s.wanted()
	if full {
		p.Refuse(&Error{Kind: KindRegistryScanning, Name: s.Repo.Name, Doing: "adding a registry scanning rule for repository " + s.Repo.Name,
			Err:  fmt.Errorf("the registry scanning configuration already has ECR's %d rules, none scanning %s", maxScanningRules, FrequencyWords(w.Frequency)),
			Hint: "add a filter for the repository to one of them by hand (aws ecr put-registry-scanning-configuration), or ask for the other frequency"})
		return
	}
	typeChange := s.have.ScanType != w.Type
	ruleChange := !sameRules(rules, s.have.Rules)
	what := fmt.Sprintf("%s scanning %s", strings.ToLower(string(w.Type)), FrequencyWords(w.Frequency))
	if coverer != s.Repo.Name {
		what += " (covered by the registry's filter " + coverer + ")"
	}
	if !typeChange && !ruleChange {
		rep.Changes = []string{what}
		return
	}
	rep.Status = WouldUpdate
	if ruleChange {
		rep.Changes = append(rep.Changes, what+" (rule for "+s.Repo.Name+" added to the registry's)")
	} else {
		rep.Changes = append(rep.Changes, what)
	}
	step := &Step{Action: "put the registry scanning configuration: " + what, Call: "ecr:PutRegistryScanningConfiguration",
		Do: func(ctx context.Context) error {
			p.Env.logf("putting the registry scanning configuration (%s)", what)
			_, err := p.Env.ECR.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: w.Type, Rules: rules})
			if err != nil {
				return fail(KindRegistryScanning, s.Repo.Name, "putting the registry scanning configuration", "ecr:PutRegistryScanningConfiguration", err)
			}
			rep.Status = Updated
			return nil
		}}
	if typeChange {
		change := fmt.Sprintf("registry scan type: %s (was %s): this changes how every repository of the registry in %s is scanned", w.Type, s.have.ScanType, p.Env.Region)
		rep.Changes = append([]string{change}, rep.Changes...)
		step.Confirm = fmt.Sprintf("change the registry's scan type from %s to %s, which changes how every repository of account %s in %s is scanned",
			s.have.ScanType, w.Type, p.Identity.Account, p.Env.Region)
		step.Required = func() error {
			return &Error{Kind: KindRegistryScanning, Name: s.Repo.Name, Doing: fmt.Sprintf("changing the registry's scan type from %s to %s", s.have.ScanType, w.Type),
				Err:  fmt.Errorf("it changes how every repository of the registry is scanned, so it needs confirmation, and nothing was changed"),
				Next: hint.Confirm}
		}
	}
	p.Add(rep, step)
}

// sameRules reports whether two rule lists say the same, whatever their
// order and the order of their filters.
func sameRules(a, b []ecrtypes.RegistryScanningRule) bool {
	key := func(rules []ecrtypes.RegistryScanningRule) map[string]bool {
		m := map[string]bool{}
		for _, r := range rules {
			for _, f := range r.RepositoryFilters {
				m[string(r.ScanFrequency)+"\x00"+string(f.FilterType)+"\x00"+aws.ToString(f.Filter)] = true
			}
			if len(r.RepositoryFilters) == 0 {
				m[string(r.ScanFrequency)] = true
			}
		}
		return m
	}
	ka, kb := key(a), key(b)
	if len(ka) != len(kb) {
		return false
	}
	for k := range ka {
		if !kb[k] {
			return false
		}
	}
	return true
}

// Delete takes setup's filter for the repository out of the registry's
// rules, once the repository goes too; the scan type and every other
// filter stay.
func (s *RegistryScanning) Delete(p *Plan) {
	rep := &s.report
	if s.denied {
		// Teardown shows no notes: its progress lines say it.
		p.Env.logf("warning: the registry scanning configuration could not be read (no ecr:GetRegistryScanningConfiguration), so a scanning rule setup added for repository %s "+
			"was not looked for; if setup ran with --scanning, take the repository's filter out with `aws ecr put-registry-scanning-configuration`", s.Repo.Name)
	}
	rules, removed := s.without(s.have.Rules, "")
	repoGoes := s.Repo.report.State == StateDelete
	if !p.decide(rep, removed > 0, repoGoes, "") {
		if removed > 0 && !repoGoes {
			rep.Blocker = "repository " + s.Repo.Name + " is kept, so its scanning rule stays"
		}
		return
	}
	step := p.Add(rep, &Step{Action: "take repository " + s.Repo.Name + "'s filter out of the registry scanning rules (the scan type stays " + string(s.have.ScanType) + ")",
		Call: "ecr:PutRegistryScanningConfiguration", Do: func(ctx context.Context) error {
			_, err := p.Env.ECR.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: s.have.ScanType, Rules: rules})
			return fail(KindRegistryScanning, s.Repo.Name, "putting the registry scanning configuration", "ecr:PutRegistryScanningConfiguration", err)
		}})
	// The repository goes after its filter: were the filter's removal to
	// fail, a rerun still finds the repository, so proves the filter setup's.
	for _, del := range s.Repo.report.Steps {
		del.Needs = append(del.Needs, step)
	}
}
