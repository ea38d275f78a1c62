// The API client: a small typed client for the few CircleCI API v2
// endpoints containerise uses: project environment variables, contexts and
// context environment variables, and the token's user.
//
// The token goes in the Circle-Token header and nowhere else: not in URLs,
// logs or errors. Only https:// hosts are accepted, and redirects are never
// followed, so the token cannot be sent to another host or in clear text.
// Requests that are safe to repeat are retried on 429, 5xx and network
// errors, honouring Retry-After.

package circleci

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultHost is CircleCI's cloud; server installations have their own.
const DefaultHost = "https://circleci.com"

// Defaults for Options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxAttempts  = 4
	DefaultMaxRetryWait = 30 * time.Second
	DefaultRetryDelay   = time.Second
)

// maxBody bounds what is read of one answer: CircleCI's are small JSON.
const maxBody = 4 << 20

// ErrNoToken is returned by New when the token is empty.
var ErrNoToken = errors.New("no CircleCI API token")

// Options configure a Client. Only Token is required.
type Options struct {
	// Host is the CircleCI URL, https only; default DefaultHost. A trailing
	// "/api/v2" is accepted and ignored.
	Host string
	// Token is a CircleCI personal API token. The caller reads it from the
	// environment; the client sends it only in the Circle-Token header.
	Token string
	// HTTPClient, if set, is used instead of a client trusting the system
	// store (for tests, to trust a local server's certificate). Its
	// redirect policy is replaced: redirects are never followed.
	HTTPClient *http.Client
	// Timeout bounds one attempt, from sending to reading the whole answer.
	Timeout time.Duration
	// MaxAttempts bounds how many times one request is sent (>= 1).
	MaxAttempts int
	// MaxRetryWait caps one wait between attempts. A Retry-After longer
	// than this ends the retries at once with a KindRateLimited (or
	// KindServer) error saying how long CircleCI asked to wait.
	MaxRetryWait time.Duration
	// RetryDelay is the first backoff when CircleCI gives no Retry-After;
	// it doubles with each attempt, with jitter.
	RetryDelay time.Duration
	// Log, if set, gets one line per attempt: method, path, status and
	// time. Never a header or a body, so never the token or a value.
	Log io.Writer
	// UserAgent is sent as the User-Agent header.
	UserAgent string
}

// String hides the token, so printing Options by mistake leaks nothing.
func (o Options) String() string {
	return fmt.Sprintf("circleci.Options{Host: %q, Token: [redacted]}", o.Host)
}

// GoString hides the token from %#v too.
func (o Options) GoString() string { return o.String() }

// Client calls CircleCI's API v2. It is safe for concurrent use.
type Client struct {
	base        string // https://host[/prefix]/api/v2
	host        string // for messages
	token       string
	hc          *http.Client
	timeout     time.Duration
	maxAttempts int
	maxWait     time.Duration
	retryDelay  time.Duration
	log         io.Writer
	logMu       sync.Mutex
	userAgent   string

	// sleep waits between attempts; tests replace it to record waits.
	sleep func(ctx context.Context, d time.Duration) error

	// names remembers context names by ID, so that errors about a context
	// known only by ID can still name it.
	names sync.Map
}

// String hides the token.
func (c *Client) String() string { return "circleci.Client(" + c.host + ")" }

// GoString hides the token from %#v too.
func (c *Client) GoString() string { return c.String() }

// Host returns the CircleCI URL the client talks to (scheme and host).
func (c *Client) Host() string { return c.host }

