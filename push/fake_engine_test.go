package push

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/session/secrets"
)

// fakeEngine stands for the Docker engine behind engineAPI. It replays
// streams recorded from a real engine (testdata/*.jsonl) and fails the test
// when a build or push comes before the API version was negotiated.
type fakeEngine struct {
	t *testing.T

	// PingErr makes the engine unreachable.
	PingErr error
	// Build is the build stream to replay; nil replays the recorded
	// success, with its "Successfully tagged" lines when the build has tags.
	// Push maps a tag to its push stream ("" is any tag without its own). A
	// value is a testdata file name, a func() io.ReadCloser or a
	// func(context.Context) io.ReadCloser (given the request's context).
	Build any
	Push  map[string]any
	// TagErr fails every ImageTag.
	TagErr error
	// OnBuild, when set, runs as ImageBuild is received.
	OnBuild func()

	// For BuildKit builds, what the fake asks the session for: the
	// frontend's exclude patterns for the context, secrets by ID, and
	// credentials by registry host (asked in this order).
	FrontendExcludes []string
	AskSecrets       []string
	AskCredentials   []string
	// Local lists the images the engine has already.
	Local map[string]bool
	// Pull maps a reference to its pull stream (as Push); a reference not
	// there is not in the registry.
	Pull map[string]any
	// DialErr fails DialHijack, as an engine that refuses sessions does.
	DialErr error
	// APIVersion and Driver are what Ping and Info report.
	APIVersion string
	Driver     string
	DriverType string

	sessionsOnce sync.Once
	sessions     *session.Manager

	// buildStarted is closed when the first ImageBuild is received.
	buildStarted chan struct{}
	startOnce    sync.Once

	mu         sync.Mutex
	pulls      []pushCall
	cancelled  []string
	negotiated bool
	version    string
	calls      []string
	builds     []buildCall
	tags       []tagCall
	pushes     []pushCall
}

type tagCall struct {
	Image string
	Ref   string
}

type buildCall struct {
	Options build.ImageBuildOptions
	// Files maps each path in the context tar to its content.
	Files map[string]string
	// Streamed says the context came through a pipe, not a buffer.
	Streamed bool

	// Through a BuildKit session: the Dockerfile folder's files, the
	// secrets and registry credentials the fake asked for (as the engine's
	// BuildKit would), and what the session answered.
	DockerfileFiles map[string]string
	Secrets         map[string]string
	SecretErrs      map[string]error
	Credentials     map[string]string // host -> "user:secret", "" for none
}

type pushCall struct {
	Ref  string
	Auth string
}

func newFakeEngine(t *testing.T) *fakeEngine {
	return &fakeEngine{t: t, Push: map[string]any{
		"v1": "push-ok-v1.jsonl", "v2": "push-ok-v2.jsonl",
	}, buildStarted: make(chan struct{})}
}

func (e *fakeEngine) record(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
}

func (e *fakeEngine) Ping(ctx context.Context) (types.Ping, error) {
	e.record("Ping")
	if e.PingErr != nil {
		return types.Ping{}, e.PingErr
	}
	v := e.APIVersion
	if v == "" {
		v = "1.41"
	}
	return types.Ping{APIVersion: v, OSType: "linux"}, nil
}

func (e *fakeEngine) NegotiateAPIVersionPing(p types.Ping) {
	e.record("Negotiate")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.negotiated, e.version = true, p.APIVersion
}

func (e *fakeEngine) ClientVersion() string { return e.version }

func (e *fakeEngine) DaemonHost() string { return "unix:///var/run/docker.sock" }

func (e *fakeEngine) requireNegotiated(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.negotiated {
		e.t.Errorf("%s called before the API version was negotiated", call)
	}
}

// cancelled is what the docker client returns for a request whose context
// is done.
func cancelled(ctx context.Context, call string) error {
	return fmt.Errorf("error during connect: %s: %w", call, ctx.Err())
}

func (e *fakeEngine) ImageBuild(ctx context.Context, body io.Reader, o build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	e.record("ImageBuild")
	e.requireNegotiated("ImageBuild")
	e.startOnce.Do(func() { close(e.buildStarted) })
	if e.OnBuild != nil {
		e.OnBuild()
	}
	if o.Version == build.BuilderBuildKit {
		call := e.buildKitSession(ctx, o)
		call.Options = o
		e.mu.Lock()
		e.builds = append(e.builds, call)
		e.mu.Unlock()
		if ctx.Err() != nil {
			return build.ImageBuildResponse{}, cancelled(ctx, "POST /build")
		}
		s := e.Build
		if s == nil {
			s = "buildkit-ok.jsonl"
		}
		return build.ImageBuildResponse{Body: e.stream(ctx, s)}, nil
	}
	_, streamed := body.(*io.PipeReader)
	files := map[string]string{}
	tr := tar.NewReader(body)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e.t.Errorf("reading the build context tar: %v", err)
			break
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[h.Name] = string(b)
		}
	}
	e.mu.Lock()
	e.builds = append(e.builds, buildCall{Options: o, Files: files, Streamed: streamed})
	e.mu.Unlock()
	if ctx.Err() != nil {
		return build.ImageBuildResponse{}, cancelled(ctx, "POST /build")
	}
	s := e.Build
	if s == nil {
		s = "build-ok-untagged.jsonl"
		if len(o.Tags) > 0 {
			s = "build-ok.jsonl"
		}
	}
	return build.ImageBuildResponse{Body: e.stream(ctx, s)}, nil
}

