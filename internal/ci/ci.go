// Package ci is the seam between containerise and the CI services whose
// jobs push. Each service (CircleCI first; GitHub Actions, GitLab,
// Bitbucket Pipelines and Buildkite next) lives in one package under
// internal/ci and implements the interfaces below; setup, teardown,
// policies, push and the config commands ask them for the facts and never
// know which CI they got.
//
// Two sides:
//   - AWS's side is a Selector: the jobs of one CI a role trusts. Setup
//     makes one IAM OIDC provider per distinct Issuer (its client IDs the
//     Audiences of the selectors sharing it) and gives the role one trust
//     statement per selector, so several CIs may trust one role.
//   - The job's side is a Provider: how push knows it runs in that CI, how
//     it gets the job's OIDC token and checks its claims, what the role
//     session is named after, which variables the job needs and how its
//     config file is written.
//
// Nothing here knows a command's flags: the command layer turns flags into
// selectors and config options, and words errors.
package ci

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerise/containerise/policies"
)

// Selector is a set of one CI's jobs that a role trusts: an organisation's
// projects, a repository's branches, an environment. It is data with rules,
// and makes no call.
type Selector interface {
	// Provider is the name of the CI it selects jobs of, as Provider.Name
	// says it: "circleci".
	Provider() string
	// Validate checks the selector's values before any call, naming each
	// for people; an error is a usage error (exit 2).
	Validate() error
	// Issuer is the URL of the OIDC issuer of the jobs' tokens (their iss
	// claim, https://...), which is also the URL of the IAM OIDC provider
	// that trusts them.
	Issuer() string
	// Audience is the aud claim the trust requires, which is also a client
	// ID of the IAM OIDC provider.
	Audience() string
	// Statement is the trust statement that lets exactly the selected jobs
	// assume the role (sts:AssumeRoleWithWebIdentity) through the IAM OIDC
	// provider providerARN. It always conditions the audience, and matches
	// the subject exactly: a wildcard must not let one project, repository
	// or branch admit another whose name merely starts the same.
	Statement(providerARN string) policies.Statement
	// Describe names the jobs for people, as a continuation of "OIDC
	// provider <host> for ...": "project <id> on branch main".
	Describe() string
}

// RoleTagger is a Selector that wants the role to carry tags naming what it
// trusts, so that teardown finds the selector's provider even after the
// role's trust no longer names it (setup switched the role back to keys).
type RoleTagger interface {
	// RoleTags are the tags, key to value.
	RoleTags() map[string]string
}

// issuerTagPrefix starts the key of the role tag naming the issuer a CI's
// selector trusts; the CI's name follows.
const issuerTagPrefix = "containerise/oidc-issuer/"

// IssuerTags are the role tags of a selector that names its issuer the
// generic way, "containerise/oidc-issuer/<ci>" = the issuer URL, for
// selectors to return as their RoleTags.
func IssuerTags(s Selector) map[string]string {
	return map[string]string{issuerTagPrefix + s.Provider(): s.Issuer()}
}

// TaggedIssuers are the issuers a role's tags name through IssuerTags,
// sorted by CI.
func TaggedIssuers(tags map[string]string) []string {
	var keys []string
	for k := range tags {
		if strings.HasPrefix(k, issuerTagPrefix) && strings.HasPrefix(tags[k], "https://") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, tags[k])
	}
	return out
}

// Provider is one CI service as its jobs see it.
type Provider interface {
	// Name is the CI's short name, as flags and output say it: "circleci",
	// "github", "gitlab", "bitbucket", "buildkite".
	Name() string
	// Title is its name for people: "CircleCI", "GitHub Actions".
	Title() string
	// Detect reports whether this process runs in one of the CI's jobs,
	// from the variables the CI itself sets (CIRCLECI, GITHUB_ACTIONS,
	// GITLAB_CI, BITBUCKET_BUILD_NUMBER, BUILDKITE).
	Detect(getenv func(string) string) bool
	// Token finds the job's OIDC token, or requests it from the CI, and
	// checks the claims it can before any AWS call (issuer, audience,
	// expiry). It returns (nil, nil) when the job has no token and none was
	// required; when job.Required, a missing token is an error that says
	// what the job's config lacks (a permission, a step option). Errors
	// never contain the token.
	Token(ctx context.Context, job Job) (*Token, error)
	// SessionName names the role session after the job's run (repository
	// and run ID, at most 64 characters of [\w+=,.@-]), so that CloudTrail
	// shows which job pushed.
	SessionName(getenv func(string) string, now time.Time) string
	// Variables are the names of the variables a job needs, in the order
	// they are shown, for the way it authenticates.
	Variables(keyless bool) []string
	// Config writes the CI's config file (its path in the repository is
	// Config.Path) with a job that installs containerise and pushes.
	Config(o ConfigOptions) (Config, error)
}

// Job is what push knows of the job it runs in when it asks for a token.
type Job struct {
	// Getenv reads the job's environment.
	Getenv func(string) string
	// HTTP requests a token from a CI that hands them out over HTTP
	// (GitHub Actions); nil means http.DefaultClient.
	HTTP *http.Client
	// Now is the time expiry is judged at.
	Now time.Time
	// Audience is the audience to ask for, or to expect; empty means the
	// CI's default for AWS.
	Audience string
	// Trusted, when known, is what the role trusts that the token can be
	// checked against before STS sees it (CircleCI: the organisation ID).
	Trusted string
	// Required: the token must be there (--auth oidc); otherwise a job
	// without one is no error.
	Required bool
	// Elsewhere, when set, replaces what a provider's error for a missing
	// required token suggests doing outside its jobs: the caller may know
	// more ways than the provider does.
	Elsewhere string
}

