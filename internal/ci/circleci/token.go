package circleci

import (
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/containerise/containerise/internal/clierror"
)

// The environment variables in which CircleCI gives each job its OIDC
// token: V2's subject also names the VCS origin and ref (the branch).
const (
	EnvOIDCTokenV2 = "CIRCLE_OIDC_TOKEN_V2"
	EnvOIDCToken   = "CIRCLE_OIDC_TOKEN"
)

// circleCIIssuerPrefix starts the issuer of every CircleCI organisation's
// tokens; the organisation's ID follows.
const circleCIIssuerPrefix = "https://oidc.circleci.com/org/"

// clockSkew is how far past its expiry a token is still left for STS to
// judge: this machine's clock may run ahead of AWS's.
const clockSkew = time.Minute

// WebIdentity is CircleCI's OIDC token for the job, with the claims read
// from it. The token is a credential: it is sent to STS and never
// printed, not even with --verbose.
type WebIdentity struct {
	Token string
	// Variable is the environment variable it came from.
	Variable string
	Claims   TokenClaims
}

// TokenClaims are what push reads from the token: none of it is secret.
type TokenClaims struct {
	Issuer   string
	OrgID    string // from the issuer
	Subject  string
	Audience []string
	Expires  time.Time
	// ProjectID and VCSRef are CircleCI's own claims (VCSRef is the
	// branch's ref, refs/heads/<branch>, when the pipeline has one).
	ProjectID, VCSRef string
}

// ReadToken reads the claims of the token found in variable, without
// checking its signature (STS does that), and refuses, before any call, a
// token that is not a JWT, was not issued by CircleCI, was issued for
// another organisation than trustedOrg (when known), or has expired at now.
// Errors name the variable and never contain the token.
func ReadToken(variable, token string, now time.Time, trustedOrg string) (*WebIdentity, error) {
	var claims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		// The parser's own message may quote part of the token: not shown.
		return nil, clierror.Usagef("%s is not a JWT (three base64url parts separated by dots, as CircleCI sets it in each job): "+
			"leave it to CircleCI rather than setting it yourself", variable)
	}
	c := TokenClaims{}
	c.Issuer, _ = claims.GetIssuer()
	c.Subject, _ = claims.GetSubject()
	aud, _ := claims.GetAudience()
	c.Audience = aud
	c.ProjectID, _ = claims["oidc.circleci.com/project-id"].(string)
	c.VCSRef, _ = claims["oidc.circleci.com/vcs-ref"].(string)
	org, ok := strings.CutPrefix(c.Issuer, circleCIIssuerPrefix)
	if !ok || org == "" || strings.Contains(org, "/") {
		return nil, clierror.Usagef("%s was not issued by CircleCI: its issuer is %q, not %s<organization ID>", variable, c.Issuer, circleCIIssuerPrefix)
	}
	c.OrgID = org
	if trustedOrg != "" && !strings.EqualFold(org, trustedOrg) {
		return nil, clierror.Usagef("%s was issued for CircleCI organization %s (its issuer is %s), but the role trusts organization %s: "+
			"push from a project of %s, or set the role up for %s", variable, org, c.Issuer, trustedOrg, trustedOrg, org)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, clierror.Usagef("%s has no valid expiry (exp): CircleCI's tokens always have one; leave it to CircleCI rather than setting it yourself", variable)
	}
	c.Expires = exp.Time
	if now.After(c.Expires.Add(clockSkew)) {
		return nil, clierror.Usagef("%s expired at %s, %s ago: CircleCI's job tokens live one hour from the job's start, so push must run within it; rerun the job",
			variable, c.Expires.UTC().Format(time.RFC3339), now.Sub(c.Expires).Round(time.Second))
	}
	return &WebIdentity{Token: token, Variable: variable, Claims: c}, nil
}

// Describe says which job the token stands for, for messages.
func (c TokenClaims) Describe() string {
	var parts []string
	if c.ProjectID != "" {
		parts = append(parts, "project "+c.ProjectID)
	}
	if c.VCSRef != "" {
		parts = append(parts, "ref "+c.VCSRef)
	}
	if len(parts) == 0 {
		return "subject " + c.Subject
	}
	return strings.Join(parts, ", ")
}

func (w *WebIdentity) String() string {
	return fmt.Sprintf("the OIDC token in %s (organization %s, %s)", w.Variable, w.Claims.OrgID, w.Claims.Describe())
}
