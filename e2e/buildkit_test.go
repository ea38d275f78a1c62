package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/containerise/containerise/internal/testsupport/buildlog"
)

// TestPushBuildKitSecretsAndCacheMount pushes a Dockerfile that only
// BuildKit builds: a cache mount and two secret mounts, one secret from a
// variable and one from a file. The secrets reach their RUN steps (the image
// holds their SHA-256, written by the step), and their values are nowhere in
// what the registry holds (manifest, config with its history, every layer)
// nor in push's output.
func TestPushBuildKitSecretsAndCacheMount(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	envSecret := "env-secret-" + stamp + "-Zq7"
	fileSecret := "file-secret-" + stamp + "-Kx9"
	secretFile := filepath.Join(t.TempDir(), "token.txt")
	if err := os.WriteFile(secretFile, []byte(fileSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	dockerfile := fmt.Sprintf(`FROM %s
RUN --mount=type=cache,target=/var/cache/app echo %s >> /var/cache/app/runs && cat /var/cache/app/runs | wc -l > /cache-runs
RUN --mount=type=secret,id=api_token sha256sum /run/secrets/api_token | cut -d' ' -f1 > /api_token.sha256
RUN --mount=type=secret,id=deploy_key,required=true sha256sum /run/secrets/deploy_key | cut -d' ' -f1 > /deploy_key.sha256
COPY app.txt /app.txt
`, baseImage(), stamp)
	app := writeApp(t, dockerfile, map[string]string{"app.txt": "hello\n"})
	tag := "bk-" + stamp[len(stamp)-8:]

	r := runWith(t, runOpts{env: vars.env("BUILD_API_TOKEN=" + envSecret), dir: app}, "push", "--tag", tag,
		"--secret", "id=api_token,env=BUILD_API_TOKEN", "--secret", "id=deploy_key,src="+secretFile)
	if r.Code != 0 {
		t.Fatalf("push failed:\n%s", r)
	}
	digest := pushedDigests(t, r, tag)[tag]
	if got := manifestDigest(t, pushRepo, tag); got != digest {
		t.Fatalf("the registry has %s:%s at %q; push printed %s", pushRepo, tag, got, digest)
	}
	for _, s := range []string{"building ", "with BuildKit", "RUN --mount=type=cache", "exporting to image"} {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("stderr lacks BuildKit's progress %q:\n%s", s, r.Stderr)
		}
	}

	img := readImage(t, pushRepo, digest)
	files := img.files()
	if got, want := strings.TrimSpace(files["api_token.sha256"]), sha256Hex(envSecret); got != want {
		t.Errorf("the env secret's RUN step saw %q, want the secret's hash %s", got, want)
	}
	if got, want := strings.TrimSpace(files["deploy_key.sha256"]), sha256Hex(fileSecret); got != want {
		t.Errorf("the file secret's RUN step saw %q, want the secret's hash %s", got, want)
	}
	if _, ok := files["cache-runs"]; !ok {
		t.Errorf("the cache mount's RUN step left no /cache-runs (files %v)", keysOf(files))
	}
	for name := range files {
		if strings.HasPrefix(name, "var/cache/app/") || strings.HasPrefix(name, "run/secrets/") {
			t.Errorf("the image holds %s: a mount's content must stay out of the image", name)
		}
	}
	for _, secret := range []string{envSecret, fileSecret} {
		if bytes.Contains(img.raw, []byte(secret)) {
			t.Errorf("the secret %.14s… is in the pushed manifest, config, history or layers", secret)
		}
		if strings.Contains(r.Stdout+r.Stderr, secret) {
			t.Errorf("the secret %.14s… is in push's output", secret)
		}
	}
	if !strings.Contains(img.config, "moby.buildkit.cache.v0") {
		t.Error("the pushed config carries no inline cache metadata for later builds")
	}
	checkNoSecrets(t, r, vars)
}

// TestPushBuildKitFailureNamesTheStep: a failing RUN under BuildKit exits 1
// with the step as BuildKit names it and the engine's message, and pushes
// nothing.
func TestPushBuildKitFailureNamesTheStep(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	tag := "bkfail-" + nonce()
	app := writeApp(t, fmt.Sprintf("FROM %s\nRUN echo before the failure\nRUN echo failing now && false\n", baseImage()), map[string]string{})
	r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--builder", "buildkit", "--tag", tag)
	if r.Code != 1 {
		t.Fatalf("want exit 1 for a failing RUN step:\n%s", r)
	}
	if r.Stdout != "" {
		t.Errorf("stdout must stay empty when nothing was pushed:\n%s", r.Stdout)
	}
	line := fxFirstErrorLine(r)
	for _, s := range []string{"build failed at [3/3] RUN echo failing now && false", "exit code: 1"} {
		if !strings.Contains(line, s) {
			t.Errorf("the error %q lacks %q:\n%s", line, s, r.Stderr)
		}
	}
	if !strings.Contains(r.Stderr, "failing now") {
		t.Errorf("stderr lacks the failed step's own output:\n%s", r.Stderr)
	}
	if got := manifestDigest(t, pushRepo, tag); got != "" {
		t.Errorf("the registry has %s:%s (%s) after a failed build", pushRepo, tag, got)
	}
}

// TestPushBuildKitCacheHoldsOnAColdEngine pushes three times, each time
// with only the last layer changed and the engine made cold in between (the
// pushed images and all build cache removed), as each CI job meets a fresh
// engine. Every push after the first must reuse the slow early step from the
// registry, not every other one.
func TestPushBuildKitCacheHoldsOnAColdEngine(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	slow := fmt.Sprintf("RUN echo slow step %s && head -c 1048576 /dev/urandom > /data.bin", stamp)
	app := writeApp(t, fmt.Sprintf("FROM %s\n%s\nCOPY last.txt /last.txt\n", baseImage(), slow), map[string]string{"last.txt": "0\n"})
	tag := "cold-" + stamp[len(stamp)-8:]
	ref := os.Getenv("STACK_REGISTRY_HOST") + "/" + pushRepo + ":" + tag
	engine := dockerAPI(t)
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(app, "last.txt"), fmt.Appendf(nil, "%d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--tag", tag)
		if r.Code != 0 {
			t.Fatalf("push %d failed:\n%s", i+1, r)
		}
		hit := buildlog.StepCached(r.Stderr, "RUN echo slow step")
		switch {
		case i == 0 && hit:
			t.Errorf("push 1 found the slow step cached on a cold engine:\n%s", r.Stderr)
		case i > 0 && !hit:
			t.Errorf("push %d rebuilt the slow step: the registry cache did not hold:\n%s", i+1, r.Stderr)
		}
		makeCold(t, engine, ref)
	}
}

