// Package circleci is CircleCI as a CI provider of containerise, all of
// its knowledge in one place: the jobs a role trusts (Selector: the
// organisation's issuer and audience, the subject patterns of projects and
// branches), the job's OIDC token and its claims, the role session's name,
// the config file a project commits, and the API client through which
// setup writes the job's variables into a project or a context.
package circleci
