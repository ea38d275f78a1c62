package push

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/registry"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

const testRepo = "circleci-ecr-test"

// builtID is the image ID in the aux of the recorded build streams.
const builtID = "sha256:4876b175498b55a053ed1362761cb1457209527f84f53932be6274b9119222bc"

// world is one push against a fake account and a fake engine.
type world struct {
	t       *testing.T
	acct    *awsfake.Account
	engine  *fakeEngine
	pusher  *Pusher
	opts    Options
	out     *bytes.Buffer
	err     *bytes.Buffer
	home    string
	mu      sync.Mutex
	ecrWith []aws.Credentials // the credentials each ECR client was made with
}

// newWorld creates what setup would (user, key, role trusting the user,
// repository) and a build context with a Dockerfile.
func newWorld(t *testing.T, cfg awsfake.Config) *world {
	t.Helper()
	ctx := context.Background()
	a := awsfake.New(cfg)
	admin := a.IAM()
	if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("circleci")}); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("circleci")})
	if err != nil {
		t.Fatal(err)
	}
	trust := policies.Trust(policies.UserARN("aws", a.ID(), "circleci")).JSON()
	a.Advance(time.Minute) // let the user propagate before the role names it
	role, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("circleci-ecr"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ECR().CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(testRepo)}); err != nil {
		t.Fatal(err)
	}
	a.ResetCalls()

	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM local/busybox:latest\nCMD [\"sh\"]\n", "app.txt": "hello\n"})

	w := &world{t: t, acct: a, engine: newFakeEngine(t), out: &bytes.Buffer{}, err: &bytes.Buffer{}, home: home}
	w.pusher = &Pusher{
		STS: a.STSAs(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey)),
		NewECR: func(c aws.Credentials) ecrAPI {
			w.mu.Lock()
			w.ecrWith = append(w.ecrWith, c)
			w.mu.Unlock()
			return a.ECR()
		},
		Engine: w.engine,
		Out:    w.out,
		Err:    w.err,
		Debugf: func(format string, args ...any) { fmt.Fprintf(w.err, format+"\n", args...) },
		// IAM's propagation is waited out on the fake clock, not the wall clock.
		Backoff: func(int) time.Duration { a.Advance(2 * time.Second); return time.Millisecond },
	}
	w.opts = Options{
		AccessKeyID:     aws.ToString(key.AccessKey.AccessKeyId),
		SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey),
		RoleARN:         aws.ToString(role.Role.Arn),
		SessionName:     "circleci-app-42",
		Repository:      testRepo,
		Tags:            []string{"v1", "v2"},
		Context:         dir,
		Wait:            time.Second,
		// The classic builder, building while AWS answers: the BuildKit
		// and cache paths have tests of their own.
		Builder: BuilderClassic,
		NoCache: true,
	}
	return w
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *world) run() error {
	return w.pusher.Run(context.Background(), w.opts)
}

// secrets lists every value that must never be printed.
func (w *world) secrets() []string {
	s := []string{w.opts.SecretAccessKey, w.acct.AuthToken()}
	for _, c := range w.ecrWith {
		s = append(s, c.SecretAccessKey, c.SessionToken)
	}
	for _, p := range w.engine.pushes {
		s = append(s, p.Auth)
	}
	return s
}

func (w *world) checkNoSecrets() {
	w.t.Helper()
	for _, s := range w.secrets() {
		if s == "" {
			continue
		}
		if strings.Contains(w.out.String(), s) || strings.Contains(w.err.String(), s) {
			w.t.Errorf("a secret (%.6s…) appears in the output:\n--- stdout\n%s--- stderr\n%s", s, w.out, w.err)
		}
	}
}

func (w *world) checkHomeEmpty() {
	w.t.Helper()
	entries, err := os.ReadDir(w.home)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range entries {
		w.t.Errorf("push wrote %s in HOME; it must not (no docker login, no config.json)", e.Name())
	}
}

