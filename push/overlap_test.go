package push

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

// The build and the AWS half (AssumeRole, GetAuthorizationToken) run
// together unless --skip-existing. These tests make each half wait for the
// other, so a sequential push cannot pass them; every wait has a guard, so
// that such a push fails them instead of hanging.

const overlapGuard = 5 * time.Second

// await waits for ch; after overlapGuard it fails the test (from any
// goroutine) and returns false.
func await(t *testing.T, ch <-chan struct{}, what string) bool {
	select {
	case <-ch:
		return true
	case <-time.After(overlapGuard):
		t.Errorf("waited %s for %s", overlapGuard, what)
		return false
	}
}

// signal is a channel closed once.
type signal struct {
	ch   chan struct{}
	once sync.Once
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }
func (s *signal) fire()  { s.once.Do(func() { close(s.ch) }) }

// hookedSTS runs before ahead of every AssumeRole and after once it returns.
type hookedSTS struct {
	stsAPI
	before, after func()
}

func (s hookedSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	if s.before != nil {
		s.before()
	}
	out, err := s.stsAPI.AssumeRole(ctx, in, optFns...)
	if s.after != nil {
		s.after()
	}
	return out, err
}

// hookedECR runs after once every GetAuthorizationToken returns.
type hookedECR struct {
	ecrAPI
	after func()
}

func (e hookedECR) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	out, err := e.ecrAPI.GetAuthorizationToken(ctx, in, optFns...)
	e.after()
	return out, err
}

// hookedBody runs onClose when the response body is closed.
type hookedBody struct {
	io.Reader
	onClose func()
}

func (b hookedBody) Close() error { b.onClose(); return nil }

// waitReader is an empty stream part that ends only once ch is closed (or
// the guard passes).
type waitReader struct {
	t    *testing.T
	ch   <-chan struct{}
	what string
}

func (r waitReader) Read([]byte) (int, error) {
	await(r.t, r.ch, r.what)
	return 0, io.EOF
}

func testdata(t *testing.T, file string) string {
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Error(err)
	}
	return string(b)
}

// runWithin runs the push and fails the test if it takes longer than d (a
// cancellation that does not stop the other half).
func (w *world) runWithin(ctx context.Context, d time.Duration) error {
	w.t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.pusher.Run(ctx, w.opts) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		w.t.Fatalf("push still running after %s", d)
		return nil
	}
}

func TestPushBuildsWhileAWSAnswers(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	// AssumeRole is answered only once the engine has the build, and the
	// build's stream comes only once AssumeRole was asked: neither half can
	// wait for the other to finish.
	stsAsked := newSignal()
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, before: func() {
		stsAsked.fire()
		await(t, w.engine.buildStarted, "the build while AssumeRole waits: the build does not overlap the AWS calls")
	}}
	w.engine.Build = func() io.ReadCloser {
		await(t, stsAsked.ch, "AssumeRole while the build waits: the AWS calls do not overlap the build")
		return io.NopCloser(strings.NewReader(testdata(t, "build-ok-untagged.jsonl")))
	}
	if err := w.runWithin(context.Background(), 4*overlapGuard); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	if n := strings.Count(w.out.String(), "\n"); n != 2 {
		t.Errorf("%d lines on stdout, want 2:\n%s", n, w.out)
	}
	if got := strings.Join(w.engine.calls, " "); got != "Ping Negotiate ImageBuild ImageTag ImageTag ImagePush ImagePush" {
		t.Errorf("engine calls: %s", got)
	}
	for i, p := range w.engine.pushes {
		if p.Auth == "" || p.Ref != w.engine.tags[i].Ref {
			t.Errorf("push %d: %s with RegistryAuth %t; tagged %v", i, p.Ref, p.Auth != "", w.engine.tags)
		}
	}
	w.checkNoSecrets()
	w.checkHomeEmpty()
}

