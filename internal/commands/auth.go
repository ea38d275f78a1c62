package commands

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/provision"
)

// authFlags choose how CI assumes the role: the blog's user keys, or
// keyless, with CircleCI's OIDC token and what the role trusts of it.
// setup, policies and circleci-config share them, so that policies prints
// what setup makes and the job matches it.
type authFlags struct {
	mode       string
	org        string
	projects   []string
	anyProject bool
	branches   []string
	// others are the other CIs' selector flags (ciflags.go); selectors
	// is what options made of them.
	others    ciTrustFlags
	selectors []ci.Selector

	trust bool // the command takes what the role trusts (projects, branches)
}

// The flags' names, as errors and hints say them.
const (
	flagAuth       = "--auth"
	flagOrg        = "--circleci-org-id"
	flagProject    = "--circleci-project-id"
	flagAnyProject = "--any-project"
	flagBranch     = "--branch"
)

// add registers --auth and --circleci-org-id and, with trust, the flags
// that say which jobs the role trusts.
func (a *authFlags) add(f *pflag.FlagSet, trust bool) {
	a.trust = trust
	f.StringVar(&a.mode, "auth", string(provision.AuthKeys),
		"how CI assumes the role: keys (an IAM user's access key, the blog's way) or oidc (keyless: the CI job's OIDC token; recommended)")
	f.StringVar(&a.org, "circleci-org-id", "", "with --auth oidc: the CircleCI organization ID, a UUID (Organization Settings > Overview)")
	if !trust {
		return
	}
	f.StringArrayVar(&a.projects, "circleci-project-id", nil,
		"with --auth oidc: a CircleCI project ID whose jobs may assume the role, a UUID (Project Settings > Overview); repeatable")
	f.BoolVar(&a.anyProject, "any-project", false, "with --auth oidc: let every project of the organization assume the role, instead of naming them")
	f.StringArrayVar(&a.branches, "branch", nil,
		"with --auth oidc: only jobs building this git branch may assume the role, in every CI named (CircleCI: matched in CIRCLE_OIDC_TOKEN_V2); repeatable")
	a.others.add(f)
}

// keyless reports whether --auth oidc was given (after options checked it).
func (a *authFlags) keyless() bool { return a.mode == string(provision.AuthOIDC) }

// options checks the flags before any call and returns the mode and, keyless,
// what the role trusts. requireOrg: the command cannot work without the
// organization (setup, policies); circleci-config can.
func (a *authFlags) options(requireOrg bool) (provision.Auth, circleci.Selector, error) {
	var c circleci.Selector
	switch provision.Auth(a.mode) {
	case provision.AuthKeys:
		for _, f := range []struct {
			name string
			set  bool
		}{{flagOrg, a.org != ""}, {flagProject, len(a.projects) > 0}, {flagAnyProject, a.anyProject}, {flagBranch, len(a.branches) > 0}, {a.others.set(), a.others.set() != ""}} {
			if f.set {
				return "", c, clierror.Usagef("%s is for keyless setups: add %s oidc", f.name, flagAuth)
			}
		}
		return provision.AuthKeys, c, nil
	case provision.AuthOIDC:
	default:
		return "", c, clierror.Usagef("%s %q is invalid: use keys (the CI user's access key) or oidc (keyless, with the CI job's OIDC token)", flagAuth, a.mode)
	}
	if a.org == "" && requireOrg && a.others.set() == "" {
		return "", c, clierror.Usagef("%s oidc needs %s: the CircleCI organization ID, shown in CircleCI under Organization Settings > Overview "+
			"(or, for other CIs, --github-repo, --gitlab-project, --bitbucket-workspace or --buildkite-org)", flagAuth, flagOrg)
	}
	if a.org != "" {
		if err := circleci.ValidateOrgID(flagOrg, a.org); err != nil {
			return "", c, err
		}
	}
	// CircleCI writes its IDs in lower case, and so do its tokens.
	c.OrgID, c.AnyProject = strings.ToLower(a.org), a.anyProject
	if !a.trust {
		return provision.AuthOIDC, c, nil
	}
	switch {
	case a.org == "" && (len(a.projects) > 0 || a.anyProject):
		return "", c, clierror.Usagef("%s and %s need %s: the organization the projects belong to", flagProject, flagAnyProject, flagOrg)
	case a.org == "":
		// Other CIs only: no CircleCI trust.
	case len(a.projects) == 0 && !a.anyProject:
		return "", c, clierror.Usagef("%s oidc needs %s (repeatable): the project whose jobs may assume the role, shown in CircleCI under Project Settings > Overview; or %s to trust every project of the organization",
			flagAuth, flagProject, flagAnyProject)
	case len(a.projects) > 0 && a.anyProject:
		return "", c, clierror.Usagef("%s and %s exclude each other: name the projects, or trust them all", flagProject, flagAnyProject)
	}
	for _, p := range a.projects {
		if err := validate.UUID(flagProject, p, "CircleCI shows it under Project Settings > Overview"); err != nil {
			return "", c, err
		}
		c.ProjectIDs = append(c.ProjectIDs, strings.ToLower(p))
	}
	for _, b := range a.branches {
		if err := validate.Branch(flagBranch, b); err != nil {
			return "", c, err
		}
		c.Branches = append(c.Branches, strings.TrimPrefix(b, "refs/heads/"))
	}
	var err error
	if a.selectors, err = a.others.selectors(c.Branches); err != nil {
		return "", c, err
	}
	return provision.AuthOIDC, c, nil
}

// authArgs are the flags that ask for this authentication again, for the
// command lines hints suggest; none for keys, the default.
func authArgs(auth provision.Auth, c circleci.Selector) string {
	if auth != provision.AuthOIDC {
		return ""
	}
	args := " " + flagAuth + " oidc"
	if c.OrgID != "" {
		args += " " + flagOrg + " " + c.OrgID
	}
	for _, p := range c.ProjectIDs {
		args += " " + flagProject + " " + p
	}
	if c.AnyProject {
		args += " " + flagAnyProject
	}
	for _, b := range c.Branches {
		args += " " + flagBranch + " " + shellQuote(b)
	}
	return args
}
