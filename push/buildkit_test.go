package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/registry"
	"github.com/moby/buildkit/session/auth"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

// builtBuildKitID is the image ID in testdata/buildkit-ok.jsonl.
const builtBuildKitID = "sha256:09d04470243d98290e60a62473a6954a12d3de8ea3d8a2690b03cc83cdffa12d"

// newBuildKitWorld is a push with the defaults a user gets: auto builder
// (BuildKit, which the fake engine offers) and the registry cache.
func newBuildKitWorld(t *testing.T) *world {
	w := newWorld(t, awsfake.Config{})
	w.opts.Builder = BuilderAuto
	w.opts.NoCache = false
	return w
}

func decodeAuth(t *testing.T, encoded string) registry.AuthConfig {
	t.Helper()
	raw, err := base64.URLEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatalf("RegistryAuth is not base64url: %v", err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		t.Fatal(err)
	}
	return ac
}

func sortedKeys(m map[string]string) string {
	k := keys(m)
	sort.Strings(k)
	return strings.Join(k, " ")
}

// TestPushBuildKitServesTheBuildThroughItsSession is the default push: AWS
// first, the tags being pushed pulled as cache sources (v1 is in the
// registry, v2 is not), then a BuildKit build whose session the fake engine
// uses as the engine's BuildKit does: it receives the context and the
// Dockerfile, asks for the secrets and for registry credentials.
func TestPushBuildKitServesTheBuildThroughItsSession(t *testing.T) {
	w := newBuildKitWorld(t)
	secretFile := filepath.Join(t.TempDir(), "key.txt")
	writeFiles(t, filepath.Dir(secretFile), map[string]string{"key.txt": "file-secret-value"})
	t.Setenv("CZ_TEST_TOKEN", "env-secret-value")
	writeFiles(t, w.opts.Context, map[string]string{
		".dockerignore":        "**/*.log\n!keep.log\nsecrets/\n",
		"secrets/key":          "never sent\n",
		"build.log":            "never sent\n",
		"sub/deep/trace.log":   "never sent\n",
		"keep.log":             "kept by the exception\n",
		"src/main.go":          "package main\n",
		"frontend/ignored.txt": "left out by the frontend's own patterns\n",
	})
	if err := os.Symlink("src/main.go", filepath.Join(w.opts.Context, "main-link")); err != nil {
		t.Fatal(err)
	}
	w.opts.Secrets = []Secret{{ID: "token", Env: "CZ_TEST_TOKEN"}, {ID: "key", File: secretFile}}
	w.opts.Network = "none"
	w.opts.Platforms = []string{"linux/arm64"}
	w.opts.CacheFrom = []string{"example.com/team/base:latest"}
	host := w.acct.RegistryHost()
	v1 := host + "/" + testRepo + ":v1"
	w.engine.Pull = map[string]any{v1: "pull-ok.jsonl", "example.com/team/base:latest": "pull-ok.jsonl"}
	w.engine.FrontendExcludes = []string{"frontend/"}
	w.engine.AskSecrets = []string{"token", "key", "unknown"}
	w.engine.AskCredentials = []string{host, "registry-1.docker.io"}

	if err := w.run(); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	if n := strings.Count(w.out.String(), "\n"); n != 2 {
		t.Errorf("stdout, want 2 lines:\n%s", w.out)
	}

	// AWS first, then the pulls, then the build with the registry refs as
	// its tags (no ImageTag), then the pushes.
	var calls []string
	for _, c := range w.engine.calls {
		if c != "DialHijack" { // the session dials on its own goroutine
			calls = append(calls, c)
		}
	}
	if got := strings.Join(calls, " "); got != "Ping Negotiate ImagePull ImagePull ImagePull ImageBuild ImagePush ImagePush" {
		t.Errorf("engine calls: %s", got)
	}
	if got := strings.Join(w.acct.Ops(), " "); got != "sts.AssumeRole ecr.GetAuthorizationToken" {
		t.Errorf("AWS calls: %s", got)
	}
	wantPulls := []string{v1, host + "/" + testRepo + ":v2", "example.com/team/base:latest"}
	for i, p := range w.engine.pulls {
		if p.Ref != wantPulls[i] {
			t.Errorf("pull %d: %s, want %s", i, p.Ref, wantPulls[i])
		}
		ac := registry.AuthConfig{}
		if p.Auth != "" {
			ac = decodeAuth(t, p.Auth)
		}
		ecr := strings.HasPrefix(p.Ref, host+"/")
		if ecr && (ac.Username != "AWS" || ac.Password != w.acct.AuthToken()) || !ecr && p.Auth != "" {
			t.Errorf("pull of %s with credentials %+v: the ECR token goes to ECR only", p.Ref, ac)
		}
	}
	if !strings.Contains(w.err.String(), "cache: "+host+"/"+testRepo+":v2 is not in the registry (yet): building without it") {
		t.Errorf("stderr does not say the missing cache source is skipped:\n%s", w.err)
	}

	if len(w.engine.builds) != 1 {
		t.Fatalf("builds: %d", len(w.engine.builds))
	}
	b := w.engine.builds[0]
	o := b.Options
	if o.Version != build.BuilderBuildKit || o.Dockerfile != "Dockerfile" || o.BuildID == "" || o.NetworkMode != "none" || o.Platform != "linux/arm64" {
		t.Errorf("build options: %+v", o)
	}
	if strings.Join(o.Tags, " ") != v1+" "+host+"/"+testRepo+":v2" {
		t.Errorf("build tags %v, want the registry refs", o.Tags)
	}
	if strings.Join(o.CacheFrom, " ") != v1+" example.com/team/base:latest" {
		t.Errorf("cache sources %v, want the pulled images only", o.CacheFrom)
	}
	if v := o.BuildArgs[inlineCacheArg]; v == nil || *v != "1" {
		t.Errorf("no inline cache metadata asked for: %v", o.BuildArgs)
	}
	if len(o.AuthConfigs) != 0 {
		t.Errorf("registry credentials in the build request: %v", o.AuthConfigs)
	}

	// The context as the engine received it: .dockerignore applied here,
	// the frontend's own patterns on top, the symlink as a symlink.
	if got, want := sortedKeys(b.Files), ".dockerignore Dockerfile app.txt keep.log main-link src/main.go"; got != want {
		t.Errorf("context through the session: %s\nwant %s", got, want)
	}
	if b.Files["main-link"] != "-> src/main.go" {
		t.Errorf("the symlink arrived as %q", b.Files["main-link"])
	}
	if got := sortedKeys(b.DockerfileFiles); got != "Dockerfile" {
		t.Errorf("the Dockerfile's folder offered %s; want the Dockerfile alone", got)
	}
	if b.Secrets["token"] != "env-secret-value" || b.Secrets["key"] != "file-secret-value" || b.SecretErrs["unknown"] == nil {
		t.Errorf("secrets through the session: %v, errors %v", b.Secrets, b.SecretErrs)
	}
	if got := b.Credentials[host]; got != "AWS:"+w.acct.AuthToken() {
		t.Errorf("credentials for %s: %q, want the ECR token", host, got)
	}
	if got, ok := b.Credentials["registry-1.docker.io"]; !ok || got != "" {
		t.Errorf("credentials for Docker Hub: %q (asked: %v); want none", got, ok)
	}

	for _, s := range []string{"building " + v1, "with BuildKit", "#1 [internal] load build definition from Dockerfile", "RUN --mount=type=secret,id=tok", "exporting to image"} {
		if !strings.Contains(w.err.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, w.err)
		}
	}
	for _, s := range []string{"env-secret-value", "file-secret-value"} {
		if strings.Contains(w.out.String()+w.err.String(), s) {
			t.Errorf("a build secret's value is in the output")
		}
	}
	w.checkNoSecrets()
	w.checkHomeEmpty()
}

