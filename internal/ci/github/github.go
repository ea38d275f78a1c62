// Package github is GitHub Actions as a CI provider: the trust that lets a
// repository's workflow jobs assume the role with their OIDC token, how a
// job requests that token, and the workflow that pushes.
package github

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/idtoken"
	"github.com/containerise/containerise/internal/ci/jobconfig"
	"github.com/containerise/containerise/internal/ci/trust"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/policies"
)

const (
	// Issuer is github.com's OIDC issuer for Actions jobs.
	Issuer = "https://token.actions.githubusercontent.com"
	// Audience is what a job asks its token for, AWS's documented
	// audience for GitHub.
	Audience = "sts.amazonaws.com"
	name     = "github"
)

// IssuerFor is the issuer of a GitHub host's Actions tokens: github.com's,
// or a GitHub Enterprise Server's https://HOST/_services/token.
func IssuerFor(host string) string {
	if host == "" || host == "github.com" {
		return Issuer
	}
	return "https://" + host + "/_services/token"
}

// Selector is the jobs of some repositories a role trusts: all of their
// jobs, or those building some branches, or those using some environments
// (whose sub names the environment instead of the ref).
type Selector struct {
	// Host is a GitHub Enterprise Server's host name; empty for github.com.
	Host         string
	Repos        []string
	Environments []string
	Branches     []string
}