func TestPushBuildsOnceAndPushesEveryTag(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	writeFiles(t, w.opts.Context, map[string]string{
		".dockerignore":   "secret.env\nDockerfile\n.dockerignore\nlogs/\n",
		"secret.env":      "TOKEN=x\n",
		"logs/build.log":  "noise\n",
		"src/main.go":     "package main\n",
		"src/.keep":       "",
		"nested/ok.txt":   "ok\n",
		"nested/skip.log": "kept: only top-level logs/ is ignored\n",
	})
	v := "1.2"
	w.opts.BuildArgs = map[string]*string{"VERSION": &v}
	w.opts.Labels = map[string]string{"org.opencontainers.image.source": "https://example.com/app"}
	w.opts.Target = "runtime"

	if err := w.run(); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	host := w.acct.RegistryHost()
	want := fmt.Sprintf("%[1]s/%[2]s:v1@sha256:72c201c6b01d1e5f12ef9de2330f4b8372268dd0ed63793a91014bb7222e38ec\n%[1]s/%[2]s:v2@sha256:72c201c6b01d1e5f12ef9de2330f4b8372268dd0ed63793a91014bb7222e38ec\n", host, testRepo)
	if w.out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", w.out, want)
	}

	// The engine: negotiated first, one build, then the built image tagged
	// with each registry ref, then one push per tag. The build has no tags:
	// it ran before ECR named the registry.
	if got := strings.Join(w.engine.calls, " "); got != "Ping Negotiate ImageBuild ImageTag ImageTag ImagePush ImagePush" {
		t.Errorf("engine calls: %s", got)
	}
	if len(w.engine.builds) != 1 {
		t.Fatalf("builds: %d", len(w.engine.builds))
	}
	b := w.engine.builds[0]
	wantTags := []string{host + "/" + testRepo + ":v1", host + "/" + testRepo + ":v2"}
	if len(b.Options.Tags) != 0 {
		t.Errorf("build tags %v, want none (the image is tagged after the build)", b.Options.Tags)
	}
	wantTagCalls := []tagCall{{builtID, wantTags[0]}, {builtID, wantTags[1]}}
	if fmt.Sprint(w.engine.tags) != fmt.Sprint(wantTagCalls) {
		t.Errorf("ImageTag calls %v, want %v", w.engine.tags, wantTagCalls)
	}
	if !strings.Contains(w.err.String(), "tagged 4876b175498b as "+wantTags[0]+", "+wantTags[1]+"\n") {
		t.Errorf("stderr does not say how the image was tagged:\n%s", w.err)
	}
	if b.Options.Dockerfile != "Dockerfile" || b.Options.Target != "runtime" || *b.Options.BuildArgs["VERSION"] != "1.2" ||
		b.Options.Labels["org.opencontainers.image.source"] == "" || b.Options.Version != build.BuilderV1 || !b.Options.Remove {
		t.Errorf("build options: %+v", b.Options)
	}
	if len(b.Options.AuthConfigs) != 0 {
		t.Errorf("the build got registry credentials it does not need: %v", b.Options.AuthConfigs)
	}
	if !b.Streamed {
		t.Error("the build context was not streamed through a pipe")
	}
	for _, name := range []string{"Dockerfile", ".dockerignore", "app.txt", "src/main.go", "nested/ok.txt", "nested/skip.log"} {
		if _, ok := b.Files[name]; !ok {
			t.Errorf("the context lacks %s (files: %v)", name, keys(b.Files))
		}
	}
	for _, name := range []string{"secret.env", "logs/build.log"} {
		if _, ok := b.Files[name]; ok {
			t.Errorf("the context holds %s, which .dockerignore excludes", name)
		}
	}

	// The pushes carry the ECR credentials in the request.
	for i, p := range w.engine.pushes {
		if p.Ref != wantTags[i] {
			t.Errorf("push %d: %s, want %s", i, p.Ref, wantTags[i])
		}
		raw, err := base64.URLEncoding.DecodeString(p.Auth)
		if err != nil {
			t.Fatalf("RegistryAuth is not base64url: %v", err)
		}
		var ac registry.AuthConfig
		if err := json.Unmarshal(raw, &ac); err != nil {
			t.Fatal(err)
		}
		if ac.Username != "AWS" || ac.Password != w.acct.AuthToken() || ac.ServerAddress != host {
			t.Errorf("RegistryAuth: %+v", ac)
		}
	}

	// ECR was asked with the role's credentials, not the user's.
	if len(w.ecrWith) != 1 || w.ecrWith[0].AccessKeyID == w.opts.AccessKeyID || w.ecrWith[0].SessionToken == "" {
		t.Errorf("ECR clients made with %+v", w.ecrWith)
	}
	if got := strings.Join(w.acct.Ops(), " "); got != "sts.AssumeRole ecr.GetAuthorizationToken" {
		t.Errorf("AWS calls: %s", got)
	}
	if !strings.Contains(w.err.String(), "assumed-role/circleci-ecr/circleci-app-42") {
		t.Errorf("the session name is not in the verbose log:\n%s", w.err)
	}
	if !strings.Contains(w.err.String(), "Step 1/4 : FROM local/busybox:latest") || !strings.Contains(w.err.String(), "v1: digest: sha256:") {
		t.Errorf("the engine's progress is not on stderr:\n%s", w.err)
	}
	w.checkNoSecrets()
	w.checkHomeEmpty()
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPushFailsOnEngineErrors(t *testing.T) {
	tests := []struct {
		name       string
		build      any
		push       map[string]any
		tagErr     error
		want       []string
		wantTags   int // ImageTag calls that succeeded
		wantPushes int
		wantOut    int // lines on stdout
	}{
		{name: "failed RUN step", build: "build-run-false.jsonl",
			want: []string{"build failed at Step 3/3 : RUN false", "The command '/bin/sh -c false' returned a non-zero code: 1"}},
		{name: "missing base image", build: "build-missing-base.jsonl",
			want: []string{"build failed at Step 1/2 : FROM nosuch.example/missing/base:1", "no such host"}},
		{name: "build stream ends without an image ID", build: "build-no-id.jsonl",
			want: []string{"without an image ID"}},
		{name: "connection dies mid-build", build: brokenStream(t, "build-ok.jsonl", 400),
			want: []string{"broke off mid-build", "DOCKER_HOST", "connection reset by peer"}},
		{name: "tag refused", tagErr: errors.New("Error response from daemon: No such image: sha256:4876b175498b"),
			want: []string{"tagging the built image 4876b175498b as ", ":v1 on the Docker engine at", "No such image"}},
		{name: "push refused", push: map[string]any{"": "push-unauthorized.jsonl"}, wantTags: 2, wantPushes: 1,
			want: []string{":v1: unauthorized: authentication required", "refused the ECR token"}},
		{name: "push stream without a digest", push: map[string]any{"": "push-no-digest.jsonl"}, wantTags: 2, wantPushes: 1,
			want: []string{"ended without the pushed digest"}},
		{name: "connection dies mid-push", push: map[string]any{"": brokenStream(t, "push-ok-v1.jsonl", 300)}, wantTags: 2, wantPushes: 1,
			want: []string{"broke off mid-push", "DOCKER_HOST"}},
		{name: "second tag refused", push: map[string]any{"v1": "push-ok-v1.jsonl", "": "push-unauthorized.jsonl"}, wantTags: 2, wantPushes: 2, wantOut: 1,
			want: []string{":v2: unauthorized"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, awsfake.Config{})
			if tt.build != nil {
				w.engine.Build = tt.build
			}
			if tt.push != nil {
				w.engine.Push = tt.push
			}
			w.engine.TagErr = tt.tagErr
			err := w.run()
			if err == nil {
				t.Fatalf("push succeeded; want an error\n%s", w.err)
			}
			if code := clierror.Code(err); code != clierror.ExitFailure {
				t.Errorf("exit code %d, want 1", code)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			// A failed build leaves no tag: the image is tagged only
			// after it is built and ECR has answered.
			if len(w.engine.tags) != tt.wantTags {
				t.Errorf("%d tags, want %d", len(w.engine.tags), tt.wantTags)
			}
			if len(w.engine.pushes) != tt.wantPushes {
				t.Errorf("%d pushes, want %d", len(w.engine.pushes), tt.wantPushes)
			}
			if n := strings.Count(w.out.String(), "\n"); n != tt.wantOut {
				t.Errorf("%d lines on stdout, want %d:\n%s", n, tt.wantOut, w.out)
			}
			w.checkNoSecrets()
		})
	}
}

