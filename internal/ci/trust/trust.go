// Package trust holds what every CI provider's trust statement shares: the
// statement's shape, IAM's condition key for a provider's claim, and the
// escaping and checks that keep a selector's values literal in IAM's string
// matching.
package trust

import (
	"fmt"
	"strings"

	"github.com/containerise/containerise/policies"
)

// Key is IAM's condition key for claim of the tokens of issuer: the
// issuer URL without its scheme, a colon, the claim ("aud", "sub").
func Key(issuer, claim string) string {
	return strings.TrimPrefix(issuer, "https://") + ":" + claim
}

// Statement lets the tokens that satisfy cond assume the role
// (sts:AssumeRoleWithWebIdentity) through the IAM OIDC provider
// providerARN only.
func Statement(providerARN string, cond policies.Condition) policies.Statement {
	return policies.Statement{
		Effect:    "Allow",
		Principal: &policies.Principal{Federated: policies.Values{providerARN}},
		Action:    policies.Values{"sts:AssumeRoleWithWebIdentity"},
		Condition: cond,
	}
}

// Literal writes s so that IAM reads it as itself in a condition of a
// policy of version 2012-10-17, where "${...}" is a policy variable. A
// value meant for StringLike must also hold no '*' or '?': see Plain.
func Literal(s string) string { return strings.ReplaceAll(s, "$", "${$}") }

// Literals applies Literal to each value.
func Literals(values []string) policies.Values {
	out := make(policies.Values, 0, len(values))
	seen := map[string]bool{}
	for _, v := range values {
		if v = Literal(v); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Plain checks a selector's value that goes into a subject pattern: it
// must be non-empty and hold none of the characters that would widen the
// pattern (StringLike's '*' and '?') or split the subject (sep, the
// separator of the CI's subject fields). what names the value for people
// ("--github-repo").
func Plain(what, value, sep string) error {
	if strings.TrimSpace(value) == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if strings.ContainsAny(value, "*?") {
		return fmt.Errorf("%s %q holds '*' or '?', which a trust policy would read as a wildcard: name it exactly", what, value)
	}
	if sep != "" && strings.Contains(value, sep) {
		return fmt.Errorf("%s %q holds %q, which separates the fields of the token's subject", what, value, sep)
	}
	if strings.ContainsAny(value, " \t\r\n") {
		return fmt.Errorf("%s %q holds white space", what, value)
	}
	return nil
}

// Branch checks a branch name a trust is narrowed to, by git's rules that
// matter here: no wildcard, no ':' (which separates the fields of most CIs'
// subjects), no white space, no "refs/" prefix (give the short name).
func Branch(b string) error {
	if err := Plain("--branch", b, ":"); err != nil {
		return err
	}
	if strings.HasPrefix(b, "refs/") {
		return fmt.Errorf("--branch %q: give the branch's short name (main), not its ref", b)
	}
	return nil
}
