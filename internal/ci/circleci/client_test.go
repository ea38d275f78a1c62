package circleci_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

func TestNewChecksHostAndToken(t *testing.T) {
	refused := map[string]string{
		"http://circleci.com":                     "only https://",
		"circleci.example.com":                    "write it as https://circleci.example.com",
		"circleci.example.com:8443":               "write it as https://circleci.example.com:8443",
		"https://user:hunter2@circleci.com":       "must not contain credentials",
		"https://circleci.com?circle-token=abcde": "no query",
		"ftp://circleci.com":                      "only https://",
		"://nonsense":                             "not a URL",
	}
	for host, want := range refused {
		_, err := circleci.New(circleci.Options{Host: host, Token: token})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("host %q: error %v, want one saying %q", host, err, want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error repeats the password: %v", err)
		}
		assertNoSecret(t, "the error", err.Error())
	}
	accepted := map[string]string{
		"":                                     "https://circleci.com",
		"https://circleci.example.com/":        "https://circleci.example.com",
		"https://circleci.example.com/api/v2":  "https://circleci.example.com",
		"https://circleci.example.com:8443":    "https://circleci.example.com:8443",
		"https://CircleCI.example.com/api/v2/": "https://CircleCI.example.com",
	}
	for host, want := range accepted {
		c, err := circleci.New(circleci.Options{Host: host, Token: token})
		if err != nil {
			t.Errorf("host %q: %v", host, err)
			continue
		}
		if c.Host() != want {
			t.Errorf("host %q became %q, want %q", host, c.Host(), want)
		}
		for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
			assertNoSecret(t, "the printed client", s)
		}
	}
	if _, err := circleci.New(circleci.Options{}); !errors.Is(err, circleci.ErrNoToken) {
		t.Errorf("no token: %v, want ErrNoToken", err)
	}
	opts := circleci.Options{Token: token}
	assertNoSecret(t, "printed options", fmt.Sprintf("%v %+v %#v %s", opts, opts, opts, opts))
}