func TestPushUnreachableEngineFailsBeforeAWS(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	t.Setenv("DOCKER_HOST", "tcp://10.0.0.9:2376")
	w.engine.PingErr = errors.New("Cannot connect to the Docker daemon at tcp://10.0.0.9:2376. Is the docker daemon running?")
	err := w.run()
	if err == nil || !strings.Contains(err.Error(), "DOCKER_HOST=tcp://10.0.0.9:2376") || !strings.Contains(err.Error(), "setup_remote_docker") {
		t.Fatalf("error %v; want one naming DOCKER_HOST and what to do", err)
	}
	if ops := w.acct.Ops(); len(ops) != 0 {
		t.Errorf("AWS was called with no engine: %v", ops)
	}

	t.Setenv("DOCKER_HOST", "")
	err = w.run()
	if err == nil || !strings.Contains(err.Error(), "at unix:///var/run/docker.sock (DOCKER_HOST is not set, so the default)") {
		t.Errorf("error %v; want one naming the default socket", err)
	}
}

func TestPushRefusesBadBuildInputsBeforeAnyCall(t *testing.T) {
	tests := []struct {
		name       string
		context    string
		dockerfile string
		want       InputError // the command words it with its flag
	}{
		{name: "missing context", context: "does-not-exist", want: InputError{Input: InputContext, Value: "does-not-exist", Missing: true}},
		{name: "context is a file", context: "app.txt", want: InputError{Input: InputContext, Value: "app.txt", Problem: "is not a folder"}},
		{name: "missing default Dockerfile", context: "empty", want: InputError{Input: InputContextDockerfile, Missing: true}},
		{name: "missing --file", dockerfile: "Dockerfile.prod", want: InputError{Input: InputDockerfile, Value: "Dockerfile.prod", Missing: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, awsfake.Config{})
			if err := os.Mkdir(filepath.Join(w.opts.Context, "empty"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Chdir(w.opts.Context)
			w.opts.Context = "."
			if tt.context != "" {
				w.opts.Context = tt.context
			}
			w.opts.Dockerfile = tt.dockerfile
			err := w.run()
			var got *InputError
			if clierror.Code(err) != clierror.ExitUsage || !errors.As(err, &got) || got.Input != tt.want.Input || got.Missing != tt.want.Missing ||
				got.Problem != tt.want.Problem || tt.want.Value != "" && got.Value != tt.want.Value {
				t.Errorf("error %v (exit %d); want a usage error %+v", err, clierror.Code(err), tt.want)
			}
			if len(w.engine.calls) != 0 || len(w.acct.Ops()) != 0 {
				t.Errorf("calls were made: engine %v, AWS %v", w.engine.calls, w.acct.Ops())
			}
		})
	}
}

// TestPushDockerfileOutsideTheContext: as with `docker build -f`, a
// Dockerfile outside the context is sent inside the streamed context under a
// name no file of the context has, and the build is told that name.
func TestPushDockerfileOutsideTheContext(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	outside := filepath.Join(t.TempDir(), "app.Dockerfile")
	const body = "FROM scratch\nCOPY app.txt /app.txt\n"
	if err := os.WriteFile(outside, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	w.opts.Dockerfile = outside
	if err := w.run(); err != nil {
		t.Fatalf("push: %v", err)
	}
	if len(w.engine.builds) != 1 {
		t.Fatalf("want one build, got %d", len(w.engine.builds))
	}
	b := w.engine.builds[0]
	name := b.Options.Dockerfile
	if !strings.HasPrefix(name, ".containerise-dockerfile-") || b.Files[name] != body {
		t.Errorf("build told Dockerfile %q; context files %v; want the outside Dockerfile's content under that name", name, keys(b.Files))
	}
	if _, ok := b.Files["app.txt"]; !ok || !b.Streamed {
		t.Errorf("the context itself should still be streamed whole: files %v, streamed %v", keys(b.Files), b.Streamed)
	}
}

func TestPushWaitsForAFreshKeyOrRole(t *testing.T) {
	tests := []struct {
		name string
		cfg  awsfake.Config
		want string
	}{
		// newWorld lets a minute pass after creating the key, so a 75 s delay
		// is STS refusing the key for 15 s of this push: the case.
		{name: "fresh access key", cfg: awsfake.Config{KeyDelay: 75 * time.Second}, want: "waiting for IAM to accept the new access key (InvalidClientTokenId)"},
		{name: "fresh role", cfg: awsfake.Config{RoleDelay: 70 * time.Second}, want: "waiting for IAM to let the user assume the role (AccessDenied)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.cfg)
			if err := w.run(); err != nil {
				t.Fatalf("push failed: %v\n%s", err, w.err)
			}
			if !strings.Contains(w.err.String(), tt.want) {
				t.Errorf("stderr does not say what it waits for (%q):\n%s", tt.want, w.err)
			}
			if n := strings.Count(strings.Join(w.acct.Ops(), " "), "sts.AssumeRole"); n < 2 {
				t.Errorf("AssumeRole called %d times; want retries", n)
			}
			if strings.Count(w.out.String(), "\n") != 2 {
				t.Errorf("stdout:\n%s", w.out)
			}
		})
	}
}

func TestPushGivesUpAfterTheWait(t *testing.T) {
	tests := []struct {
		name string
		cfg  awsfake.Config
		want string
	}{
		{name: "key never known", cfg: awsfake.Config{KeyDelay: time.Hour}, want: "AWS does not know the access key in AWS_IAM_USER_ACCESS_KEY_ID"},
		{name: "role never assumable", cfg: awsfake.Config{RoleDelay: time.Hour}, want: "the user may not assume this role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.cfg)
			w.opts.Wait = 50 * time.Millisecond
			w.pusher.Backoff = func(int) time.Duration { return 10 * time.Millisecond } // the fake clock stands still
			start := time.Now()
			err := w.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want one with %q", err, tt.want)
			}
			if clierror.Code(err) != clierror.ExitFailure {
				t.Errorf("exit %d, want 1", clierror.Code(err))
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("gave up after %s; the bound was 50ms", took)
			}
			// The build needs no credentials and ran alongside; what needs
			// the registry never happened.
			if len(w.engine.tags)+len(w.engine.pushes) != 0 {
				t.Errorf("tagged or pushed without credentials: %v", w.engine.calls)
			}
		})
	}
}

