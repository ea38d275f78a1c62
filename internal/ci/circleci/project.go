package circleci

import (
	"context"
	"net/http"
	"net/url"
)

// ProjectEnvVar is a project environment variable as CircleCI shows it: the
// value masked ("xxxx" and the last four characters; see CompareMasked).
type ProjectEnvVar struct {
	Name        string `json:"name"`
	MaskedValue string `json:"value"`
}

func projectTarget(slug string) Target { return Target{Kind: TargetProject, Name: slug} }

// ListProjectEnvVars returns all of a project's variables, following pages.
// A KindNotFound error means the project (not a variable) was not found or
// is hidden from the token's user.
func (c *Client) ListProjectEnvVars(ctx context.Context, slug string) ([]ProjectEnvVar, error) {
	if err := ValidateProjectSlug(slug); err != nil {
		return nil, err
	}
	return list[ProjectEnvVar](ctx, c, call{
		method: http.MethodGet, path: projectPath(slug) + "/envvar",
		op: "list environment variables", target: projectTarget(slug),
	})
}

// GetProjectEnvVar returns one variable, masked. CircleCI answers 404 both
// for a missing variable and a missing project; ListProjectEnvVars tells
// them apart.
func (c *Client) GetProjectEnvVar(ctx context.Context, slug, name string) (ProjectEnvVar, error) {
	if err := validateSlugAndName(slug, name); err != nil {
		return ProjectEnvVar{}, err
	}
	var v ProjectEnvVar
	err := c.do(ctx, call{
		method: http.MethodGet, path: projectPath(slug) + "/envvar/" + url.PathEscape(name),
		op: "read environment variable " + name, target: projectTarget(slug),
	}, &v)
	return v, err
}

// SetProjectEnvVar writes a variable, creating it or replacing the value of
// one with the same name (CircleCI's POST replaces by name), so it is safe to
// retry. It returns the variable as CircleCI now shows it, masked.
func (c *Client) SetProjectEnvVar(ctx context.Context, slug, name, value string) (ProjectEnvVar, error) {
	if err := validateSlugAndName(slug, name); err != nil {
		return ProjectEnvVar{}, err
	}
	var v ProjectEnvVar
	err := c.do(ctx, call{
		method: http.MethodPost, path: projectPath(slug) + "/envvar",
		body: struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		}{name, value},
		op: "write environment variable " + name, target: projectTarget(slug),
		secrets: []string{value},
	}, &v)
	return v, err
}

// DeleteProjectEnvVar deletes a variable. A variable that is already absent
// is not an error: on a 404 the client lists the project's variables, and
// succeeds if the project exists without it (a retried DELETE whose first
// answer was lost ends here too).
func (c *Client) DeleteProjectEnvVar(ctx context.Context, slug, name string) error {
	if err := validateSlugAndName(slug, name); err != nil {
		return err
	}
	err := c.do(ctx, call{
		method: http.MethodDelete, path: projectPath(slug) + "/envvar/" + url.PathEscape(name),
		op: "delete environment variable " + name, target: projectTarget(slug),
	}, nil)
	if !IsKind(err, KindNotFound) {
		return err
	}
	vars, lerr := c.ListProjectEnvVars(ctx, slug)
	if lerr != nil {
		return err // the project itself is missing or unreadable: report the delete's 404
	}
	for _, v := range vars {
		if v.Name == name {
			return err
		}
	}
	return nil
}

func validateSlugAndName(slug, name string) error {
	if err := ValidateProjectSlug(slug); err != nil {
		return err
	}
	return ValidateEnvVarName(name)
}
