package commands

import (
	"context"
	"fmt"
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
	"github.com/containerise/containerise/push"
)

// jobProviders are the CIs whose jobs push recognises from their own
// variables, and whose tokens it gets through the CI provider seam.
var jobProviders = []ci.Provider{github.Provider{}, gitlab.Provider{}, bitbucket.Provider{}, buildkite.Provider{}, circleci.Provider{}}

// anyJob is the CI push takes a job of none of them for: CircleCI, push's
// first, whose token variables it has always read wherever it runs.
var anyJob ci.AmbientToken = circleci.Provider{}

// jobIdentity is what push learnt of the CI job it runs in: the CI, the
// job's checked token (nil when push uses keys), the role session's name
// after the run, and which credential won when both were there.
type jobIdentity struct {
	Provider    ci.Provider
	WebIdentity *push.WebIdentity
	SessionName string
	Note        string
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
	// Trusted is what the role trusts that the token is checked against
	// before any call, when known (--circleci-org-id).
	Trusted string
	// HTTP requests tokens from a CI that hands them out over HTTP; nil
	// means the default client.
	HTTP *http.Client
	Now  time.Time
}

// seamJob recognises the job's CI (anyJob when none of jobProviders) and,
// unless the keys win (--auth keys, or no --auth with the keys set: they
// were put there on purpose, a token is ambient), gets its token as the CI
// provides it, its issuer, audience, expiry and trusted claims checked
// before any AWS call. A job without a token when one is needed (--auth
// oidc, or no keys either in a CI that hands tokens out on request) is a
// usage error that says what the job's config lacks. No error holds the
// token.
func seamJob(ctx context.Context, getenv func(string) string, r jobRequest) (*jobIdentity, error) {
	p := ci.Detect(getenv, jobProviders...)
	if p == nil {
		p = anyJob
	}
	ambient, isAmbient := p.(ci.AmbientToken)
	if isAmbient && r.Audience != "" {
		return nil, clierror.Usagef("--audience is for GitHub Actions, GitLab, Bitbucket and Buildkite jobs; this is none (push recognises them by %s)", ciVariables)
	}
	job := &jobIdentity{Provider: p, SessionName: p.SessionName(getenv, r.Now)}
	if r.Auth == "keys" || r.Auth == "" && r.HaveKeys {
		// A token the CI put in every job does not outrank keys set on
		// purpose, but push says it saw it.
		if isAmbient && r.HaveKeys {
			if v := ci.AmbientVariable(ambient, getenv); v != "" {
				why := "as --auth keys asks"
				if r.Auth == "" {
					why = "the role was set up for them; --auth oidc uses the token instead"
				}
				job.Note = fmt.Sprintf("both %s and the CI user's keys are set: using the keys, %s", v, why)
			}
		}
		return job, nil
	}
	req := ci.Job{Getenv: getenv, HTTP: r.HTTP, Now: r.Now, Audience: r.Audience, Trusted: r.Trusted}
	tok, err := p.Token(ctx, req)
	if err != nil {
		// The job has a token and it is wrong for the role (issuer,
		// audience, expiry, trusted claims), or the CI would not hand it
		// out.
		return nil, clierror.AsUsage(err)
	}
	if tok == nil {
		if isAmbient && r.Auth == "" {
			// A CI that gives every job a token gave this one none: the
			// job was not set up for one, and push asks for the keys.
			return job, nil
		}
		// None: the same call, required, says what the config lacks
		// (it makes no request when the job has no way to get one).
		req.Required = true
		if isAmbient {
			req.Elsewhere = otherJobs
		}
		_, err := p.Token(ctx, req)
		if err == nil {
			return nil, clierror.Usagef("%s gave this job no OIDC token", p.Title())
		}
		if r.Auth == "" {
			return nil, clierror.Usagef("%v\nOr, for a setup with keys, set %s and %s.", err, names.EnvAccessKeyID, names.EnvSecretAccessKey)
		}
		return nil, clierror.AsUsage(err)
	}
	job.WebIdentity = &push.WebIdentity{Token: *tok, CI: p}
	if r.HaveKeys {
		job.Note = fmt.Sprintf("both %s's OIDC token and the CI user's keys are there: using the token, as --auth oidc asks", p.Title())
		if isAmbient {
			job.Note = fmt.Sprintf("both %s and the CI user's keys are set: using the OIDC token, as --auth oidc asks", tok.Source)
		}
	}
	return job, nil
}

// keylessHint says, for a job that has neither keys nor a token, how a
// keyless setup gets its token.
func keylessHint() string {
	return fmt.Sprintf("a keyless setup needs none: run push in a %s job, which sets %s", anyJob.Title(), anyJob.TokenVariables()[0])
}

// otherJobs is what push suggests, beside a token it reads wherever it
// runs, when it finds none.
const otherJobs = "push also gets the token of GitHub Actions, GitLab, Bitbucket and Buildkite jobs, which it recognises by " + ciVariables +
	"; elsewhere use the CI user's keys"

// ciVariables name the variables by which push recognises each CI, for
// messages.
const ciVariables = "CIRCLECI, GITHUB_ACTIONS, GITLAB_CI, BITBUCKET_BUILD_NUMBER, BUILDKITE"
