package circleci

import (
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/containerise/containerise/internal/ci"
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

// The keys of CircleCI's own claims in a token's Claims.Extra.
const (
	ClaimOrgID     = "org-id"     // from the issuer
	ClaimProjectID = "project-id" // oidc.circleci.com/project-id
	// ClaimVCSRef is the branch's ref, refs/heads/<branch>, when the
	// pipeline has one (oidc.circleci.com/vcs-ref).
	ClaimVCSRef = "vcs-ref"
)

// ReadToken reads the claims of the token found in variable, without
// checking its signature (STS does that), and refuses, before any call, a
// token that is not a JWT, was not issued by CircleCI, was issued for
// another organisation than trustedOrg (when known), or has expired at now.
// Errors name the variable and never contain the token.
func ReadToken(variable, token string, now time.Time, trustedOrg string) (*ci.Token, error) {
	var claims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		// The parser's own message may quote part of the token: not shown.
		return nil, clierror.Usagef("%s is not a JWT (three base64url parts separated by dots, as CircleCI sets it in each job): "+
			"leave it to CircleCI rather than setting it yourself", variable)
	}
	c := ci.Claims{}
	c.Issuer, _ = claims.GetIssuer()
	c.Subject, _ = claims.GetSubject()
	c.Audience, _ = claims.GetAudience()
	project, _ := claims["oidc.circleci.com/project-id"].(string)
	ref, _ := claims["oidc.circleci.com/vcs-ref"].(string)
	org, ok := strings.CutPrefix(c.Issuer, circleCIIssuerPrefix)
	if !ok || org == "" || strings.Contains(org, "/") {
		return nil, clierror.Usagef("%s was not issued by CircleCI: its issuer is %q, not %s<organization ID>", variable, c.Issuer, circleCIIssuerPrefix)
	}
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
	c.Job = describeJob(project, ref, c.Subject)
	c.Extra = map[string]string{ClaimOrgID: org, ClaimProjectID: project, ClaimVCSRef: ref}
	return &ci.Token{Raw: token, Source: variable, Claims: c}, nil
}

// describeJob says which job a token stands for, for messages: its
// project and ref, else its subject.
func describeJob(project, ref, subject string) string {
	var parts []string
	if project != "" {
		parts = append(parts, "project "+project)
	}
	if ref != "" {
		parts = append(parts, "ref "+ref)
	}
	if len(parts) == 0 {
		return "subject " + subject
	}
	return strings.Join(parts, ", ")
}