// New checks the options and returns a client. It makes no request.
func New(opts Options) (*Client, error) {
	base, host, err := parseHost(opts.Host)
	if err != nil {
		return nil, err
	}
	if opts.Token == "" {
		return nil, ErrNoToken
	}
	if strings.ContainsAny(opts.Token, "\r\n\x00") {
		// Would break the header; say so without echoing it.
		return nil, errors.New("the CircleCI API token contains a line break or NUL")
	}
	c := &Client{
		base:        base,
		host:        host,
		token:       opts.Token,
		timeout:     orDefault(opts.Timeout, DefaultTimeout),
		maxAttempts: opts.MaxAttempts,
		maxWait:     orDefault(opts.MaxRetryWait, DefaultMaxRetryWait),
		retryDelay:  orDefault(opts.RetryDelay, DefaultRetryDelay),
		log:         opts.Log,
		userAgent:   opts.UserAgent,
		sleep:       sleepCtx,
	}
	if c.maxAttempts < 1 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.userAgent == "" {
		c.userAgent = "containerise"
	}
	if opts.HTTPClient != nil {
		hc := *opts.HTTPClient
		c.hc = &hc
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		c.hc = &http.Client{Transport: tr}
	}
	// Never follow a redirect: it would carry Circle-Token to wherever it
	// points, possibly another host or plain http.
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// parseHost accepts https://host[:port][/prefix][/api/v2] and returns the API
// base URL and the scheme://host for messages.
func parseHost(raw string) (base, host string, err error) {
	if raw == "" {
		raw = DefaultHost
	}
	u, perr := url.Parse(raw)
	if perr == nil && u.Host == "" && u.Opaque != "" && !strings.Contains(raw, "://") {
		// host:port parses as scheme:opaque
		return "", "", fmt.Errorf("CircleCI host %q is not a URL: write it as https://%s", raw, raw)
	}
	if perr != nil || u.Host == "" {
		if perr == nil && u.Scheme == "" && u.Host == "" && u.Path != "" && !strings.Contains(u.Path, "/") {
			return "", "", fmt.Errorf("CircleCI host %q is not a URL: write it as https://%s", raw, u.Path)
		}
		return "", "", fmt.Errorf("CircleCI host %q is not a URL such as %s", redactURL(raw), DefaultHost)
	}
	if u.Scheme != "https" {
		return "", "", fmt.Errorf("CircleCI host %s: only https:// is allowed, so that the API token is never sent in clear text", u.Redacted())
	}
	if u.User != nil {
		return "", "", fmt.Errorf("CircleCI host %s must not contain credentials: the token is read from the environment", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("CircleCI host %s must have no query or fragment", u.Redacted())
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	p = strings.TrimSuffix(p, "/api/v2")
	host = u.Scheme + "://" + u.Host
	return host + p + "/api/v2", host, nil
}

// redactURL hides anything that looks like user:password@ in a string that
// did not parse as a URL.
func redactURL(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "[redacted]" + s[i:]
		}
		return "[redacted]" + s[i:]
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryPolicy says when a failed attempt may be sent again.
type retryPolicy int

const (
	// retrySafe: the request can be repeated without changing the outcome
	// (GET, PUT, DELETE, and POST envvar, which replaces by name).
	retrySafe retryPolicy = iota
	// retryRefused: repeat only answers that prove nothing was done (429);
	// the caller resolves any other failure (POST /context).
	retryRefused
)

// call describes one API request.
type call struct {
	method string
	path   string // escaped, below /api/v2, starting with '/'
	query  url.Values
	body   any
	policy retryPolicy
	op     string
	target Target
	// secrets are scrubbed from any message CircleCI sends back.
	secrets []string
}

// do sends the call, retrying as its policy allows, and decodes a 2xx JSON
// answer into out (if not nil). Every failure is an *APIError.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var payload []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("CircleCI %s: encoding the request: %w", cl.op, err)
		}
		payload = b
	}
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	apiErr := func(attempts int) *APIError {
		return &APIError{Op: cl.op, Target: c.named(cl.target), Attempts: attempts}
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			e := apiErr(attempt - 1)
			e.Kind, e.Err = KindCanceled, err
			return e
		}
		status, header, body, err := c.attempt(ctx, cl.method, u, payload)
		var retryAfter time.Duration
		var hasRetryAfter bool
		e := apiErr(attempt)
		switch {
		case err != nil && ctx.Err() != nil:
			e.Kind, e.Err = KindCanceled, ctx.Err()
			return e
		case err != nil:
			e.Kind, e.Err = classifyTransport(err), err
			if e.Kind == KindTLS || cl.policy != retrySafe {
				return e
			}
		case status >= 200 && status < 300:
			if out == nil || len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			if jerr := json.Unmarshal(body, out); jerr != nil {
				e.Kind, e.Status = KindUnexpected, status
				e.Err = fmt.Errorf("the answer is not CircleCI's JSON (Content-Type %q)", header.Get("Content-Type"))
				return e
			}
			return nil
		default:
			e.Status = status
			e.Kind = kindForStatus(status)
			e.Message = c.message(body, cl.secrets)
			if status >= 300 && status < 400 {
				e.Err = fmt.Errorf("CircleCI redirected to %s; check the host (redirects are not followed, to keep the token on this host)", locationOf(header))
				return e
			}
			retryAfter, hasRetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
			e.RetryAfter = retryAfter
			retryable := status == http.StatusTooManyRequests ||
				(status >= 500 && cl.policy == retrySafe)
			if !retryable {
				return e
			}
		}
		if attempt >= c.maxAttempts {
			return e
		}
		wait := c.backoff(attempt)
		if hasRetryAfter {
			if retryAfter > c.maxWait {
				return e // asked to wait longer than we will
			}
			wait = retryAfter
		}
		c.logf("circleci: %s %s: %s; retrying in %s", cl.method, cl.path, retryReason(status, err), wait.Round(time.Millisecond))
		if serr := c.sleep(ctx, wait); serr != nil {
			e := apiErr(attempt)
			e.Kind, e.Err = KindCanceled, serr
			return e
		}
	}
}