// AmbientToken is a Provider whose jobs all carry an OIDC token in a
// variable, unasked (CircleCI). Its audience is the CI's, not the job's to
// choose; a job that has no token was not set up for one; and a token is
// there even in jobs set up for keys, so push says when the keys win.
type AmbientToken interface {
	Provider
	// TokenVariables name the variables that carry the token, preferred
	// first.
	TokenVariables() []string
}

// AmbientVariable is the first of p's token variables that is set in the
// job, "" when none is.
func AmbientVariable(p AmbientToken, getenv func(string) string) string {
	for _, v := range p.TokenVariables() {
		if strings.TrimSpace(getenv(v)) != "" {
			return v
		}
	}
	return ""
}

// Token is a job's OIDC token with the claims push read from it, without
// checking its signature (STS does that). Token.Raw is a credential: it
// is sent to STS and never printed or logged.
type Token struct {
	Raw string
	// Source is where it came from, for messages: "CIRCLE_OIDC_TOKEN_V2",
	// "GitHub's token endpoint".
	Source string
	Claims Claims
}

// Claims are what push read from a token; none of them is secret.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	Expires  time.Time
	// Job says which job the token stands for, for messages: "project
	// <id>, ref refs/heads/main".
	Job string
	// Extra are CI-specific claims push may explain a refusal with (the
	// CircleCI organisation and project IDs, GitHub's repository).
	Extra map[string]string
}

// ConfigOptions say what the emitted config's job pushes, and how it
// authenticates. Each provider checks the values it embeds (shell and YAML
// safety, its own variable references in tags) and refuses bad ones with a
// usage error.
type ConfigOptions struct {
	// Keyless: the job assumes the role with its OIDC token; otherwise with
	// the CI user's keys (then it passes --auth keys).
	Keyless bool
	// RoleARN embeds the role; empty means the config reads the CI's usual
	// variable (AWS_IAM_ROLE_ARN).
	RoleARN string
	// Trusted is what push checks the token against before STS, when known
	// (CircleCI: the organisation ID).
	Trusted    string
	Repository string
	Tags       []string
	// Context and File are the build context and Dockerfile, relative to
	// the repository root; File may be empty.
	Context, File string
	// Image is the job's image, when the CI runs jobs in one.
	Image string
	// Install is the containerise version the job installs (latest, vX.Y.Z
	// or a commit); Version is this binary's, the default.
	Install, Version string
	// ReleaseURL holds one folder of release downloads per tag; empty
	// means the project's own (install.DefaultReleaseURL).
	ReleaseURL string
}

// Config is an emitted CI config file.
type Config struct {
	// Path is where it goes in the repository: ".circleci/config.yml".
	Path string
	Body []byte
}

// Vault is where a CI keeps the variables of its jobs, written by setup
// through the CI's API (CircleCI: a project's environment variables, or a
// context). A provider that has one offers it from its own package; setup
// writes the variables a job needs into it, checking each write, and
// teardown removes the ones setup wrote.
type Vault interface {
	// String names it for people: "CircleCI project gh/acme/app".
	String() string
	// Shown reads what the vault shows of the named variables: for each one
	// present, its value as shown (CircleCI masks a project variable to its
	// last four characters, and shows only a context variable's name: "").
	// Absent names are not in the map.
	Shown(ctx context.Context, names []string) (map[string]string, error)
	// Set writes one variable, creating or replacing it.
	Set(ctx context.Context, name, value string) error
	// Delete removes one variable; an absent one is no error.
	Delete(ctx context.Context, name string) error
}

// Detect returns the first of providers whose job this process runs in,
// nil when none.
func Detect(getenv func(string) string, providers ...Provider) Provider {
	for _, p := range providers {
		if p.Detect(getenv) {
			return p
		}
	}
	return nil
}

// Role session names: STS allows [\w+=,.@-], 2 to 64 characters.
const maxSessionName = 64

var sessionNameBad = regexp.MustCompile(`[^\w+=,.@-]+`)

// SessionName is a role session name for a CI's run, for providers to
// share: "<ci>-<repository>-<run>" (either part may be missing), else
// "containerise-<unix time>". Characters STS refuses become '-', and the
// name is cut to 64 characters, keeping the run whole.
func SessionName(ci, repository, run string, now time.Time) string {
	repo, build := sanitise(repository), sanitise(run)
	var prefix, suffix string
	switch {
	case repo != "" && build != "":
		prefix, suffix = ci+"-"+repo, "-"+build
	case build != "":
		prefix, suffix = ci, "-"+build
	case repo != "":
		prefix, suffix = ci+"-"+repo, "-"+strconv.FormatInt(now.Unix(), 10)
	default:
		prefix, suffix = "containerise", "-"+strconv.FormatInt(now.Unix(), 10)
	}
	if len(suffix) > maxSessionName/2 {
		suffix = suffix[:maxSessionName/2]
	}
	if len(prefix)+len(suffix) > maxSessionName {
		prefix = strings.TrimRight(prefix[:maxSessionName-len(suffix)], "-")
	}
	return prefix + suffix
}

func sanitise(s string) string {
	return strings.Trim(sessionNameBad.ReplaceAllString(strings.TrimSpace(s), "-"), "-")
}
