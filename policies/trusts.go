package policies

import (
	"net/url"
	"slices"
	"strings"
)

// TrustsProvider reports whether a role's trust policy (as IAM returns it,
// plain or URL-encoded) lets in tokens of the OIDC provider providerARN:
// an Allow statement names the provider as a federated principal, or names
// any principal ("*") and tests the provider's claims in its conditions.
// A document that cannot be read counts as trusting the provider when its
// text names the provider's ARN: a role's trust is not given up on a guess.
// readable is false for such a document.
func TrustsProvider(text, providerARN string) (trusts, readable bool) {
	d, err := Parse(text)
	if err != nil {
		plain := text
		if decoded, err := url.QueryUnescape(text); err == nil {
			plain = decoded
		}
		return strings.Contains(plain, providerARN) || strings.Contains(text, providerARN), false
	}
	_, host, _ := strings.Cut(providerARN, ":oidc-provider/")
	for _, s := range d.Statement {
		if !strings.EqualFold(s.Effect, "Allow") || s.Principal == nil {
			continue
		}
		for _, p := range s.Principal.Federated {
			if strings.EqualFold(p, providerARN) {
				return true, true
			}
		}
		anyone := slices.Contains(s.Principal.Federated, "*") || slices.Contains(s.Principal.AWS, "*")
		if anyone && host != "" && s.Condition.tests(host) {
			return true, true
		}
	}
	return false, true
}

// tests reports whether a condition tests a claim of the issuer host
// ("oidc.circleci.com/org/<org>:aud").
func (c Condition) tests(host string) bool {
	for _, keys := range c {
		for k := range keys {
			if strings.HasPrefix(strings.ToLower(k), strings.ToLower(host)+":") {
				return true
			}
		}
	}
	return false
}
