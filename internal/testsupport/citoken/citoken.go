// Package citoken mints tokens shaped like the OIDC job tokens of GitHub
// Actions, GitLab, Bitbucket Pipelines and Buildkite, for tests: the claims
// each CI documents, signed RS256 with circletoken's throwaway key (STS
// checks signatures; neither the fake nor moto does).
package citoken

import (
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/containerise/containerise/internal/testsupport/circletoken"
)

// times sets iat, nbf and exp (one hour) from iat, or now.
func times(c jwt.MapClaims, iat time.Time) jwt.MapClaims {
	if iat.IsZero() {
		iat = time.Now()
	}
	c["iat"] = iat.Unix()
	c["nbf"] = iat.Unix()
	c["exp"] = iat.Add(time.Hour).Unix()
	return c
}

// GitHub is a GitHub Actions job.
type GitHub struct {
	// Host is a GitHub Enterprise Server host; empty for github.com.
	Host string
	Repo string // OWNER/REPO
	// Ref is the ref the job builds: refs/heads/main, refs/tags/v1,
	// refs/pull/7/merge.
	Ref string
	// Environment, when set, is the job's environment: the sub names it
	// instead of the ref.
	Environment string
	// Event is the triggering event; "pull_request" makes the sub
	// repo:OWNER/REPO:pull_request.
	Event    string
	Audience string // default sts.amazonaws.com
	RunID    string
	IssuedAt time.Time
}

// Claims are the token's claims.
func (j GitHub) Claims() jwt.MapClaims {
	iss := "https://token.actions.githubusercontent.com"
	if j.Host != "" {
		iss = "https://" + j.Host + "/_services/token"
	}
	aud := j.Audience
	if aud == "" {
		aud = "sts.amazonaws.com"
	}
	event := j.Event
	if event == "" {
		event = "push"
	}
	sub := "repo:" + j.Repo + ":ref:" + j.Ref
	switch {
	case j.Environment != "":
		sub = "repo:" + j.Repo + ":environment:" + j.Environment
	case event == "pull_request":
		sub = "repo:" + j.Repo + ":pull_request"
	}
	run := j.RunID
	if run == "" {
		run = "9876543210"
	}
	owner := j.Repo
	for i := range owner {
		if owner[i] == '/' {
			owner = owner[:i]
			break
		}
	}
	c := jwt.MapClaims{
		"iss": iss, "aud": aud, "sub": sub, "jti": "7c0a5f1e-2b3d-4c5e-8f90-a1b2c3d4e5f6",
		"ref": j.Ref, "repository": j.Repo, "repository_owner": owner,
		"event_name": event, "run_id": run, "run_attempt": "1",
		"workflow": "containerise", "actor": "octocat",
	}
	if j.Environment != "" {
		c["environment"] = j.Environment
	}
	return times(c, j.IssuedAt)
}

// Mint signs the job's token.
func (j GitHub) Mint() string { return circletoken.Sign(j.Claims()) }

// GitLab is a GitLab CI job with an id_tokens token.
type GitLab struct {
	Host        string // default gitlab.com
	ProjectPath string // GROUP/PROJECT
	RefType     string // branch or tag; default branch
	Ref         string // the branch or tag name
	Audience    string
	Environment string
	IssuedAt    time.Time
}

// Claims are the token's claims.
func (j GitLab) Claims() jwt.MapClaims {
	host := j.Host
	if host == "" {
		host = "gitlab.com"
	}
	rt := j.RefType
	if rt == "" {
		rt = "branch"
	}
	ns := j.ProjectPath
	for i := len(ns) - 1; i >= 0; i-- {
		if ns[i] == '/' {
			ns = ns[:i]
			break
		}
	}
	c := jwt.MapClaims{
		"iss": "https://" + host, "aud": j.Audience,
		"sub":          "project_path:" + j.ProjectPath + ":ref_type:" + rt + ":ref:" + j.Ref,
		"project_path": j.ProjectPath, "namespace_path": ns, "project_id": "4242", "namespace_id": "42",
		"ref": j.Ref, "ref_type": rt, "ref_protected": "true", "pipeline_id": "1234567", "job_id": "7654321",
		"pipeline_source": "push", "user_login": "alice", "runner_environment": "gitlab-hosted",
	}
	if j.Environment != "" {
		c["environment"] = j.Environment
	}
	return times(c, j.IssuedAt)
}