var (
	repoName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	hostName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?$`)
)

// Provider names the CI.
func (s Selector) Provider() string { return name }

// RoleTags name the issuer on the role, so that teardown finds its
// provider even after the role's trust stopped naming it.
func (s Selector) RoleTags() map[string]string { return ci.IssuerTags(s) }

// Validate checks the selector before any call.
func (s Selector) Validate() error {
	if len(s.Repos) == 0 {
		return clierror.Usagef("--github-repo is required: name the repository (OWNER/REPO) whose jobs may assume the role")
	}
	for _, r := range s.Repos {
		if !repoName.MatchString(r) {
			return clierror.Usagef("--github-repo %q is not OWNER/REPO", r)
		}
	}
	if s.Host != "" && !hostName.MatchString(s.Host) {
		return clierror.Usagef("--github-host %q is not a host name (github.example.com)", s.Host)
	}
	for _, e := range s.Environments {
		if err := trust.Plain("--github-environment", e, ":"); err != nil {
			return clierror.AsUsage(err)
		}
	}
	for _, b := range s.Branches {
		if err := trust.Branch(b); err != nil {
			return clierror.AsUsage(err)
		}
	}
	if len(s.Environments) > 0 && len(s.Branches) > 0 && IssuerFor(s.Host) != Issuer {
		return clierror.Usagef("--branch with --github-environment needs the token's ref claim, which IAM tests for github.com only: drop one of them for %s", s.Host)
	}
	return nil
}

// Issuer is the URL of the tokens' issuer and of the IAM OIDC provider.
func (s Selector) Issuer() string { return IssuerFor(s.Host) }

// Audience is the aud the trust requires.
func (s Selector) Audience() string { return Audience }

// Subjects are the sub claims (or, without branches or environments, the
// patterns) the trust admits. A repository cannot hold ':', so
// "repo:OWNER/REPO:*" admits no other repository.
func (s Selector) Subjects() []string {
	var out []string
	for _, r := range s.Repos {
		base := "repo:" + r + ":"
		switch {
		case len(s.Environments) > 0:
			for _, e := range s.Environments {
				out = append(out, base+"environment:"+e)
			}
		case len(s.Branches) > 0:
			for _, b := range s.Branches {
				out = append(out, base+"ref:refs/heads/"+b)
			}
		default:
			out = append(out, base+"*")
		}
	}
	return out
}

// Statement is the trust statement. Subjects go under StringLike with
// their '$' escaped (see trust.Literal): a selector's values hold no '*' or
// '?' (Validate), so a subject that names a branch or an environment is
// matched exactly, and only "any job of the repository" has a wildcard.
// (StringLike, not StringEquals, because evaluators disagree on whether
// StringEquals reads the ${$} escape.)
func (s Selector) Statement(providerARN string) policies.Statement {
	iss := s.Issuer()
	like := map[string]policies.Values{trust.Key(iss, "sub"): trust.Literals(s.Subjects())}
	if len(s.Environments) > 0 && len(s.Branches) > 0 {
		var refs []string
		for _, b := range s.Branches {
			refs = append(refs, "refs/heads/"+b)
		}
		like[trust.Key(iss, "ref")] = trust.Literals(refs)
	}
	return trust.Statement(providerARN, policies.Condition{
		"StringEquals": {trust.Key(iss, "aud"): {Audience}},
		"StringLike":   like,
	})
}

// Describe names the jobs for people.
func (s Selector) Describe() string {
	d := "GitHub Actions jobs of " + strings.Join(s.Repos, ", ")
	if s.Host != "" {
		d += " on " + s.Host
	}
	if len(s.Environments) > 0 {
		d += " in environment " + strings.Join(s.Environments, ", ")
	}
	if len(s.Branches) > 0 {
		d += " on branch " + strings.Join(s.Branches, ", ")
	}
	return d
}

// Provider is GitHub Actions as its jobs see it.
type Provider struct{}

// Name is the CI's short name.
func (Provider) Name() string { return name }

// Title is its name for people.
func (Provider) Title() string { return "GitHub Actions" }

// Detect: GitHub sets GITHUB_ACTIONS=true in every job.
func (Provider) Detect(getenv func(string) string) bool { return getenv("GITHUB_ACTIONS") == "true" }

// The variables through which GitHub lets a job request its token; they
// are there only when the workflow grants id-token: write.
const (
	envRequestURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	source          = "GitHub's token endpoint"
)

// Token requests the job's token from GitHub's token endpoint for the
// audience, then checks its issuer, audience and expiry.
func (p Provider) Token(ctx context.Context, job ci.Job) (*ci.Token, error) {
	reqURL, reqToken := job.Getenv(envRequestURL), job.Getenv(envRequestToken)
	if reqURL == "" || reqToken == "" {
		if !job.Required {
			return nil, nil
		}
		return nil, fmt.Errorf("GitHub gave this job no OIDC token (%s is not set): grant it with `permissions: id-token: write` in the workflow or the job", envRequestURL)
	}
	aud := job.Audience
	if aud == "" {
		aud = Audience
	}
	u, err := url.Parse(reqURL)
	if err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("%s is not an https URL", envRequestURL)
	}
	q := u.Query()
	q.Set("audience", aud)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "bearer "+reqToken)
	req.Header.Set("Accept", "application/json")
	client := job.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL holds no secret; the request token is in a header.
		return nil, fmt.Errorf("requesting the job's OIDC token from %s: %v", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the job's OIDC token from %s: %v", u.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s refused the job's OIDC token request: %s (does the workflow grant `permissions: id-token: write`?)", u.Host, resp.Status)
	}
	var answer struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Value == "" {
		return nil, fmt.Errorf("%s answered without a token", u.Host)
	}
	tok, err := idtoken.Parse(answer.Value, source)
	if err != nil {
		return nil, err
	}
	if err := idtoken.Check(tok, issuerOfServer(job.Getenv("GITHUB_SERVER_URL")), aud, job.Now); err != nil {
		return nil, err
	}
	tok.Claims.Job = describeJob(tok.Claims)
	return tok, nil
}

// issuerOfServer is the issuer of the tokens of the GitHub the job runs
// on (GITHUB_SERVER_URL): github.com's, or a server's /_services/token.
func issuerOfServer(server string) string {
	server = strings.TrimSuffix(server, "/")
	if server == "" || server == "https://github.com" {
		return Issuer
	}
	return server + "/_services/token"
}

func describeJob(c ci.Claims) string {
	d := "repository " + c.Extra["repository"]
	if env := c.Extra["environment"]; env != "" {
		d += ", environment " + env
	}
	if ref := c.Extra["ref"]; ref != "" {
		d += ", ref " + ref
	}
	return d
}

// SessionName names the role session after the workflow run.
func (Provider) SessionName(getenv func(string) string, now time.Time) string {
	run := getenv("GITHUB_RUN_ID")
	if a := getenv("GITHUB_RUN_ATTEMPT"); run != "" && a != "" {
		run += "-" + a
	}
	return idtoken.SessionName("github", getenv("GITHUB_REPOSITORY"), run, now)
}

// Variables are the variables the workflow reads (repository variables,
// and secrets for the keys).
func (Provider) Variables(keyless bool) []string { return jobconfig.Variables(keyless) }

// WorkflowPath is where the emitted workflow goes.
const WorkflowPath = ".github/workflows/containerise.yml"

// Config writes a workflow with one job that installs containerise and
// pushes. Keyless, it grants id-token: write; the role and region come
// from the repository's variables (vars.AWS_IAM_ROLE_ARN), or the role
// from o.RoleARN.
func (Provider) Config(o ci.ConfigOptions) (ci.Config, error) {
	if err := jobconfig.Check(o, "GITHUB_"); err != nil {
		return ci.Config{}, err
	}
	s, m, y := jobconfig.Str, jobconfig.Map, jobconfig.Seq
	env := m()
	add := func(k, v string) { env.Content = append(env.Content, s(k), s(v)) }
	if o.RoleARN == "" {
		add("AWS_IAM_ROLE_ARN", "${{ vars.AWS_IAM_ROLE_ARN }}")
	}
	add("AWS_REGION", "${{ vars.AWS_REGION }}")
	if !o.Keyless {
		add("AWS_IAM_USER_ACCESS_KEY_ID", "${{ secrets.AWS_IAM_USER_ACCESS_KEY_ID }}")
		add("AWS_IAM_USER_SECRET_ACCESS_KEY", "${{ secrets.AWS_IAM_USER_SECRET_ACCESS_KEY }}")
	}
	perms := m(s("contents"), s("read"))
	if o.Keyless {
		perms.Content = append(perms.Content,
			jobconfig.Comment(s("id-token"), "Lets the job request its OIDC token, which push exchanges for the role."), s("write"))
	}
	inst := jobconfig.InstallStep(o, install.GitHubPath)
	steps := y(m(s("uses"), s("actions/checkout@v4")))
	if inst.FromSource {
		// No release to download: go install needs Go on the runner.
		steps.Content = append(steps.Content, m(s("uses"), s("actions/setup-go@v5"), s("with"), m(s("go-version"), s("stable"))))
	}
	steps.Content = append(steps.Content,
		m(s("name"), s(inst.Name), s("run"), jobconfig.Block(inst.Command)),
		m(s("name"), s("Build and push to ECR"), s("run"), jobconfig.Block(jobconfig.PushCommand(o, "${GITHUB_SHA}", "$")+"\n")),
	)
	job := m(
		s("runs-on"), s("ubuntu-latest"),
		s("env"), env,
		s("steps"), steps,
	)
	header := "Generated by 'containerise ci-config --ci github'.\n"
	if o.Keyless {
		header += "Keyless: set the repository variables AWS_IAM_ROLE_ARN and AWS_REGION\n" +
			"(printed by 'containerise setup --auth oidc --github-repo ...'); no access key."
	} else {
		header += "Set the repository variables AWS_IAM_ROLE_ARN and AWS_REGION and the\n" +
			"secrets AWS_IAM_USER_ACCESS_KEY_ID and AWS_IAM_USER_SECRET_ACCESS_KEY\n" +
			"(printed by 'containerise setup')."
	}
	root := m(
		jobconfig.Comment(s("name"), header), s("containerise"),
		s("on"), m(s("push"), m(), s("workflow_dispatch"), m()),
		s("permissions"), perms,
		s("jobs"), m(s("push"), job),
	)
	body, err := jobconfig.Encode(root, "GitHub Actions workflow")
	if err != nil {
		return ci.Config{}, err
	}
	return ci.Config{Path: WorkflowPath, Body: body}, nil
}
