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

// Signing is setup's rule in the registry's signing configuration (ECR
// managed signing): the repository's pushes are signed with one AWS Signer
// profile. The configuration is one per account and region and its rules
// take no tags, so setup proves a rule its own twice over: its only
// filter is exactly the repository's name, and the repository, which
// setup tags managed-by=containerise, records the profile in its tag
// containerise/signing-profile. Setup merges its rule into the rules
// there are (no write when a rule of that profile already covers the
// repository) and never drops another; teardown takes its rule out only
// when it deletes the repository too, and reads the signing configuration
// only when the repository's tag says there is a rule of setup's to find.
type Signing struct {
	Repo    *Repository
	Profile string // "" for teardown

	report Report

	// Observed.
	read  bool // the configuration was read
	rules []ecrtypes.SigningRule
}

// NewSigning is the signing rule of repo with profile ("" for teardown).
func NewSigning(repo *Repository, profile string) *Signing {
	return &Signing{Repo: repo, Profile: profile, report: Report{Kind: KindSigning, Name: repo.Name}}
}

// Reports is the rule's one report; teardown shows it only when there is
// a rule of setup's to remove.
func (s *Signing) Reports() []*Report {
	if s.Profile == "" {
		if _, n := s.without(""); n == 0 {
			return nil
		}
	}
	return []*Report{&s.report}
}

func (s *Signing) fail(doing, call string, err error) error {
	return fail(KindSigning, s.Repo.Name, doing, call, err)
}

// Observe reads the registry's signing configuration: always for setup;
// for teardown, once the repository is read, and only when its tag
// records a rule of setup's.
func (s *Signing) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	if purpose == ForTeardown {
		if err := s.Repo.read(ctx); err != nil {
			return err
		}
		if !s.Repo.exists || s.Repo.tag(SigningTag) == "" {
			return nil
		}
	}
	out, err := env.ECR.GetSigningConfiguration(ctx, &ecr.GetSigningConfigurationInput{})
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

// own reports whether r is setup's rule for the repository: one filter,
// exactly its name.
func (s *Signing) own(r ecrtypes.SigningRule) bool {
	return len(r.RepositoryFilters) == 1 && aws.ToString(r.RepositoryFilters[0].Filter) == s.Repo.Name &&
		r.RepositoryFilters[0].FilterType == ecrtypes.SigningRepositoryFilterTypeWildcardMatch
}

// without returns the rules without setup's rules for the repository
// other than one with profile keep ("" keeps none), and how many it took
// out.
func (s *Signing) without(keep string) (out []ecrtypes.SigningRule, removed int) {
	kept := false
	for _, r := range s.rules {
		if s.own(r) && (keep == "" || aws.ToString(r.SigningProfileArn) != keep || kept) {
			removed++
			continue
		}
		if s.own(r) {
			kept = true
		}
		out = append(out, r)
	}
	return out, removed
}

// wanted is the configuration with the repository signed by the profile:
// unchanged when a rule of that profile covers it, else with setup's rule
// added (and setup's rules of other profiles taken out).
func (s *Signing) wanted() (rules []ecrtypes.SigningRule, coverer string) {
	rules, _ = s.without(s.Profile)
	for _, r := range rules {
		if aws.ToString(r.SigningProfileArn) != s.Profile {
			continue
		}
		if len(r.RepositoryFilters) == 0 {
			return rules, "every repository"
		}
		for _, f := range r.RepositoryFilters {
			if Covers(aws.ToString(f.Filter), s.Repo.Name) {
				return rules, aws.ToString(f.Filter)
			}
		}
	}
	return append(rules, ecrtypes.SigningRule{SigningProfileArn: aws.String(s.Profile), RepositoryFilters: []ecrtypes.SigningRepositoryFilter{
		{Filter: aws.String(s.Repo.Name), FilterType: ecrtypes.SigningRepositoryFilterTypeWildcardMatch}}}), s.Repo.Name
}

