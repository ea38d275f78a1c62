// Package circlecitest is a fake of the parts of CircleCI's API v2 that
// containerise uses, served over HTTPS on 127.0.0.1 for tests: project
// environment variables, contexts and their variables, and /me.
//
// It behaves as CircleCI's documentation says: values shown masked ("xxxx"
// and the last four characters) for projects and not at all for contexts,
// pages with next_page_token, errors as {"message": ...}, the token in the
// Circle-Token header. It adds what tests need: tokens and permissions to
// configure, faults to inject, a request log that never holds a token, and
// the plaintext values stored, to check what a CI job would get.
//
// A test in another process (the built binary) trusts the server through
// SSL_CERT_FILE pointing at WriteCertFile's file.
package circlecitest

import (
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultPageSize is how many items one page holds unless SetPageSize says
// otherwise. Small, so that paging is exercised.
const DefaultPageSize = 10

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base, https://127.0.0.1:PORT: the host to give
	// the client (the API lives under /api/v2).
	URL string

	srv     *httptest.Server
	certPEM []byte
	closed  chan struct{}
	once    sync.Once

	mu        sync.Mutex
	tokens    map[string]user            // valid tokens
	forbidden map[string]map[string]bool // token -> project slug, org slug or context ID
	// forbiddenWrites is the same for writes only.
	forbiddenWrites map[string]map[string]bool
	orgs            map[string]*org      // by ID
	projects        map[string]*project  // by canonical slug
	contexts        map[string]*ctxState // by ID
	faults          []*fault
	log             []Request
	pageSize        int
	now             func() time.Time
}

type user struct {
	id, login string
}

type org struct {
	id, slug string
}

type project struct {
	id, slug string
	vars     map[string]string
}

type ctxState struct {
	id, name, orgID string
	created         time.Time
	vars            map[string]*ctxVar
	restrictions    []restriction
}

type ctxVar struct {
	value            string
	created, updated time.Time
}

// New starts a fake on 127.0.0.1 with a fresh self-signed certificate and
// stops it when the test ends. It knows no token, project or context yet.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start()
	if err != nil {
		tb.Fatalf("circlecitest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start is New without a testing.TB; the caller must Close the server.
func Start() (*Server, error) {
	cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s := &Server{
		certPEM:         certPEM,
		closed:          make(chan struct{}),
		tokens:          map[string]user{},
		forbidden:       map[string]map[string]bool{},
		forbiddenWrites: map[string]map[string]bool{},
		orgs:            map[string]*org{},
		projects:        map[string]*project{},
		contexts:        map[string]*ctxState{},
		pageSize:        DefaultPageSize,
		now:             func() time.Time { return time.Now().UTC() },
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = newTLSConfig(cert)
	// A client that does not trust the certificate is a test's subject,
	// not noise for the test's output.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server, cutting short any injected delay.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.Close()
	})
}

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CertPEM returns the server's self-signed certificate, PEM-encoded.
func (s *Server) CertPEM() []byte { return append([]byte(nil), s.certPEM...) }

// WriteCertFile writes the certificate to path, for SSL_CERT_FILE.
func (s *Server) WriteCertFile(path string) error {
	return os.WriteFile(path, s.certPEM, 0o644)
}

// SetPageSize sets how many items a page holds (at least 1).
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(n, 1)
}

// AddToken makes token valid, for a user with the given login.
func (s *Server) AddToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.tokens[token]; ok && u.login == login {
		return
	}
	s.tokens[token] = user{id: newUUID(), login: login}
}

// RemoveToken revokes a token: it gets 401 from now on.
func (s *Server) RemoveToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// Forbid makes CircleCI answer 403 to token for target: a project slug, an
// organisation slug (its projects and contexts too) or a context ID.
func (s *Server) Forbid(token, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forbidden[token] == nil {
		s.forbidden[token] = map[string]bool{}
	}
	s.forbidden[token][canonical(target)] = true
}

// ForbidWrites makes CircleCI answer 403 to token's writes (any method but
// GET) on target, as for a user who may read but not change it.
func (s *Server) ForbidWrites(token, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forbiddenWrites[token] == nil {
		s.forbiddenWrites[token] = map[string]bool{}
	}
	s.forbiddenWrites[token][canonical(target)] = true
}

// AddOrg adds an organisation (gh/acme, bb/acme, circleci/UUID) and returns
// its ID; adding it again returns the same ID.
func (s *Server) AddOrg(slug string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addOrgLocked(slug).id
}

func (s *Server) addOrgLocked(slug string) *org {
	slug = canonical(slug)
	for _, o := range s.orgs {
		if o.slug == slug {
			return o
		}
	}
	o := &org{id: newUUID(), slug: slug}
	s.orgs[o.id] = o
	return o
}

