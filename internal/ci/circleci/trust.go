package circleci

import (
	"strings"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/policies"
)

// Name is CircleCI's name as flags and output say it.
const Name = "circleci"

// IssuerHost is the host of CircleCI's OpenID Connect issuers: every
// organisation has its own, https://oidc.circleci.com/org/<org>, whose
// tokens carry the organisation's ID as their audience.
const IssuerHost = "oidc.circleci.com"

// Issuer is the issuer (the iss claim) of an organisation's job tokens,
// which is also the URL of the IAM OIDC provider that trusts them.
func Issuer(orgID string) string {
	return "https://" + IssuerHost + "/org/" + orgID
}

// TagOrg is the role tag naming the CircleCI organisation whose OIDC
// provider setup made the role trust. Teardown finds the provider through
// it even after setup switched the role back to the user's keys.
const TagOrg = "containerise/circleci-org-id"

// Selector says which CircleCI jobs may assume a role with their OIDC
// token: those of an organisation, of some of its projects (or, with
// AnyProject, all of them), and, when Branches are given, only jobs
// building one of those branches. It is the ci.Selector of CircleCI.
type Selector struct {
	OrgID      string
	ProjectIDs []string
	AnyProject bool
	Branches   []string
}

var (
	_ ci.Selector   = Selector{}
	_ ci.RoleTagger = Selector{}
)

// Provider is CircleCI's name.
func (Selector) Provider() string { return Name }

// Issuer is the organisation's issuer URL.
func (c Selector) Issuer() string { return Issuer(c.OrgID) }

// Audience is the organisation's ID: CircleCI's tokens carry it as aud.
func (c Selector) Audience() string { return c.OrgID }

// RoleTags name the organisation on the role.
func (c Selector) RoleTags() map[string]string { return map[string]string{TagOrg: c.OrgID} }

// Validate checks what a keyless role trusts, naming each value for
// people (the command layer checks its flags first).
func (c Selector) Validate() error {
	if err := validate.UUID("the CircleCI organisation ID", c.OrgID, "Organization Settings > Overview"); err != nil {
		return err
	}
	switch {
	case len(c.ProjectIDs) == 0 && !c.AnyProject:
		return clierror.Usagef("no CircleCI project ID: name at least one project whose jobs may assume the role, or trust every project of the organisation explicitly")
	case len(c.ProjectIDs) > 0 && c.AnyProject:
		return clierror.Usagef("CircleCI project IDs and 'any project' exclude each other: name the projects, or trust every project")
	}
	for _, p := range c.ProjectIDs {
		if err := validate.UUID("the CircleCI project ID", p, "Project Settings > Overview"); err != nil {
			return err
		}
	}
	for _, b := range c.Branches {
		if err := validate.Branch("the branch", b); err != nil {
			return err
		}
	}
	return nil
}

// Describe names the jobs for people, as the provider's description
// continues it: "project <id> on branch main".
func (c Selector) Describe() string {
	var s string
	switch {
	case c.AnyProject:
		s = "any project"
	case len(c.ProjectIDs) == 1:
		s = "project " + c.ProjectIDs[0]
	default:
		s = "projects " + strings.Join(c.ProjectIDs, ", ")
	}
	switch len(c.Branches) {
	case 0:
	case 1:
		s += " on branch " + c.Branches[0]
	default:
		s += " on branches " + strings.Join(c.Branches, ", ")
	}
	return s
}

// conditionPrefix is the provider part of IAM's condition keys for the
// organisation's tokens: "oidc.circleci.com/org/<org>".
func (c Selector) conditionPrefix() string {
	return IssuerHost + "/org/" + c.OrgID
}

// AudienceKey is the IAM condition key that tests the token's aud claim.
func (c Selector) AudienceKey() string { return c.conditionPrefix() + ":aud" }

// SubjectKey is the condition key of the token's sub claim.
func (c Selector) SubjectKey() string { return c.conditionPrefix() + ":sub" }

// Subjects are the patterns the token's sub claim must match. CircleCI's
// v1 token (CIRCLE_OIDC_TOKEN) has the subject
// org/<org>/project/<project>/user/<user>; the v2 token
// (CIRCLE_OIDC_TOKEN_V2) adds /vcs-origin/<origin>/vcs-ref/<ref>, which is
// what a branch is matched on, so a role narrowed to branches accepts v2
// tokens only.
func (c Selector) Subjects() []string {
	projects := c.ProjectIDs
	if c.AnyProject {
		projects = []string{"*"}
	}
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, p := range projects {
		base := "org/" + c.OrgID + "/project/" + p + "/user/*"
		if len(c.Branches) == 0 {
			add(base)
			continue
		}
		for _, b := range c.Branches {
			add(base + "/vcs-origin/*/vcs-ref/refs/heads/" + policies.EscapeVariables(b))
		}
	}
	return out
}

// oneRefPattern matches a subject naming vcs-ref twice. A legitimate v2
// subject names it once; one that names it twice has a branch whose name
// ends like another branch's subject (a branch called
// "x/vcs-ref/refs/heads/main" would otherwise match a pattern for main,
// since IAM's '*' also matches '/').
const oneRefPattern = "*/vcs-ref/*/vcs-ref/*"

// Statement lets the selected jobs assume the role with their OIDC token
// (sts:AssumeRoleWithWebIdentity), through the IAM OIDC provider
// providerARN only: the token's audience must be the organisation's ID,
// and its subject must match one of the Subjects.
func (c Selector) Statement(providerARN string) policies.Statement {
	cond := policies.Condition{
		"StringEquals": {c.AudienceKey(): policies.Values{c.OrgID}},
		"StringLike":   {c.SubjectKey(): policies.Values(c.Subjects())},
	}
	if len(c.Branches) > 0 {
		cond["StringNotLike"] = map[string]policies.Values{c.SubjectKey(): {oneRefPattern}}
	}
	return policies.Statement{
		Effect:    "Allow",
		Principal: &policies.Principal{Federated: policies.Values{providerARN}},
		Action:    policies.Values{"sts:AssumeRoleWithWebIdentity"},
		Condition: cond,
	}
}

// Trust is the trust policy of a role that only the selected jobs assume.
func Trust(providerARN string, c Selector) policies.Document {
	return policies.FederatedTrust(c.Statement(providerARN))
}
