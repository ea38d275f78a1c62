package circlecitest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The fake's own wording; CircleCI's exact messages may differ, the shape
// ({"message": ...}) and the statuses are what the documentation gives.
const (
	msgUnauthorized    = "You must log in first."
	msgForbidden       = "Permission denied."
	msgProjectNotFound = "Project not found."
	msgContextNotFound = "Context not found."
	msgOrgNotFound     = "Organization not found."
	msgVarNotFound     = "Environment variable not found."
	msgVarDeleted      = "Environment variable deleted."
)

var envVarNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// serve logs the request, applies any fault, then handles it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	token := r.Header.Get("Circle-Token")

	s.mu.Lock()
	_, authorized := s.tokens[token]
	known := make([]string, 0, len(s.tokens)+1)
	for t := range s.tokens {
		known = append(known, t)
	}
	s.mu.Unlock()
	if token != "" {
		known = append(known, token)
	}

	entry := Request{
		Method:         r.Method,
		Path:           redact(r.URL.Path, known),
		Query:          redact(r.URL.RawQuery, known),
		TokenHeader:    token != "",
		Authorized:     authorized,
		TokenElsewhere: tokenElsewhere(r, body, known),
	}
	f := s.takeFault(r, body)
	entry.Fault = f != nil
	idx := s.appendLog(entry)

	if f != nil && f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The client gave up. Returning would answer 200 with an
			// empty body if the connection still works; cut it instead.
			t.Stop()
			dropConnection(w)
			return
		case <-s.closed:
			t.Stop()
			dropConnection(w)
			return
		}
	}
	switch {
	case f != nil && f.Drop:
		dropConnection(w)
		return
	case f != nil && f.Status != 0:
		if f.Applied {
			s.handle(httptest.NewRecorder(), r, body, token, authorized)
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		msg := f.Message
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		writeJSON(w, f.Status, message{msg})
		s.setStatus(idx, f.Status)
		return
	case f != nil && f.DropAfter:
		s.handle(httptest.NewRecorder(), r, body, token, authorized)
		dropConnection(w)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	s.handle(sw, r, body, token, authorized)
	s.setStatus(idx, sw.status)
}

func (s *Server) appendLog(e Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, e)
	return len(s.log) - 1
}

func (s *Server) setStatus(idx, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < len(s.log) {
		s.log[idx].Status = status
	}
}

// redact replaces any token of 8 characters or more in s.
func redact(s string, tokens []string) string {
	for _, t := range tokens {
		if len(t) >= 8 {
			s = strings.ReplaceAll(s, t, "[token]")
		}
	}
	return s
}

func tokenElsewhere(r *http.Request, body []byte, tokens []string) bool {
	for _, t := range tokens {
		if len(t) < 8 {
			continue
		}
		if strings.Contains(r.RequestURI, t) || bytes.Contains(body, []byte(t)) {
			return true
		}
		for name, vals := range r.Header {
			if http.CanonicalHeaderKey(name) == "Circle-Token" {
				continue
			}
			if strings.Contains(name, t) || strings.Contains(strings.Join(vals, "\n"), t) {
				return true
			}
		}
	}
	return false
}

func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // the server closes the connection
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

type message struct {
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) { writeJSON(w, status, message{msg}) }

// handle routes an API request.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, body []byte, token string, authorized bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v2/")
	if !ok {
		fail(w, http.StatusNotFound, "Not found.")
		return
	}
	if !authorized {
		fail(w, http.StatusUnauthorized, msgUnauthorized)
		return
	}
	p := strings.Split(rest, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(p) == 1 && p[0] == "me":
		if r.Method != http.MethodGet {
			fail(w, http.StatusMethodNotAllowed, "Method not allowed.")
			return
		}
		u := s.tokens[token]
		writeJSON(w, http.StatusOK, map[string]string{"id": u.id, "login": u.login, "name": u.login})
	case len(p) == 4 && p[0] == "project":
		s.getProject(w, r, token, canonical(strings.Join(p[1:4], "/")))
	case len(p) >= 5 && p[0] == "project" && p[4] == "envvar":
		s.projectEnvVar(w, r, body, token, canonical(strings.Join(p[1:4], "/")), p[5:])
	case len(p) == 1 && p[0] == "context":
		if r.Method == http.MethodPost {
			s.createContext(w, body, token)
		} else if r.Method == http.MethodGet {
			s.listContexts(w, r, token)
		} else {
			fail(w, http.StatusMethodNotAllowed, "Method not allowed.")
		}
	case len(p) >= 2 && p[0] == "context":
		s.contextRoutes(w, r, body, token, p[1], p[2:])
	default:
		fail(w, http.StatusNotFound, "Not found.")
	}
}