// AddProject adds a project (gh/acme/app), and its organisation if needed.
func (s *Server) AddProject(slug string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slug = canonical(slug)
	if _, ok := s.projects[slug]; ok {
		return
	}
	s.addOrgLocked(orgOf(slug))
	s.projects[slug] = &project{id: newUUID(), slug: slug, vars: map[string]string{}}
}

// AddContext adds a context to an organisation (added if needed) and
// returns its ID.
func (s *Server) AddContext(orgSlug, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.addOrgLocked(orgSlug)
	return s.addContextLocked(o, name).id
}

func (s *Server) addContextLocked(o *org, name string) *ctxState {
	c := &ctxState{id: newUUID(), name: name, orgID: o.id, created: s.now(), vars: map[string]*ctxVar{}}
	// As CircleCI does: a new context is open to all the organisation's
	// members, through a group restriction naming the organisation.
	c.restrictions = []restriction{{id: newUUID(), typ: "group", value: o.id, name: "All members"}}
	s.contexts[c.id] = c
	return c
}

// RemoveContext deletes a context, as someone might in the web app.
func (s *Server) RemoveContext(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.contexts, id)
}

// SetProjectVar stores a project variable directly (test setup).
func (s *Server) SetProjectVar(slug, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[canonical(slug)]
	if !ok {
		panic("circlecitest: SetProjectVar: no project " + slug)
	}
	p.vars[name] = value
}

// ProjectVars returns a copy of a project's variables in plaintext: what a
// CI job would get. Nil if there is no such project.
func (s *Server) ProjectVars(slug string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[canonical(slug)]
	if !ok {
		return nil
	}
	out := make(map[string]string, len(p.vars))
	for k, v := range p.vars {
		out[k] = v
	}
	return out
}

// ProjectVar returns one project variable in plaintext.
func (s *Server) ProjectVar(slug, name string) (string, bool) {
	v, ok := s.ProjectVars(slug)[name]
	return v, ok
}

// SetContextVar stores a context variable directly (test setup).
func (s *Server) SetContextVar(contextID, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contexts[contextID]
	if !ok {
		panic("circlecitest: SetContextVar: no context " + contextID)
	}
	now := s.now()
	c.vars[name] = &ctxVar{value: value, created: now, updated: now}
}

// SetContextVarAt stores a context variable as last written at a given
// time (test setup): a value written before a key or role existed.
func (s *Server) SetContextVarAt(contextID, name, value string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contexts[contextID]
	if !ok {
		panic("circlecitest: SetContextVarAt: no context " + contextID)
	}
	c.vars[name] = &ctxVar{value: value, created: at, updated: at}
}

// ContextVars returns a copy of a context's variables in plaintext. Nil if
// there is no such context.
func (s *Server) ContextVars(contextID string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contexts[contextID]
	if !ok {
		return nil
	}
	out := make(map[string]string, len(c.vars))
	for k, v := range c.vars {
		out[k] = v.value
	}
	return out
}

// ContextVar returns one context variable in plaintext.
func (s *Server) ContextVar(contextID, name string) (string, bool) {
	v, ok := s.ContextVars(contextID)[name]
	return v, ok
}

// ContextIDs returns the IDs of an organisation's contexts with this name,
// oldest first (more than one means a context was created twice).
func (s *Server) ContextIDs(orgSlug, name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []*ctxState
	for _, c := range s.contexts {
		if c.name == name && s.orgs[c.orgID].slug == canonical(orgSlug) {
			found = append(found, c)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		return found[i].created.Before(found[j].created) || (found[i].created.Equal(found[j].created) && found[i].id < found[j].id)
	})
	ids := make([]string, len(found))
	for i, c := range found {
		ids[i] = c.id
	}
	return ids
}

// OrgID returns an organisation's ID, or "" if unknown.
func (s *Server) OrgID(slug string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orgs {
		if o.slug == canonical(slug) {
			return o.id
		}
	}
	return ""
}

// canonical spells a slug's VCS part the short way, as CircleCI accepts
// both: github/acme/app is gh/acme/app.
func canonical(slug string) string {
	vcs, rest, ok := strings.Cut(slug, "/")
	if !ok {
		return slug
	}
	switch vcs {
	case "github":
		vcs = "gh"
	case "bitbucket":
		vcs = "bb"
	}
	return vcs + "/" + rest
}

// orgOf is a project slug's organisation slug.
func orgOf(projectSlug string) string {
	if i := strings.LastIndex(projectSlug, "/"); i > 0 {
		return projectSlug[:i]
	}
	return projectSlug
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// mask is how CircleCI shows a project variable: "xxxx" and the last four
// characters; a value of four characters or fewer shows as "xxxx" alone.
func mask(value string) string {
	r := []rune(value)
	if len(r) <= 4 {
		return "xxxx"
	}
	return "xxxx" + string(r[len(r)-4:])
}
