package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/containerise/containerise/internal/testsupport/buildlog"
)

// The BuildKit container push runs on the engine (push/bkdaemon).
const builderContainer = "containerise-buildkit"

// buildkitd is a BuildKit daemon a test started, with state of its own: a
// cold builder.
type buildkitd struct {
	Addr string // unix:///…/buildkitd.sock
	cmd  *exec.Cmd
	done chan struct{}
}

// startBuildkitd starts a fresh daemon from the stack's buildkitd binary
// and waits until it answers; it is stopped when the test ends.
func startBuildkitd(t *testing.T) *buildkitd {
	t.Helper()
	bin, ctl := os.Getenv("STACK_BUILDKITD"), os.Getenv("STACK_BUILDCTL")
	if bin == "" || ctl == "" {
		t.Fatal("the stack exports no STACK_BUILDKITD/STACK_BUILDCTL: restart it with this checkout's scripts/stack.sh")
	}
	dir, err := os.MkdirTemp("", "containerise-e2e-buildkitd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &buildkitd{Addr: "unix://" + filepath.Join(dir, "buildkitd.sock"), done: make(chan struct{})}
	log, err := os.Create(filepath.Join(dir, "buildkitd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "--root", filepath.Join(dir, "root"), "--addr", d.Addr,
		"--oci-worker-snapshotter=native", "--containerd-worker=false", "--oci-worker-net=host")
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting buildkitd: %v", err)
	}
	go func() {
		d.cmd.Wait()
		log.Close()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.kill()
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for exec.Command(ctl, "--addr", d.Addr, "debug", "workers").Run() != nil {
		select {
		case <-d.done:
			b, _ := os.ReadFile(filepath.Join(dir, "buildkitd.log"))
			t.Fatalf("buildkitd exited while starting:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("buildkitd did not answer within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return d
}

// kill stops the daemon at once, with the RUN steps it started.
func (d *buildkitd) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

// removeBuilderContainer removes the BuildKit container push made on the
// stack's engine, so the next push meets none: a cold builder.
func removeBuilderContainer(t *testing.T) {
	t.Helper()
	err := dockerAPI(t).ContainerRemove(context.Background(), builderContainer, container.RemoveOptions{Force: true})
	if err != nil && !strings.Contains(strings.ToLower(err.Error()), "no such container") {
		t.Fatalf("removing %s: %v", builderContainer, err)
	}
}

// multiStageApp is a Dockerfile as most are: a dependency stage (slow,
// rarely changed), a build stage that compiles the source, and a final
// stage with the artifact only. stamp makes the dependency step new to
// every cache.
func multiStageApp(t *testing.T, stamp string) string {
	t.Helper()
	base := os.Getenv("STACK_BASE_REF")
	if base == "" {
		t.Fatal("the stack exports no STACK_BASE_REF: restart it with this checkout's scripts/stack.sh")
	}
	df := fmt.Sprintf(`FROM %[1]s AS deps
RUN echo fetching dependencies %[2]s && sleep 2 && head -c 1048576 /dev/urandom > /deps.bin
FROM %[1]s AS build
COPY --from=deps /deps.bin /deps.bin
COPY src.txt /src.txt
RUN echo compiling && cat /src.txt > /app.txt
FROM %[1]s
COPY --from=build /app.txt /app.txt
CMD ["cat", "/app.txt"]
`, base, stamp)
	return writeApp(t, df, map[string]string{"src.txt": "version 1\n"})
}

func setSource(t *testing.T, app, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(app, "src.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkColdBuildReusedStages: the dependency step came from the registry
// cache, and the changed source was compiled again.
func checkColdBuildReusedStages(t *testing.T, r result) {
	t.Helper()
	if !buildlog.StepCached(r.Stderr, "RUN echo fetching dependencies") {
		t.Errorf("a cold builder ran the dependency step again: the registry cache (max mode) did not hold the build stage:\n%s", r.Stderr)
	}
	if buildlog.StepCached(r.Stderr, "RUN echo compiling") {
		t.Errorf("the compile step was cached although the source changed:\n%s", r.Stderr)
	}
}

// TestDaemonRemoteColdBuilderReusesBuildStages: two pushes, each on a
// fresh daemon with empty state, only the source changed in between. The
// second finds the dependency stage (not part of the final image) in the
// registry cache that the first exported in max mode.
func TestDaemonRemoteColdBuilderReusesBuildStages(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	app := multiStageApp(t, stamp)
	cacheBefore := manifestDigest(t, pushRepo, "buildcache")

	first := startBuildkitd(t)
	r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--builder", "remote", "--buildkit-host", first.Addr, "--tag", "rm1-"+stamp[len(stamp)-6:])
	if r.Code != 0 {
		t.Fatalf("push on a fresh daemon failed:\n%s", r)
	}
	if buildlog.StepCached(r.Stderr, "RUN echo fetching dependencies") {
		t.Fatalf("the first push found a new dependency step cached:\n%s", r.Stderr)
	}
	cache := manifestDigest(t, pushRepo, "buildcache")
	if cache == "" || cache == cacheBefore {
		t.Fatalf("the first push exported no registry cache to %s:buildcache (before %q, after %q):\n%s", pushRepo, cacheBefore, cache, r.Stderr)
	}
	first.kill()

	second := startBuildkitd(t)
	setSource(t, app, "version 2\n")
	tag := "rm2-" + stamp[len(stamp)-6:]
	r = runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--buildkit-host", second.Addr, "--builder", "remote", "--tag", tag)
	if r.Code != 0 {
		t.Fatalf("push on a second fresh daemon failed:\n%s", r)
	}
	checkColdBuildReusedStages(t, r)
	if d := pushedDigests(t, r, tag)[tag]; manifestDigest(t, pushRepo, tag) != d {
		t.Errorf("the registry's %s:%s is not the digest push printed (%s)", pushRepo, tag, d)
	}
	if strings.Contains(r.Stderr, "warning: cache") {
		t.Errorf("a cache warning on a healthy registry:\n%s", r.Stderr)
	}
}

// TestDaemonContainerColdBuilderReusesBuildStages: push starts its BuildKit
// container on the engine (this engine refuses privileged containers, so it
// says it ran it with CAP_SYS_ADMIN); a second push reuses it; once it is
// removed, a third push starts a new one, cold, and still finds the build
// stages in the registry cache. Another image recreates it.
func TestDaemonContainerColdBuilderReusesBuildStages(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	bkImage := os.Getenv("STACK_BUILDKIT_IMAGE")
	stamp := nonce()
	app := multiStageApp(t, stamp)
	removeBuilderContainer(t)
	t.Cleanup(func() { removeBuilderContainer(t) })
	push := func(tag string, extra ...string) result {
		t.Helper()
		args := append([]string{"push", "--builder", "container", "--buildkit-image", bkImage, "--tag", tag + "-" + stamp[len(stamp)-6:]}, extra...)
		r := runWith(t, runOpts{env: vars.env(), dir: app}, args...)
		if r.Code != 0 {
			t.Fatalf("push %s failed:\n%s", tag, r)
		}
		return r
	}

	r := push("ct1")
	if !strings.Contains(r.Stderr, "started the BuildKit container "+builderContainer) || !strings.Contains(r.Stderr, "CAP_SYS_ADMIN") {
		t.Errorf("push does not say it started %s, and which way:\n%s", builderContainer, r.Stderr)
	}
	setSource(t, app, "version 2\n")
	r = push("ct2")
	if !strings.Contains(r.Stderr, "reusing the BuildKit container "+builderContainer) {
		t.Errorf("the second push did not reuse %s:\n%s", builderContainer, r.Stderr)
	}

	removeBuilderContainer(t)
	setSource(t, app, "version 3\n")
	r = push("ct3")
	if !strings.Contains(r.Stderr, "started the BuildKit container") {
		t.Errorf("no new container after the old one was removed:\n%s", r.Stderr)
	}
	checkColdBuildReusedStages(t, r)

	// The same image under another name is another --buildkit-image.
	other := "containerise-e2e/buildkit:other"
	if err := dockerAPI(t).ImageTag(context.Background(), bkImage, other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dockerAPI(t).ImageRemove(context.Background(), other, image.RemoveOptions{}) })
	setSource(t, app, "version 4\n")
	r = runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--builder", "container", "--buildkit-image", other, "--tag", "ct4-"+stamp[len(stamp)-6:])
	if r.Code != 0 {
		t.Fatalf("push with another image failed:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "recreating it") {
		t.Errorf("another --buildkit-image did not recreate %s:\n%s", builderContainer, r.Stderr)
	}
}

// TestDaemonMultiPlatformIndex: --platform linux/amd64,linux/arm64 on a
// daemon without QEMU, with a Dockerfile that cross-builds, pushes one OCI
// index (both platforms) under every tag, and stdout names its digest.
func TestDaemonMultiPlatformIndex(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	df := fmt.Sprintf(`FROM --platform=$BUILDPLATFORM %s AS build
ARG TARGETPLATFORM
RUN echo "built for $TARGETPLATFORM (%s)" > /out.txt
FROM scratch
COPY --from=build /out.txt /out.txt
`, os.Getenv("STACK_BASE_REF"), stamp)
	app := writeApp(t, df, map[string]string{})
	tags := []string{"mp-" + stamp[len(stamp)-6:], "mp-latest"}
	r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--builder", "remote", "--buildkit-host", os.Getenv("STACK_BUILDKIT_HOST"),
		"--platform", "linux/amd64,linux/arm64", "--tag", tags[0], "--tag", tags[1])
	if r.Code != 0 {
		t.Fatalf("multi-platform push failed:\n%s", r)
	}
	digests := pushedDigests(t, r, tags...)
	if digests[tags[0]] != digests[tags[1]] {
		t.Errorf("two tags of one build name two digests: %v", digests)
	}
	for _, tag := range tags {
		body, mediaType, digest := indexOf(t, pushRepo, tag)
		if mediaType != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("%s:%s is %s, want an OCI image index", pushRepo, tag, mediaType)
		}
		if digest != digests[tag] {
			t.Errorf("%s:%s is %s in the registry; stdout says %s", pushRepo, tag, digest, digests[tag])
		}
		var index struct {
			Manifests []struct {
				Platform struct{ OS, Architecture string }
			}
		}
		if err := json.Unmarshal(body, &index); err != nil {
			t.Fatalf("reading the index: %v\n%s", err, body)
		}
		var got []string
		for _, m := range index.Manifests {
			got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
		}
		if strings.Join(got, ",") != "linux/amd64,linux/arm64" {
			t.Errorf("%s:%s holds %v, want linux/amd64 and linux/arm64", pushRepo, tag, got)
		}
	}
	if !strings.Contains(r.Stderr, "one image index for linux/amd64, linux/arm64: "+digests[tags[0]]) {
		t.Errorf("stderr does not say one index was pushed:\n%s", r.Stderr)
	}
}

// indexOf reads repo:ref's manifest accepting an index: body, media type,
// digest.
func indexOf(t *testing.T, repo, ref string) ([]byte, string, string) {
	t.Helper()
	url := fmt.Sprintf("https://%s/v2/%s/manifests/%s", os.Getenv("STACK_REGISTRY_HOST"), repo, ref)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("AWS", os.Getenv("STACK_REGISTRY_PASSWORD"))
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json")
	resp, err := registryClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the registry has no %s:%s: HTTP %d %s", repo, ref, resp.StatusCode, body)
	}
	return body, resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest")
}

// TestDaemonCacheExportWithNewTags: two pushes with new tags both export
// the cache. With mutable tags, or immutable ones from setup
// --immutable-tags, which keeps push's cache tag (buildcache) mutable, each
// rewrites REPOSITORY:buildcache. When push's cache tag is not the one
// setup exempted, ECR refuses the second export: push says why and what to
// rerun in a warning, and still pushes its image.
func TestDaemonCacheExportWithNewTags(t *testing.T) {
	stamp := nonce()
	for i, tc := range []struct {
		name     string
		setup    []string
		cacheTag string
		refused  bool
	}{
		{"mutable", nil, "", false},
		{"immutable, cache tag exempt by setup", []string{"--immutable-tags"}, "", false},
		{"immutable, cache tag exempt by pattern", []string{"--immutable-tags", "--mutable-tag", "buildcache"}, "", false},
		{"immutable, push's cache tag not setup's", []string{"--immutable-tags"}, "othercache", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetAWS(t)
			args := append([]string{"setup", "--output", "dotenv"}, tc.setup...)
			vars := ciVars(fxDotenv(run(t, nil, args...).Stdout))
			if vars["AWS_IAM_ROLE_ARN"] == "" {
				t.Fatal("setup printed no variables")
			}
			cacheTag, pushArgs := "buildcache", []string{"push", "--builder", "remote", "--buildkit-host", os.Getenv("STACK_BUILDKIT_HOST")}
			if tc.cacheTag != "" {
				cacheTag, pushArgs = tc.cacheTag, append(pushArgs, "--cache-tag", tc.cacheTag)
			}
			app := multiStageApp(t, fmt.Sprintf("%s-%d", stamp, i))
			var caches []string
			for n := range 2 {
				setSource(t, app, fmt.Sprintf("version %d\n", n))
				tag := fmt.Sprintf("nt%d-%d-%s", n, i, stamp[len(stamp)-6:])
				r := runWith(t, runOpts{env: vars.env(), dir: app}, append(pushArgs, "--tag", tag)...)
				if r.Code != 0 {
					t.Fatalf("push %d failed:\n%s", n+1, r)
				}
				if manifestDigest(t, pushRepo, tag) == "" {
					t.Errorf("push %d left no %s", n+1, tag)
				}
				caches = append(caches, manifestDigest(t, pushRepo, cacheTag))
				warned := strings.Contains(r.Stderr, "warning: cache: exporting the build cache")
				switch {
				case !tc.refused && warned:
					t.Errorf("push %d warned about the cache export although its tag is mutable:\n%s", n+1, r.Stderr)
				case tc.refused && n == 1 && !(warned && strings.Contains(r.Stderr, "immutable") && strings.Contains(r.Stderr, "rerun setup --immutable-tags --cache-tag "+tc.cacheTag)):
					t.Errorf("push %d over an immutable cache tag does not warn why its export failed and what to rerun:\n%s", n+1, r.Stderr)
				case warned:
					t.Logf("push %d: %s", n+1, r.Stderr[strings.Index(r.Stderr, "warning: cache"):])
				}
			}
			if !tc.refused && (caches[0] == "" || caches[0] == caches[1]) {
				t.Errorf("with a mutable cache tag, the second push did not export a new cache: %v", caches)
			}
		})
	}
}

// TestDaemonDiesMidBuild: the remote daemon is killed while it runs a RUN
// step: push exits 1 promptly, naming the builder, and pushes nothing.
func TestDaemonDiesMidBuild(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	d := startBuildkitd(t)
	marker := fmt.Sprintf("bkdaemon-dies-%x", time.Now().UnixNano())
	app := writeApp(t, fmt.Sprintf("FROM %s\nRUN echo %s && sleep 30 && echo done\n", os.Getenv("STACK_BASE_REF"), marker), map[string]string{})
	tag := "dies-" + marker[len(marker)-6:]
	bp := startBinary(t, runOpts{env: vars.env(), dir: app}, "push", "--builder", "remote", "--buildkit-host", d.Addr, "--tag", tag)
	deadline := time.Now().Add(60 * time.Second)
	for !processRuns(marker) {
		if time.Now().After(deadline) {
			d.kill()
			t.Fatalf("the build never reached its RUN step:\n%s", bp.wait(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.kill()
	start := time.Now()
	r := bp.wait(t)
	if r.Code != 1 {
		t.Fatalf("push whose daemon died mid-build: want exit 1:\n%s", r)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("push took %v to notice the daemon was gone", time.Since(start))
	}
	fxErrorLine(t, r, "the BuildKit daemon at "+d.Addr)
	t.Log(fxFirstErrorLine(r))
	if manifestDigest(t, pushRepo, tag) != "" {
		t.Errorf("the failed push left %s", tag)
	}
}

// TestDaemonUnreachable: a daemon that is not there fails (exit 1) naming
// it, before AWS is asked anything: AWS_ENDPOINT_URL leads nowhere, and
// the error is about the daemon.
func TestDaemonUnreachable(t *testing.T) {
	app := writeApp(t, "FROM scratch\n", map[string]string{})
	for _, addr := range []string{"unix://" + filepath.Join(t.TempDir(), "none.sock"), "tcp://127.0.0.1:9"} {
		r := runWith(t, runOpts{env: []string{"AWS_ENDPOINT_URL=http://127.0.0.1:9", "AWS_IAM_USER_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
			"AWS_IAM_USER_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_IAM_ROLE_ARN=arn:aws:iam::123456789012:role/containerise",
			"BUILDKIT_HOST=" + addr}, dir: app}, "push", "--builder", "remote", "--wait", "0")
		if r.Code != 1 {
			t.Fatalf("push to an unreachable daemon: want exit 1:\n%s", r)
		}
		fxErrorLine(t, r, "cannot reach the BuildKit daemon at "+addr+" (BUILDKIT_HOST)")
		if strings.Contains(r.Stderr, "assuming") {
			t.Errorf("push asked AWS before it reached the daemon:\n%s", r.Stderr)
		}
	}
}

// TestDaemonBadInput: bad --buildkit-* input exits 2 before any call
// (neither the engine nor AWS is reachable here).
func TestDaemonBadInput(t *testing.T) {
	app := writeApp(t, "FROM scratch\n", map[string]string{})
	env := []string{"AWS_ENDPOINT_URL=http://127.0.0.1:9", "DOCKER_HOST=unix:///nonexistent.sock", "AWS_IAM_USER_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"AWS_IAM_USER_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_IAM_ROLE_ARN=arn:aws:iam::123456789012:role/containerise"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--builder", "remote", "--buildkit-host", "https://buildkitd:1234"}, "--buildkit-host"},
		{[]string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-ca", "/nonexistent/ca.pem"}, "--buildkit-ca"},
		{[]string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-cert", "/etc/hostname"}, "--buildkit-cert needs --buildkit-key"},
		{[]string{"--builder", "container", "--buildkit-image", "Not/An:Image:Ref"}, "--buildkit-image"},
		{[]string{"--buildkit-host", "tcp://b:1234"}, "--builder remote"},
	} {
		r := runWith(t, runOpts{env: env, dir: app}, append([]string{"push"}, tc.args...)...)
		if r.Code != 2 {
			t.Errorf("push %v: want exit 2:\n%s", tc.args, r)
			continue
		}
		fxErrorLine(t, r, tc.want)
	}
}
