package commands

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/resource"
)

// circleCITokenVars are where setup looks for the CircleCI API token, in
// order: never a flag, so the token stays out of process lists and shell
// histories.
var circleCITokenVars = []string{"CIRCLECI_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_CLI_TOKEN"}

// circleCIFlags say where setup writes the CI variables in CircleCI.
type circleCIFlags struct {
	project, context, org, contextID, host string
	create                                 bool
	// restrictTo: the projects a created context is restricted to (setup).
	restrictTo []string
	// The token and host, read from the environment by validate.
	token string
}

func (f *circleCIFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.project, "circleci-project", "", "write the variables into this CircleCI project's environment variables (gh/ORG/REPO, bb/ORG/REPO, or circleci/ORG_ID/PROJECT_ID); the token comes from CIRCLECI_TOKEN")
	fs.StringVar(&f.context, "circleci-context", "", "write the variables into this CircleCI context instead (with --circleci-org)")
	fs.StringVar(&f.org, "circleci-org", "", "the organization owning --circleci-context: its slug (gh/ORG, bb/ORG, circleci/ORG_ID) or its ID")
	fs.StringVar(&f.contextID, "circleci-context-id", "", "write the variables into the CircleCI context with this ID")
	fs.BoolVar(&f.create, "create-context", false, "create --circleci-context if the organization has none of that name")
	fs.StringVar(&f.host, "circleci-host", "", "CircleCI's address, https only (default: CIRCLECI_HOST, else https://circleci.com; CircleCI server installations have their own)")
}

// addRestrict registers --context-project (setup only).
func (f *circleCIFlags) addRestrict(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.restrictTo, "context-project", nil,
		"with --create-context: a project (slug, as for --circleci-project) whose jobs may use the context; setup restricts the context to these projects before writing to it; repeatable")
}

// target checks the flags and the token before any call; nil means the
// variables are printed, not written to CircleCI.
func (f *circleCIFlags) target(getenv func(string) string) (*resource.CircleCITarget, error) {
	given := 0
	for _, v := range []string{f.project, f.context, f.contextID} {
		if v != "" {
			given++
		}
	}
	if len(f.restrictTo) > 0 && f.context == "" {
		return nil, clierror.Usagef("--context-project goes with --circleci-context and --create-context")
	}
	switch {
	case given == 0:
		if f.org != "" || f.create || f.host != "" {
			return nil, clierror.Usagef("--circleci-org, --create-context and --circleci-host go with --circleci-project, --circleci-context or --circleci-context-id")
		}
		return nil, nil
	case given > 1:
		return nil, clierror.Usagef("give one of --circleci-project, --circleci-context and --circleci-context-id")
	}
	t := &resource.CircleCITarget{Project: f.project, Context: f.context, ContextID: f.contextID, CreateContext: f.create}
	switch {
	case f.project != "":
		if err := circleci.ValidateProjectSlug(f.project); err != nil {
			return nil, clierror.Usagef("--circleci-project: %v", err)
		}
		if f.org != "" || f.create {
			return nil, clierror.Usagef("--circleci-org and --create-context are for a context, not --circleci-project")
		}
	case f.context != "":
		for _, slug := range f.restrictTo {
			if err := circleci.ValidateProjectSlug(slug); err != nil {
				return nil, clierror.Usagef("--context-project: %v", err)
			}
		}
		if len(f.restrictTo) > 0 && !f.create {
			return nil, clierror.Usagef("--context-project goes with --create-context: setup restricts only a context it creates")
		}
		t.RestrictTo = f.restrictTo
		if err := circleci.ValidateContextName(f.context); err != nil {
			return nil, clierror.Usagef("--circleci-context: %v", err)
		}
		owner, err := ownerOf(f.org)
		if err != nil {
			return nil, err
		}
		t.Owner = owner
	default:
		if err := circleci.ValidateID("context ID", f.contextID); err != nil {
			return nil, clierror.Usagef("--circleci-context-id: %v", err)
		}
		if f.org != "" || f.create {
			return nil, clierror.Usagef("--circleci-org and --create-context go with --circleci-context NAME, not --circleci-context-id")
		}
	}
	for _, name := range circleCITokenVars {
		if f.token = strings.TrimSpace(getenv(name)); f.token != "" {
			break
		}
	}
	if f.token == "" {
		return nil, clierror.Usagef("writing to CircleCI needs an API token in CIRCLECI_TOKEN (or CIRCLE_TOKEN, CIRCLECI_CLI_TOKEN): create a personal API token in CircleCI's User Settings > Personal API Tokens")
	}
	if f.host == "" {
		f.host = strings.TrimSpace(getenv("CIRCLECI_HOST"))
	}
	if f.host != "" && !strings.HasPrefix(f.host, "https://") {
		return nil, clierror.Usagef("--circleci-host %q (or CIRCLECI_HOST) must be an https:// address: the token must not travel in the clear", f.host)
	}
	return t, nil
}

// ownerOf reads --circleci-org: a slug or an ID.
func ownerOf(org string) (circleci.Owner, error) {
	if org == "" {
		return circleci.Owner{}, clierror.Usagef("--circleci-context needs --circleci-org, the organization owning the context (gh/ORG, bb/ORG, circleci/ORG_ID, or its ID)")
	}
	if circleci.ValidateID("organization ID", org) == nil {
		return circleci.Owner{ID: org}, nil
	}
	if err := circleci.ValidateOrgSlug(org); err != nil {
		return circleci.Owner{}, clierror.Usagef("--circleci-org: %v", err)
	}
	return circleci.Owner{Slug: org}, nil
}

// client builds the CircleCI client for the checked flags; --verbose logs
// each request (method, path, status, never a header or a body).
func (f *circleCIFlags) client(g *Globals) (*circleci.Client, error) {
	opts := circleci.Options{Host: f.host, Token: f.token, UserAgent: "containerise/" + g.Version()}
	if g.Verbose {
		opts.Log = g.Err
	}
	c, err := circleci.New(opts)
	if err != nil {
		return nil, clierror.Usagef("CircleCI: %v", err)
	}
	return c, nil
}

// args are the flags that name the same CircleCI target again.
func (f *circleCIFlags) args() string {
	var args string
	for _, a := range []struct{ flag, value string }{
		{"--circleci-project", f.project}, {"--circleci-context", f.context}, {"--circleci-org", f.org},
		{"--circleci-context-id", f.contextID}, {"--circleci-host", f.host},
	} {
		if a.value != "" {
			args += " " + a.flag + " " + shellQuote(a.value)
		}
	}
	if f.create {
		args += " --create-context"
	}
	for _, slug := range f.restrictTo {
		args += " --context-project " + shellQuote(slug)
	}
	return args
}
