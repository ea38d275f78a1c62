package e2e

// Fault injection between containerise and the real parts of the stack.
//
// AWS (one path per test, built by newAWSPath):
//
//	containerise ──AWS_ENDPOINT_URL──▶ toxiproxy (TCP, 127.0.0.1:ephemeral)
//	             ──▶ awsCounter (httputil.ReverseProxy, 127.0.0.1:ephemeral) ──▶ moto
//
// toxiproxy sits next to the binary, so its toxics (latency, reset_peer,
// timeout, limit_data) reach the SDK inside containerise as real network
// faults. The counter sits next to moto: it sees every request that got
// through, names its AWS operation, and can answer instead of moto with the
// HTTP-level faults toxiproxy cannot express (a throttling error body, a 503,
// an AccessDenied after a cut-off, a connection closed without an answer).
// What the SDK sends, checked against the SDK versions in go.mod:
//   - IAM and STS use the query protocol: a form POST whose Action parameter
//     names the operation;
//   - ECR uses JSON 1.1: the X-Amz-Target header names it
//     (AmazonEC2ContainerRegistry_V20150921.<Operation>);
//   - every request carries amz-sdk-invocation-id (the same for the SDK's own
//     retries of one call) and amz-sdk-request: attempt=N; max=M;
//   - the service is the signing name in the SigV4 credential scope.
//
// Registry (newRegistryPath): the engine dials the host name ECR returns
// (proxyEndpoint), on port 443, and resolves it through /etc/hosts; the
// stack's line sends the us-east-1 name to the registry on 127.0.0.1:443.
// Rewriting that shared line would break every other user of the stack if
// this process died before putting it back, so the proxy gets a name of its
// own instead: the same account in another region. moto answers
// GetAuthorizationToken in us-west-2 with
// https://<account>.dkr.ecr.us-west-2.amazonaws.com, so a setup and push run
// with --region us-west-2 make the engine dial that name. For the duration of
// the test:
//
//	/etc/hosts   + "127.0.0.2 <account>.dkr.ecr.us-west-2.amazonaws.com # containerise-e2e-faults"
//	/etc/docker/certs.d/<that name>/ca.crt   a throwaway certificate for that name
//
// and the path is
//
//	engine ──TLS──▶ toxiproxy (TCP, 127.0.0.2:443)
//	       ──▶ registryFront (TLS with that certificate, ReverseProxy, 127.0.0.1:ephemeral)
//	       ──TLS──▶ the stack's registry (127.0.0.1:443, same storage, same basic auth)
//
// The front has to end TLS because the registry's certificate names only the
// us-east-1 host; in exchange it can also refuse one request at the HTTP
// level (a 503 on a layer upload). Both additions are removed at cleanup
// (the hosts line by content: /etc/hosts is written in place, never renamed,
// since it is often a bind mount), and leftovers of a run that was killed are
// recognised by their marker and removed first.
//
// Docker engine (newDockerPath): DOCKER_HOST=tcp://127.0.0.1:ephemeral →
// toxiproxy → a plain TCP-to-unix forwarder → the stack engine's socket, so a
// test can cut the engine off in the middle of a build.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rs/zerolog"
)

// ---------------------------------------------------------------- toxiproxy

// toxServer is the in-process toxiproxy every path registers with (no HTTP
// API is started: tests drive the proxies directly).
var toxServer = sync.OnceValue(func() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
})

// toxProxy is one started toxiproxy proxy, stopped at the end of the test.
type toxProxy struct {
	t *testing.T
	p *toxiproxy.Proxy
}

var toxSeq atomic.Int64

func startToxiproxy(t *testing.T, listen, upstream string) *toxProxy {
	t.Helper()
	name := fmt.Sprintf("e2e-%d", toxSeq.Add(1))
	p := toxiproxy.NewProxy(toxServer(), name, listen, upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("starting toxiproxy on %s: %v", listen, err)
	}
	t.Cleanup(p.Stop)
	return &toxProxy{t: t, p: p}
}

// Addr is the address the proxy listens on.
func (x *toxProxy) Addr() string { return x.p.Listen }

// add adds a toxic to every current and future connection. stream is
// "upstream" (client to server) or "downstream" (server to client).
func (x *toxProxy) add(name, kind, stream string, attrs any) {
	x.t.Helper()
	body, err := json.Marshal(map[string]any{
		"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attrs,
	})
	if err != nil {
		x.t.Fatal(err)
	}
	if _, err := x.p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		x.t.Fatalf("adding toxic %s: %v", name, err)
	}
}

