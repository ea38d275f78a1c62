package resource

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/containerise/containerise/internal/awsx"
)

// KindSigning is the registry signing rule that signs the repository's
// pushes.
const KindSigning = "signing"

// SigningTag is the repository tag in which setup records that it wrote
// a signing rule for the repository, and with which profile.
const SigningTag = "containerise/signing-profile"

// maxSigningRules is how many rules ECR's signing configuration holds.
const maxSigningRules = 10

// Signing is setup's rules in the registry's signing configuration (ECR
// managed signing) of one region: each of the region's repositories of
// the spec has its pushes signed with one AWS Signer profile. The
// configuration is one per account and region, shared by its
// repositories, so there is one Signing per region (never one per
// repository: their writes would overwrite each other's). Its rules take
// no tags, so setup proves a rule its own twice over: its only filter is
// exactly the repository's name, and the repository, which setup tags
// managed-by=containerise, records the profile in its tag
// containerise/signing-profile. Setup merges its rules into the rules
// there are (no write for a repository a rule of that profile already
// covers) and never drops another; teardown takes a repository's rule out
// only when it deletes the repository too, and reads the signing
// configuration only when a repository's tag says there is a rule of
// setup's to find.
type Signing struct {
	// Region is the registry's; empty: the run's.
	Region string
	// Repos are the region's repositories of the spec.
	Repos   []*Repository
	Profile string // "" for teardown

	// report is the region's one: one write covers all its repositories.
	report Report

	// Observed.
	read  bool // the configuration was read
	rules []ecrtypes.SigningRule
}

// NewSigning is the signing rules of repos, all in region (empty: the
// run's), with profile ("" for teardown).
func NewSigning(region string, repos []*Repository, profile string) *Signing {
	s := &Signing{Region: region, Repos: repos, Profile: profile}
	s.report = Report{Kind: KindSigning, Name: repositoryList(repos), Region: region}
	return s
}

// Reports is the region's one report; teardown shows it only when there
// is a rule of setup's to remove.
func (s *Signing) Reports() []*Report {
	if s.Profile == "" {
		if _, found := s.without("", s.names(recordsSigning)); len(found) == 0 {
			return nil
		}
	}
	return []*Report{&s.report}
}

func (s *Signing) fail(doing, call string, err error) error {
	return fail(KindSigning, repositoryList(s.Repos), doing, call, err)
}

// recordsSigning: the repository's tag records a signing rule of setup's.
func recordsSigning(r *Repository) bool { return r.exists && r.tag(SigningTag) != "" }

// names are the names of the repositories keep admits (nil: all).
func (s *Signing) names(keep func(*Repository) bool) map[string]bool {
	m := map[string]bool{}
	for _, r := range s.Repos {
		if keep == nil || keep(r) {
			m[r.Name] = true
		}
	}
	return m
}

// Observe reads the registry's signing configuration: always for setup;
// for teardown, once the repositories are read, and only when one's tag
// records a rule of setup's.
func (s *Signing) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	if purpose == ForTeardown {
		if err := readAll(ctx, s.Repos); err != nil {
			return err
		}
		if len(s.names(recordsSigning)) == 0 {
			return nil
		}
	}
	out, err := env.ecrIn(s.Region).GetSigningConfiguration(ctx, &ecr.GetSigningConfigurationInput{})
	if awsx.ErrorCode(err) == "SigningConfigurationNotFoundException" {
		s.read = true
		return nil
	}
	if err != nil {
		return s.fail("reading the registry's signing configuration", "ecr:GetSigningConfiguration", err)
	}
	s.read = true
	if c := out.SigningConfiguration; c != nil {
		s.rules = c.Rules
	}
	return nil
}

// signingOwner is the repository of names whose rule of setup's r is (one
// filter, exactly its name), "" when r is none of setup's.
func signingOwner(r ecrtypes.SigningRule, names map[string]bool) string {
	if len(r.RepositoryFilters) != 1 || r.RepositoryFilters[0].FilterType != ecrtypes.SigningRepositoryFilterTypeWildcardMatch {
		return ""
	}
	if name := aws.ToString(r.RepositoryFilters[0].Filter); names[name] {
		return name
	}
	return ""
}