// TestPushBuildKitEngineStopsMidBuild: the engine goes away while BuildKit
// runs a RUN step (the build stream and the session both run over the
// engine's connection): push exits 1 promptly, naming DOCKER_HOST, and
// leaves no tag.
func TestPushBuildKitEngineStopsMidBuild(t *testing.T) {
	resetAWS(t)
	vars := fxSetup(t, nil)
	dp := newDockerPath(t)
	marker := fmt.Sprintf("bkmidbuild-%x", time.Now().UnixNano())
	// The shell stays (and its command line with the marker) while sleep
	// runs only if a command follows: a shell execs its last command.
	app, _ := fxApp(t, 1<<10, fmt.Sprintf("RUN echo %s && sleep 15 && echo done\n", marker))
	tag := "bkmid-" + marker[len(marker)-8:]
	env := fxCIEnv(vars, "DOCKER_HOST="+dp.Host, "DOCKER_CONFIG="+t.TempDir())
	bp := startBinary(t, runOpts{env: env, dir: app}, "push", "--builder", "buildkit", "--tag", tag)
	// BuildKit runs RUN steps outside the engine's containers: look for the
	// step's shell among this machine's processes.
	fxEngineGoneMidBuild(t, dp, bp, tag, func() bool { return processRuns(marker) })
}

// processRuns says whether a process on this machine has marker in its
// command line.
func processRuns(marker string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(marker)) {
			return true
		}
	}
	return false
}

// makeCold removes ref's image, the images it leaves dangling and all of
// the engine's build cache, as on a fresh CI engine. The base image stays.
func makeCold(t *testing.T, engine *client.Client, ref string) {
	t.Helper()
	ctx := context.Background()
	if _, err := engine.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
		t.Fatalf("removing %s: %v", ref, err)
	}
	dangling, err := engine.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range dangling {
		if len(img.RepoTags) == 0 || img.RepoTags[0] == "<none>:<none>" {
			_, _ = engine.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	}
	if _, err := engine.BuildCachePrune(ctx, build.CachePruneOptions{All: true}); err != nil {
		t.Fatalf("pruning the build cache: %v", err)
	}
}