// latency delays everything the server sends by d (plus up to jitter).
func (x *toxProxy) latency(d, jitter time.Duration) {
	x.add("latency", "latency", "downstream", map[string]int64{"latency": d.Milliseconds(), "jitter": jitter.Milliseconds()})
}

// resetPeer resets every connection (TCP RST) after it has lived for after.
func (x *toxProxy) resetPeer(stream string, after time.Duration) {
	x.add("reset_peer_"+stream, "reset_peer", stream, map[string]int64{"timeout": after.Milliseconds()})
}

// timeout stops all data on a stream and closes the connection after d (0:
// never closes, the peer waits).
func (x *toxProxy) timeout(stream string, d time.Duration) {
	x.add("timeout_"+stream, "timeout", stream, map[string]int64{"timeout": d.Milliseconds()})
}

// limitData closes each connection once n bytes went through on stream.
func (x *toxProxy) limitData(stream string, n int64) {
	x.add("limit_data_"+stream, "limit_data", stream, map[string]int64{"bytes": n})
}

// remove removes a toxic; safe from any goroutine, and when it is gone.
func (x *toxProxy) remove(name string) {
	_ = x.p.Toxics.RemoveToxic(context.Background(), name)
}

// clear removes every toxic.
func (x *toxProxy) clear() { x.p.Toxics.ResetToxics(context.Background()) }

// stop closes every connection and stops listening, as a server that goes away.
func (x *toxProxy) stop() { x.p.Stop() }

// ---------------------------------------------------------------- AWS counter

// awsCall is one HTTP request containerise sent to AWS.
type awsCall struct {
	N          int    // order of arrival, from 1
	Service    string // signing name: iam, sts, ecr
	Operation  string // CreateUser, AssumeRole, GetAuthorizationToken
	Invocation string // amz-sdk-invocation-id: shared by the SDK's retries of one call
	Attempt    int    // amz-sdk-request attempt, from 1
	Params     string // request body, to tell calls of the same operation apart
	Status     int    // HTTP status containerise got; 0 when the connection was cut
	Fault      string // the fault the counter answered with; "" when moto answered
}

func (c awsCall) Name() string { return c.Service + "." + c.Operation }

// Mutating says whether the operation changes state in AWS. Decided here, not
// with the product's own list, so the two check each other.
func (c awsCall) Mutating() bool { return isMutatingOp(c.Operation) }

func isMutatingOp(op string) bool {
	switch op {
	case "AssumeRole", "GetCallerIdentity", "GetSessionToken", "GetAuthorizationToken":
		return false
	}
	for _, read := range []string{"Get", "List", "Describe", "BatchGet", "BatchCheck"} {
		if strings.HasPrefix(op, read) {
			return false
		}
	}
	return true
}

// awsFault is what the counter does with one request.
type awsFault int

const (
	fPass        awsFault = iota // forward to moto
	fThrottle                    // answer 400 Throttling (query) / ThrottlingException (JSON); not forwarded
	fUnavailable                 // answer 503 ServiceUnavailable; not forwarded
	fRefuse                      // answer 403 AccessDenied; not forwarded
	fDrop                        // close the connection without an answer; not forwarded
	fLoseAnswer                  // forward to moto, then close the connection: applied, answer lost
)

func (f awsFault) String() string {
	return [...]string{"", "throttled", "503", "refused", "dropped", "answer lost"}[f]
}

// awsFaultFunc decides the fault for a call as it arrives (c.N is its order).
// It runs under the counter's lock, so decisions are serialised.
type awsFaultFunc func(c awsCall) awsFault

// everyNth answers every nth request (n, 2n, ...) with f.
func everyNth(n int, f awsFault) awsFaultFunc {
	return func(c awsCall) awsFault {
		if c.N%n == 0 {
			return f
		}
		return fPass
	}
}

// afterCall lets the first k requests through and answers every later one with f.
func afterCall(k int, f awsFault) awsFaultFunc {
	return func(c awsCall) awsFault {
		if c.N > k {
			return f
		}
		return fPass
	}
}

// awsCounter is an HTTP reverse proxy in front of moto that records, classifies
// and, on demand, faults every AWS request. It also keeps the secrets it sees
// in answers (session credentials, new access keys, ECR tokens) so tests can
// look for them in containerise's output.
type awsCounter struct {
	upstream *url.URL
	proxy    *httputil.ReverseProxy

	mu      sync.Mutex
	calls   []*awsCall
	fault   awsFaultFunc
	secrets map[string][]string // kind → values
}

