package push

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
)

// fakeEngine stands for the Docker engine behind engineAPI. It replays
// streams recorded from a real engine (testdata/*.jsonl) and fails the test
// when a build or push comes before the API version was negotiated.
type fakeEngine struct {
	t *testing.T

	// PingErr makes the engine unreachable.
	PingErr error
	// Build is the build stream to replay; Push maps a tag to its push
	// stream ("" is any tag without its own). A value is a testdata file name
	// or a func() io.ReadCloser.
	Build any
	Push  map[string]any

	mu         sync.Mutex
	negotiated bool
	version    string
	calls      []string
	builds     []buildCall
	pushes     []pushCall
}

type buildCall struct {
	Options build.ImageBuildOptions
	// Files maps each path in the context tar to its content.
	Files map[string]string
	// Streamed says the context came through a pipe, not a buffer.
	Streamed bool
}

type pushCall struct {
	Ref  string
	Auth string
}

func newFakeEngine(t *testing.T) *fakeEngine {
	return &fakeEngine{t: t, Build: "build-ok.jsonl", Push: map[string]any{
		"v1": "push-ok-v1.jsonl", "v2": "push-ok-v2.jsonl",
	}}
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
	return types.Ping{APIVersion: "1.41", OSType: "linux"}, nil
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

func (e *fakeEngine) ImageBuild(ctx context.Context, body io.Reader, o build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	e.record("ImageBuild")
	e.requireNegotiated("ImageBuild")
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
	return build.ImageBuildResponse{Body: e.stream(e.Build)}, nil
}

func (e *fakeEngine) ImagePush(ctx context.Context, ref string, o image.PushOptions) (io.ReadCloser, error) {
	e.record("ImagePush")
	e.requireNegotiated("ImagePush")
	e.mu.Lock()
	e.pushes = append(e.pushes, pushCall{Ref: ref, Auth: o.RegistryAuth})
	e.mu.Unlock()
	tag := ref[strings.LastIndexByte(ref, ':')+1:]
	s, ok := e.Push[tag]
	if !ok {
		s = e.Push[""]
	}
	return e.stream(s), nil
}

func (e *fakeEngine) stream(s any) io.ReadCloser {
	switch v := s.(type) {
	case string:
		b, err := os.ReadFile(filepath.Join("testdata", v))
		if err != nil {
			e.t.Fatalf("fake engine: %v", err)
		}
		return io.NopCloser(strings.NewReader(string(b)))
	case func() io.ReadCloser:
		return v()
	default:
		e.t.Fatalf("fake engine: no stream for %v", s)
		return nil
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