func TestPushAWSLinesStayWholeAmidTheBuild(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	// The build shows half a line ("Step 1/4 : FROM ...": its newline comes
	// in the next message), then waits while the AWS half gets its token
	// and says so.
	lines := strings.SplitAfter(testdata(t, "build-ok-untagged.jsonl"), "\n")
	midLine, tokenSent := newSignal(), newSignal()
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, before: func() { await(t, midLine.ch, "the build's half line") }}
	newECR := w.pusher.NewECR
	w.pusher.NewECR = func(c aws.Credentials) ecrAPI {
		return hookedECR{ecrAPI: newECR(c), after: func() {
			// Time for "got an ECR token" to be said before the build goes on.
			time.AfterFunc(50*time.Millisecond, tokenSent.fire)
		}}
	}
	w.engine.Build = func() io.ReadCloser {
		return io.NopCloser(io.MultiReader(
			strings.NewReader(lines[0]),
			fireReader{midLine}, // read once the first message is shown
			waitReader{t: t, ch: tokenSent.ch, what: "the ECR token"},
			strings.NewReader(strings.Join(lines[1:], ""))))
	}
	if err := w.runWithin(context.Background(), 4*overlapGuard); err != nil {
		t.Fatalf("push failed: %v\n%s", err, w.err)
	}
	at := map[string]int{"Step 1/4 : FROM local/busybox:latest": -1, "assuming ": -1, "got an ECR token for ": -1, " ---> 2b2325546517": -1}
	for i, l := range strings.Split(w.err.String(), "\n") {
		for prefix := range at {
			if strings.Contains(l, prefix) {
				at[prefix] = i
				if !strings.HasPrefix(l, prefix) {
					t.Errorf("a line mixes the build's output with AWS's: %q", l)
				}
			}
		}
	}
	for prefix, i := range at {
		if i < 0 {
			t.Errorf("no line %q in stderr:\n%s", prefix, w.err)
		}
	}
	// Said while the build was mid-line, the token's line waited for that
	// line's end, and no longer.
	if step, token, next := at["Step 1/4 : FROM local/busybox:latest"], at["got an ECR token for "], at[" ---> 2b2325546517"]; !(step < token && token < next) {
		t.Errorf("the token's line is not between the half line and the next:\n%s", w.err)
	}
}

// fireReader is an empty stream part that fires s when read.
type fireReader struct{ s *signal }

func (r fireReader) Read([]byte) (int, error) {
	r.s.fire()
	return 0, io.EOF
}

func TestPushAWSFailureCancelsTheBuild(t *testing.T) {
	// The role is never assumable: AssumeRole is refused past --wait while
	// the build hangs in a silent step.
	w := newWorld(t, awsfake.Config{RoleDelay: time.Hour})
	w.opts.Wait = 50 * time.Millisecond
	w.pusher.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	stalled := newStalledStream(t, "build-ok.jsonl", 300)
	w.engine.Build = stalled.body
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, before: func() { await(t, stalled.hanging, "the build to hang") }}

	err := w.runWithin(context.Background(), 4*overlapGuard)
	if err == nil || !strings.Contains(err.Error(), "the user may not assume this role") {
		t.Fatalf("error %v; want AssumeRole's refusal", err)
	}
	if errors.Is(err, context.Canceled) || clierror.Code(err) != clierror.ExitFailure {
		t.Errorf("error %v (exit %d): want the AWS error, exit 1", err, clierror.Code(err))
	}
	cancelled, closed := stalled.ended()
	if !cancelled || !closed {
		t.Errorf("the build stream: cancelled %t, closed %t; want both", cancelled, closed)
	}
	if strings.Contains(w.err.String(), "broke off") || strings.Contains(w.err.String(), "stays on the engine") {
		t.Errorf("the cancelled build reported more than the AWS error:\n%s", w.err)
	}
	if len(w.engine.tags)+len(w.engine.pushes) != 0 || w.out.Len() != 0 {
		t.Errorf("tagged or pushed: %v; stdout %q", w.engine.calls, w.out)
	}
	w.checkNoSecrets()
}