func newAWSCounter(t *testing.T, upstream string) (*awsCounter, string) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("parsing %q: %v", upstream, err)
	}
	a := &awsCounter{upstream: u, secrets: map[string][]string{}}
	a.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the Host the SDK signed; moto does not check it, AWS would.
			pr.Out.Host = pr.In.Host
			// Plain bodies, so answers can be read for secrets.
			pr.Out.Header.Del("Accept-Encoding")
		},
		Transport:      &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
		ModifyResponse: a.inspect,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a, "http://" + ln.Addr().String()
}

var scopeRE = regexp.MustCompile(`Credential=[^/,]+/[0-9]{8}/[^/]+/([^/]+)/aws4_request`)

// describeAWSRequest names the request's service and operation.
func describeAWSRequest(r *http.Request, body []byte) awsCall {
	c := awsCall{Invocation: r.Header.Get("Amz-Sdk-Invocation-Id"), Attempt: 1, Params: string(body)}
	if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.Service = m[1]
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		c.Operation = target[strings.LastIndexByte(target, '.')+1:]
	} else if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
		c.Operation = form.Get("Action")
	} else {
		c.Operation = r.Method + " " + r.URL.Path
	}
	for _, part := range strings.Split(r.Header.Get("Amz-Sdk-Request"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				c.Attempt = n
			}
		}
	}
	return c
}

func (a *awsCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return
	}
	call := describeAWSRequest(r, body)
	a.mu.Lock()
	call.N = len(a.calls) + 1
	f := fPass
	if a.fault != nil {
		f = a.fault(call)
	}
	call.Fault = f.String()
	rec := &call
	a.calls = append(a.calls, rec)
	a.mu.Unlock()

	setStatus := func(code int) {
		a.mu.Lock()
		rec.Status = code
		a.mu.Unlock()
	}
	jsonProtocol := r.Header.Get("X-Amz-Target") != ""
	switch f {
	case fThrottle:
		code := "Throttling"
		if jsonProtocol {
			code = "ThrottlingException"
		}
		writeAWSError(w, jsonProtocol, http.StatusBadRequest, code, "Rate exceeded (injected by the e2e counter)")
		setStatus(http.StatusBadRequest)
		return
	case fUnavailable:
		writeAWSError(w, jsonProtocol, http.StatusServiceUnavailable, "ServiceUnavailable", "Service fUnavailable (injected by the e2e counter)")
		setStatus(http.StatusServiceUnavailable)
		return
	case fRefuse:
		code := "AccessDenied"
		if jsonProtocol {
			code = "AccessDeniedException"
		}
		writeAWSError(w, jsonProtocol, http.StatusForbidden, code, "access denied (injected by the e2e counter)")
		setStatus(http.StatusForbidden)
		return
	case fDrop:
		hangUpOn(w)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if f == fLoseAnswer {
		// Let moto apply it, then cut the connection before any answer.
		rw := &discardResponse{header: http.Header{}}
		a.proxy.ServeHTTP(rw, r)
		hangUpOn(w)
		return
	}
	sw := &codeRecorder{ResponseWriter: w}
	a.proxy.ServeHTTP(sw, r)
	setStatus(sw.code)
}

// hangUpOn closes the client's connection without writing a response.
func hangUpOn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, as a dropped connection
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// writeAWSError answers in the request's protocol, the way AWS shapes errors.
func writeAWSError(w http.ResponseWriter, jsonProtocol bool, status int, code, msg string) {
	if jsonProtocol {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", code)
		w.Header().Set("X-Amzn-RequestId", "e2e-injected")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
		return
	}
	kind := "Sender"
	if status >= 500 {
		kind = "Receiver"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", "e2e-injected")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>e2e-injected</RequestId></ErrorResponse>`,
		kind, code, msg)
}