// Reconcile merges setup's rule into the registry's, and records it in the
// repository's tag (a repository setup did not create is not tagged: its
// rule then stays with it at teardown).
func (s *Signing) Reconcile(p *Plan) {
	rep, repo := &s.report, s.Repo
	rep.Managed, rep.Status = true, Unchanged
	rules, coverer := s.wanted()
	if len(rules) > maxSigningRules {
		p.Refuse(&Error{Kind: KindSigning, Name: repo.Name, Doing: "adding a signing rule for repository " + repo.Name,
			Err:  fmt.Errorf("the registry's signing configuration already has ECR's %d rules", maxSigningRules),
			Hint: "add the repository to a rule of profile " + s.Profile + " by hand (aws ecr put-signing-configuration)"})
		return
	}
	what := "pushes signed with " + s.Profile
	if coverer != repo.Name {
		what += " (covered by the registry's rule for " + coverer + ")"
	}
	rep.Changes = []string{what}
	var needs []*Step
	if repo.created != nil {
		needs = append(needs, repo.created)
	}
	if !sameSigning(rules, s.rules) {
		rep.Status = WouldUpdate
		rep.Changes = []string{what + " (rule for " + repo.Name + " added to the registry's signing configuration)"}
		p.Add(rep, &Step{Action: "put the registry's signing configuration: " + what, Call: "ecr:PutSigningConfiguration", Needs: needs,
			Do: func(ctx context.Context) error {
				p.Env.logf("putting the registry's signing configuration (%s)", what)
				_, err := p.Env.ECR.PutSigningConfiguration(ctx, &ecr.PutSigningConfigurationInput{SigningConfiguration: &ecrtypes.SigningConfiguration{Rules: rules}})
				if err != nil {
					return s.fail("putting the registry's signing configuration", "ecr:PutSigningConfiguration", err)
				}
				rep.Status = Updated
				return nil
			}})
	}
	// The tag records setup's own rule: only a rule naming the repository
	// alone is setup's, and only setup's repository is tagged.
	if coverer != repo.Name || (repo.exists && !repo.managed) || repo.tag(SigningTag) == s.Profile {
		return
	}
	if rep.Status == Unchanged {
		rep.Status = WouldUpdate
	}
	p.Add(rep, &Step{Action: "record the signing rule in repository " + repo.Name + "'s tag " + SigningTag, Call: "ecr:TagResource", Needs: needs,
		Do: func(ctx context.Context) error {
			if repo.report.Status == Unmanaged {
				return nil // made by hand meanwhile: not setup's to tag
			}
			_, err := p.Env.ECR.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: aws.String(repo.ARN()),
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

// Delete takes setup's rule out of the registry's signing configuration
// when the repository goes too (the configuration goes with the last
// rule); the repository is deleted after it, so that a rerun still finds
// the tag that proves the rule setup's.
func (s *Signing) Delete(p *Plan) {
	rep := &s.report
	rules, removed := s.without("")
	if !p.decide(rep, removed > 0, s.Repo.report.State == StateDelete, "") {
		return
	}
	action, call := "take repository "+s.Repo.Name+"'s rule out of the registry's signing configuration", "ecr:PutSigningConfiguration"
	if len(rules) == 0 {
		action, call = "delete the registry's signing configuration (its only rule is repository "+s.Repo.Name+"'s)", "ecr:DeleteSigningConfiguration"
	}
	step := p.Add(rep, &Step{Action: action, Call: call, Do: func(ctx context.Context) error {
		var err error
		if len(rules) == 0 {
			_, err = p.Env.ECR.DeleteSigningConfiguration(ctx, &ecr.DeleteSigningConfigurationInput{})
			if awsx.ErrorCode(err) == "SigningConfigurationNotFoundException" {
				err = nil
			}
		} else {
			_, err = p.Env.ECR.PutSigningConfiguration(ctx, &ecr.PutSigningConfigurationInput{SigningConfiguration: &ecrtypes.SigningConfiguration{Rules: rules}})
		}
		return s.fail("changing the registry's signing configuration", call, err)
	}})
	for _, del := range s.Repo.report.Steps {
		del.Needs = append(del.Needs, step)
	}
}