// TestPushContextMatchesTheDockerCLI builds the same contexts with
// containerise push and with the docker CLI (Debian's 20.10, BuildKit and
// classic), and compares the files each build saw: a .dockerignore with
// `**`, `!` exceptions and an ignored folder, symlinks (to a file, to a
// folder, dangling, absolute), a Dockerfile outside the context, and a
// <Dockerfile>.dockerignore beside it, which BuildKit prefers.
func TestPushContextMatchesTheDockerCLI(t *testing.T) {
	peer := "/usr/bin/docker"
	if _, err := os.Stat(peer); err != nil {
		t.Fatalf("%s (Debian's docker.io CLI, with BuildKit built in) is missing: scripts/stack.sh up installs it", peer)
	}
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	ctxDir := writeApp(t, "", map[string]string{
		".dockerignore":           "**/*.log\n!keep/**/*.log\nsecrets/\n**/node_modules\ntmp*\n# a comment\n!tmp/wanted.txt\n",
		"a.txt":                   "a\n",
		"z.txt":                   "z\n",
		"b.log":                   "ignored\n",
		"keep/x/y.log":            "kept by an exception\n",
		"keep/z.log":              "kept by an exception\n",
		"sub/c.log":               "ignored\n",
		"sub/d.txt":               "d\n",
		"secrets/key":             "ignored folder\n",
		"pkg/node_modules/m.js":   "ignored at any depth\n",
		"node_modules/n.js":       "ignored at the top\n",
		"tmpfile":                 "ignored\n",
		"tmp/wanted.txt":          "an exception inside an ignored folder\n",
		"tmp/other.txt":           "ignored\n",
		"deep/er/still/f.txt":     "f\n",
		"deep/er/still/trace.log": "ignored\n",
	})
	for link, target := range map[string]string{"link-to-a": "a.txt", "dirlink": "sub", "dangling": "no-such-file", "sub/abs": "/etc/hostname"} {
		if err := os.Symlink(target, filepath.Join(ctxDir, link)); err != nil {
			t.Fatal(err)
		}
	}
	// The Dockerfile lists what it was given, with a digest of each file
	// and the target of each link.
	list := `RUN cd /ctx && find . | sort | while read f; do if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; elif [ -f "$f" ]; then echo "$f $(md5sum < "$f" | cut -c1-12)"; else echo "$f/"; fi; done > /list.txt`
	body := fmt.Sprintf("FROM %s\nCOPY . /ctx\n%s\n", baseImage(), list)
	inside := filepath.Join(ctxDir, "Dockerfile")
	outsideDir := t.TempDir()
	outside := filepath.Join(outsideDir, "app.Dockerfile")
	for _, f := range []string{inside, outside} {
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// BuildKit reads app.Dockerfile.dockerignore in place of .dockerignore.
	if err := os.WriteFile(outside+".dockerignore", []byte("*.txt\n!a.txt\nsub\n!sub/d.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	dockerConfig := t.TempDir()
	engine := dockerAPI(t)
	n := 0
	// What .dockerignore leaves out, and what app.Dockerfile.dockerignore
	// leaves out under BuildKit instead.
	contextIgnores := []string{"./secrets/", "./b.log", "./node_modules/", "./pkg/node_modules/", "./tmpfile", "./tmp/other.txt", "./deep/er/still/trace.log"}
	specificIgnores := []string{"./sub/c.log", "./z.txt"}
	for _, tc := range []struct {
		name, dockerfile, builder string
		never                     []string
	}{
		{"BuildKit, Dockerfile inside", inside, "buildkit", contextIgnores},
		{"BuildKit, Dockerfile outside with its own .dockerignore", outside, "buildkit", specificIgnores},
		{"classic, Dockerfile inside", inside, "classic", contextIgnores},
		{"classic, Dockerfile outside", outside, "classic", contextIgnores},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n++
			peerImage := fmt.Sprintf("local/containerise-e2e-peer:%s-%d", stamp, n)
			buildkit := "1"
			if tc.builder == "classic" {
				buildkit = "0"
			}
			cmd := exec.Command(peer, "build", "-q", "-f", tc.dockerfile, "-t", peerImage, ctxDir)
			cmd.Env = append(cleanEnv(), "DOCKER_BUILDKIT="+buildkit, "DOCKER_CONFIG="+dockerConfig)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("docker build (the peer): %v\n%s", err, out)
			}
			t.Cleanup(func() { _, _ = engine.ImageRemove(context.Background(), peerImage, image.RemoveOptions{Force: true}) })
			want := fileList(t, engine, peerImage)

			tag := fmt.Sprintf("ctx-%s-%d", stamp[len(stamp)-8:], n)
			r := runWith(t, runOpts{env: vars.env(), dir: t.TempDir()}, "push", "--no-cache", "--builder", tc.builder,
				"--context", ctxDir, "--file", tc.dockerfile, "--tag", tag)
			if r.Code != 0 {
				t.Fatalf("push failed:\n%s", r)
			}
			got := fileList(t, engine, os.Getenv("STACK_REGISTRY_HOST")+"/"+pushRepo+":"+tag)
			if tc.builder == "classic" && tc.dockerfile == outside {
				// Both send the outside Dockerfile under a random name and
				// add that name to the .dockerignore they send, so that
				// file's digest differs by the name.
				got, want = maskDigest(got, "./.dockerignore"), maskDigest(want, "./.dockerignore")
			}
			if got != want {
				t.Errorf("the build saw other files than with the docker CLI\n--- containerise\n%s--- docker build\n%s", got, want)
			}
			for _, never := range tc.never {
				if strings.Contains(got, never+"\n") || strings.Contains(got, never+" ") {
					t.Errorf("an ignored path %s reached the build:\n%s", never, got)
				}
			}
			if !strings.Contains(got, "./link-to-a -> a.txt") {
				t.Errorf("the symlink did not reach the build as a symlink:\n%s", got)
			}
		})
	}
}