// without returns the rules without setup's rules for the repositories of
// names, but for one rule each with profile keep ("" keeps none), and how
// many it took out, per repository.
func (s *Signing) without(keep string, names map[string]bool) (out []ecrtypes.SigningRule, removed map[string]int) {
	removed, kept := map[string]int{}, map[string]bool{}
	for _, r := range s.rules {
		name := signingOwner(r, names)
		if name != "" && (keep == "" || aws.ToString(r.SigningProfileArn) != keep || kept[name]) {
			removed[name]++
			continue
		}
		if name != "" {
			kept[name] = true
		}
		out = append(out, r)
	}
	return out, removed
}

// wanted is the configuration with every repository signed by the
// profile: unchanged for one a rule of that profile covers, else with
// setup's rule for it added (and setup's rules of other profiles taken
// out). coverers name what covers each repository.
func (s *Signing) wanted() (rules []ecrtypes.SigningRule, coverers []string) {
	rules, _ = s.without(s.Profile, s.names(nil))
	for _, repo := range s.Repos {
		coverer := ""
		for _, r := range rules {
			if coverer != "" || aws.ToString(r.SigningProfileArn) != s.Profile {
				continue
			}
			if len(r.RepositoryFilters) == 0 {
				coverer = "every repository"
			}
			for _, f := range r.RepositoryFilters {
				if coverer == "" && Covers(aws.ToString(f.Filter), repo.Name) {
					coverer = aws.ToString(f.Filter)
				}
			}
		}
		if coverer == "" {
			coverer = repo.Name
			rules = append(rules, ecrtypes.SigningRule{SigningProfileArn: aws.String(s.Profile), RepositoryFilters: []ecrtypes.SigningRepositoryFilter{
				{Filter: aws.String(repo.Name), FilterType: ecrtypes.SigningRepositoryFilterTypeWildcardMatch}}})
		}
		coverers = append(coverers, coverer)
	}
	return rules, coverers
}

// Reconcile merges setup's rules into the registry's, in one write for
// the region, and records each rule in its repository's tag (a repository
// setup did not create is not tagged: its rule then stays with it at
// teardown).
func (s *Signing) Reconcile(p *Plan) {
	rep := &s.report
	rep.Managed, rep.Status = true, Unchanged
	rules, coverers := s.wanted()
	if len(rules) > maxSigningRules {
		p.Refuse(&Error{Kind: KindSigning, Name: repositoryList(s.Repos), Doing: "adding a signing rule for repository " + repositoryList(s.Repos),
			Err:  fmt.Errorf("the registry's signing configuration already has ECR's %d rules", maxSigningRules),
			Hint: "add the repository to a rule of profile " + s.Profile + " by hand (aws ecr put-signing-configuration)"})
		return
	}
	changed := !sameSigning(rules, s.rules)
	var needs []*Step
	for i, repo := range s.Repos {
		what := "pushes signed with " + s.Profile
		if len(s.Repos) > 1 {
			what = repo.Name + ": " + what
		}
		if coverers[i] != repo.Name {
			what += " (covered by the registry's rule for " + coverers[i] + ")"
		} else if changed && !s.hasOwn(repo.Name) {
			what += " (rule for " + repo.Name + " added to the registry's signing configuration)"
		}
		rep.Changes = append(rep.Changes, what)
		if repo.created != nil {
			needs = append(needs, repo.created)
		}
	}
	if changed {
		rep.Status = WouldUpdate
		what := "pushes of " + repositoryList(s.Repos) + " signed with " + s.Profile
		p.Add(rep, &Step{Action: "put the registry's signing configuration: " + what, Call: "ecr:PutSigningConfiguration", Needs: needs,
			Do: func(ctx context.Context) error {
				p.Env.logf("putting the registry's signing configuration (%s)", what)
				_, err := p.Env.ecrIn(s.Region).PutSigningConfiguration(ctx, &ecr.PutSigningConfigurationInput{SigningConfiguration: &ecrtypes.SigningConfiguration{Rules: rules}})
				if err != nil {
					return s.fail("putting the registry's signing configuration", "ecr:PutSigningConfiguration", err)
				}
				rep.Status = Updated
				return nil
			}})
	}
	for i, repo := range s.Repos {
		s.recordIn(p, repo, coverers[i])
	}
}