// TestPushBuildKitFailureNamesTheStep replays BuildKit's stream of a failing
// RUN: exit 1 with the step as BuildKit names it and the engine's message;
// nothing is tagged or pushed.
func TestPushBuildKitFailureNamesTheStep(t *testing.T) {
	w := newBuildKitWorld(t)
	w.engine.Build = "buildkit-run-false.jsonl"
	err := w.run()
	if err == nil {
		t.Fatalf("push succeeded\n%s", w.err)
	}
	if clierror.Code(err) != clierror.ExitFailure {
		t.Errorf("exit %d, want 1", clierror.Code(err))
	}
	if want := "build failed at [3/3] RUN false: executor failed running [/bin/sh -c false]: exit code: 1"; err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	if !strings.Contains(w.err.String(), "#6 [3/3] RUN false") || !strings.Contains(w.err.String(), "ERROR: executor failed") {
		t.Errorf("BuildKit's display of the failure is not on stderr:\n%s", w.err)
	}
	if len(w.engine.tags)+len(w.engine.pushes) != 0 || w.out.Len() != 0 {
		t.Errorf("tagged or pushed after a failed build: %v", w.engine.calls)
	}
}

// TestPushBuildKitWaitsForTheTokenWhenAskedEarly: with --no-cache the
// BuildKit build runs while AWS answers. When BuildKit asks for the ECR
// registry's credentials before ECR answered (a FROM image there), the
// session holds the request until the token comes; another registry is
// answered at once, with nothing.
func TestPushBuildKitWaitsForTheTokenWhenAskedEarly(t *testing.T) {
	w := newBuildKitWorld(t)
	w.opts.NoCache = true
	host := w.acct.RegistryHost()
	w.engine.AskCredentials = []string{"registry-1.docker.io", host}
	// AssumeRole is answered only once the engine has the build: the
	// credentials are asked for before the token exists.
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, before: func() {
		await(t, w.engine.buildStarted, "the build while AssumeRole waits")
	}}
	if err := w.runWithin(context.Background(), 4*overlapGuard); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	b := w.engine.builds[0]
	if got := b.Credentials[host]; got != "AWS:"+w.acct.AuthToken() {
		t.Errorf("credentials for %s: %q, want the ECR token once it came", host, got)
	}
	if got := b.Credentials["registry-1.docker.io"]; got != "" {
		t.Errorf("credentials for Docker Hub: %q, want none", got)
	}
	if !b.Options.NoCache || len(b.Options.CacheFrom) != 0 || len(b.Options.Tags) != 0 || len(w.engine.pulls) != 0 {
		t.Errorf("--no-cache: NoCache %v, CacheFrom %v, pulls %v, tags %v", b.Options.NoCache, b.Options.CacheFrom, w.engine.pulls, b.Options.Tags)
	}
	wantTags := []tagCall{{builtBuildKitID, host + "/" + testRepo + ":v1"}, {builtBuildKitID, host + "/" + testRepo + ":v2"}}
	if len(w.engine.tags) != 2 || w.engine.tags[0] != wantTags[0] || w.engine.tags[1] != wantTags[1] {
		t.Errorf("ImageTag calls %v, want %v", w.engine.tags, wantTags)
	}
	w.checkNoSecrets()
}