type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (s *codeRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *codeRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

type discardResponse struct{ header http.Header }

func (d *discardResponse) Header() http.Header         { return d.header }
func (d *discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardResponse) WriteHeader(int)             {}

var (
	secretKeyRE    = regexp.MustCompile(`<SecretAccessKey>([^<]+)</SecretAccessKey>`)
	sessionTokenRE = regexp.MustCompile(`<SessionToken>([^<]+)</SessionToken>`)
)

// inspect keeps the secrets of an answer: the role session's keys from
// AssumeRole, a new user key from CreateAccessKey, the ECR token and the
// registry password inside it.
func (a *awsCounter) inspect(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	call := describeAWSRequest(resp.Request, nil)
	if target := resp.Request.Header.Get("X-Amz-Target"); target == "" {
		// The query protocol's operation is in the body, already consumed:
		// tell the interesting answers by their content instead.
		call.Operation = ""
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	text := string(body)
	switch {
	case strings.Contains(text, "<AssumeRoleResult>"):
		for _, m := range secretKeyRE.FindAllStringSubmatch(text, -1) {
			a.secrets["session secret key"] = append(a.secrets["session secret key"], m[1])
		}
		for _, m := range sessionTokenRE.FindAllStringSubmatch(text, -1) {
			a.secrets["session token"] = append(a.secrets["session token"], m[1])
		}
	case strings.Contains(text, "<CreateAccessKeyResult>"):
		for _, m := range secretKeyRE.FindAllStringSubmatch(text, -1) {
			a.secrets["user secret key"] = append(a.secrets["user secret key"], m[1])
		}
	case call.Operation == "GetAuthorizationToken":
		var out struct {
			AuthorizationData []struct {
				AuthorizationToken string `json:"authorizationToken"`
			} `json:"authorizationData"`
		}
		if json.Unmarshal(body, &out) == nil {
			for _, d := range out.AuthorizationData {
				a.secrets["ECR token"] = append(a.secrets["ECR token"], d.AuthorizationToken)
				if raw, err := base64.StdEncoding.DecodeString(d.AuthorizationToken); err == nil {
					if _, pw, ok := strings.Cut(string(raw), ":"); ok {
						a.secrets["registry password"] = append(a.secrets["registry password"], pw)
					}
				}
			}
		}
	}
	return nil
}

// setFault installs f for the following requests (nil: no faults).
func (a *awsCounter) setFault(f awsFaultFunc) {
	a.mu.Lock()
	a.fault = f
	a.mu.Unlock()
}

// reset forgets the calls so far and removes the fault; secrets are kept.
func (a *awsCounter) reset() {
	a.mu.Lock()
	a.calls, a.fault = nil, nil
	a.mu.Unlock()
}

// Calls returns a copy of every request so far, in order of arrival.
func (a *awsCounter) Calls() []awsCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]awsCall, len(a.calls))
	for i, c := range a.calls {
		out[i] = *c
	}
	return out
}