// hasOwn reports whether the configuration as found has setup's rule of
// the profile for the repository called name.
func (s *Signing) hasOwn(name string) bool {
	for _, r := range s.rules {
		if signingOwner(r, map[string]bool{name: true}) != "" && aws.ToString(r.SigningProfileArn) == s.Profile {
			return true
		}
	}
	return false
}

// recordIn records setup's rule in the repository's tag: only a rule
// naming the repository alone is setup's, and only setup's repository is
// tagged.
func (s *Signing) recordIn(p *Plan, repo *Repository, coverer string) {
	rep := &s.report
	if coverer != repo.Name || (repo.exists && !repo.managed) || repo.tag(SigningTag) == s.Profile {
		return
	}
	if rep.Status == Unchanged {
		rep.Status = WouldUpdate
	}
	var needs []*Step
	if repo.created != nil {
		needs = append(needs, repo.created)
	}
	p.Add(rep, &Step{Action: "record the signing rule in repository " + repo.Name + "'s tag " + SigningTag, Call: "ecr:TagResource", Needs: needs,
		Do: func(ctx context.Context) error {
			if repo.report.Status == Unmanaged {
				return nil // made by hand meanwhile: not setup's to tag
			}
			_, err := repo.ecr(p.Env).TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String(repo.ARN()),
				Tags: []ecrtypes.Tag{{Key: aws.String(SigningTag), Value: aws.String(s.Profile)}}})
			if err != nil {
				return s.fail("tagging ECR repository "+repo.Name, "ecr:TagResource", err)
			}
			rep.Status = Updated
			return nil
		}})
}

// sameSigning reports whether two rule lists say the same, in any order.
func sameSigning(a, b []ecrtypes.SigningRule) bool {
	key := func(rules []ecrtypes.SigningRule) map[string]int {
		m := map[string]int{}
		for _, r := range rules {
			k := aws.ToString(r.SigningProfileArn)
			for _, f := range r.RepositoryFilters {
				k += "\x00" + string(f.FilterType) + ":" + aws.ToString(f.Filter)
			}
			m[k]++
		}
		return m
	}
	ka, kb := key(a), key(b)
	if len(ka) != len(kb) {
		return false
	}
	for k, n := range ka {
		if kb[k] != n {
			return false
		}
	}
	return true
}

// Delete takes setup's rules out of the registry's signing configuration
// for the repositories that go too, in one write for the region (the
// configuration goes with its last rule); the repositories are deleted
// after it, so that a rerun still finds the tags that prove the rules
// setup's. The report is then named after the repositories whose rules
// were found.
func (s *Signing) Delete(p *Plan) {
	rep := &s.report
	goes := func(r *Repository) bool { return r.report.State == StateDelete }
	_, found := s.without("", s.names(recordsSigning))
	rules, _ := s.without("", s.names(func(r *Repository) bool { return recordsSigning(r) && goes(r) }))
	var with, leaving []*Repository
	for _, repo := range s.Repos {
		if found[repo.Name] > 0 {
			with = append(with, repo)
			if goes(repo) {
				leaving = append(leaving, repo)
			}
		}
	}
	if len(with) > 0 {
		rep.Name = repositoryList(with)
	}
	if !p.decide(rep, len(with) > 0, len(leaving) > 0, "") {
		return
	}
	action, call := "take the rule of "+repositoriesNamed(leaving)+" out of the registry's signing configuration", "ecr:PutSigningConfiguration"
	if len(rules) == 0 {
		action, call = "delete the registry's signing configuration (its only rules are setup's, for "+repositoriesNamed(leaving)+")", "ecr:DeleteSigningConfiguration"
	}
	step := p.Add(rep, &Step{Action: action, Call: call, Do: func(ctx context.Context) error {
		var err error
		api := p.Env.ecrIn(s.Region)
		if len(rules) == 0 {
			_, err = api.DeleteSigningConfiguration(ctx, &ecr.DeleteSigningConfigurationInput{})
			if awsx.ErrorCode(err) == "SigningConfigurationNotFoundException" {
				err = nil
			}
		} else {
			_, err = api.PutSigningConfiguration(ctx, &ecr.PutSigningConfigurationInput{SigningConfiguration: &ecrtypes.SigningConfiguration{Rules: rules}})
		}
		return s.fail("changing the registry's signing configuration", call, err)
	}})
	for _, repo := range leaving {
		for _, del := range repo.report.Steps {
			del.Needs = append(del.Needs, step)
		}
	}
}