// TestPushBuildKitAWSFailureReleasesTheSession: when AWS refuses while
// BuildKit waits for the ECR registry's credentials, the wait ends (with
// no credentials) and the push fails with AWS's error.
func TestPushBuildKitAWSFailureReleasesTheSession(t *testing.T) {
	w := newBuildKitWorld(t)
	w.opts.NoCache = true
	w.opts.Wait = 0
	w.acct.FailOperation("sts.AssumeRole", &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform: sts:AssumeRole"})
	w.engine.AskCredentials = []string{w.acct.RegistryHost()}
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, before: func() {
		await(t, w.engine.buildStarted, "the build while AssumeRole waits")
	}}
	err := w.runWithin(context.Background(), 4*overlapGuard)
	if err == nil || !strings.Contains(err.Error(), "may not assume this role") {
		t.Fatalf("error %v; want STS's refusal", err)
	}
	if len(w.engine.tags)+len(w.engine.pushes) != 0 {
		t.Errorf("tagged or pushed without credentials: %v", w.engine.calls)
	}
}

// TestPushWarmEngineBuildsFromItsOwnImages: when the engine has a tag's
// image already (under the registry name ECR will give), the build uses it
// as it is, pulls nothing, and runs while AWS answers.
func TestPushWarmEngineBuildsFromItsOwnImages(t *testing.T) {
	w := newBuildKitWorld(t)
	w.opts.Region = "us-east-1"
	host := w.acct.RegistryHost()
	if want := predictedRegistry(w.opts.RoleARN, w.opts.Region); want != host {
		t.Fatalf("predicted registry %q, ECR names %q", want, host)
	}
	v1 := host + "/" + testRepo + ":v1"
	w.engine.Local = map[string]bool{v1: true}
	stsAsked := newSignal()
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, before: func() {
		stsAsked.fire()
		await(t, w.engine.buildStarted, "the build while AssumeRole waits: the build does not overlap the AWS calls")
	}}
	if err := w.runWithin(context.Background(), 4*overlapGuard); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	if len(w.engine.pulls) != 0 {
		t.Errorf("pulled %v on a warm engine", w.engine.pulls)
	}
	b := w.engine.builds[0]
	if strings.Join(b.Options.CacheFrom, " ") != v1 || b.Options.NoCache || len(b.Options.Tags) != 0 {
		t.Errorf("build: CacheFrom %v, NoCache %v, Tags %v", b.Options.CacheFrom, b.Options.NoCache, b.Options.Tags)
	}
	if len(w.engine.tags) != 2 || strings.Count(w.out.String(), "\n") != 2 {
		t.Errorf("tags %v, stdout:\n%s", w.engine.tags, w.out)
	}
	if !strings.Contains(w.err.String(), "cache: the engine has "+v1+" already: building from it without pulling") {
		t.Errorf("stderr:\n%s", w.err)
	}
}

