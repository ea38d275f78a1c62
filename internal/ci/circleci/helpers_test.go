package circleci_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

// Tokens long enough for the fake to spot them anywhere in a request.
const (
	token      = "CCIPAT_test_0123456789abcdef0123456789abcdef"
	otherToken = "CCIPAT_other_fedcba9876543210fedcba98765432"
	project    = "gh/acme/app"
	org        = "gh/acme"
	// A value shaped like an AWS secret access key.
	secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
)

// fixture is a fake CircleCI with one valid token and one project, and a
// client for it whose waits between attempts are recorded, not waited.
type fixture struct {
	srv    *circlecitest.Server
	client *circleci.Client
	log    *syncBuffer
	mu     sync.Mutex
	waits  []time.Duration
}

func newFixture(t *testing.T, mod ...func(*circleci.Options)) *fixture {
	t.Helper()
	srv := circlecitest.New(t)
	srv.AddToken(token, "admin")
	srv.AddProject(project)
	f := &fixture{srv: srv, log: &syncBuffer{}}
	opts := circleci.Options{
		Host:       srv.URL,
		Token:      token,
		HTTPClient: srv.Client(),
		Timeout:    10 * time.Second,
		Log:        f.log,
	}
	for _, m := range mod {
		m(&opts)
	}
	c, err := circleci.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	circleci.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.waits = append(f.waits, d)
		f.mu.Unlock()
		return ctx.Err()
	})
	f.client = c
	t.Cleanup(func() { f.checkNoLeak(t) })
	return f
}

func (f *fixture) recordedWaits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

// checkNoLeak runs after every test: the token was only ever in the
// Circle-Token header, and neither it nor the secret reached the log.
func (f *fixture) checkNoLeak(t *testing.T) {
	t.Helper()
	for _, r := range f.srv.Requests() {
		if r.TokenElsewhere {
			t.Errorf("the token was sent outside the Circle-Token header: %s", r)
		}
		if !r.TokenHeader {
			t.Errorf("a request went without the Circle-Token header: %s", r)
		}
	}
	for _, s := range []string{token, otherToken, secret} {
		if strings.Contains(f.log.String(), s) {
			t.Errorf("the client's log holds a secret:\n%s", f.log.String())
		}
	}
}

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{token, otherToken, secret} {
		if strings.Contains(text, s) {
			t.Errorf("%s holds a secret: %s", what, text)
		}
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func wantKind(t *testing.T, err error, k circleci.Kind) *circleci.APIError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s", k)
	}
	got, ok := circleci.KindOf(err)
	if !ok || got != k {
		t.Fatalf("error %q: kind %v (APIError: %v), want %s", err, got, ok, k)
	}
	assertNoSecret(t, "the error", err.Error())
	var ae *circleci.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %q is not an *APIError", err)
	}
	return ae
}