// maskDigest replaces the digest on the line of path.
func maskDigest(list, path string) string {
	lines := strings.Split(list, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, path+" ") {
			lines[i] = path + " (digest not compared)"
		}
	}
	return strings.Join(lines, "\n")
}

// fileList reads /list.txt from an image on the engine.
func fileList(t *testing.T, engine *client.Client, ref string) string {
	t.Helper()
	ctx := context.Background()
	rc, _, err := engine.CopyFromContainer(ctx, createContainer(t, engine, ref), "/list.txt")
	if err != nil {
		t.Fatalf("reading /list.txt of %s: %v", ref, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---------------------------------------------------------------- helpers

func dockerAPI(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// createContainer creates (never starts) a container of ref, removed when
// the test ends, to copy files out of it.
func createContainer(t *testing.T, engine *client.Client, ref string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := engine.ContainerCreate(ctx, containerConfig(ref), nil, nil, nil, "")
	if err != nil {
		t.Fatalf("creating a container of %s: %v", ref, err)
	}
	t.Cleanup(func() { _ = engine.ContainerRemove(context.Background(), resp.ID, containerRemoveOptions()) })
	return resp.ID
}

func containerConfig(ref string) *container.Config {
	return &container.Config{Image: ref, Cmd: []string{"true"}}
}

func containerRemoveOptions() container.RemoveOptions {
	return container.RemoveOptions{Force: true}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// pushedImage is an image read back from the stack's registry: its raw
// bytes (manifest, config, every decompressed layer) and its files.
type pushedImage struct {
	raw    []byte
	config string
	layers [][]byte // decompressed tars
}

// readImage fetches repo@digest's manifest, config and layers.
func readImage(t *testing.T, repo, digest string) pushedImage {
	t.Helper()
	var img pushedImage
	manifest := []byte(manifestBody(t, repo, digest))
	img.raw = append(img.raw, manifest...)
	var m struct {
		Config struct{ Digest string } `json:"config"`
		Layers []struct {
			Digest    string `json:"digest"`
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatalf("the manifest of %s@%s: %v", repo, digest, err)
	}
	config := blob(t, repo, m.Config.Digest)
	img.config = string(config)
	img.raw = append(img.raw, config...)
	for _, l := range m.Layers {
		data := blob(t, repo, l.Digest)
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				data = plain
			}
		}
		img.layers = append(img.layers, data)
		img.raw = append(img.raw, data...)
	}
	return img
}

// files maps each regular file of the layers (later layers win) to its
// content.
func (img pushedImage) files() map[string]string {
	files := map[string]string{}
	for _, l := range img.layers {
		tr := tar.NewReader(bytes.NewReader(l))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) || err != nil {
				break
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				files[strings.TrimPrefix(h.Name, "./")] = string(b)
			}
		}
	}
	return files
}

// manifestBody fetches repo:ref's manifest from the stack's registry.
func manifestBody(t *testing.T, repo, ref string) string {
	t.Helper()
	resp := manifestRequest(t, http.MethodGet, repo, ref)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("fetching %s:%s: HTTP %d %v", repo, ref, resp.StatusCode, err)
	}
	return string(body)
}

// blob fetches one blob of repo from the stack's registry.
func blob(t *testing.T, repo, digest string) []byte {
	t.Helper()
	url := fmt.Sprintf("https://%s/v2/%s/blobs/%s", os.Getenv("STACK_REGISTRY_HOST"), repo, digest)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("AWS", os.Getenv("STACK_REGISTRY_PASSWORD"))
	c := registryClient(t)
	c.Timeout = time.Minute
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("fetching %s: %v", digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fetching %s: HTTP %d", digest, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