func TestPredictedRegistry(t *testing.T) {
	for _, tt := range []struct{ arn, region, want string }{
		{"arn:aws:iam::123456789012:role/ci", "eu-west-1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"},
		{"arn:aws-cn:iam::123456789012:role/ci", "cn-north-1", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"},
		{"not-an-arn", "eu-west-1", ""},
		{"arn:aws:iam::123456789012:role/ci", "", ""},
	} {
		if got := predictedRegistry(tt.arn, tt.region); got != tt.want {
			t.Errorf("predictedRegistry(%q, %q) = %q, want %q", tt.arn, tt.region, got, tt.want)
		}
	}
}

// TestPushBuildKitSessionRefused: an engine that refuses the session would
// hold the build waiting for it; the build is cancelled and the error says
// why.
func TestPushBuildKitSessionRefused(t *testing.T) {
	w := newBuildKitWorld(t)
	w.engine.DialErr = errors.New("Error response from daemon: page not found")
	err := w.runWithin(context.Background(), 4*overlapGuard)
	if err == nil || !strings.Contains(err.Error(), "the BuildKit session with the Docker engine at") || !strings.Contains(err.Error(), "page not found") {
		t.Fatalf("error %v", err)
	}
	if clierror.Code(err) != clierror.ExitFailure {
		t.Errorf("exit %d", clierror.Code(err))
	}
}

func TestPushCacheSourceRefusedIsSkipped(t *testing.T) {
	w := newBuildKitWorld(t)
	host := w.acct.RegistryHost()
	w.engine.Pull = map[string]any{
		host + "/" + testRepo + ":v1": errors.New("Error response from daemon: pull access denied for " + host + "/" + testRepo + ", repository does not exist or may require 'docker login': denied: not authorized"),
		host + "/" + testRepo + ":v2": brokenStream(t, "pull-ok.jsonl", 60),
	}
	if err := w.run(); err != nil {
		t.Fatalf("a refused cache source failed the push: %v\n%s", err, w.err)
	}
	if got := strings.Count(w.err.String(), "warning: cache: "); got != 2 {
		t.Errorf("%d cache warnings, want one per source:\n%s", got, w.err)
	}
	for _, s := range []string{"ecr:BatchGetImage and ecr:GetDownloadUrlForLayer", "could not pull " + host + "/" + testRepo + ":v2"} {
		if !strings.Contains(w.err.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, w.err)
		}
	}
	if b := w.engine.builds[0]; len(b.Options.CacheFrom) != 0 {
		t.Errorf("the build was given cache sources that did not pull: %v", b.Options.CacheFrom)
	}
	w.checkNoSecrets()
}