// Secrets returns the secrets seen so far, by kind.
func (a *awsCounter) Secrets() map[string][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]string{}
	for k, v := range a.secrets {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Mutating lists the mutating requests that reached moto (names, in order).
func (a *awsCounter) Mutating() []string {
	var out []string
	for _, c := range a.Calls() {
		if c.Mutating() && (c.Fault == "" || c.Fault == fLoseAnswer.String()) {
			out = append(out, c.Name())
		}
	}
	return out
}

// Names lists every request's service.Operation, in order.
func (a *awsCounter) Names() []string {
	var out []string
	for _, c := range a.Calls() {
		out = append(out, c.Name())
	}
	return out
}

// Duplicates lists calls that containerise made twice: the same operation
// with the same parameters sent as two SDK invocations (retries of one
// invocation share its id and are not counted here). A read sent again after
// a mutating call reached AWS is a re-read of changed state, not a
// duplicate; a mutating call sent twice always is.
func (a *awsCounter) Duplicates() []string {
	type seenAt struct {
		invocation string
		writes     int // mutating calls applied before it
	}
	seen := map[string]seenAt{} // op+params → latest sighting
	writes := 0
	var out []string
	for _, c := range a.Calls() {
		key := c.Name() + "\x00" + c.Params
		if last, ok := seen[key]; ok && last.invocation != c.Invocation && (c.Mutating() || last.writes == writes) {
			out = append(out, c.Name())
		}
		seen[key] = seenAt{c.Invocation, writes}
		if c.Mutating() && (c.Fault == "" || c.Fault == fLoseAnswer.String()) {
			writes++
		}
	}
	return out
}

// Retried lists the requests the SDK sent again (attempt > 1).
func (a *awsCounter) Retried() []string {
	var out []string
	for _, c := range a.Calls() {
		if c.Attempt > 1 {
			out = append(out, fmt.Sprintf("%s (attempt %d)", c.Name(), c.Attempt))
		}
	}
	return out
}

// Summary is a readable list of the calls, for failure messages.
func (a *awsCounter) Summary() string {
	var b strings.Builder
	for _, c := range a.Calls() {
		fmt.Fprintf(&b, "  %3d %-40s attempt %d status %d %s\n", c.N, c.Name(), c.Attempt, c.Status, c.Fault)
	}
	return b.String()
}

// awsPath is the whole AWS path: the binary talks to toxiproxy, which talks
// to the counter, which talks to moto.
type awsPath struct {
	*awsCounter
	tox *toxProxy
	URL string // AWS_ENDPOINT_URL for the binary
}

func newAWSPath(t *testing.T) *awsPath {
	t.Helper()
	counter, counterURL := newAWSCounter(t, os.Getenv("STACK_MOTO_URL"))
	tox := startToxiproxy(t, "127.0.0.1:0", strings.TrimPrefix(counterURL, "http://"))
	return &awsPath{awsCounter: counter, tox: tox, URL: "http://" + tox.Addr()}
}

// env points the binary at the path.
func (p *awsPath) env(extra ...string) []string {
	return append([]string{"AWS_ENDPOINT_URL=" + p.URL}, extra...)
}

// ---------------------------------------------------------------- processes

// bgProc is a containerise process started in the background, for tests that
// kill it or run two at once.
type bgProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

func startBinary(t *testing.T, o runOpts, args ...string) *bgProc {
	t.Helper()
	p := &bgProc{done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(cleanEnv(), o.env...)
	p.cmd.Dir = o.dir
	p.cmd.Stdin = o.stdin
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting containerise %v: %v", args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process (at most 5 minutes) and returns what a user saw.
// A process killed by a signal has Code -1.
func (p *bgProc) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(5 * time.Minute):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("containerise %v did not end within 5 minutes", p.cmd.Args[1:])
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		code = exitErr.ExitCode()
	} else if p.err != nil {
		t.Fatalf("running containerise %v: %v", p.cmd.Args[1:], p.err)
	}
	return result{Stdout: p.stdout.String(), Stderr: p.stderr.String(), Code: code}
}

// ---------------------------------------------------------------- registry

const hostsMarker = "# containerise-e2e-faults"

// regFault is what the registry front does with one request.
type regFault int

const (
	regPass        regFault = iota
	regUnavailable          // 503 with the registry's UNAVAILABLE error
	regDenied               // 403 with the registry's DENIED error
	regDrop                 // connection closed without an answer
)

// registryPath puts toxiproxy and an HTTP front between the engine and the
// registry (see the top of this file).
type registryPath struct {
	Region string // run setup and push with --region Region
	Host   string // registry host name the engine dials
	tox    *toxProxy

	mu       sync.Mutex
	fault    func(method, path string) regFault
	requests []string // "METHOD path status", in order
	// onCut runs once when an upload's body is cut short on its way in (a
	// toxic at work); used to make a toxic fire only once.
	onCut func()
}

func newRegistryPath(t *testing.T) *registryPath {
	t.Helper()
	const region = "us-west-2"
	account, _, _ := strings.Cut(os.Getenv("STACK_REGISTRY_HOST"), ".")
	rp := &registryPath{Region: region, Host: account + ".dkr.ecr." + region + ".amazonaws.com"}

	certPEM, cert := selfSignedCert(t, rp.Host)

	// The front: TLS for the new name, then on to the stack's registry.
	caPEM, err := os.ReadFile(os.Getenv("STACK_REGISTRY_CA"))
	if err != nil {
		t.Fatalf("reading the registry CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	target := &url.URL{Scheme: "https", Host: "127.0.0.1:443"}
	rev := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The registry builds upload URLs from Host: keep the name the
			// engine used so those URLs come back through this path.
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: os.Getenv("STACK_REGISTRY_HOST")},
			MaxIdleConnsPerHost: 16,
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.serve(w, r, rev)
	}))
	front.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	front.StartTLS()
	t.Cleanup(front.Close)

	rp.tox = startToxiproxy(t, "127.0.0.2:443", front.Listener.Addr().String())
	trustForEngine(t, rp.Host, certPEM)
	addHostsLine(t, "127.0.0.2", rp.Host)
	rp.waitEngineSees(t)
	return rp
}

func (rp *registryPath) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rp.mu.Lock()
	f := regPass
	if rp.fault != nil {
		f = rp.fault(r.Method, r.URL.Path)
	}
	rp.mu.Unlock()
	sw := &codeRecorder{ResponseWriter: w}
	defer func() {
		rp.mu.Lock()
		rp.requests = append(rp.requests, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, sw.code))
		rp.mu.Unlock()
	}()
	switch f {
	case regUnavailable:
		io.Copy(io.Discard, r.Body)
		writeRegistryError(sw, http.StatusServiceUnavailable, "UNAVAILABLE", "service fUnavailable (injected by the e2e registry front)")
		return
	case regDenied:
		io.Copy(io.Discard, r.Body)
		writeRegistryError(sw, http.StatusForbidden, "DENIED", "layer upload refused (injected by the e2e registry front)")
		return
	case regDrop:
		hangUpOn(w)
		return
	}
	if isBlobUpload(r.Method, r.URL.Path) {
		r.Body = &cutBodyWatcher{ReadCloser: r.Body, onCut: rp.cut}
	}
	next.ServeHTTP(sw, r)
}

