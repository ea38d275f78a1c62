package circleci

import (
	"fmt"

	"github.com/containerise/containerise/internal/ci"
)

var _ ci.Explainer = Provider{}

// Describe names the token's variable, organization and job.
func (Provider) Describe(t *ci.Token) string {
	return fmt.Sprintf("the OIDC token in %s (organization %s, %s)", t.Source, t.Claims.Extra[ClaimOrgID], t.Claims.Job)
}

// Named names the token's variable.
func (Provider) Named(t *ci.Token) string { return "the OIDC token in " + t.Source }

// Explain words STS's refusals of a CircleCI job's token: its organization
// is both the issuer's last part and the audience.
func (Provider) Explain(r ci.Refusal, t *ci.Token) (why, hint string) {
	org := t.Claims.Extra[ClaimOrgID]
	switch r {
	case ci.RefusedNoProvider:
		return fmt.Sprintf("the account has no IAM OIDC provider for the token's issuer, %s (CircleCI organization %s), or IAM has not caught up yet", t.Claims.Issuer, org),
			"run setup keyless for organization " + org + ", in the account of the role"
	case ci.RefusedAudience:
		return fmt.Sprintf("the OIDC provider does not list organization %s as a client ID (audience)", org),
			"rerun setup keyless: it adds the client ID (after confirmation, to a provider containerise did not create)"
	case ci.RefusedToken:
		return "STS refused the token itself (its signature or its claims)", "leave " + t.Source + " to CircleCI rather than setting it yourself"
	case ci.RefusedExpired:
		return "the token has expired: CircleCI's job tokens live one hour from the job's start", "rerun the job"
	case ci.RefusedTrust:
		return fmt.Sprintf("the role's trust policy does not accept this job's token (%s): it trusts other projects or branches, or only the CI user's keys (a keys setup)", t.Claims.Job),
			"if the role was set up with keys, push with the user's keys and --auth keys; " +
				"otherwise rerun setup keyless with this project and branch among those the role trusts"
	}
	return "", ""
}
