package circleci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Project is what setup needs of a CircleCI project: its ID (a UUID), which
// context restrictions name.
type Project struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// GetProject reads a project by slug (GET /project/{slug}).
func (c *Client) GetProject(ctx context.Context, slug string) (Project, error) {
	if err := ValidateProjectSlug(slug); err != nil {
		return Project{}, err
	}
	var p Project
	err := c.do(ctx, call{method: http.MethodGet, path: projectPath(slug), op: "read the project", target: projectTarget(slug)}, &p)
	if err == nil && p.ID == "" {
		err = &APIError{Kind: KindUnexpected, Op: "read the project", Target: projectTarget(slug), Status: http.StatusOK,
			Err: errors.New("CircleCI's answer holds no project ID")}
	}
	return p, err
}

// Restriction types a context restriction may have. A new context carries a
// "group" restriction for all the organisation's members; "project"
// restrictions name the projects whose jobs may use the context (any of
// them), and apply on top of it.
const (
	RestrictProject    = "project"
	RestrictGroup      = "group"
	RestrictExpression = "expression"
)

// ContextRestriction limits which jobs may use a context.
type ContextRestriction struct {
	ID        string `json:"id"`
	ContextID string `json:"context_id"`
	// Type is one of the Restrict* constants; Value is, for a project
	// restriction, the project's ID.
	Type  string `json:"restriction_type"`
	Value string `json:"restriction_value"`
	// Name is what the restriction names, for people (a project's name);
	// CircleCI fills it when listing.
	Name string `json:"name"`
}

func restrictionsPath(contextID string) string {
	return "/context/" + url.PathEscape(contextID) + "/restrictions"
}

// ListContextRestrictions lists a context's restrictions (one answer, no
// pages).
func (c *Client) ListContextRestrictions(ctx context.Context, contextID string) ([]ContextRestriction, error) {
	if err := ValidateID("context ID", contextID); err != nil {
		return nil, err
	}
	var out struct {
		Items []ContextRestriction `json:"items"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: restrictionsPath(contextID),
		op: "list the context's restrictions", target: contextTarget(contextID)}, &out)
	return out.Items, err
}

// RestrictContextToProject lets only the project's jobs (and those of any
// other project restriction) use the context. Creating a restriction is not
// idempotent: after an attempt without a clear answer, the client lists the
// restrictions and returns the one for this project if it is there before
// sending the request again.
func (c *Client) RestrictContextToProject(ctx context.Context, contextID, projectID string) (ContextRestriction, error) {
	if err := ValidateID("context ID", contextID); err != nil {
		return ContextRestriction{}, err
	}
	if err := ValidateID("project ID", projectID); err != nil {
		return ContextRestriction{}, err
	}
	op := "restrict the context to project " + projectID
	body := struct {
		Type  string `json:"restriction_type"`
		Value string `json:"restriction_value"`
	}{RestrictProject, projectID}
	for attempt := 1; ; attempt++ {
		var r ContextRestriction
		err := c.do(ctx, call{method: http.MethodPost, path: restrictionsPath(contextID), body: body, policy: retryRefused,
			op: op, target: contextTarget(contextID)}, &r)
		if err == nil {
			return r, nil
		}
		if !uncertain(err) {
			return ContextRestriction{}, err
		}
		if list, lerr := c.ListContextRestrictions(ctx, contextID); lerr == nil {
			for _, x := range list {
				if x.Type == RestrictProject && x.Value == projectID {
					return x, nil
				}
			}
			if attempt < c.maxAttempts {
				if serr := c.sleep(ctx, c.backoff(attempt)); serr != nil {
					return ContextRestriction{}, &APIError{Kind: KindCanceled, Op: op, Target: c.named(contextTarget(contextID)), Attempts: attempt, Err: serr}
				}
				continue
			}
		}
		return ContextRestriction{}, err
	}
}

// DeleteContextRestriction removes a restriction from a context.
func (c *Client) DeleteContextRestriction(ctx context.Context, contextID, restrictionID string) error {
	if err := ValidateID("context ID", contextID); err != nil {
		return err
	}
	if err := ValidateID("restriction ID", restrictionID); err != nil {
		return err
	}
	return c.do(ctx, call{method: http.MethodDelete, path: restrictionsPath(contextID) + "/" + url.PathEscape(restrictionID),
		op: fmt.Sprintf("delete restriction %s", restrictionID), target: contextTarget(contextID)}, nil)
}
