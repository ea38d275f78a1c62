package commands

import (
	"context"
	"net/http"
	"time"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/bitbucket"
	"github.com/containerise/containerise/internal/ci/buildkite"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/github"
	"github.com/containerise/containerise/internal/ci/gitlab"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
)

// jobProviders are the CIs, besides CircleCI (read by credentials.go as
// before), whose jobs push recognises from their own variables and whose
// tokens it gets through the CI provider seam.
var jobProviders = []ci.Provider{github.Provider{}, gitlab.Provider{}, bitbucket.Provider{}, buildkite.Provider{}}

// jobIdentity is what push learnt of the CI job it runs in: the CI, the
// job's checked token (nil when push uses keys), and the role session's
// name after the run.
type jobIdentity struct {
	Provider    ci.Provider
	WebIdentity *circleci.WebIdentity
	SessionName string
}

// jobRequest is how push asks a job's CI for its token.
type jobRequest struct {
	// Auth is --auth: "", "keys" or "oidc".
	Auth string
	// HaveKeys: the CI user's keys are in the environment.
	HaveKeys bool
	// Audience is the audience to request or expect; "" for the CI's
	// default for AWS.
	Audience string
	// HTTP requests tokens from a CI that hands them out over HTTP; nil
	// means the default client.
	HTTP *http.Client
	Now  time.Time
}

// seamJob recognises a job of one of jobProviders and, unless the keys
// win (--auth keys, or no --auth with the keys set: they were put there on
// purpose, a token is ambient), gets its token as the CI provides it, its
// issuer, audience and expiry checked before any AWS call. It returns nil
// when push does not run in one of those CIs. A job without a token when
// one is needed (--auth oidc, or no keys either) is a usage error that says
// what the job's config lacks. No error holds the token.
func seamJob(ctx context.Context, getenv func(string) string, r jobRequest) (*jobIdentity, error) {
	p := ci.Detect(getenv, jobProviders...)
	if p == nil {
		return nil, nil
	}
	job := &jobIdentity{Provider: p, SessionName: p.SessionName(getenv, r.Now)}
	if r.Auth == "keys" || r.Auth == "" && r.HaveKeys {
		return job, nil
	}
	req := ci.Job{Getenv: getenv, HTTP: r.HTTP, Now: r.Now, Audience: r.Audience}
	tok, err := p.Token(ctx, req)
	if err != nil {
		// The job has a token and it is wrong for the role (issuer,
		// audience, expiry), or the CI would not hand it out.
		return nil, clierror.AsUsage(err)
	}
	if tok == nil {
		// None: the same call, required, says what the config lacks
		// (it makes no request when the job has no way to get one).
		req.Required = true
		_, err := p.Token(ctx, req)
		if err == nil {
			return nil, clierror.Usagef("%s gave this job no OIDC token", p.Title())
		}
		if r.Auth == "" {
			return nil, clierror.Usagef("%v\nOr, for a setup with keys, set %s and %s.", err, names.EnvAccessKeyID, names.EnvSecretAccessKey)
		}
		return nil, clierror.AsUsage(err)
	}
	job.WebIdentity = &circleci.WebIdentity{
		Token:    tok.Raw,
		Variable: tok.Source,
		Claims: circleci.TokenClaims{
			Issuer: tok.Claims.Issuer, Subject: tok.Claims.Subject,
			Audience: tok.Claims.Audience, Expires: tok.Claims.Expires,
		},
		CI:  p.Title(),
		Job: tok.Claims.Job,
	}
	return job, nil
}

// ciVariables name the variables by which push recognises each CI, for
// messages.
const ciVariables = "CIRCLECI, GITHUB_ACTIONS, GITLAB_CI, BITBUCKET_BUILD_NUMBER, BUILDKITE"