// attempt sends one request and reads the whole answer within c.timeout.
func (c *Client) attempt(ctx context.Context, method, u string, payload []byte) (int, http.Header, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, method, u, body)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Circle-Token", c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		err = unwrapURLError(err)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = timeoutError{c.timeout}
		}
		c.logf("circleci: %s %s: %s (%s)", method, req.URL.EscapedPath(), transportSummary(err), time.Since(start).Round(time.Millisecond))
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err == nil && len(data) > maxBody {
		err = fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	c.logf("circleci: %s %s: %d (%s)", method, req.URL.EscapedPath(), resp.StatusCode, time.Since(start).Round(time.Millisecond))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = timeoutError{c.timeout}
		}
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// timeoutError is one attempt running out of time (Options.Timeout).
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string   { return fmt.Sprintf("no complete answer within %s", e.d) }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// unwrapURLError drops *url.Error's "Get https://...:" prefix: messages
// already say what was being done, and the URL holds nothing secret but is
// noise.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func classifyTransport(err error) Kind {
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	var tve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	switch {
	case errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie),
		errors.As(err, &tve), errors.As(err, &rhe):
		return KindTLS
	}
	return KindNetwork
}

func transportSummary(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "no answer"
}

func retryReason(status int, err error) string {
	if err != nil {
		return transportSummary(err)
	}
	return strconv.Itoa(status)
}

func locationOf(h http.Header) string {
	loc := h.Get("Location")
	if loc == "" {
		return "another URL"
	}
	if u, err := url.Parse(loc); err == nil {
		return u.Redacted()
	}
	return "another URL"
}

// backoff returns a jittered exponential wait for the given attempt number:
// between half and all of RetryDelay·2^(attempt-1), capped at maxWait.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryDelay << (attempt - 1)
	if d <= 0 || d > c.maxWait {
		d = c.maxWait
	}
	half := d / 2
	return half + rand.N(half+1)
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// message extracts CircleCI's {"message": ...}, scrubbed of the token and
// of any value being written, and bounded in length.
func (c *Client) message(body []byte, secrets []string) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	msg := m.Message
	for _, s := range append([]string{c.token}, secrets...) {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return strings.TrimSpace(msg)
}

func (c *Client) logf(format string, args ...any) {
	if c.log == nil {
		return
	}
	c.logMu.Lock()
	defer c.logMu.Unlock()
	fmt.Fprintf(c.log, format+"\n", args...)
}

// named fills in a context's name from what the client has seen.
func (c *Client) named(t Target) Target {
	if t.Kind == TargetContext && t.Name == "" && t.ID != "" {
		if n, ok := c.names.Load(t.ID); ok {
			t.Name = n.(string)
		}
	}
	return t
}

func (c *Client) remember(ctxs ...Context) {
	for _, x := range ctxs {
		if x.ID != "" && x.Name != "" {
			c.names.Store(x.ID, x.Name)
		}
	}
}

// page is CircleCI's paginated list shape.
type page[T any] struct {
	Items         []T     `json:"items"`
	NextPageToken *string `json:"next_page_token"`
}

// maxPages guards against a server that never stops paging.
const maxPages = 1000

// list follows next_page_token until the last page.
func list[T any](ctx context.Context, c *Client, cl call) ([]T, error) {
	var all []T
	seen := map[string]bool{}
	base := cl.query
	for n := 0; ; n++ {
		var p page[T]
		if err := c.do(ctx, cl, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextPageToken == nil || *p.NextPageToken == "" {
			return all, nil
		}
		tok := *p.NextPageToken
		if seen[tok] || n+1 >= maxPages {
			return nil, &APIError{Kind: KindUnexpected, Op: cl.op, Target: c.named(cl.target), Status: http.StatusOK,
				Err: errors.New("CircleCI's pages do not end (a page token came back twice)")}
		}
		seen[tok] = true
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("page-token", tok)
		cl.query = q
	}
}
