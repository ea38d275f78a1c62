package ci

// Refusal is a way STS refuses a job's token, for the CI to explain.
type Refusal int

const (
	// RefusedNoProvider: the account has no IAM OIDC provider for the
	// token's issuer, or IAM does not know it yet.
	RefusedNoProvider Refusal = iota + 1
	// RefusedAudience: the OIDC provider does not list the token's audience
	// as a client ID.
	RefusedAudience
	// RefusedToken: STS refused the token itself, its signature or claims.
	RefusedToken
	// RefusedExpired: the token has expired.
	RefusedExpired
	// RefusedTrust: the role's trust policy does not accept the job.
	RefusedTrust
)

// Explainer is a Provider that words what push says of its jobs' tokens
// itself, because its tokens carry more than the claims every CI shares
// (CircleCI: the organisation in the issuer and audience). Push words the
// tokens of the other providers alike.
type Explainer interface {
	// Describe says which token push assumes the role with, and for which
	// job; Named names it shorter, for "assuming <role> with ...". Neither
	// shows the token.
	Describe(t *Token) string
	Named(t *Token) string
	// Explain says why STS refused the token r's way, and what to do.
	Explain(r Refusal, t *Token) (why, hint string)
}