func TestPushChoosesTheBuilder(t *testing.T) {
	t.Run("auto on an engine without BuildKit", func(t *testing.T) {
		w := newBuildKitWorld(t)
		w.engine.APIVersion = "1.38"
		if err := w.run(); err != nil {
			t.Fatalf("push failed: %v\n%s", err, w.err)
		}
		if !strings.Contains(w.err.String(), "the engine does not offer BuildKit (its API 1.38 is older than 1.39): building with the classic builder\n") {
			t.Errorf("no notice of the classic builder:\n%s", w.err)
		}
		if v := w.engine.builds[0].Options.Version; v != build.BuilderV1 {
			t.Errorf("built with %q", v)
		}
	})
	t.Run("buildkit on an engine without it", func(t *testing.T) {
		w := newBuildKitWorld(t)
		w.engine.APIVersion = "1.38"
		w.opts.Builder = BuilderBuildKit
		err := w.run()
		if err == nil || !strings.Contains(err.Error(), "building with BuildKit") || !strings.Contains(err.Error(), "does not offer it") || clierror.Code(err) != clierror.ExitFailure {
			t.Fatalf("error %v", err)
		}
		if len(w.acct.Ops()) != 0 {
			t.Errorf("AWS was asked: %v", w.acct.Ops())
		}
	})
	t.Run("secrets on an engine without BuildKit", func(t *testing.T) {
		w := newBuildKitWorld(t)
		w.engine.APIVersion = "1.38"
		w.opts.Secrets = []Secret{{ID: "a", Env: "HOME"}}
		err := w.run()
		if err == nil || !strings.Contains(err.Error(), "build secrets need BuildKit") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("several platforms without the containerd image store", func(t *testing.T) {
		w := newBuildKitWorld(t)
		w.opts.Platforms = []string{"linux/amd64", "linux/arm64"}
		err := w.run()
		if err == nil || !strings.Contains(err.Error(), "containerd image store") || !strings.Contains(err.Error(), "overlay2") {
			t.Fatalf("error %v", err)
		}
		if len(w.engine.builds) != 0 || len(w.acct.Ops()) != 0 {
			t.Errorf("built or asked AWS: %v %v", w.engine.calls, w.acct.Ops())
		}
	})
	t.Run("several platforms with the containerd image store", func(t *testing.T) {
		w := newBuildKitWorld(t)
		w.engine.DriverType = "io.containerd.snapshotter.v1"
		w.opts.Platforms = []string{"linux/amd64", "linux/arm64"}
		if err := w.run(); err != nil {
			t.Fatalf("push failed: %v\n%s", err, w.err)
		}
		if p := w.engine.builds[0].Options.Platform; p != "linux/amd64,linux/arm64" {
			t.Errorf("platform %q", p)
		}
	})
}

// TestPushBuildKitContext: the Dockerfile's own .dockerignore wins over
// the context's, as in BuildKit's frontend; a Dockerfile outside the
// context comes from its own folder, alone.
func TestPushBuildKitContext(t *testing.T) {
	w := newBuildKitWorld(t)
	w.opts.NoCache = true
	other := t.TempDir()
	writeFiles(t, other, map[string]string{
		"app.Dockerfile":              "FROM local/busybox:latest\n",
		"app.Dockerfile.dockerignore": "*.txt\n",
		"unrelated.txt":               "not for the engine\n",
	})
	writeFiles(t, w.opts.Context, map[string]string{".dockerignore": "*.md\n", "notes.md": "sent: only the Dockerfile's ignore file applies\n"})
	w.opts.Dockerfile = filepath.Join(other, "app.Dockerfile")
	if err := w.run(); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	b := w.engine.builds[0]
	if got := sortedKeys(b.Files); got != ".dockerignore Dockerfile notes.md" {
		t.Errorf("context: %s", got)
	}
	if got := sortedKeys(b.DockerfileFiles); got != "app.Dockerfile app.Dockerfile.dockerignore" {
		t.Errorf("the Dockerfile's folder offered %s", got)
	}
	if b.Options.Dockerfile != "app.Dockerfile" {
		t.Errorf("Dockerfile %q", b.Options.Dockerfile)
	}
}

func TestRegistryGate(t *testing.T) {
	const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	ask := func(g *registryGate, h string) string {
		resp, err := g.Credentials(context.Background(), &auth.CredentialsRequest{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Username + ":" + resp.Secret
	}
	g := newRegistryGate("arn:aws:iam::123456789012:role/ci", nil)
	if got := ask(g, "registry-1.docker.io"); got != ":" {
		t.Errorf("another registry before the token: %q", got)
	}
	got := make(chan string)
	go func() { got <- ask(g, host) }()
	select {
	case v := <-got:
		t.Fatalf("the ECR registry was answered before the token: %q", v)
	case <-time.After(100 * time.Millisecond):
	}
	g.open(registryAuth{Host: host, Username: "AWS", Password: "pw"})
	if v := <-got; v != "AWS:pw" {
		t.Errorf("after the token: %q", v)
	}
	if v := ask(g, "999999999999.dkr.ecr.eu-west-1.amazonaws.com"); v != ":" {
		t.Errorf("another account's registry: %q", v)
	}

	closed := newRegistryGate("arn:aws:iam::123456789012:role/ci", nil)
	closed.close()
	if v := ask(closed, host); v != ":" {
		t.Errorf("after AWS failed: %q", v)
	}
	if v := ask(newRegistryGate("not an arn", nil), host); v != ":" {
		t.Errorf("without an account to wait for: %q", v)
	}
}

func TestCacheWarning(t *testing.T) {
	for _, tt := range []struct{ err, want string }{
		{"Error response from daemon: manifest for r:v1 not found: manifest unknown: manifest unknown", "cache: r:v1 is not in the registry (yet): building without it"},
		{"Error response from daemon: pull access denied for r, repository does not exist or may require 'docker login': denied: User is not authorized", "warning: cache: the registry refused r:v1"},
		{"Error response from daemon: Head \"https://r/v2/x/manifests/v1\": unauthorized: authentication required", "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer"},
		{"Error response from daemon: Get \"https://r/v2/\": dial tcp: connection refused", "warning: cache: could not pull r:v1"},
	} {
		if got := cacheWarning("r:v1", errors.New(tt.err)); !strings.Contains(got, tt.want) || !strings.Contains(got, "building without it") {
			t.Errorf("cacheWarning(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
