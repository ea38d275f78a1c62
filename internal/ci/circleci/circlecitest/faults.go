package circlecitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"
)

// Fault changes how the server answers requests that match it, for the next
// Times of them. Faults are checked in the order injected; the first that
// matches and is not used up applies.
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string
	// Path is a path.Match pattern for the URL path, such as
	// "/api/v2/project/gh/acme/app/envvar" or
	// "/api/v2/context/*/environment-variable/*"; "" matches any.
	Path string
	// Variable matches requests about this environment variable: its
	// name in the path (GET, DELETE, context PUT) or in a project POST's
	// body. "" matches any request.
	Variable string
	// After lets this many matching requests through untouched first
	// (counting only those that no fault injected earlier took).
	After int
	// Times is how many matching requests the fault affects: 0 means
	// one, a negative number means all from now on.
	Times int

	// Delay holds the request this long before anything else (latency).
	// Alone, it only slows the answer down.
	Delay time.Duration
	// Status, if set, is answered instead of handling the request, with
	// {"message": Message} (or the status text) and Retry-After if set.
	Status     int
	Message    string
	RetryAfter string
	// Applied, with Status, handles the request first (its change is
	// made) and then answers Status: a failure that hides a success, as
	// when CircleCI's side fails after storing the value.
	Applied bool
	// Drop closes the connection without an answer and without handling
	// the request: nothing changes on the server.
	Drop bool
	// DropAfter handles the request (so its change is made) and then
	// closes the connection without sending the answer: a lost answer.
	DropAfter bool
}

type fault struct {
	Fault
	skip int // matching requests still to let through
	left int // -1: unlimited
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := f.Times
	switch {
	case left == 0:
		left = 1
	case left < 0:
		left = -1
	}
	s.faults = append(s.faults, &fault{Fault: f, skip: max(f.After, 0), left: left})
}

// ClearFaults removes all faults not yet used up.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the fault for this request, counting it as used.
func (s *Server) takeFault(r *http.Request, body []byte) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.left == 0 {
			continue
		}
		if f.Method != "" && f.Method != r.Method {
			continue
		}
		if f.Path != "" {
			if ok, _ := path.Match(f.Path, r.URL.Path); !ok {
				continue
			}
		}
		if f.Variable != "" && variableOf(r, body) != f.Variable {
			continue
		}
		if f.skip > 0 {
			f.skip--
			continue
		}
		if f.left > 0 {
			f.left--
		}
		copied := f.Fault
		return &copied
	}
	return nil
}

// variableOf is the environment variable a request is about, if any.
func variableOf(r *http.Request, body []byte) string {
	p := strings.Split(r.URL.Path, "/")
	n := len(p)
	if n >= 2 && (p[n-2] == "envvar" || p[n-2] == "environment-variable") {
		return p[n-1]
	}
	if n >= 1 && p[n-1] == "envvar" && r.Method == http.MethodPost {
		var in struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(body, &in) == nil {
			return in.Name
		}
	}
	return ""
}

// Request is one request as the server saw it. It never holds a token: a
// token found in the path or query is replaced by "[token]".
type Request struct {
	Method string
	Path   string // URL path, decoded
	Query  string // raw query
	// TokenHeader: a Circle-Token header was sent.
	TokenHeader bool
	// Authorized: the Circle-Token header held a valid token.
	Authorized bool
	// TokenElsewhere: a token (a valid one, or the one sent in the
	// header) appeared somewhere else: the URL, another header, the body.
	TokenElsewhere bool
	// Status answered; 0 when the connection was dropped instead.
	Status int
	// Fault: an injected fault shaped the answer.
	Fault bool
}

// IsWrite reports whether the request would change something.
func (r Request) IsWrite() bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

func (r Request) String() string {
	q := ""
	if r.Query != "" {
		q = "?" + r.Query
	}
	return fmt.Sprintf("%s %s%s -> %d", r.Method, r.Path, q, r.Status)
}

// Requests returns the log so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Writes returns the logged requests that would change something.
func (s *Server) Writes() []Request {
	var w []Request
	for _, r := range s.Requests() {
		if r.IsWrite() {
			w = append(w, r)
		}
	}
	return w
}

// ResetRequests empties the log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}
