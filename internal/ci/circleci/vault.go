package circleci

import (
	"context"
	"time"

	"github.com/containerise/containerise/internal/ci"
)

// VaultAPI is the part of the client a Vault uses.
type VaultAPI interface {
	ListProjectEnvVars(ctx context.Context, slug string) ([]ProjectEnvVar, error)
	SetProjectEnvVar(ctx context.Context, slug, name, value string) (ProjectEnvVar, error)
	DeleteProjectEnvVar(ctx context.Context, slug, name string) error
	ListContextEnvVars(ctx context.Context, contextID string) ([]ContextEnvVar, error)
	SetContextEnvVar(ctx context.Context, contextID, name, value string) (ContextEnvVar, error)
	DeleteContextEnvVar(ctx context.Context, contextID, name string) error
}

// Vault is where CircleCI keeps a job's variables: a project's environment
// variables, or a context's. Setup writes into it, teardown removes from it.
type Vault struct {
	api       VaultAPI
	project   string // a project's slug; "" for a context
	contextID string
}

var _ ci.Vault = (*Vault)(nil)

// ProjectVault is a project's environment variables.
func ProjectVault(api VaultAPI, slug string) *Vault { return &Vault{api: api, project: slug} }

// ContextVault is a context's variables.
func ContextVault(api VaultAPI, contextID string) *Vault {
	return &Vault{api: api, contextID: contextID}
}

// String names the vault for people.
func (v *Vault) String() string {
	if v.project != "" {
		return "CircleCI project " + v.project
	}
	return "CircleCI context " + v.contextID
}

// Variables reads what CircleCI shows of every variable: a project
// variable's value masked to its last four characters; of a context
// variable only its name ("") and when it was last written, which a
// project does not show (updated is then empty).
func (v *Vault) Variables(ctx context.Context) (shown map[string]string, updated map[string]time.Time, err error) {
	shown, updated = map[string]string{}, map[string]time.Time{}
	if v.project != "" {
		vars, err := v.api.ListProjectEnvVars(ctx, v.project)
		for _, e := range vars {
			shown[e.Name] = e.MaskedValue
		}
		return shown, updated, err
	}
	vars, err := v.api.ListContextEnvVars(ctx, v.contextID)
	for _, e := range vars {
		shown[e.Name], updated[e.Name] = "", e.UpdatedAt
	}
	return shown, updated, err
}

// Shown reads what CircleCI shows of the named variables.
func (v *Vault) Shown(ctx context.Context, names []string) (map[string]string, error) {
	all, _, err := v.Variables(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		if s, ok := all[n]; ok {
			out[n] = s
		}
	}
	return out, nil
}

// Set writes one variable, creating or replacing it.
func (v *Vault) Set(ctx context.Context, name, value string) error {
	var err error
	if v.project != "" {
		_, err = v.api.SetProjectEnvVar(ctx, v.project, name, value)
	} else {
		_, err = v.api.SetContextEnvVar(ctx, v.contextID, name, value)
	}
	return err
}

// Delete removes one variable; an absent one is no error.
func (v *Vault) Delete(ctx context.Context, name string) error {
	if v.project != "" {
		return v.api.DeleteProjectEnvVar(ctx, v.project, name)
	}
	return v.api.DeleteContextEnvVar(ctx, v.contextID, name)
}