func (s *Server) isForbidden(token, method string, keys ...string) bool {
	for _, k := range keys {
		if s.forbidden[token][k] || (method != http.MethodGet && s.forbiddenWrites[token][k]) {
			return true
		}
	}
	return false
}

func (s *Server) projectEnvVar(w http.ResponseWriter, r *http.Request, body []byte, token, slug string, tail []string) {
	proj, ok := s.projects[slug]
	if !ok {
		fail(w, http.StatusNotFound, msgProjectNotFound)
		return
	}
	if s.isForbidden(token, r.Method, slug, orgOf(slug)) {
		fail(w, http.StatusForbidden, msgForbidden)
		return
	}
	type envVar struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		CreatedAt string `json:"created-at"`
	}
	shown := func(name string) envVar {
		return envVar{Name: name, Value: mask(proj.vars[name]), CreatedAt: s.now().Format(time.RFC3339)}
	}
	switch {
	case len(tail) == 0 && r.Method == http.MethodGet:
		writePage(s, w, r, sortedKeys(proj.vars), shown)
	case len(tail) == 0 && r.Method == http.MethodPost:
		var in struct {
			Name  *string `json:"name"`
			Value *string `json:"value"`
		}
		if json.Unmarshal(body, &in) != nil || in.Name == nil || in.Value == nil {
			fail(w, http.StatusBadRequest, "The body must be a JSON object with name and value.")
			return
		}
		if !envVarNameRE.MatchString(*in.Name) {
			fail(w, http.StatusBadRequest, "Invalid environment variable name.")
			return
		}
		// The same name replaces the value, as in CircleCI's web app.
		proj.vars[*in.Name] = *in.Value
		writeJSON(w, http.StatusCreated, shown(*in.Name))
	case len(tail) == 1 && tail[0] != "" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		name := tail[0]
		if _, ok := proj.vars[name]; !ok {
			fail(w, http.StatusNotFound, msgVarNotFound)
			return
		}
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, shown(name))
			return
		}
		delete(proj.vars, name)
		writeJSON(w, http.StatusOK, message{msgVarDeleted})
	case len(tail) <= 1:
		fail(w, http.StatusMethodNotAllowed, "Method not allowed.")
	default:
		fail(w, http.StatusNotFound, "Not found.")
	}
}

type contextJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func (c *ctxState) json() contextJSON { return contextJSON{c.id, c.name, c.created} }

func (s *Server) orgByQuery(w http.ResponseWriter, id, slug, typ string) (*org, bool) {
	if typ != "" && typ != "organization" && typ != "account" {
		fail(w, http.StatusBadRequest, "Invalid owner type.")
		return nil, false
	}
	if (id == "") == (slug == "") {
		fail(w, http.StatusBadRequest, "Give exactly one of owner-id and owner-slug.")
		return nil, false
	}
	for _, o := range s.orgs {
		if (id != "" && o.id == id) || (slug != "" && o.slug == canonical(slug)) {
			return o, true
		}
	}
	fail(w, http.StatusNotFound, msgOrgNotFound)
	return nil, false
}

func (s *Server) orgContexts(o *org) []*ctxState {
	var cs []*ctxState
	for _, c := range s.contexts {
		if c.orgID == o.id {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if !cs[i].created.Equal(cs[j].created) {
			return cs[i].created.Before(cs[j].created)
		}
		return cs[i].id < cs[j].id
	})
	return cs
}

func (s *Server) listContexts(w http.ResponseWriter, r *http.Request, token string) {
	q := r.URL.Query()
	o, ok := s.orgByQuery(w, q.Get("owner-id"), q.Get("owner-slug"), q.Get("owner-type"))
	if !ok {
		return
	}
	if s.isForbidden(token, r.Method, o.slug) {
		fail(w, http.StatusForbidden, msgForbidden)
		return
	}
	writePage(s, w, r, s.orgContexts(o), (*ctxState).json)
}