// A 401, 403 or 404 is reported with its kind and the target it concerns,
// at once (no retry), without the token.
func TestErrorKindsNameTheTarget(t *testing.T) {
	f := newFixture(t)
	f.srv.AddToken(otherToken, "intern")
	f.srv.Forbid(otherToken, project)
	ctxID := f.srv.AddContext(org, "aws")

	bad, err := circleci.New(circleci.Options{Host: f.srv.URL, Token: "CCIPAT_revoked_00000000000000000000000", HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.SetProjectEnvVar(ctx(t), project, "AWS_IAM_USER_SECRET_ACCESS_KEY", secret)
	e := wantKind(t, err, circleci.KindUnauthorized)
	if e.Status != 401 || e.Attempts != 1 || !strings.Contains(err.Error(), "project gh/acme/app") ||
		!strings.Contains(err.Error(), "write environment variable AWS_IAM_USER_SECRET_ACCESS_KEY") {
		t.Errorf("401: %+v / %q", e, err)
	}
	if strings.Contains(err.Error(), "CCIPAT_revoked") {
		t.Errorf("the error holds the refused token: %v", err)
	}
	_, err = bad.Me(ctx(t))
	if e := wantKind(t, err, circleci.KindUnauthorized); !strings.HasPrefix(e.Error(), "CircleCI: check the API token: 401 Unauthorized") {
		t.Errorf("Me with a bad token: %q", e)
	}

	intern, err := circleci.New(circleci.Options{Host: f.srv.URL, Token: otherToken, HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = intern.ListProjectEnvVars(ctx(t), project)
	if e := wantKind(t, err, circleci.KindForbidden); e.Target != (circleci.Target{Kind: circleci.TargetProject, Name: project}) {
		t.Errorf("403 target %+v", e.Target)
	}

	// May read, may not write: the read works, the write says 403.
	const reader = "CCIPAT_reader_fedcba9876543210fedcba9876543"
	f.srv.AddToken(reader, "reader")
	f.srv.ForbidWrites(reader, project)
	ro, err := circleci.New(circleci.Options{Host: f.srv.URL, Token: reader, HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.ListProjectEnvVars(ctx(t), project); err != nil {
		t.Errorf("a reader's list: %v", err)
	}
	_, err = ro.SetProjectEnvVar(ctx(t), project, "AWS_REGION", "us-east-1")
	if e := wantKind(t, err, circleci.KindForbidden); !strings.Contains(e.Error(), "CircleCI project gh/acme/app: write environment variable AWS_REGION: 403 Forbidden") {
		t.Errorf("403 on a write: %q", e)
	}

	_, err = f.client.ListProjectEnvVars(ctx(t), "gh/acme/typo")
	wantKind(t, err, circleci.KindNotFound)
	_, err = f.client.ListContextEnvVars(ctx(t), "00000000-0000-4000-8000-000000000000")
	e = wantKind(t, err, circleci.KindNotFound)
	if !strings.Contains(err.Error(), "context id 00000000-0000-4000-8000-000000000000") {
		t.Errorf("404 on a context: %q", err)
	}
	if _, err := f.client.ListContextEnvVars(ctx(t), ctxID); err != nil {
		t.Errorf("the right token still works: %v", err)
	}
	if got := f.srv.ProjectVars(project); len(got) != 0 {
		t.Errorf("a refused write changed the project: %v", got)
	}
	if got := f.recordedWaits(); len(got) != 0 {
		t.Errorf("4xx answers were retried (waits %v)", got)
	}

	u, err := f.client.Me(ctx(t))
	if err != nil || u.Login != "admin" {
		t.Errorf("Me = %+v, %v", u, err)
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	f := newFixture(t)
	f.srv.Inject(circlecitest.Fault{Method: "POST", Path: "/api/v2/project/gh/acme/app/envvar", Status: 429, RetryAfter: "7", Times: 2})
	if _, err := f.client.SetProjectEnvVar(ctx(t), project, "AWS_REGION", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	if got := f.recordedWaits(); len(got) != 2 || got[0] != 7*time.Second || got[1] != 7*time.Second {
		t.Errorf("waited %v, want 7s twice as Retry-After said", got)
	}
	if v, _ := f.srv.ProjectVar(project, "AWS_REGION"); v != "us-east-1" {
		t.Errorf("AWS_REGION = %q after the retries", v)
	}

	// An HTTP date works too.
	f.srv.Inject(circlecitest.Fault{Method: "GET", Status: 503, RetryAfter: time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)})
	if _, err := f.client.ListProjectEnvVars(ctx(t), project); err != nil {
		t.Fatal(err)
	}
	got := f.recordedWaits()
	if w := got[len(got)-1]; w <= 10*time.Second || w > 21*time.Second {
		t.Errorf("Retry-After 20 s from now as a date: waited %v", w)
	}
}

func TestRetriesBackOffOn5xxThenSucceed(t *testing.T) {
	f := newFixture(t, func(o *circleci.Options) { o.RetryDelay = 100 * time.Millisecond })
	f.srv.Inject(circlecitest.Fault{Method: "PUT", Status: 500, Times: 1})
	f.srv.Inject(circlecitest.Fault{Method: "PUT", Status: 502, Times: 1})
	f.srv.Inject(circlecitest.Fault{Method: "PUT", Drop: true, Times: 1})
	id := f.srv.AddContext(org, "aws")
	if _, err := f.client.SetContextEnvVar(ctx(t), id, "AWS_REGION", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	waits := f.recordedWaits()
	if len(waits) != 3 {
		t.Fatalf("waits %v, want 3", waits)
	}
	for i, w := range waits {
		full := 100 * time.Millisecond << i
		if w < full/2 || w > full {
			t.Errorf("wait %d = %v, want between %v and %v (jittered doubling)", i+1, w, full/2, full)
		}
	}
	if v, _ := f.srv.ContextVar(id, "AWS_REGION"); v != "us-east-1" {
		t.Errorf("AWS_REGION = %q", v)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	f := newFixture(t)
	f.srv.Inject(circlecitest.Fault{Status: 500, Message: "upstream failure", Times: -1})
	_, err := f.client.ListProjectEnvVars(ctx(t), project)
	e := wantKind(t, err, circleci.KindServer)
	if e.Attempts != circleci.DefaultMaxAttempts || len(f.srv.Requests()) != circleci.DefaultMaxAttempts {
		t.Errorf("%d attempts, %d requests; want %d", e.Attempts, len(f.srv.Requests()), circleci.DefaultMaxAttempts)
	}
	want := "CircleCI project gh/acme/app: list environment variables: 500 Internal Server Error: upstream failure (after 4 attempts)"
	if err.Error() != want {
		t.Errorf("error\n %q\nwant\n %q", err, want)
	}
}

// Asked to wait longer than the cap, the client stops and says how long.
func TestRetryAfterBeyondCapStops(t *testing.T) {
	f := newFixture(t, func(o *circleci.Options) { o.MaxRetryWait = time.Minute })
	f.srv.Inject(circlecitest.Fault{Status: 429, RetryAfter: "3600", Times: -1})
	_, err := f.client.ListProjectEnvVars(ctx(t), project)
	e := wantKind(t, err, circleci.KindRateLimited)
	if e.RetryAfter != time.Hour || e.Attempts != 1 || len(f.recordedWaits()) != 0 {
		t.Errorf("got %+v after waits %v; want to stop at once with RetryAfter 1h", e, f.recordedWaits())
	}
	if !strings.Contains(err.Error(), "CircleCI asks to wait 1h0m0s") {
		t.Errorf("error %q does not say how long", err)
	}
}

// A POST /context is never repeated blindly; everything else is.
func TestConnectionErrorsRetriedOnlyWhenSafe(t *testing.T) {
	f := newFixture(t)
	f.srv.Inject(circlecitest.Fault{Method: "POST", Path: "/api/v2/project/*/*/*/envvar", DropAfter: true})
	if _, err := f.client.SetProjectEnvVar(ctx(t), project, "AWS_IAM_USER_SECRET_ACCESS_KEY", secret); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.srv.ProjectVar(project, "AWS_IAM_USER_SECRET_ACCESS_KEY"); v != secret || len(f.srv.ProjectVars(project)) != 1 {
		t.Errorf("after a lost answer and a retry CircleCI holds %d variables", len(f.srv.ProjectVars(project)))
	}
}

func TestServerGoneIsANetworkError(t *testing.T) {
	f := newFixture(t)
	f.srv.Close()
	_, err := f.client.ListProjectEnvVars(ctx(t), project)
	e := wantKind(t, err, circleci.KindNetwork)
	if e.Attempts != circleci.DefaultMaxAttempts || len(f.recordedWaits()) != circleci.DefaultMaxAttempts-1 {
		t.Errorf("%q: %d attempts, waits %v", err, e.Attempts, f.recordedWaits())
	}
	if !strings.Contains(err.Error(), "CircleCI project gh/acme/app: list environment variables: no answer (after 4 attempts): ") {
		t.Errorf("error %q", err)
	}
}

func TestAttemptTimeout(t *testing.T) {
	f := newFixture(t, func(o *circleci.Options) { o.Timeout = 100 * time.Millisecond; o.MaxAttempts = 2 })
	f.srv.Inject(circlecitest.Fault{Delay: time.Minute, Times: -1})
	_, err := f.client.ListProjectEnvVars(ctx(t), project)
	e := wantKind(t, err, circleci.KindNetwork)
	if e.Attempts != 2 || !strings.Contains(err.Error(), "no complete answer within 100ms") {
		t.Errorf("timeout error %q (attempts %d)", err, e.Attempts)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("an attempt's timeout must not look like the caller's deadline")
	}
}

func TestCancellation(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		f := newFixture(t)
		f.srv.Inject(circlecitest.Fault{Delay: time.Minute})
		c, cancel := context.WithCancel(ctx(t))
		go func() {
			for len(f.srv.Requests()) == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}()
		_, err := f.client.ListProjectEnvVars(c, project)
		wantKind(t, err, circleci.KindCanceled)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v is not context.Canceled", err)
		}
	})
	t.Run("while waiting to retry", func(t *testing.T) {
		f := newFixture(t)
		f.srv.Inject(circlecitest.Fault{Status: 503, Times: -1})
		c, cancel := context.WithCancel(ctx(t))
		circleci.SetSleep(f.client, func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() })
		_, err := f.client.ListProjectEnvVars(c, project)
		wantKind(t, err, circleci.KindCanceled)
		if !errors.Is(err, context.Canceled) || len(f.srv.Requests()) != 1 {
			t.Errorf("%v after %d requests", err, len(f.srv.Requests()))
		}
	})
}

// CircleCI's message is shown, minus anything secret it might echo.
func TestMessagesAreScrubbed(t *testing.T) {
	f := newFixture(t)
	f.srv.Inject(circlecitest.Fault{Status: 400, Message: "bad value " + secret + " for token " + token})
	_, err := f.client.SetProjectEnvVar(ctx(t), project, "AWS_IAM_USER_SECRET_ACCESS_KEY", secret)
	wantKind(t, err, circleci.KindRejected)
	if !strings.Contains(err.Error(), "bad value [redacted] for token [redacted]") {
		t.Errorf("error %q", err)
	}
}

// A redirect would carry the token elsewhere: it is refused, not followed.
func TestRedirectsAreNotFollowed(t *testing.T) {
	f := newFixture(t)
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, f.srv.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer front.Close()
	c, err := circleci.New(circleci.Options{Host: front.URL, Token: token, HTTPClient: front.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListProjectEnvVars(ctx(t), project)
	wantKind(t, err, circleci.KindUnexpected)
	if !strings.Contains(err.Error(), "redirected to "+f.srv.URL) {
		t.Errorf("error %q does not say where it was redirected", err)
	}
	if r := f.srv.Requests(); len(r) != 0 {
		t.Errorf("the redirect was followed: %v", r)
	}
}

// By default only the system trust store counts: the fake's own
// certificate is refused, once, as a TLS problem.
func TestUntrustedCertificate(t *testing.T) {
	srv := circlecitest.New(t)
	c, err := circleci.New(circleci.Options{Host: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(ctx(t))
	e := wantKind(t, err, circleci.KindTLS)
	if !strings.Contains(err.Error(), "CircleCI: check the API token: the server's certificate is not trusted: ") {
		t.Errorf("error %q", err)
	}
	if e.Attempts != 1 || len(srv.Requests()) != 0 {
		t.Errorf("%+v; requests %v", e, srv.Requests())
	}
}

// SSL_CERT_FILE makes the fake trusted, as the end-to-end tests of the
// built binary will rely on. The system store is read once per process, so
// this runs the check in a child process.
func TestSSLCertFileIsHonoured(t *testing.T) {
	if os.Getenv("CIRCLECITEST_CHILD") == "1" {
		c, err := circleci.New(circleci.Options{Host: os.Getenv("CIRCLECITEST_HOST"), Token: os.Getenv("CIRCLECITEST_TOKEN")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Me(ctx(t)); err != nil {
			t.Fatal(err)
		}
		return
	}
	srv := circlecitest.New(t)
	srv.AddToken(token, "admin")
	certFile := filepath.Join(t.TempDir(), "fake-circleci.pem")
	if err := srv.WriteCertFile(certFile); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx(t), os.Args[0], "-test.run=^TestSSLCertFileIsHonoured$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CIRCLECITEST_CHILD=1", "SSL_CERT_FILE="+certFile,
		"CIRCLECITEST_HOST="+srv.URL, "CIRCLECITEST_TOKEN="+token)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the child could not reach the fake with SSL_CERT_FILE: %v\n%s", err, out)
	}
	if r := srv.Requests(); len(r) != 1 || !r[0].Authorized || r[0].Path != "/api/v2/me" {
		t.Errorf("requests %v", r)
	}
}

func TestLogLinesNameCallsNotSecrets(t *testing.T) {
	f := newFixture(t)
	f.srv.Inject(circlecitest.Fault{Status: 429, RetryAfter: "1"})
	if _, err := f.client.SetProjectEnvVar(ctx(t), project, "AWS_IAM_USER_SECRET_ACCESS_KEY", secret); err != nil {
		t.Fatal(err)
	}
	log := f.log.String()
	for _, want := range []string{
		"circleci: POST /api/v2/project/gh/acme/app/envvar: 429",
		"retrying in 1s",
		"circleci: POST /api/v2/project/gh/acme/app/envvar: 201",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