func TestPushWithoutWaitTriesOnce(t *testing.T) {
	w := newWorld(t, awsfake.Config{KeyDelay: time.Hour})
	w.opts.Wait = 0
	if err := w.run(); err == nil || !strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Fatalf("error %v", err)
	}
	if ops := w.acct.Ops(); len(ops) != 1 {
		t.Errorf("calls %v; want one AssumeRole", ops)
	}
}

func TestPushWaitIsCancellable(t *testing.T) {
	w := newWorld(t, awsfake.Config{KeyDelay: time.Hour})
	w.opts.Wait = time.Hour
	w.pusher.Backoff = func(int) time.Duration { return time.Hour }
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := w.pusher.Run(ctx, w.opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v; want context.Canceled", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("cancellation did not stop the wait")
	}
}

func TestPushWaitsForTheRolePolicy(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: ecr:GetAuthorizationToken"}
	w.acct.FailOperationTimes("ecr.GetAuthorizationToken", 2, denied)
	if err := w.run(); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	if !strings.Contains(w.err.String(), "waiting for IAM to grant the role its ECR policy") {
		t.Errorf("stderr:\n%s", w.err)
	}
}

func TestPushSkipExisting(t *testing.T) {
	t.Run("some tags exist", func(t *testing.T) {
		w := newWorld(t, awsfake.Config{})
		digest, err := w.acct.AddImage(testRepo, "v1")
		if err != nil {
			t.Fatal(err)
		}
		w.opts.SkipExisting = true
		// Whether to build depends on ECR's answer: the order stays
		// sequential, and the build is tagged by the engine itself.
		var opsAtBuild []string
		w.engine.OnBuild = func() { opsAtBuild = w.acct.Ops() }
		if err := w.run(); err != nil {
			t.Fatalf("push failed: %v\n%s", err, w.err)
		}
		if got := strings.Join(opsAtBuild, " "); got != "sts.AssumeRole ecr.GetAuthorizationToken ecr.DescribeImages ecr.DescribeImages" {
			t.Errorf("AWS calls done when the build started: %s", got)
		}
		if len(w.engine.tags) != 0 {
			t.Errorf("ImageTag called with --skip-existing: %v", w.engine.tags)
		}
		host := w.acct.RegistryHost()
		lines := strings.Split(strings.TrimSpace(w.out.String()), "\n")
		if len(lines) != 2 || lines[0] != host+"/"+testRepo+":v1@"+digest || !strings.HasPrefix(lines[1], host+"/"+testRepo+":v2@sha256:") {
			t.Errorf("stdout:\n%s", w.out)
		}
		if !strings.Contains(w.err.String(), ":v1: exists, skipped") {
			t.Errorf("stderr:\n%s", w.err)
		}
		if len(w.engine.builds) != 1 || len(w.engine.builds[0].Options.Tags) != 1 || !strings.HasSuffix(w.engine.builds[0].Options.Tags[0], ":v2") {
			t.Errorf("builds: %+v", w.engine.builds)
		}
		if len(w.engine.pushes) != 1 || !strings.HasSuffix(w.engine.pushes[0].Ref, ":v2") {
			t.Errorf("pushes: %+v", w.engine.pushes)
		}
	})
	t.Run("all tags exist", func(t *testing.T) {
		w := newWorld(t, awsfake.Config{})
		if _, err := w.acct.AddImage(testRepo, "v1", "v2"); err != nil {
			t.Fatal(err)
		}
		w.opts.SkipExisting = true
		if err := w.run(); err != nil {
			t.Fatalf("push failed: %v\n%s", err, w.err)
		}
		if strings.Count(w.out.String(), "\n") != 2 {
			t.Errorf("stdout:\n%s", w.out)
		}
		if len(w.engine.builds)+len(w.engine.pushes) != 0 {
			t.Errorf("built or pushed although every tag exists: %v", w.engine.calls)
		}
	})
	t.Run("policy without DescribeImages", func(t *testing.T) {
		w := newWorld(t, awsfake.Config{})
		w.acct.FailOperation("ecr.DescribeImages", &smithy.GenericAPIError{Code: "AccessDeniedException",
			Message: "User: arn:aws:sts::123456789012:assumed-role/circleci-ecr/x is not authorized to perform: ecr:DescribeImages"})
		w.opts.SkipExisting = true
		err := w.run()
		// The command words the way forward (setup --allow-skip-existing).
		var pe *Error
		if !errors.As(err, &pe) || pe.Next != hint.AllowSkipExisting {
			t.Fatalf("error %v; want a hint to rerun setup with --allow-skip-existing", err)
		}
		if len(w.engine.builds) != 0 {
			t.Error("built anyway")
		}
	})
	t.Run("missing repository", func(t *testing.T) {
		w := newWorld(t, awsfake.Config{})
		w.opts.SkipExisting = true
		w.opts.Repository = "nope"
		if err := w.run(); err == nil || !strings.Contains(err.Error(), "repository nope does not exist") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestPushRerunSucceeds(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	for i := 0; i < 2; i++ {
		w.out.Reset()
		if err := w.run(); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if strings.Count(w.out.String(), "\n") != 2 {
			t.Errorf("run %d stdout:\n%s", i+1, w.out)
		}
	}
}

func TestPushProgressAtATerminal(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	w.pusher.Terminal = true
	if err := w.run(); err != nil {
		t.Fatal(err)
	}
	// Bars and cursor moves at a terminal; the plain runs above have neither.
	if !strings.Contains(w.err.String(), "\x1b[") || !strings.Contains(w.err.String(), "[=====") {
		t.Errorf("no progress bars at a terminal:\n%q", w.err.String())
	}
	plain := newWorld(t, awsfake.Config{})
	if err := plain.run(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.err.String(), "\x1b[") || strings.Contains(plain.err.String(), "[=====") {
		t.Errorf("progress bars without a terminal:\n%q", plain.err.String())
	}
}