func (e *fakeEngine) BuildCancel(ctx context.Context, id string) error {
	e.record("BuildCancel")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cancelled = append(e.cancelled, id)
	return nil
}

func (e *fakeEngine) sessionManager() *session.Manager {
	e.sessionsOnce.Do(func() {
		m, err := session.NewManager()
		if err != nil {
			e.t.Errorf("fake engine: %v", err)
		}
		e.sessions = m
	})
	return e.sessions
}

// DialHijack serves the session as the engine does: the client's end of a
// pipe goes back, and the engine's end joins the session manager.
func (e *fakeEngine) DialHijack(ctx context.Context, url, proto string, meta map[string][]string) (net.Conn, error) {
	e.record("DialHijack")
	if url != "/session" || proto != "h2c" {
		e.t.Errorf("DialHijack(%q, %q); want /session over h2c", url, proto)
	}
	if e.DialErr != nil {
		return nil, e.DialErr
	}
	client, server := net.Pipe()
	go func() { _ = e.sessionManager().HandleConn(context.Background(), server, meta) }()
	return client, nil
}

// buildKitSession does what the engine's BuildKit does with a build's
// session: it receives the context and the Dockerfile folder, then asks
// for the secrets and credentials it was told to.
func (e *fakeEngine) buildKitSession(ctx context.Context, o build.ImageBuildOptions) buildCall {
	call := buildCall{Secrets: map[string]string{}, SecretErrs: map[string]error{}, Credentials: map[string]string{}}
	if o.RemoteContext != "client-session" || o.SessionID == "" {
		e.t.Errorf("BuildKit build without its session: RemoteContext %q, SessionID %q", o.RemoteContext, o.SessionID)
		return call
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	caller, err := e.sessionManager().Get(sctx, o.SessionID, false)
	if err != nil && ctx.Err() != nil {
		return call // the push was cancelled meanwhile
	}
	if err != nil {
		e.t.Errorf("fake engine: the session %s never came: %v", o.SessionID, err)
		return call
	}
	receive := func(name string, opt filesync.FSSendRequestOpt) map[string]string {
		dest, err := os.MkdirTemp("", "fake-engine-")
		if err != nil {
			e.t.Error(err)
			return nil
		}
		defer os.RemoveAll(dest)
		opt.Name, opt.DestDir = name, dest
		if err := filesync.FSSync(sctx, caller, opt); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.t.Errorf("fake engine: receiving %s through the session: %v", name, err)
			return nil
		}
		return readTree(e.t, dest)
	}
	call.Files = receive("context", filesync.FSSendRequestOpt{ExcludePatterns: e.FrontendExcludes})
	call.DockerfileFiles = receive("dockerfile", filesync.FSSendRequestOpt{})
	for _, id := range e.AskSecrets {
		v, err := secrets.GetSecret(sctx, caller, id)
		if err != nil {
			call.SecretErrs[id] = err
			continue
		}
		call.Secrets[id] = string(v)
	}
	for _, host := range e.AskCredentials {
		resp, err := auth.NewAuthClient(caller.Conn()).Credentials(caller.Context(sctx), &auth.CredentialsRequest{Host: host})
		if err != nil && ctx.Err() != nil {
			break
		}
		if err != nil {
			e.t.Errorf("fake engine: asking for credentials for %s: %v", host, err)
			continue
		}
		call.Credentials[host] = ""
		if resp.Username != "" {
			call.Credentials[host] = resp.Username + ":" + resp.Secret
		}
	}
	return call
}

// readTree maps each file under dir to its content, and each symlink to
// "-> target".
func readTree(t *testing.T, dir string) map[string]string {
	files := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			files[filepath.ToSlash(rel)] = "-> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Errorf("fake engine: %v", err)
	}
	return files
}

func (e *fakeEngine) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	e.record("ImageInspect")
	if e.Local[ref] {
		return image.InspectResponse{ID: "sha256:0123"}, nil
	}
	return image.InspectResponse{}, fmt.Errorf("Error response from daemon: No such image: %s", ref)
}

