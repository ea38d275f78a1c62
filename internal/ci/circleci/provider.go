package circleci

import (
	"context"
	"strings"
	"time"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/jobconfig"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/validate"
)

// Provider is CircleCI as its jobs see it: the ci.Provider of CircleCI.
type Provider struct{}

var _ ci.AmbientToken = Provider{}

// Name is the CI's short name.
func (Provider) Name() string { return Name }

// Title is its name for people.
func (Provider) Title() string { return "CircleCI" }

// Detect: CircleCI sets CIRCLECI=true in every job.
func (Provider) Detect(getenv func(string) string) bool { return Detect(getenv) }

// SessionName names the role session after the job's run.
func (Provider) SessionName(getenv func(string) string, now time.Time) string {
	return SessionName(getenv, now)
}

// Variables are the variables the job reads from the project or a context.
func (Provider) Variables(keyless bool) []string { return jobconfig.Variables(keyless) }

// TokenVariables are the variables CircleCI sets in every job, V2 first.
func (Provider) TokenVariables() []string { return []string{EnvOIDCTokenV2, EnvOIDCToken} }

// ValidateOrgID checks an organization ID given by flag, before any call.
func ValidateOrgID(flag, id string) error {
	return validate.UUID(flag, id, "CircleCI shows it under Organization Settings > Overview")
}

// Token reads the job's OIDC token from the variable CircleCI sets in
// every job (V2 first, whose subject also names the branch) and checks it
// with ReadToken: issued by CircleCI, for job.Trusted's organisation when
// known, not expired.
func (Provider) Token(_ context.Context, job ci.Job) (*ci.Token, error) {
	variable, raw := EnvOIDCTokenV2, strings.TrimSpace(job.Getenv(EnvOIDCTokenV2))
	if raw == "" {
		variable, raw = EnvOIDCToken, strings.TrimSpace(job.Getenv(EnvOIDCToken))
	}
	switch {
	case raw == "" && job.Required:
		elsewhere := job.Elsewhere
		if elsewhere == "" {
			elsewhere = "outside CircleCI use the CI user's keys"
		}
		return nil, clierror.Usagef("--auth oidc: neither %s nor %s is set: CircleCI sets them in each job (if a job lacks them, give it a context); %s",
			EnvOIDCTokenV2, EnvOIDCToken, elsewhere)
	case raw == "":
		return nil, nil
	}
	return ReadToken(variable, raw, job.Now, strings.ToLower(job.Trusted))
}

// Config writes .circleci/config.yml through the seam, as ci-config --ci
// circleci asks: the job tags with ${CIRCLE_SHA1} unless told, installs
// this binary's release, and builds on the remote engine. The role is
// never embedded: the job reads AWS_IAM_ROLE_ARN like every variable.
func (Provider) Config(o ci.ConfigOptions) (ci.Config, error) {
	if o.RoleARN != "" {
		return ci.Config{}, clierror.Usagef("--role-arn is not embedded in a CircleCI config: the job reads AWS_IAM_ROLE_ARN from the project's environment variables or a context")
	}
	j := JobOptions{ConfigOptions: o, ReleaseURL: o.ReleaseURL, Builder: "auto"}
	if len(j.Tags) == 0 {
		j.Tags = []string{"${CIRCLE_SHA1}"}
	}
	if err := j.Validate(); err != nil {
		return ci.Config{}, err
	}
	if j.Trusted != "" {
		if !j.Keyless {
			return ci.Config{}, clierror.Usagef("--circleci-org-id is for keyless setups: add --auth oidc")
		}
		if err := ValidateOrgID("--circleci-org-id", j.Trusted); err != nil {
			return ci.Config{}, err
		}
		// CircleCI writes its IDs in lower case, and so do its tokens.
		j.Trusted = strings.ToLower(j.Trusted)
	}
	body, err := WriteConfig(j)
	if err != nil {
		return ci.Config{}, err
	}
	return ci.Config{Path: ConfigPath, Body: body}, nil
}
