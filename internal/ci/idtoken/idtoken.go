// Package idtoken reads a CI job's OIDC token the way push needs before
// STS sees it: the claims, unverified (STS checks the signature), checked
// for the issuer, audience and expiry the role's trust expects, so a wrong
// token fails with a message that says why instead of STS's AccessDenied.
// Nothing here prints or wraps the token itself.
package idtoken

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/containerise/containerise/internal/ci"
)

// Parse reads raw's claims without verifying its signature. source names
// where the token came from, for messages.
func Parse(raw, source string) (*ci.Token, error) {
	raw = strings.TrimSpace(raw)
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		// The parser's error never quotes the token.
		return nil, fmt.Errorf("the OIDC token in %s is not a JWT: %v", source, err)
	}
	tok := &ci.Token{Raw: raw, Source: source, Claims: ci.Claims{Extra: map[string]string{}}}
	tok.Claims.Issuer, _ = claims.GetIssuer()
	tok.Claims.Subject, _ = claims.GetSubject()
	aud, _ := claims.GetAudience()
	tok.Claims.Audience = []string(aud)
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		tok.Claims.Expires = exp.Time
	}
	for k, v := range claims {
		if s, ok := v.(string); ok && k != "iss" && k != "sub" && k != "aud" {
			tok.Claims.Extra[k] = s
		}
	}
	return tok, nil
}

// ClockSkew is how far the job's clock may be ahead of the issuer's: a
// token that expired less than this ago is left for STS to judge.
const ClockSkew = time.Minute

// Check judges the claims the role's trust depends on: the issuer must be
// issuer, the audience must include audience (when not empty), and the
// token must not have expired at now (give or take ClockSkew).
func Check(tok *ci.Token, issuer, audience string, now time.Time) error {
	c := tok.Claims
	if issuer != "" && strings.TrimSuffix(c.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return fmt.Errorf("the OIDC token in %s was issued by %q, not %q: the role trusts tokens of %s", tok.Source, c.Issuer, issuer, issuer)
	}
	if audience != "" && !slices.Contains(c.Audience, audience) {
		return fmt.Errorf("the OIDC token in %s is for audience %q, not %q, which the role trusts", tok.Source, strings.Join(c.Audience, ","), audience)
	}
	if c.Expires.IsZero() {
		return fmt.Errorf("the OIDC token in %s has no expiry (exp), so STS would refuse it", tok.Source)
	}
	if now.After(c.Expires.Add(ClockSkew)) {
		return fmt.Errorf("the OIDC token in %s expired at %s: request a fresh one in the step that pushes", tok.Source, c.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// MaxSessionName is STS's limit on a role session name.
const MaxSessionName = 64

var sessionBad = regexp.MustCompile(`[^\w+=,.@-]+`)

// SessionName names a role session after a CI run: prefix (the CI), the
// repository and the run ID, within STS's 64 characters of [\w+=,.@-].
// The run ID is kept whole (up to half the name); the repository is cut.
// Without a run ID, the time stands in.
func SessionName(prefix, repository, runID string, now time.Time) string {
	clean := func(s string) string {
		return strings.Trim(sessionBad.ReplaceAllString(strings.TrimSpace(s), "-"), "-")
	}
	repo, run := clean(repository), clean(runID)
	if run == "" {
		run = fmt.Sprint(now.Unix())
	}
	suffix := "-" + run
	if len(suffix) > MaxSessionName/2 {
		suffix = suffix[:MaxSessionName/2]
	}
	head := prefix
	if repo != "" {
		head += "-" + repo
	}
	if len(head)+len(suffix) > MaxSessionName {
		head = strings.TrimRight(head[:MaxSessionName-len(suffix)], "-")
	}
	return head + suffix
}
