package policies

import (
	"fmt"
	"strings"
)

// CircleCI's OpenID Connect issuer: every organisation has its own, whose
// tokens carry the organisation's ID as their audience.
const circleCIIssuerHost = "oidc.circleci.com"

// CircleCIIssuer is the issuer (the iss claim) of an organisation's job
// tokens, which is also the URL of the IAM OIDC provider that trusts them.
func CircleCIIssuer(orgID string) string {
	return "https://" + circleCIIssuerHost + "/org/" + orgID
}

// OIDCProviderARN returns the ARN IAM gives the OIDC provider of an issuer
// URL: the URL without its scheme.
func OIDCProviderARN(partition, account, issuerURL string) string {
	return fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, account, strings.TrimPrefix(issuerURL, "https://"))
}

// CircleCI says which CircleCI jobs may assume a role with their OIDC
// token: those of an organisation, of some of its projects (or, with
// AnyProject, all of them), and, when Branches are given, only jobs
// building one of those branches.
type CircleCI struct {
	OrgID      string
	ProjectIDs []string
	AnyProject bool
	Branches   []string
}

// conditionPrefix is the provider part of IAM's condition keys for the
// organisation's tokens: "oidc.circleci.com/org/<org>".
func (c CircleCI) conditionPrefix() string {
	return circleCIIssuerHost + "/org/" + c.OrgID
}

// AudienceKey and SubjectKey are the IAM condition keys that test the
// token's aud and sub claims.
func (c CircleCI) AudienceKey() string { return c.conditionPrefix() + ":aud" }

// SubjectKey is the condition key of the token's sub claim.
func (c CircleCI) SubjectKey() string { return c.conditionPrefix() + ":sub" }

// Subjects are the patterns the token's sub claim must match. CircleCI's
// v1 token (CIRCLE_OIDC_TOKEN) has the subject
// org/<org>/project/<project>/user/<user>; the v2 token
// (CIRCLE_OIDC_TOKEN_V2) adds /vcs-origin/<origin>/vcs-ref/<ref>, which is
// what a branch is matched on, so a role narrowed to branches accepts v2
// tokens only.
func (c CircleCI) Subjects() []string {
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
			add(base + "/vcs-origin/*/vcs-ref/refs/heads/" + escapeVariables(b))
		}
	}
	return out
}

// escapeVariables writes a literal '$' the way IAM reads one in a policy of
// version 2012-10-17, where "${...}" is a policy variable. A git branch may
// contain '$' but never '*' or '?', IAM's other special characters.
func escapeVariables(s string) string { return strings.ReplaceAll(s, "$", "${$}") }

// oneRefPattern matches a subject naming vcs-ref twice. A legitimate v2
// subject names it once; one that names it twice has a branch whose name
// ends like another branch's subject (a branch called
// "x/vcs-ref/refs/heads/main" would otherwise match a pattern for main,
// since IAM's '*' also matches '/').
const oneRefPattern = "*/vcs-ref/*/vcs-ref/*"

// CircleCITrust returns the trust policy of a role that CircleCI jobs
// assume with their OIDC token (sts:AssumeRoleWithWebIdentity), through the
// IAM OIDC provider providerARN only: the token's audience must be the
// organisation's ID, and its subject must match one of c's Subjects.
func CircleCITrust(providerARN string, c CircleCI) Document {
	cond := Condition{
		"StringEquals": {c.AudienceKey(): Values{c.OrgID}},
		"StringLike":   {c.SubjectKey(): Values(c.Subjects())},
	}
	if len(c.Branches) > 0 {
		cond["StringNotLike"] = map[string]Values{c.SubjectKey(): {oneRefPattern}}
	}
	return Document{
		Version: Version,
		Statement: []Statement{{
			Effect:    "Allow",
			Principal: &Principal{Federated: Values{providerARN}},
			Action:    Values{"sts:AssumeRoleWithWebIdentity"},
			Condition: cond,
		}},
	}
}

// FederatedPrincipals lists the federated principals (OIDC or SAML
// provider ARNs) a document's statements name.
func (d Document) FederatedPrincipals() []string {
	var out []string
	for _, s := range d.Statement {
		if s.Principal != nil {
			out = append(out, s.Principal.Federated...)
		}
	}
	return out
}
