package commands

import (
	"context"
	"net/http"
	"time"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/bitbucket"
	"github.com/containerise/containerise/internal/ci/buildkite"
	"github.com/containerise/containerise/internal/ci/github"
	"github.com/containerise/containerise/internal/ci/gitlab"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/push"
)

// jobProviders are the CIs, besides CircleCI, whose jobs push recognises
// from their own variables and whose tokens it gets through the seam.
var jobProviders = []ci.Provider{github.Provider{}, gitlab.Provider{}, bitbucket.Provider{}, buildkite.Provider{}}

// jobIdentity is what push learnt of the CI job it runs in: the CI, the
// job's token (nil when push uses keys), and the session name after the
// run.
type jobIdentity struct {
	Provider    ci.Provider
	WebIdentity *push.WebIdentity
	SessionName string
}

// seamJob recognises a job of one of jobProviders and, unless the keys
// win (auth "keys", or auth "" with keys set, as for CircleCI), gets its
// token: requested over client (nil: the default) or read from the job's
// variables, its claims checked before any AWS call. It returns nil when
// push does not run in one of those CIs. A missing token with auth "oidc"
// is a usage error saying what the job's config lacks.
func seamJob(ctx context.Context, getenv func(string) string, auth string, haveKeys bool, client *http.Client, now time.Time) (*jobIdentity, error) {
	p := ci.Detect(getenv, jobProviders...)
	if p == nil {
		return nil, nil
	}
	job := &jobIdentity{Provider: p, SessionName: p.SessionName(getenv, now)}
	if auth == "keys" || auth == "" && haveKeys {
		return job, nil
	}
	tok, err := p.Token(ctx, ci.Job{Getenv: getenv, HTTP: client, Now: now, Required: auth == "oidc"})
	if err != nil {
		return nil, clierror.AsUsage(err)
	}
	if tok != nil {
		job.WebIdentity = &push.WebIdentity{
			Token:    tok.Raw,
			Variable: tok.Source,
			Claims: push.TokenClaims{
				Issuer: tok.Claims.Issuer, Subject: tok.Claims.Subject,
				Audience: tok.Claims.Audience, Expires: tok.Claims.Expires,
			},
		}
	}
	return job, nil
}