func (s *Server) createContext(w http.ResponseWriter, body []byte, token string) {
	var in struct {
		Name  string `json:"name"`
		Owner struct {
			ID   string `json:"id"`
			Slug string `json:"slug"`
			Type string `json:"type"`
		} `json:"owner"`
	}
	if json.Unmarshal(body, &in) != nil || in.Name == "" {
		fail(w, http.StatusBadRequest, "The body must be a JSON object with name and owner.")
		return
	}
	o, ok := s.orgByQuery(w, in.Owner.ID, in.Owner.Slug, in.Owner.Type)
	if !ok {
		return
	}
	if s.isForbidden(token, http.MethodPost, o.slug) {
		fail(w, http.StatusForbidden, msgForbidden)
		return
	}
	for _, c := range s.orgContexts(o) {
		if c.name == in.Name {
			fail(w, http.StatusConflict, "A context with this name already exists.")
			return
		}
	}
	writeJSON(w, http.StatusOK, s.addContextLocked(o, in.Name).json())
}

func (s *Server) contextRoutes(w http.ResponseWriter, r *http.Request, body []byte, token, id string, tail []string) {
	c, ok := s.contexts[id]
	if !ok {
		fail(w, http.StatusNotFound, msgContextNotFound)
		return
	}
	if s.isForbidden(token, r.Method, id, s.orgs[c.orgID].slug) {
		fail(w, http.StatusForbidden, msgForbidden)
		return
	}
	type varJSON struct {
		Variable  string    `json:"variable"`
		ContextID string    `json:"context_id"`
		CreatedAt time.Time `json:"created_at"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	info := func(name string) varJSON {
		v := c.vars[name]
		return varJSON{name, c.id, v.created, v.updated}
	}
	switch {
	case len(tail) == 0 && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.json())
	case len(tail) >= 1 && tail[0] == "restrictions":
		s.restrictionRoutes(w, r, body, c, tail[1:])
	case len(tail) == 1 && tail[0] == "environment-variable" && r.Method == http.MethodGet:
		writePage(s, w, r, sortedKeys(c.vars), info)
	case len(tail) == 2 && tail[0] == "environment-variable" && r.Method == http.MethodPut:
		name := tail[1]
		var in struct {
			Value *string `json:"value"`
		}
		if json.Unmarshal(body, &in) != nil || in.Value == nil {
			fail(w, http.StatusBadRequest, "The body must be a JSON object with a value.")
			return
		}
		if !envVarNameRE.MatchString(name) {
			fail(w, http.StatusBadRequest, "Invalid environment variable name.")
			return
		}
		now := s.now()
		if v, ok := c.vars[name]; ok {
			v.value, v.updated = *in.Value, now
		} else {
			c.vars[name] = &ctxVar{value: *in.Value, created: now, updated: now}
		}
		writeJSON(w, http.StatusOK, info(name))
	case len(tail) == 2 && tail[0] == "environment-variable" && r.Method == http.MethodDelete:
		if _, ok := c.vars[tail[1]]; !ok {
			fail(w, http.StatusNotFound, msgVarNotFound)
			return
		}
		delete(c.vars, tail[1])
		writeJSON(w, http.StatusOK, message{msgVarDeleted})
	case len(tail) <= 2:
		fail(w, http.StatusMethodNotAllowed, "Method not allowed.")
	default:
		fail(w, http.StatusNotFound, "Not found.")
	}
}

// writePage answers a list request with the page of all that its
// page-token asks for, each element shown by item.
func writePage[E, T any](s *Server, w http.ResponseWriter, r *http.Request, all []E, item func(E) T) {
	from, next, ok := s.pageOf(r, len(all))
	if !ok {
		fail(w, http.StatusBadRequest, "Invalid page-token.")
		return
	}
	items := []T{}
	for _, e := range all[from:min(from+s.pageSize, len(all))] {
		items = append(items, item(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_page_token": next})
}

// pageOf reads page-token and returns where the page starts and the next
// page's token (nil on the last page).
func (s *Server) pageOf(r *http.Request, total int) (from int, next *string, ok bool) {
	if tok := r.URL.Query().Get("page-token"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return 0, nil, false
		}
		n, found := strings.CutPrefix(string(raw), "offset:")
		if !found {
			return 0, nil, false
		}
		from, err = strconv.Atoi(n)
		if err != nil || from < 0 || from > total {
			return 0, nil, false
		}
	}
	if from+s.pageSize < total {
		t := base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(from+s.pageSize)))
		next = &t
	}
	return from, next, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
