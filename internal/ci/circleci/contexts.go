package circleci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Owner names the owner of contexts: an organisation by slug (gh/acme) or
// by ID. Type is "organization" (the default when empty) or, on CircleCI
// server only, "account".
type Owner struct {
	Slug string
	ID   string
	Type string
}

func (o Owner) target() Target {
	return Target{Kind: TargetOrganization, Name: o.Slug, ID: o.ID}
}

func (o Owner) validate() error {
	switch {
	case o.Slug != "" && o.ID != "":
		return fmt.Errorf("give the context owner by slug or by ID, not both")
	case o.Slug != "":
		if err := ValidateOrgSlug(o.Slug); err != nil {
			return err
		}
	case o.ID != "":
		if err := ValidateID("organization ID", o.ID); err != nil {
			return err
		}
	default:
		return fmt.Errorf("the context owner is missing: an organization slug or ID")
	}
	if o.Type != "" && o.Type != "organization" && o.Type != "account" {
		return fmt.Errorf("owner type %q is invalid: organization or account", o.Type)
	}
	return nil
}

// Context is a CircleCI context: a named set of variables owned by an
// organisation.
type Context struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// ContextEnvVar is what CircleCI tells of a context variable. It never shows
// a context variable's value, not even masked: only its name and times.
type ContextEnvVar struct {
	Name      string    `json:"variable"`
	ContextID string    `json:"context_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func contextTarget(id string) Target { return Target{Kind: TargetContext, ID: id} }

// ListContexts returns all contexts of an owner, following pages.
func (c *Client) ListContexts(ctx context.Context, owner Owner) ([]Context, error) {
	if err := owner.validate(); err != nil {
		return nil, err
	}
	q := url.Values{}
	if owner.ID != "" {
		q.Set("owner-id", owner.ID)
	} else {
		q.Set("owner-slug", owner.Slug)
	}
	if owner.Type != "" {
		q.Set("owner-type", owner.Type)
	}
	ctxs, err := list[Context](ctx, c, call{
		method: http.MethodGet, path: "/context", query: q,
		op: "list contexts", target: owner.target(),
	})
	c.remember(ctxs...)
	return ctxs, err
}

// FindContext looks a context up by name among the owner's contexts.
func (c *Client) FindContext(ctx context.Context, owner Owner, name string) (Context, bool, error) {
	if err := ValidateContextName(name); err != nil {
		return Context{}, false, err
	}
	ctxs, err := c.ListContexts(ctx, owner)
	if err != nil {
		return Context{}, false, err
	}
	for _, x := range ctxs {
		if x.Name == name {
			return x, true, nil
		}
	}
	return Context{}, false, nil
}

// GetContext reads a context by ID (to check an ID given by the user, and
// learn its name for messages).
func (c *Client) GetContext(ctx context.Context, id string) (Context, error) {
	if err := ValidateID("context ID", id); err != nil {
		return Context{}, err
	}
	var x Context
	err := c.do(ctx, call{
		method: http.MethodGet, path: "/context/" + url.PathEscape(id),
		op: "read context", target: contextTarget(id),
	}, &x)
	c.remember(x)
	return x, err
}

// CreateContext creates a context. Creating is not idempotent: if an attempt
// gets no clear answer (no answer at all, or a 5xx), the context may exist
// anyway, so the client lists the owner's contexts and returns the one with
// this name if it is there, before it sends the request again. A rate-limited
// attempt is retried as usual (CircleCI did nothing).
func (c *Client) CreateContext(ctx context.Context, owner Owner, name string) (Context, error) {
	if err := owner.validate(); err != nil {
		return Context{}, err
	}
	if err := ValidateContextName(name); err != nil {
		return Context{}, err
	}
	type ownerBody struct {
		ID   string `json:"id,omitempty"`
		Slug string `json:"slug,omitempty"`
		Type string `json:"type"`
	}
	typ := owner.Type
	if typ == "" {
		typ = "organization"
	}
	body := struct {
		Name  string    `json:"name"`
		Owner ownerBody `json:"owner"`
	}{name, ownerBody{ID: owner.ID, Slug: owner.Slug, Type: typ}}
	target := owner.target()
	for attempt := 1; ; attempt++ {
		var x Context
		err := c.do(ctx, call{
			method: http.MethodPost, path: "/context", body: body, policy: retryRefused,
			op: fmt.Sprintf("create context %q", name), target: target,
		}, &x)
		if err == nil && x.ID == "" {
			err = &APIError{Kind: KindUnexpected, Op: fmt.Sprintf("create context %q", name), Target: target,
				Status: http.StatusOK, Attempts: attempt, Err: errors.New("CircleCI's answer holds no context ID")}
		}
		if err == nil {
			c.remember(x)
			return x, nil
		}
		if !uncertain(err) {
			return Context{}, err
		}
		// Uncertain: the context may have been made. Look before retrying.
		if found, ok, ferr := c.FindContext(ctx, owner, name); ferr == nil && ok {
			return found, nil
		} else if ferr != nil || attempt >= c.maxAttempts {
			// Unknown whether it exists: a rerun's FindContext will tell.
			return Context{}, err
		}
		if serr := c.sleep(ctx, c.backoff(attempt)); serr != nil {
			return Context{}, &APIError{Kind: KindCanceled, Op: fmt.Sprintf("create context %q", name), Target: target, Attempts: attempt, Err: serr}
		}
	}
}

// uncertain reports whether a failed create may have created the context
// all the same: no answer, a server error, or a success we could not read.
func uncertain(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Kind {
	case KindNetwork, KindServer:
		return true
	case KindUnexpected:
		return ae.Status >= 200 && ae.Status < 300
	}
	return false
}

// ListContextEnvVars lists a context's variables (names and times only).
func (c *Client) ListContextEnvVars(ctx context.Context, contextID string) ([]ContextEnvVar, error) {
	if err := ValidateID("context ID", contextID); err != nil {
		return nil, err
	}
	return list[ContextEnvVar](ctx, c, call{
		method: http.MethodGet, path: "/context/" + url.PathEscape(contextID) + "/environment-variable",
		op: "list environment variables", target: contextTarget(contextID),
	})
}

// SetContextEnvVar adds or replaces a context variable (PUT, so safe to
// retry). CircleCI answers with the variable's name and times, no value.
func (c *Client) SetContextEnvVar(ctx context.Context, contextID, name, value string) (ContextEnvVar, error) {
	if err := validateIDAndName(contextID, name); err != nil {
		return ContextEnvVar{}, err
	}
	var v ContextEnvVar
	err := c.do(ctx, call{
		method: http.MethodPut, path: contextVarPath(contextID, name),
		body: struct {
			Value string `json:"value"`
		}{value},
		op: "write environment variable " + name, target: contextTarget(contextID),
		secrets: []string{value},
	}, &v)
	if err == nil && v.Name == "" {
		// The documented answer may also be a bare {"message": ...}.
		v.Name, v.ContextID = name, contextID
	}
	return v, err
}

// DeleteContextEnvVar removes a context variable. A variable that is already
// absent is not an error (checked by listing the context after a 404).
func (c *Client) DeleteContextEnvVar(ctx context.Context, contextID, name string) error {
	if err := validateIDAndName(contextID, name); err != nil {
		return err
	}
	err := c.do(ctx, call{
		method: http.MethodDelete, path: contextVarPath(contextID, name),
		op: "delete environment variable " + name, target: contextTarget(contextID),
	}, nil)
	if !IsKind(err, KindNotFound) {
		return err
	}
	vars, lerr := c.ListContextEnvVars(ctx, contextID)
	if lerr != nil {
		return err
	}
	for _, v := range vars {
		if v.Name == name {
			return err
		}
	}
	return nil
}

func contextVarPath(id, name string) string {
	return "/context/" + url.PathEscape(id) + "/environment-variable/" + url.PathEscape(name)
}

func validateIDAndName(id, name string) error {
	if err := ValidateID("context ID", id); err != nil {
		return err
	}
	return ValidateEnvVarName(name)
}
