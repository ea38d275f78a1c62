package commands

import (
	"context"
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
	// Auth chooses the credential: "" (the keys when they are set, else
	// the job's OIDC token), "keys" or "oidc"; OrgID (--circleci-org-id),
	// when set, is what the role trusts that the token must match.
	Auth  string
	OrgID string
	// Audience is the audience a job asks its token for, or has it for
	// (GitLab's id_tokens); "": the CI's default.
	Audience string
	// authNote says which credential is used, when both were there.
	authNote string
	// sessionName names the role session after the job's run.
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
	o.Region, o.SessionName = g.Region, f.sessionName
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
			validate.NotEmpty(names.EnvAccessKeyID, keyID, "set it to the access key ID that setup printed ("+keylessHint()+")"),
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

// webIdentity picks the credential through the job's CI (see seamJob):
// its OIDC token unless the keys win, checked before any call, naming
// where it came from and never showing it.
func (f *ciCredentials) webIdentity(getenv func(string) string, haveKeys bool) (*push.WebIdentity, error) {
	switch f.Auth {
	case "", "oidc", "keys":
	default:
		return nil, clierror.Usagef("--auth %q is invalid: use oidc (the job's OIDC token) or keys (the CI user's access key)", f.Auth)
	}
	if f.OrgID != "" {
		if err := circleci.ValidateOrgID("--circleci-org-id", f.OrgID); err != nil {
			return nil, err
		}
	}
	job, err := seamJob(context.Background(), getenv, jobRequest{Auth: f.Auth, HaveKeys: haveKeys, Audience: f.Audience, Trusted: f.OrgID, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	f.sessionName, f.authNote = job.SessionName, job.Note
	return job.WebIdentity, nil
}

// secretShape refuses a secret key with blanks (a copy-paste slip) without
// ever echoing it.
func secretShape(secret string) error {
	if strings.ContainsAny(secret, " \t\r\n") {
		return clierror.Usagef("%s contains blanks or line breaks: copy the secret access key again, without them", names.EnvSecretAccessKey)
	}
	return nil
}