func (rp *registryPath) cut() {
	rp.mu.Lock()
	f := rp.onCut
	rp.onCut = nil
	rp.mu.Unlock()
	if f != nil {
		f()
	}
}

// isBlobUpload says whether a request carries blob data (a layer or the config).
func isBlobUpload(method, path string) bool {
	return (method == http.MethodPatch || method == http.MethodPut) && strings.Contains(path, "/blobs/uploads/")
}

// cutBodyWatcher reports a body that ends early (the connection was cut).
type cutBodyWatcher struct {
	io.ReadCloser
	onCut func()
}

func (c *cutBodyWatcher) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		c.onCut()
	}
	return n, err
}

func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// setFault installs a per-request decision (nil: none).
func (rp *registryPath) setFault(f func(method, path string) regFault) {
	rp.mu.Lock()
	rp.fault = f
	rp.mu.Unlock()
}

// onceOnUpload answers the first blob upload with f and lets all else through.
func onceOnUpload(f regFault) func(method, path string) regFault {
	done := false
	return func(method, path string) regFault {
		if !done && method == http.MethodPatch && isBlobUpload(method, path) {
			done = true
			return f
		}
		return regPass
	}
}

// alwaysOnUpload answers every blob upload with f.
func alwaysOnUpload(f regFault) func(method, path string) regFault {
	return func(method, path string) regFault {
		if method == http.MethodPatch && isBlobUpload(method, path) {
			return f
		}
		return regPass
	}
}

// dropUploadOnce cuts the first connection that carries more than n bytes
// towards the registry (a layer upload) with toxiproxy's limit_data, and
// removes the toxic as soon as the front sees that upload cut short.
func (rp *registryPath) dropUploadOnce(n int64) {
	rp.mu.Lock()
	rp.onCut = func() { rp.tox.remove("limit_data_upstream") }
	rp.mu.Unlock()
	rp.tox.limitData("upstream", n)
}

// Requests returns the requests the front saw, as "METHOD path status".
func (rp *registryPath) Requests() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]string(nil), rp.requests...)
}

// Uploads counts the blob data requests the front saw, and how many of them
// the registry accepted.
func (rp *registryPath) Uploads() (seen, accepted int) {
	for _, r := range rp.Requests() {
		f := strings.Fields(r)
		if len(f) == 3 && f[0] == http.MethodPatch && isBlobUpload(f[0], f[1]) {
			seen++
			if f[2] == "202" {
				accepted++
			}
		}
	}
	return seen, accepted
}

// selfSignedCert makes a throwaway certificate for host that is its own CA,
// as the stack does for its registry.
func selfSignedCert(t *testing.T, host string) ([]byte, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, cert
}

// trustForEngine puts the certificate where the engine looks for a
// registry's CA (read on each push, no restart), and takes it away after.
func trustForEngine(t *testing.T, host string, certPEM []byte) {
	t.Helper()
	const certsD = "/etc/docker/certs.d"
	dir := filepath.Join(certsD, host)
	marker := filepath.Join(dir, ".containerise-e2e-faults")
	if _, err := os.Stat(dir); err == nil {
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("%s exists and is not this test's; not touching it", dir)
		}
		os.RemoveAll(dir) // left by a run that was killed
	}
	var made []string
	for _, d := range []string{"/etc/docker", certsD} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			made = append(made, d)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating %s: %v", dir, err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i]) // only if empty
		}
	})
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}

