package push

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/push/bkdaemon"
)

// fakeDaemon is a daemon that cannot be reached.
type fakeDaemon struct {
	connects int
	err      error
}

func (d *fakeDaemon) Connect(context.Context) (*bkdaemon.Conn, error) {
	d.connects++
	return nil, d.err
}

func (d *fakeDaemon) String() string {
	return "the BuildKit daemon at tcp://buildkitd:1234 (--buildkit-host)"
}

// TestDaemonUnreachableFailsBeforeAWS: remote never needs the engine;
// container reaches the engine first; both reach their daemon before AWS
// is asked anything.
func TestDaemonUnreachableFailsBeforeAWS(t *testing.T) {
	for _, b := range []Builder{BuilderRemote, BuilderContainer} {
		t.Run(string(b), func(t *testing.T) {
			w := newWorld(t, awsfake.Config{})
			d := &fakeDaemon{err: errors.New("cannot reach the BuildKit daemon at tcp://buildkitd:1234 (--buildkit-host): connection refused")}
			w.pusher.Daemon = d
			w.opts.Builder = b
			err := w.run()
			if err == nil || !strings.Contains(err.Error(), "cannot reach the BuildKit daemon") {
				t.Fatalf("error %v", err)
			}
			if d.connects != 1 {
				t.Errorf("the daemon was asked %d times", d.connects)
			}
			if ops := w.acct.Ops(); len(ops) != 0 {
				t.Errorf("AWS was called although the daemon is not there: %v", ops)
			}
			calls := strings.Join(w.engine.calls, " ")
			if b == BuilderRemote && calls != "" {
				t.Errorf("the remote builder used the engine: %s", calls)
			}
			if b == BuilderContainer && !strings.HasPrefix(calls, "Ping Negotiate") {
				t.Errorf("the container builder did not reach the engine first: %s", calls)
			}
		})
	}
}

// TestDaemonChosenByBuilder: the daemon push makes follows --builder.
func TestDaemonChosenByBuilder(t *testing.T) {
	p := &Pusher{Engine: newFakeEngine(t)}
	d, err := p.newDaemon(Options{Builder: BuilderRemote, BuildKit: BuildKitOptions{Host: "tcp://b:1234", HostFrom: "BUILDKIT_HOST", CA: "ca.pem"}})
	if r, ok := d.(*bkdaemon.Remote); err != nil || !ok || r.Addr != "tcp://b:1234" || r.CA != "ca.pem" || d.String() != "the BuildKit daemon at tcp://b:1234 (BUILDKIT_HOST)" {
		t.Errorf("remote: %#v %v", d, err)
	}
	// The fake engine cannot run containers: said, not panicked.
	if _, err := p.newDaemon(Options{Builder: BuilderContainer}); err == nil || !strings.Contains(err.Error(), "cannot run containers") {
		t.Errorf("container on an engine that cannot run containers: %v", err)
	}
}

func TestForeignPlatform(t *testing.T) {
	native := []string{"linux/amd64", "linux/386"}
	tests := []struct {
		step, err string
		asked     []string
		want      string
	}{
		{step: "[linux/arm64 build 2/3] RUN make", asked: []string{"linux/amd64", "linux/arm64"}, want: "linux/arm64"},
		{step: "[linux/amd64 build 2/3] RUN make", asked: []string{"linux/amd64", "linux/arm64"}, want: ""},
		{step: "[build 2/3] RUN make", asked: []string{"linux/arm64"}, want: "linux/arm64"},
		{step: "[build 2/3] RUN make", asked: nil, want: ""},
		{step: "[build 2/3] RUN make", err: "exec /bin/sh: exec format error", want: "another architecture"},
		{step: "[linux/386 2/3] RUN make", asked: []string{"linux/386", "linux/arm/v7"}, want: ""},
	}
	for _, tt := range tests {
		if got := foreignPlatform(seenProgress{failedStep: tt.step, stepError: tt.err}, native, tt.asked); got != tt.want {
			t.Errorf("%q (asked %v): %q, want %q", tt.step, tt.asked, got, tt.want)
		}
	}
}

func TestFrontendAttrs(t *testing.T) {
	v := "2.0"
	attrs := frontendAttrs(Options{Target: "runtime", BuildArgs: map[string]*string{"VERSION": &v, "UNSET": nil}, Labels: map[string]string{"team": "api"},
		Platforms: []string{"linux/amd64", "linux/arm64"}, Network: "host", NoCache: true}, buildContext{DockerfilePath: "/src/app/Dockerfile.prod"})
	want := map[string]string{"filename": "Dockerfile.prod", "target": "runtime", "build-arg:VERSION": "2.0", "label:team": "api",
		"platform": "linux/amd64,linux/arm64", "force-network-mode": "host", "no-cache": ""}
	if len(attrs) != len(want) {
		t.Errorf("attrs %v, want %v", attrs, want)
	}
	for k, v := range want {
		if got, ok := attrs[k]; !ok || got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestCacheExportWarningSaysWhatToDo(t *testing.T) {
	w := cacheExportWarning("1.dkr.ecr.us-east-1.amazonaws.com/app:cache-main", "The image tag 'cache-main' already exists in the 'app' repository and cannot be overwritten because the tag is immutable.")
	for _, s := range []string{"warning: cache:", "the image is pushed", "rerun setup --immutable-tags --cache-tag cache-main,"} {
		if !strings.Contains(w, s) {
			t.Errorf("%q lacks %q", w, s)
		}
	}
}

// TestEngineAdvisesContainerForBuildStages: the engine path exports no
// registry cache, whatever the engine's image store, so a multi-stage
// Dockerfile gets one line saying that --builder container would cache its
// build stages; a single-stage one, or --no-cache, gets none.
func TestEngineAdvisesContainerForBuildStages(t *testing.T) {
	const multi = "FROM local/busybox:latest AS deps\nRUN echo deps\n# FROM in a comment\nFROM local/busybox:latest\nCOPY --from=deps /etc/hostname /x\n"
	const advice = "--builder container would cache them in the registry"
	for _, tt := range []struct {
		name, dockerfile, driverType string
		noCache, want                bool
	}{
		{name: "multi-stage", dockerfile: multi, want: true},
		{name: "single stage", dockerfile: "FROM local/busybox:latest\nRUN echo one\n"},
		{name: "multi-stage, no cache", dockerfile: multi, noCache: true},
		{name: "multi-stage, containerd store", dockerfile: multi, driverType: "io.containerd.snapshotter.v1", want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, awsfake.Config{})
			writeFiles(t, w.opts.Context, map[string]string{"Dockerfile": tt.dockerfile})
			w.engine.DriverType = tt.driverType
			w.opts.NoCache = tt.noCache
			if err := w.run(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(w.err.String(), advice); got != map[bool]int{true: 1}[tt.want] {
				t.Errorf("advice said %d times, want it %v:\n%s", got, tt.want, w.err)
			}
		})
	}
}
