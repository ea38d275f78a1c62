package circlecitest

import (
	"encoding/json"
	"net/http"
)

// restriction is a context restriction: "group" (the organisation's
// members, made with the context), "project" (a project's ID) or
// "expression".
type restriction struct {
	id, typ, value, name string
}

type restrictionJSON struct {
	ID        string `json:"id"`
	ContextID string `json:"context_id"`
	Type      string `json:"restriction_type"`
	Value     string `json:"restriction_value"`
	ProjectID string `json:"project_id,omitempty"`
	Name      string `json:"name,omitempty"`
}

func (c *ctxState) restrictionJSON(r restriction) restrictionJSON {
	out := restrictionJSON{ID: r.id, ContextID: c.id, Type: r.typ, Value: r.value, Name: r.name}
	if r.typ == "project" {
		out.ProjectID = r.value
	}
	return out
}

// getProject answers GET /project/{slug}. Called with s.mu held.
func (s *Server) getProject(w http.ResponseWriter, r *http.Request, token, slug string) {
	proj, ok := s.projects[slug]
	if !ok {
		fail(w, http.StatusNotFound, msgProjectNotFound)
		return
	}
	if r.Method != http.MethodGet {
		fail(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	if s.isForbidden(token, r.Method, slug, orgOf(slug)) {
		fail(w, http.StatusForbidden, msgForbidden)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"id": proj.id, "slug": slug, "name": slug[len(orgOf(slug))+1:], "organization_id": s.orgIDOfLocked(orgOf(slug)),
	})
}

func (s *Server) orgIDOfLocked(slug string) string {
	for _, o := range s.orgs {
		if o.slug == slug {
			return o.id
		}
	}
	return ""
}

// restrictionRoutes answers /context/{id}/restrictions[/{rid}]: list (one
// answer, no pages), create (201; a project must be one of the context's
// organisation; the same restriction twice is refused) and delete. Called
// with s.mu held.
func (s *Server) restrictionRoutes(w http.ResponseWriter, r *http.Request, body []byte, c *ctxState, tail []string) {
	switch {
	case len(tail) == 0 && r.Method == http.MethodGet:
		items := []restrictionJSON{}
		for _, x := range c.restrictions {
			items = append(items, c.restrictionJSON(x))
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items})
	case len(tail) == 0 && r.Method == http.MethodPost:
		var in struct {
			Type  string `json:"restriction_type"`
			Value string `json:"restriction_value"`
		}
		if json.Unmarshal(body, &in) != nil || in.Type == "" || in.Value == "" {
			fail(w, http.StatusBadRequest, "The body must be a JSON object with restriction_type and restriction_value.")
			return
		}
		if in.Type != "project" {
			fail(w, http.StatusBadRequest, "Invalid restriction.")
			return
		}
		var proj *project
		for _, p := range s.projects {
			if p.id == in.Value && s.orgIDOfLocked(orgOf(p.slug)) == c.orgID {
				proj = p
			}
		}
		if proj == nil {
			fail(w, http.StatusBadRequest, "Invalid restriction.")
			return
		}
		for _, x := range c.restrictions {
			if x.typ == in.Type && x.value == in.Value {
				fail(w, http.StatusConflict, "Restriction already exists.")
				return
			}
		}
		x := restriction{id: newUUID(), typ: in.Type, value: in.Value, name: proj.slug}
		c.restrictions = append(c.restrictions, x)
		out := c.restrictionJSON(x)
		out.Name = "" // the create answer carries no name
		writeJSON(w, http.StatusCreated, out)
	case len(tail) == 1 && r.Method == http.MethodDelete:
		for i, x := range c.restrictions {
			if x.id == tail[0] {
				c.restrictions = append(c.restrictions[:i], c.restrictions[i+1:]...)
				writeJSON(w, http.StatusOK, message{"Context restriction deleted."})
				return
			}
		}
		fail(w, http.StatusNotFound, "Restriction not found.")
	case len(tail) <= 1:
		fail(w, http.StatusMethodNotAllowed, "Method not allowed.")
	default:
		fail(w, http.StatusNotFound, "Not found.")
	}
}

// ProjectID returns a project's ID, or "" if unknown.
func (s *Server) ProjectID(slug string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.projects[canonical(slug)]; ok {
		return p.id
	}
	return ""
}

// ContextProjectRestrictions returns the project IDs a context is
// restricted to, in the order they were added.
func (s *Server) ContextProjectRestrictions(contextID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contexts[contextID]
	if !ok {
		return nil
	}
	var out []string
	for _, x := range c.restrictions {
		if x.typ == "project" {
			out = append(out, x.value)
		}
	}
	return out
}