func TestPushBuildFailureCancelsTheAWSWait(t *testing.T) {
	// A fresh key: AssumeRole is refused, and the next try is an hour away;
	// only a cancellation ends that wait.
	w := newWorld(t, awsfake.Config{KeyDelay: time.Hour})
	w.opts.Wait = time.Hour
	w.pusher.Backoff = func(int) time.Duration { return time.Hour }
	refused := newSignal()
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, after: refused.fire}
	w.engine.Build = func() io.ReadCloser {
		await(t, refused.ch, "AssumeRole's first refusal")
		return io.NopCloser(strings.NewReader(testdata(t, "build-run-false.jsonl")))
	}
	start := time.Now()
	err := w.runWithin(context.Background(), 4*overlapGuard)
	if err == nil || !strings.Contains(err.Error(), "build failed at Step 3/3 : RUN false") {
		t.Fatalf("error %v; want the build's", err)
	}
	if errors.Is(err, context.Canceled) || clierror.Code(err) != clierror.ExitFailure {
		t.Errorf("error %v (exit %d): want the build error, exit 1", err, clierror.Code(err))
	}
	if took := time.Since(start); took > overlapGuard {
		t.Errorf("took %s: the AWS wait was not cancelled", took)
	}
	if ops := w.acct.Ops(); strings.Join(ops, " ") != "sts.AssumeRole" {
		t.Errorf("AWS calls %v; want the one refused AssumeRole", ops)
	}
	if len(w.engine.tags)+len(w.engine.pushes) != 0 || w.out.Len() != 0 {
		t.Errorf("tagged or pushed: %v; stdout %q", w.engine.calls, w.out)
	}
	w.checkNoSecrets()
}

// TestPushBuiltImageLeftWhenAWSFails is the one case that leaves something
// behind: the build succeeded before AWS failed. The image stays, untagged
// by this push, and stderr says so; nothing is tagged, removed or pushed.
func TestPushBuiltImageLeftWhenAWSFails(t *testing.T) {
	w := newWorld(t, awsfake.Config{RoleDelay: time.Hour})
	w.opts.Wait = 50 * time.Millisecond
	w.pusher.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	built := newSignal()
	w.engine.Build = func() io.ReadCloser {
		return hookedBody{Reader: strings.NewReader(testdata(t, "build-ok-untagged.jsonl")), onClose: built.fire}
	}
	w.pusher.STS = hookedSTS{stsAPI: w.pusher.STS, before: func() { await(t, built.ch, "the build to finish") }}
	err := w.runWithin(context.Background(), 4*overlapGuard)
	if err == nil || !strings.Contains(err.Error(), "the user may not assume this role") {
		t.Fatalf("error %v; want AssumeRole's refusal", err)
	}
	if got := strings.Join(w.engine.calls, " "); got != "Ping Negotiate ImageBuild" {
		t.Errorf("engine calls %s; want the build alone (no tag, no removal, no push)", got)
	}
	if !strings.Contains(w.err.String(), "the built image 4876b175498b stays on the engine without this push's tags") {
		t.Errorf("stderr does not say what is left behind:\n%s", w.err)
	}
	if w.out.Len() != 0 {
		t.Errorf("stdout %q", w.out)
	}
	w.checkNoSecrets()
}

func TestPushInterruptedMidBuild(t *testing.T) {
	w := newWorld(t, awsfake.Config{})
	stalled := newStalledStream(t, "build-ok.jsonl", 300)
	w.engine.Build = stalled.body
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if await(t, stalled.hanging, "the build to hang") {
			cancel()
		}
	}()
	err := w.runWithin(ctx, 4*overlapGuard)
	if !errors.Is(err, context.Canceled) || clierror.Code(err) != clierror.ExitCancelled {
		t.Fatalf("error %v (exit %d); want a cancellation, exit 130", err, clierror.Code(err))
	}
	if cancelled, closed := stalled.ended(); !cancelled || !closed {
		t.Errorf("the build stream: cancelled %t, closed %t; want both", cancelled, closed)
	}
	if len(w.engine.tags)+len(w.engine.pushes) != 0 || w.out.Len() != 0 {
		t.Errorf("tagged or pushed: %v; stdout %q", w.engine.calls, w.out)
	}
}