func (e *fakeEngine) ImagePull(ctx context.Context, ref string, o image.PullOptions) (io.ReadCloser, error) {
	e.record("ImagePull")
	e.requireNegotiated("ImagePull")
	e.mu.Lock()
	e.pulls = append(e.pulls, pushCall{Ref: ref, Auth: o.RegistryAuth})
	e.mu.Unlock()
	s, ok := e.Pull[ref]
	if !ok {
		return nil, fmt.Errorf("Error response from daemon: manifest for %s not found: manifest unknown: manifest unknown", ref)
	}
	if err, ok := s.(error); ok {
		return nil, err
	}
	return e.stream(ctx, s), nil
}

func (e *fakeEngine) Info(ctx context.Context) (system.Info, error) {
	e.record("Info")
	driver := e.Driver
	if driver == "" {
		driver = "overlay2"
	}
	info := system.Info{Driver: driver}
	if e.DriverType != "" {
		info.DriverStatus = [][2]string{{"driver-type", e.DriverType}}
	}
	return info, nil
}

func (e *fakeEngine) ImageTag(ctx context.Context, image, ref string) error {
	e.record("ImageTag")
	e.requireNegotiated("ImageTag")
	if ctx.Err() != nil {
		return cancelled(ctx, "POST /images/"+image+"/tag")
	}
	if e.TagErr != nil {
		return e.TagErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tags = append(e.tags, tagCall{Image: image, Ref: ref})
	return nil
}

func (e *fakeEngine) ImagePush(ctx context.Context, ref string, o image.PushOptions) (io.ReadCloser, error) {
	e.record("ImagePush")
	e.requireNegotiated("ImagePush")
	e.mu.Lock()
	e.pushes = append(e.pushes, pushCall{Ref: ref, Auth: o.RegistryAuth})
	e.mu.Unlock()
	if ctx.Err() != nil {
		return nil, cancelled(ctx, "POST /images/"+ref+"/push")
	}
	tag := ref[strings.LastIndexByte(ref, ':')+1:]
	s, ok := e.Push[tag]
	if !ok {
		s = e.Push[""]
	}
	return e.stream(ctx, s), nil
}

// stream returns the body of a response. It is called on the goroutine of
// the call, so it reports with Errorf, not Fatalf.
func (e *fakeEngine) stream(ctx context.Context, s any) io.ReadCloser {
	switch v := s.(type) {
	case string:
		b, err := os.ReadFile(filepath.Join("testdata", v))
		if err != nil {
			e.t.Errorf("fake engine: %v", err)
		}
		return io.NopCloser(strings.NewReader(string(b)))
	case func() io.ReadCloser:
		return v()
	case func(context.Context) io.ReadCloser:
		return v(ctx)
	default:
		e.t.Errorf("fake engine: no stream for %v", s)
		return io.NopCloser(strings.NewReader(""))
	}
}

// brokenStream replays the first n bytes of a recorded stream, then fails as
// a connection that dies does.
func brokenStream(t *testing.T, file string, n int) func() io.ReadCloser {
	return func() io.ReadCloser {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if n > len(b) {
			n = len(b)
		}
		return io.NopCloser(io.MultiReader(strings.NewReader(string(b[:n])), errReader{errors.New("read unix @->/var/run/docker.sock: read: connection reset by peer")}))
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// stalledStream replays the first n bytes of a recorded stream, then hangs as
// a build does in a long silent RUN step, until the request's context is
// done; then it fails as the docker client's response body does, and says
// so on ended. A stream never cancelled gives up after guard, failing the
// test, so that a missing cancellation cannot hang it.
type stalledStream struct {
	head  io.Reader
	ctx   context.Context
	guard time.Duration
	// hanging is closed when the reader first hangs, that is when the head
	// has been read and shown.
	hanging chan struct{}
	once    sync.Once
	t       *testing.T

	mu        sync.Mutex
	cancelled bool
	closed    bool
}

func newStalledStream(t *testing.T, file string, n int) *stalledStream {
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if n > len(b) {
		n = len(b)
	}
	return &stalledStream{head: strings.NewReader(string(b[:n])), guard: 10 * time.Second, hanging: make(chan struct{}), t: t}
}

// body is the fake engine's stream value.
func (s *stalledStream) body(ctx context.Context) io.ReadCloser {
	s.ctx = ctx
	return s
}

func (s *stalledStream) Read(b []byte) (int, error) {
	if n, err := s.head.Read(b); err == nil {
		return n, nil
	}
	s.once.Do(func() { close(s.hanging) })
	t := time.NewTimer(s.guard)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		s.mu.Lock()
		s.cancelled = true
		s.mu.Unlock()
		return 0, fmt.Errorf("reading the response body: %w", s.ctx.Err())
	case <-t.C:
		s.t.Errorf("the stalled stream was never cancelled (waited %s)", s.guard)
		return 0, errors.New("fake engine: never cancelled")
	}
}

func (s *stalledStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// ended says whether the stream was cancelled and closed.
func (s *stalledStream) ended() (cancelled, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled, s.closed
}
