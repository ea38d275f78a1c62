package policies

import (
	"fmt"
	"strings"
)

// OIDCProviderARN returns the ARN IAM gives the OIDC provider of an issuer
// URL: the URL without its scheme.
func OIDCProviderARN(partition, account, issuerURL string) string {
	return fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, account, strings.TrimPrefix(issuerURL, "https://"))
}

// EscapeVariables writes a literal '$' the way IAM reads one in a policy of
// version 2012-10-17, where "${...}" is a policy variable. A git branch may
// contain '$' but never '*' or '?', IAM's other special characters.
func EscapeVariables(s string) string { return strings.ReplaceAll(s, "$", "${$}") }

// FederatedTrust is the trust policy of a role assumed with web identity
// tokens: one statement per set of jobs (each CI provider's selector
// writes its own), so that several CIs may trust one role.
func FederatedTrust(statements ...Statement) Document {
	return Document{Version: Version, Statement: statements}
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