// Mint signs the job's token.
func (j GitLab) Mint() string { return circletoken.Sign(j.Claims()) }

// Bitbucket is a Bitbucket Pipelines step with oidc: true.
type Bitbucket struct {
	Workspace     string
	WorkspaceUUID string // with braces: {...}
	RepoUUID      string // with braces
	StepUUID      string // with braces; a default stands in
	// DeploymentUUID, when set, is the step's deployment environment: the
	// sub names it after the repository.
	DeploymentUUID string
	Branch         string
	IssuedAt       time.Time
}

// Claims are the token's claims.
func (j Bitbucket) Claims() jwt.MapClaims {
	step := j.StepUUID
	if step == "" {
		step = "{5d6e7f80-91a2-4b3c-8d4e-5f6071829304}"
	}
	trim := func(u string) string {
		if len(u) > 1 && u[0] == '{' && u[len(u)-1] == '}' {
			return u[1 : len(u)-1]
		}
		return u
	}
	c := jwt.MapClaims{
		"iss":           "https://api.bitbucket.org/2.0/workspaces/" + j.Workspace + "/pipelines-config/identity/oidc",
		"aud":           "ari:cloud:bitbucket::workspace/" + trim(j.WorkspaceUUID),
		"sub":           j.RepoUUID + j.DeploymentUUID + ":" + step,
		"workspaceUuid": j.WorkspaceUUID, "repositoryUuid": j.RepoUUID, "stepUuid": step,
		"pipelineUuid": "{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}", "branchName": j.Branch,
	}
	if j.DeploymentUUID != "" {
		c["deploymentEnvironmentUuid"] = j.DeploymentUUID
	}
	return times(c, j.IssuedAt)
}

// Mint signs the step's token.
func (j Bitbucket) Mint() string { return circletoken.Sign(j.Claims()) }

// Buildkite is a Buildkite job's token from buildkite-agent oidc
// request-token.
type Buildkite struct {
	Org, Pipeline string
	// Ref is the build's ref: refs/heads/main, refs/tags/v1.
	Ref      string
	Branch   string // build_branch; default the branch of Ref
	Commit   string
	StepKey  string
	Audience string
	IssuedAt time.Time
}

// Claims are the token's claims.
func (j Buildkite) Claims() jwt.MapClaims {
	commit := j.Commit
	if commit == "" {
		commit = "0123456789abcdef0123456789abcdef01234567"
	}
	step := j.StepKey
	if step == "" {
		step = "push"
	}
	branch := j.Branch
	if branch == "" && len(j.Ref) > len("refs/heads/") && j.Ref[:len("refs/heads/")] == "refs/heads/" {
		branch = j.Ref[len("refs/heads/"):]
	}
	c := jwt.MapClaims{
		"iss": "https://agent.buildkite.com", "aud": j.Audience,
		"sub":               "organization:" + j.Org + ":pipeline:" + j.Pipeline + ":ref:" + j.Ref + ":commit:" + commit + ":step:" + step,
		"organization_slug": j.Org, "pipeline_slug": j.Pipeline, "build_number": "42",
		"build_branch": branch, "build_commit": commit, "step_key": step,
		"job_id": "0190e4c5-6f7a-4b8c-9d0e-1f2a3b4c5d6e", "agent_id": "0190e4c5-aaaa-4b8c-9d0e-1f2a3b4c5d6e",
	}
	return times(c, j.IssuedAt)
}

// Mint signs the job's token.
func (j Buildkite) Mint() string { return circletoken.Sign(j.Claims()) }
