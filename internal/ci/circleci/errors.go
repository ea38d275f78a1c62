package circleci

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind sorts failures by what the user can do about them; the command layer
// turns a Kind into advice (check the token, the slug, the permissions...).
type Kind int

const (
	// KindUnexpected: an answer this client does not understand (a
	// redirect, a body that is not CircleCI's JSON, an unusual status).
	KindUnexpected Kind = iota
	// KindUnauthorized (401): the token is missing, wrong or revoked.
	KindUnauthorized
	// KindForbidden (403): the token is valid but its user may not do this.
	KindForbidden
	// KindNotFound (404): no such project, context, organisation or
	// variable. CircleCI also answers 404 for a project the token's user
	// cannot see, so it may mean a missing permission too.
	KindNotFound
	// KindRejected: another 4xx; CircleCI refused the request as invalid.
	KindRejected
	// KindRateLimited (429): still throttled after the last attempt, or
	// asked to wait longer than the client's cap (see APIError.RetryAfter).
	KindRateLimited
	// KindServer (5xx): CircleCI kept failing on its side.
	KindServer
	// KindNetwork: no answer (DNS, connection refused or reset, timeout).
	KindNetwork
	// KindTLS: the server's certificate is not trusted for the host. The
	// system trust store (or SSL_CERT_FILE) decides what is trusted.
	KindTLS
	// KindCanceled: the caller's context ended (an interrupt, a deadline).
	// errors.Is(err, context.Canceled) also holds then.
	KindCanceled
)

var kindNames = map[Kind]string{
	KindUnexpected:   "unexpected answer",
	KindUnauthorized: "unauthorized",
	KindForbidden:    "forbidden",
	KindNotFound:     "not found",
	KindRejected:     "rejected",
	KindRateLimited:  "rate limited",
	KindServer:       "server error",
	KindNetwork:      "network error",
	KindTLS:          "TLS error",
	KindCanceled:     "canceled",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// TargetKind says what an operation was aimed at.
type TargetKind int

const (
	TargetNone TargetKind = iota
	TargetProject
	TargetContext
	TargetOrganization
	TargetUser // the token's own user (GET /me)
)

// Target names what an operation concerns, for messages: a project slug, a
// context (name and/or ID) or an organisation (slug and/or ID).
type Target struct {
	Kind TargetKind
	Name string // project slug, context name or organisation slug
	ID   string // context ID or organisation ID
}

func (t Target) String() string {
	var noun string
	switch t.Kind {
	case TargetProject:
		return "project " + t.Name
	case TargetContext:
		noun = "context"
	case TargetOrganization:
		noun = "organization"
	case TargetUser:
		return "" // "CircleCI: check the API token: ..." says it all
	default:
		return ""
	}
	switch {
	case t.Name != "" && t.ID != "":
		return fmt.Sprintf("%s %q (id %s)", noun, t.Name, t.ID)
	case t.Name != "":
		return fmt.Sprintf("%s %q", noun, t.Name)
	default:
		return fmt.Sprintf("%s id %s", noun, t.ID)
	}
}

// APIError is every failure of a call to CircleCI: an error status, no
// answer, or an answer that makes no sense. It never holds the token, nor a
// value being written.
type APIError struct {
	Kind   Kind
	Op     string // what was being done: "list environment variables", "write environment variable AWS_REGION"
	Target Target
	// Status is the HTTP status of the last answer; 0 when there was none.
	Status int
	// Message is CircleCI's own message ({"message": ...}), if any.
	Message string
	// RetryAfter is how long CircleCI asked to wait, for KindRateLimited
	// and KindServer answers that said so.
	RetryAfter time.Duration
	// Attempts is how many requests were sent before giving up.
	Attempts int
	// Err is the underlying transport or context error, if any.
	Err error
}

func (e *APIError) Error() string {
	prefix := "CircleCI"
	if t := e.Target.String(); t != "" {
		prefix += " " + t
	}
	prefix += ": " + e.Op + ": "
	tries := ""
	if e.Attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	switch {
	case e.Kind == KindCanceled:
		return prefix + "canceled: " + errString(e.Err)
	case e.Kind == KindTLS:
		return prefix + "the server's certificate is not trusted: " + errString(e.Err)
	case e.Status == 0 && e.Err != nil:
		return prefix + "no answer" + tries + ": " + errString(e.Err)
	}
	s := prefix + fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Kind == KindRateLimited && e.RetryAfter > 0 {
		s += fmt.Sprintf(" (CircleCI asks to wait %s)", e.RetryAfter.Round(time.Second))
	}
	if e.Err != nil {
		s += ": " + errString(e.Err)
	}
	return s + tries
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

func (e *APIError) Unwrap() error { return e.Err }

// KindOf returns the Kind of the *APIError in err's chain, and false if
// there is none (a local error such as an invalid name).
func KindOf(err error) (Kind, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Kind, true
	}
	return 0, false
}

// IsKind reports whether err carries an *APIError of kind k.
func IsKind(err error, k Kind) bool {
	got, ok := KindOf(err)
	return ok && got == k
}

func kindForStatus(status int) Kind {
	switch {
	case status == http.StatusUnauthorized:
		return KindUnauthorized
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status >= 500:
		return KindServer
	case status >= 400:
		return KindRejected
	default:
		return KindUnexpected
	}
}