// withoutMarked drops the lines carrying this file's marker.
func withoutMarked(hosts []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(hosts))
	for sc.Scan() {
		if !strings.Contains(sc.Text(), hostsMarker) {
			out.WriteString(sc.Text())
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// addHostsLine maps host to ip for the test and restores /etc/hosts after.
// The file is rewritten in place (it is often a bind mount).
func addHostsLine(t *testing.T, ip, host string) {
	t.Helper()
	const path = "/etc/hosts"
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	base := orig
	if bytes.Contains(orig, []byte(hostsMarker)) {
		base = withoutMarked(orig) // a killed run's line
	}
	ours := append([]byte(nil), base...)
	if len(ours) > 0 && ours[len(ours)-1] != '\n' {
		ours = append(ours, '\n')
	}
	ours = append(ours, fmt.Sprintf("%s %s %s\n", ip, host, hostsMarker)...)
	if err := os.WriteFile(path, ours, 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	t.Cleanup(func() {
		now, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("reading %s to restore it: %v", path, err)
			return
		}
		restored := base
		if !bytes.Equal(now, ours) {
			// Someone else changed it meanwhile: remove only our line.
			restored = withoutMarked(now)
		}
		if err := os.WriteFile(path, restored, 0o644); err != nil {
			t.Errorf("restoring %s: %v", path, err)
		}
	})
	// Go re-reads /etc/hosts at most every 5 s: wait until this process
	// resolves the name, so no lookup below races the cache.
	deadline := time.Now().Add(10 * time.Second)
	for {
		addrs, err := net.DefaultResolver.LookupHost(context.Background(), host)
		if err == nil && len(addrs) > 0 && addrs[0] == ip {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not resolve to %s after adding it to %s: %v %v", host, ip, path, addrs, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitEngineSees waits until the engine reaches the front through the new
// name: dockerd may have read /etc/hosts within its cache time. It asks the
// engine to pull a missing image and watches for the engine's requests at
// the front. (The engine's final answer does not tell: the name resolves to
// a loopback address, which dockerd treats as an insecure registry by
// default, so after the HTTPS attempt it also tries plain HTTP on port 80
// and reports that error. For the same reason it does not verify the
// certificate; trustForEngine still installs it, as for the stack's own
// registry, so that the path would also hold with verification.)
func (rp *registryPath) waitEngineSees(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		before := len(rp.Requests())
		last = enginePull(t, rp.Host+"/e2e-probe:none")
		if len(rp.Requests()) > before {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the engine does not reach the registry front through %s: %s", rp.Host, last)
}

// engineClient is an HTTP client for the stack's engine socket.
func engineClient(t *testing.T) *http.Client {
	t.Helper()
	sock, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://")
	if !ok {
		t.Fatalf("DOCKER_HOST %q is not a unix socket", os.Getenv("DOCKER_HOST"))
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// enginePull asks the engine to pull ref without credentials and returns the
// text of its answer.
func enginePull(t *testing.T, ref string) string {
	t.Helper()
	name, tag, _ := strings.Cut(ref[strings.LastIndexByte(ref, '/')+1:], ":")
	name = ref[:strings.LastIndexByte(ref, '/')+1] + name
	u := "http://docker/images/create?fromImage=" + url.QueryEscape(name) + "&tag=" + url.QueryEscape(tag)
	resp, err := engineClient(t).Post(u, "text/plain", nil)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// ---------------------------------------------------------------- Docker engine

// dockerPath is DOCKER_HOST=tcp://… through toxiproxy to the stack's engine.
type dockerPath struct {
	tox  *toxProxy
	Host string // DOCKER_HOST value for the binary
}

func newDockerPath(t *testing.T) *dockerPath {
	t.Helper()
	sock, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://")
	if !ok {
		t.Fatalf("DOCKER_HOST %q is not a unix socket", os.Getenv("DOCKER_HOST"))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("unix", sock)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(u, c); u.(*net.UnixConn).CloseWrite() }()
			go func() { defer wg.Done(); io.Copy(c, u); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	tox := startToxiproxy(t, "127.0.0.1:0", ln.Addr().String())
	return &dockerPath{tox: tox, Host: "tcp://" + tox.Addr()}
}

// ---------------------------------------------------------------- small helpers

// ---------------------------------------------------------------- self-check

// TestFaultProxySelfCheck proves the helpers above with the SDK itself, before
// any command relies on them: calls are named and classified, faults reach
// the SDK as AWS would send them, secrets are captured, and the engine and
// registry paths carry real traffic.
func TestFaultProxySelfCheck(t *testing.T) {
	resetAWS(t)
	ctx := context.Background()
	p := newAWSPath(t)
	cfg := awsClients(t).Cfg.Copy()
	cfg.BaseEndpoint = aws.String(p.URL)
	iamc, stsc, ecrc := iam.NewFromConfig(cfg), sts.NewFromConfig(cfg), ecr.NewFromConfig(cfg)

	if _, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("selfcheck")}); err != nil {
		t.Fatalf("CreateUser through the path: %v", err)
	}
	if _, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("selfcheck")}); err != nil {
		t.Fatal(err)
	}
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("selfcheck"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("selfcheck")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("selfcheck")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ecrc.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"iam.CreateUser", "iam.CreateAccessKey", "iam.CreateRole", "sts.AssumeRole", "ecr.CreateRepository", "ecr.GetAuthorizationToken"}
	if got := p.Names(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("calls named %v, want %v", got, want)
	}
	if got := p.Mutating(); strings.Join(got, " ") != "iam.CreateUser iam.CreateAccessKey iam.CreateRole ecr.CreateRepository" {
		t.Errorf("mutating calls %v", got)
	}
	secrets := p.Secrets()
	for _, kind := range []string{"user secret key", "session token", "session secret key", "ECR token", "registry password"} {
		if len(secrets[kind]) == 0 || secrets[kind][0] == "" {
			t.Errorf("no %s captured", kind)
		}
	}
	if pw := secrets["registry password"]; len(pw) > 0 && pw[0] != os.Getenv("STACK_REGISTRY_PASSWORD") {
		t.Errorf("captured registry password %q, the stack's is %q", pw[0], os.Getenv("STACK_REGISTRY_PASSWORD"))
	}

	// HTTP faults: the SDK retries throttling and 503 and succeeds; the
	// retry carries the same invocation id and attempt 2.
	for _, f := range []awsFault{fThrottle, fUnavailable} {
		p.reset()
		n := 0
		p.setFault(func(c awsCall) awsFault {
			n++
			if n == 1 {
				return f
			}
			return fPass
		})
		if _, err := iamc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("selfcheck")}); err != nil {
			t.Errorf("GetUser with one %s answer: %v", f, err)
		}
		if _, err := ecrc.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil {
			t.Errorf("DescribeRepositories after one %s answer: %v", f, err)
		}
		calls := p.Calls()
		if len(calls) != 3 || calls[0].Fault != f.String() || calls[1].Attempt != 2 || calls[1].Invocation != calls[0].Invocation {
			t.Errorf("%s then retry: calls\n%s", f, p.Summary())
		}
		if d := p.Duplicates(); len(d) != 0 {
			t.Errorf("an SDK retry counted as a duplicate call: %v", d)
		}
	}
	// A refusal after the cut-off is AccessDenied, not retried.
	p.reset()
	p.setFault(afterCall(0, fRefuse))
	_, err = iamc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("selfcheck")})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || len(p.Calls()) != 1 {
		t.Errorf("refused GetUser: err %v, calls\n%s", err, p.Summary())
	}
	p.setFault(afterCall(0, fRefuse))
	_, err = ecrc.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Errorf("refused DescribeRepositories: err %v", err)
	}
	// An answer lost after moto applied the call: the SDK retries and moto
	// says the user exists (what a command must live with).
	p.reset()
	p.setFault(func(c awsCall) awsFault {
		if c.N == 1 {
			return fLoseAnswer
		}
		return fPass
	})
	_, err = iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("selfcheck-lost")})
	if err == nil || !strings.Contains(err.Error(), "EntityAlreadyExists") {
		t.Errorf("CreateUser with its first answer lost: err %v; calls\n%s", err, p.Summary())
	}
	p.reset()

	// toxiproxy: latency is felt by the SDK.
	p.tox.latency(100*time.Millisecond, 0)
	start := time.Now()
	if _, err := iamc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("selfcheck")}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("a call with 100 ms latency took %v", d)
	}
	p.tox.clear()
	// reset_peer and limit_data: the connection dies; with one attempt the SDK fails.
	one := func(o *iam.Options) { o.RetryMaxAttempts = 1 }
	for _, add := range []func(){
		func() { p.tox.resetPeer("downstream", 0) },
		func() { p.tox.limitData("downstream", 10) },
	} {
		add()
		if _, err := iamc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("selfcheck")}, one); err == nil {
			t.Error("a call through a reset or truncated connection succeeded")
		}
		p.tox.clear()
	}
	if _, err := iamc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("selfcheck")}, one); err != nil {
		t.Errorf("after clearing toxics: %v", err)
	}

	// The engine path answers /version.
	dp := newDockerPath(t)
	resp, err := http.Get("http://" + strings.TrimPrefix(dp.Host, "tcp://") + "/version")
	if err != nil {
		t.Fatalf("engine through toxiproxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("engine through toxiproxy: HTTP %d", resp.StatusCode)
	}

	// The registry path: this process resolves the new name through
	// /etc/hosts as the engine does, and reaches the registry with the
	// stack's credentials; newRegistryPath already waited for the engine.
	rp := newRegistryPath(t)
	pem, err := os.ReadFile(filepath.Join("/etc/docker/certs.d", rp.Host, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+rp.Host+"/v2/", nil)
	req.SetBasicAuth("AWS", os.Getenv("STACK_REGISTRY_PASSWORD"))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("registry through the path: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("registry through the path: HTTP %d", resp.StatusCode)
	}
	if reqs := rp.Requests(); len(reqs) == 0 {
		t.Error("the registry front saw no request")
	}
}
