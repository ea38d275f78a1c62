package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/push"
)

// ciCredentials are how push and scan act as the CI role: the role, and
// the job's OIDC token or the CI user's keys, from the environment (never a
// flag for a secret), with the region and the role session's name.
type ciCredentials struct {
	RoleARN string
	// Auth chooses the credential: "" (the job's OIDC token when CircleCI
	// set one, else the keys), "keys" or "oidc"; OrgID, when set, is the
	// organization the token must come from.
	Auth  string
	OrgID string
	// Audience is the audience a job of another CI than CircleCI asks its
	// token for, or has it for (GitLab's id_tokens); "": the CI's default.
	Audience string
	// authNote says which credential is used, when both were there.
	authNote string
	// sessionName, when set, names the role session after the run of a
	// job of another CI than CircleCI.
	sessionName string
}

// read checks the credentials, the role and the region before any call,
// naming the variable or flag at fault, and returns them as push's options.
func (f *ciCredentials) read(g *Globals, getenv func(string) string) (push.Options, error) {
	o, err := f.credentials(getenv)
	if err != nil {
		return push.Options{}, err
	}
	// The region: --region, else AWS_REGION; the blog's script needs it too.
	if g.Region == "" {
		region := strings.TrimSpace(getenv(names.EnvRegion))
		if err := validate.First(
			validate.NotEmpty(names.EnvRegion, region, "set it to the repository's region, or pass --region"),
			validate.Region(names.EnvRegion, region),
		); err != nil {
			return push.Options{}, err
		}
		g.Region = region
	}
	o.Region, o.SessionName = g.Region, push.SessionName(getenv, time.Now())
	if f.sessionName != "" {
		o.SessionName = f.sessionName
	}
	return o, nil
}

// credentials reads what push assumes the role with: the job's OIDC token,
// or the CI user's keys (from the environment only, never a flag), and the
// role.
func (f *ciCredentials) credentials(getenv func(string) string) (push.Options, error) {
	keyID := strings.TrimSpace(getenv(names.EnvAccessKeyID))
	secret := getenv(names.EnvSecretAccessKey)
	roleARN, roleFrom := f.RoleARN, "--role-arn"
	if roleARN == "" {
		roleARN, roleFrom = strings.TrimSpace(getenv(names.EnvRoleARN)), names.EnvRoleARN
	}
	webIdentity, err := f.webIdentity(getenv, keyID != "" || secret != "")
	if err != nil {
		return push.Options{}, err
	}
	role := []error{
		validate.NotEmpty(roleFrom, roleARN, "set "+names.EnvRoleARN+" to the role ARN that setup printed, or pass --role-arn"),
		validate.RoleARN(roleFrom, roleARN),
	}
	if webIdentity != nil {
		keyID, secret = "", ""
		err = validate.First(role...)
	} else {
		err = validate.First(append([]error{
			validate.NotEmpty(names.EnvAccessKeyID, keyID, "set it to the access key ID that setup printed (a keyless setup needs none: run push in a CircleCI job, which sets "+circleci.EnvOIDCTokenV2+")"),
			validate.AccessKeyID(names.EnvAccessKeyID, keyID),
			validate.NotEmpty(names.EnvSecretAccessKey, secret, "set it to the secret access key that setup printed"),
			secretShape(secret),
		}, role...)...)
	}
	if err != nil {
		return push.Options{}, err
	}
	return push.Options{AccessKeyID: keyID, SecretAccessKey: secret, WebIdentity: webIdentity, RoleARN: roleARN}, nil
}

// webIdentity picks the credential: the job's OIDC token (V2 first) unless
// --auth keys or the keys are set; with --auth oidc the token must be there. It reads the
// token's claims, so that a bad token fails here, before any call, naming
// its variable and never showing it.
func (f *ciCredentials) webIdentity(getenv func(string) string, haveKeys bool) (*circleci.WebIdentity, error) {
	switch f.Auth {
	case "", "oidc", "keys":
	default:
		return nil, clierror.Usagef("--auth %q is invalid: use oidc (the job's OIDC token) or keys (the CI user's access key)", f.Auth)
	}
	if f.OrgID != "" {
		if err := validate.UUID("--circleci-org-id", f.OrgID, "CircleCI shows it under Organization Settings > Overview"); err != nil {
			return nil, err
		}
	}
	// GitHub Actions, GitLab, Bitbucket and Buildkite jobs, through the
	// CI provider seam.
	job, err := seamJob(context.Background(), getenv, jobRequest{Auth: f.Auth, HaveKeys: haveKeys, Audience: f.Audience, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	if job != nil {
		f.sessionName = job.SessionName
		if job.WebIdentity != nil && haveKeys {
			f.authNote = fmt.Sprintf("both %s's OIDC token and the CI user's keys are there: using the token, as --auth oidc asks", job.Provider.Title())
		}
		return job.WebIdentity, nil
	}
	if f.Audience != "" {
		return nil, clierror.Usagef("--audience is for GitHub Actions, GitLab, Bitbucket and Buildkite jobs; this is none (push recognises them by %s)", ciVariables)
	}
	variable, token := circleci.EnvOIDCTokenV2, strings.TrimSpace(getenv(circleci.EnvOIDCTokenV2))
	if token == "" {
		variable, token = circleci.EnvOIDCToken, strings.TrimSpace(getenv(circleci.EnvOIDCToken))
	}
	// Keys set in the job's environment were put there on purpose, for a
	// role set up to trust the CI user; a token CircleCI adds to every job
	// is ambient and does not outrank them. Only --auth oidc does.
	if f.Auth == "keys" || f.Auth == "" && haveKeys {
		if token != "" && haveKeys {
			why := "as --auth keys asks"
			if f.Auth == "" {
				why = "the role was set up for them; --auth oidc uses the token instead"
			}
			f.authNote = fmt.Sprintf("both %s and the CI user's keys are set: using the keys, %s", variable, why)
		}
		return nil, nil
	}
	switch {
	case token == "" && f.Auth == "oidc":
		return nil, clierror.Usagef("--auth oidc: neither %s nor %s is set: CircleCI sets them in each job (if a job lacks them, give it a context); "+
			"push also gets the token of GitHub Actions, GitLab, Bitbucket and Buildkite jobs, which it recognises by %s; elsewhere use the CI user's keys",
			circleci.EnvOIDCTokenV2, circleci.EnvOIDCToken, ciVariables)
	case token == "":
		return nil, nil
	}
	id, err := circleci.ReadToken(variable, token, time.Now(), strings.ToLower(f.OrgID))
	if err != nil {
		return nil, err
	}
	if haveKeys {
		f.authNote = fmt.Sprintf("both %s and the CI user's keys are set: using the OIDC token, as --auth oidc asks", variable)
	}
	return id, nil
}

// secretShape refuses a secret key with blanks (a copy-paste slip) without
// ever echoing it.
func secretShape(secret string) error {
	if strings.ContainsAny(secret, " \t\r\n") {
		return clierror.Usagef("%s contains blanks or line breaks: copy the secret access key again, without them", names.EnvSecretAccessKey)
	}
	return nil
}
