package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/hint"
)

// WebIdentity is the job's OIDC token as its CI got it, claims checked.
// The token is a credential: it is sent to STS and never printed, not even
// with --verbose. The CI words what push says of it when it is a
// ci.Explainer; push words the others' alike.
type WebIdentity struct {
	ci.Token
	CI ci.Provider
}

// String says which token it is and for which job, never the token.
func (w *WebIdentity) String() string {
	if x, ok := w.CI.(ci.Explainer); ok {
		return x.Describe(&w.Token)
	}
	return fmt.Sprintf("the %s OIDC token from %s (%s)", w.CI.Title(), w.Source, w.job())
}

// named names it for "assuming <role> with ...".
func (w *WebIdentity) named() string {
	if x, ok := w.CI.(ci.Explainer); ok {
		return x.Named(&w.Token)
	}
	return w.String()
}

// job says which job the token stands for.
func (w *WebIdentity) job() string {
	if w.Claims.Job != "" {
		return w.Claims.Job
	}
	return "subject " + w.Claims.Subject
}

// explain says why STS refused the token r's way, and what to do.
func (w *WebIdentity) explain(r ci.Refusal) (why, hint string) {
	if x, ok := w.CI.(ci.Explainer); ok {
		return x.Explain(r, &w.Token)
	}
	title, c := w.CI.Title(), w.Claims
	switch r {
	case ci.RefusedNoProvider:
		return fmt.Sprintf("the account has no IAM OIDC provider for the token's issuer, %s, or IAM has not caught up yet", c.Issuer),
			"run setup keyless for these " + title + " jobs, in the account of the role"
	case ci.RefusedAudience:
		return fmt.Sprintf("the OIDC provider of %s does not list the token's audience (%s) as a client ID", c.Issuer, strings.Join(c.Audience, ", ")),
			"rerun setup keyless: it adds the client ID (after confirmation, to a provider containerise did not create)"
	case ci.RefusedToken:
		return "STS refused the token itself (its signature or its claims)", "let " + title + " issue the token rather than setting it yourself"
	case ci.RefusedExpired:
		return "the token has expired", "rerun the job: push gets its token in the step that pushes"
	case ci.RefusedTrust:
		return fmt.Sprintf("the role's trust policy does not accept this job's token (%s, subject %s): it trusts other repositories, branches or CIs, or only the CI user's keys (a keys setup)", w.job(), c.Subject),
			"rerun setup keyless naming this job's repository (and branch) among those the role trusts"
	}
	return "", ""
}

// refusal classifies STS's refusal of a token; 0 for any other error.
func refusal(err error) ci.Refusal {
	msg := awsx.Describe(err)
	switch code := awsx.ErrorCode(err); {
	case code == "InvalidIdentityToken" && strings.Contains(msg, "No OpenIDConnect provider found"):
		return ci.RefusedNoProvider
	case code == "InvalidIdentityToken" && strings.Contains(msg, "audience"):
		return ci.RefusedAudience
	case code == "InvalidIdentityToken":
		return ci.RefusedToken
	case code == "ExpiredTokenException" || code == "ExpiredToken":
		return ci.RefusedExpired
	case code == "AccessDenied":
		return ci.RefusedTrust
	}
	return 0
}

// webIdentityError explains STS's refusal of the job's token as its CI
// words it.
func webIdentityError(err error, o Options, waited time.Duration) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	id := o.WebIdentity
	e := &Error{Err: err, Doing: fmt.Sprintf("assuming %s with %s", o.RoleARN, id.named())}
	r := refusal(err)
	if r == 0 {
		return e
	}
	e.Why, e.Hint = id.explain(r)
	if r == ci.RefusedNoProvider {
		e.Next = hint.WaitLonger
	}
	if waited >= time.Second {
		e.After = fmt.Sprintf("still refused after %s", waited.Round(time.Second))
	}
	return e
}
