package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/platforms"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/util/entitlements"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/containerise/containerise/push/bkdaemon"
)

// DefaultCacheTag is the tag of the registry cache in the repository.
const DefaultCacheTag = "buildcache"

// cacheExportName is how BuildKit names the registry cache export in its
// progress.
const cacheExportName = "exporting cache to registry"

// runOnDaemon pushes through a standalone BuildKit daemon (the remote and
// container builders): the daemon is reached first, so that a daemon that
// is not there fails before AWS is asked anything; then STS and ECR; then
// one solve builds every platform, imports and exports the registry cache
// and pushes every tag, all with the ECR token handed out by the session's
// credentials gate.
func (p *Pusher) runOnDaemon(ctx context.Context, o Options, bc buildContext) ([]Pushed, error) {
	if o.Builder == BuilderContainer {
		if _, err := p.connect(ctx); err != nil {
			return nil, err
		}
	}
	if p.Daemon == nil {
		d, err := p.newDaemon(o)
		if err != nil {
			return nil, err
		}
		p.Daemon = d
	}
	conn, err := p.Daemon.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	p.debugf("buildkit: %s answered; its platforms: %s", p.Daemon, strings.Join(conn.Platforms, ", "))

	reg, ecrClient, err := p.login(ctx, o, time.Now().Add(o.Wait))
	if err != nil {
		return nil, err
	}
	gate := newRegistryGate(o.RoleARN, p.Debugf)
	gate.open(reg)
	tags := o.Tags
	var pushed []Pushed
	if o.SkipExisting {
		if tags, err = p.tagsToPush(ctx, o, reg, ecrClient, &pushed); err != nil || len(tags) == 0 {
			return pushed, err
		}
	}
	refs := make([]string, len(tags))
	for i, tag := range tags {
		refs[i] = reg.ref(o.Repository, tag)
	}
	digest, err := p.solve(ctx, conn, o, bc, daemonBuild{refs: refs, cacheRef: reg.ref(o.Repository, o.cacheTag()), gate: gate})
	if err != nil {
		return nil, err
	}
	if len(o.Platforms) > 1 {
		p.logf("pushed one image index for %s: %s", strings.Join(o.Platforms, ", "), digest)
	}
	for i, ref := range refs {
		fmt.Fprintf(p.Out, "%s@%s\n", ref, digest)
		pushed = append(pushed, Pushed{Tag: tags[i], Digest: digest})
	}
	return pushed, nil
}

// newDaemon is the daemon o.Builder names.
func (p *Pusher) newDaemon(o Options) (bkdaemon.Daemon, error) {
	k := o.BuildKit
	if o.Builder == BuilderRemote {
		return &bkdaemon.Remote{Addr: k.Host, From: k.HostFrom, CA: k.CA, Cert: k.Cert, Key: k.Key}, nil
	}
	engine, ok := p.Engine.(bkdaemon.ContainerEngine)
	if !ok {
		return nil, fmt.Errorf("--builder container: this Docker client cannot run containers")
	}
	return &bkdaemon.Container{Engine: engine, EngineName: p.engineDescription(), Image: k.Image, Logf: p.logf}, nil
}

func (o Options) cacheTag() string {
	if o.CacheTag == "" {
		return DefaultCacheTag
	}
	return o.CacheTag
}

// daemonBuild is what one solve needs beyond the Options.
type daemonBuild struct {
	refs     []string
	cacheRef string
	gate     *registryGate
}

// solve builds and pushes through the daemon and returns the pushed
// digest (an image index's when there are several platforms).
func (p *Pusher) solve(ctx context.Context, conn *bkdaemon.Conn, o Options, bc buildContext, b daemonBuild) (string, error) {
	sess, err := p.newSession(o, bc, buildRequest{registry: b.gate})
	if err != nil {
		return "", err
	}
	// The session runs over the daemon's own connection until the solve is
	// over; should it fail first, the solve is cancelled with its reason.
	ctx, cancelSolve := context.WithCancelCause(ctx)
	defer cancelSolve(nil)
	sessCtx, stopSession := context.WithCancel(ctx)
	go func() {
		if err := sess.Run(sessCtx, conn.Dialer()); err != nil && sessCtx.Err() == nil {
			cancelSolve(&sessionError{err})
		}
	}()
	defer func() {
		stopSession()
		sess.Close()
	}()

	opt := bkclient.SolveOpt{
		Frontend:              "dockerfile.v0",
		FrontendAttrs:         frontendAttrs(o, bc),
		SharedSession:         sess,
		SessionPreInitialized: true,
		Exports: []bkclient.ExportEntry{{
			Type: bkclient.ExporterImage,
			Attrs: map[string]string{
				"name":           strings.Join(b.refs, ","),
				"push":           "true",
				"oci-mediatypes": "true",
			},
		}},
	}
	if o.Network == "host" {
		opt.AllowedEntitlements = []string{string(entitlements.EntitlementNetworkHost)}
	}
	if !o.NoCache {
		for _, ref := range append([]string{b.cacheRef}, o.CacheFrom...) {
			opt.CacheImports = append(opt.CacheImports, bkclient.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": ref}})
		}
		// The form ECR accepts, stated rather than left to defaults; a
		// failed export is reported, not fatal (ignore-error).
		opt.CacheExports = []bkclient.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{
			"ref":            b.cacheRef,
			"mode":           "max",
			"image-manifest": "true",
			"oci-mediatypes": "true",
			"ignore-error":   "true",
		}}}
	}
	p.logf("building %s on %s (context %s, %s)", strings.Join(b.refs, ", "), p.Daemon, bc.Dir, bc.DockerfilePath)
	if !o.NoCache {
		p.logf("cache: importing %s, exporting all build stages to it (mode max)", b.cacheRef)
	}

	statuses := make(chan *bkclient.SolveStatus)
	watch := p.watch(statuses)
	resp, err := conn.Solve(ctx, nil, opt, statuses)
	seen := watch.wait()
	if seen.cacheExportError != "" {
		p.logf("%s", cacheExportWarning(b.cacheRef, seen.cacheExportError))
	}
	if err != nil {
		return "", p.solveError(ctx, conn, o, seen, err)
	}
	digest := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if !strings.HasPrefix(digest, "sha256:") {
		return "", fmt.Errorf("building on %s: the build ended without the pushed image's digest: the push did not finish", p.Daemon)
	}
	return digest, nil
}

// frontendAttrs are the Dockerfile frontend's options, as buildx sends
// them.
func frontendAttrs(o Options, bc buildContext) map[string]string {
	attrs := map[string]string{"filename": filepath.Base(bc.DockerfilePath)}
	if o.Target != "" {
		attrs["target"] = o.Target
	}
	for k, v := range o.BuildArgs {
		if v != nil {
			attrs["build-arg:"+k] = *v
		}
	}
	for k, v := range o.Labels {
		attrs["label:"+k] = v
	}
	if o.NoCache {
		attrs["no-cache"] = ""
	}
	if len(o.Platforms) > 0 {
		attrs["platform"] = strings.Join(o.Platforms, ",")
	}
	if o.Network == "host" || o.Network == "none" {
		attrs["force-network-mode"] = o.Network
	}
	return attrs
}

// seenProgress is what the progress told beside what it showed.
type seenProgress struct {
	// failedStep is the first step that failed, as BuildKit names it.
	failedStep, stepError string
	// cacheExportError is why the cache export failed, "" when it did not.
	cacheExportError string
}

type progressWatch struct {
	done chan struct{}
	seen seenProgress
}

func (w *progressWatch) wait() seenProgress {
	<-w.done
	return w.seen
}

// watch shows a solve's progress on stderr as followBuildKit does, and
// notes the failed step and a failed cache export.
func (p *Pusher) watch(statuses <-chan *bkclient.SolveStatus) *progressWatch {
	w := &progressWatch{done: make(chan struct{})}
	display, shown := p.startDisplay()
	go func() {
		defer close(w.done)
		for s := range statuses {
			for _, v := range s.Vertexes {
				switch {
				case v.Error == "" || strings.Contains(v.Error, context.Canceled.Error()):
				case v.Name == cacheExportName:
					w.seen.cacheExportError = v.Error
				case w.seen.failedStep == "":
					w.seen.failedStep, w.seen.stepError = v.Name, v.Error
				}
			}
			display <- s
		}
		close(display)
		<-shown
	}()
	return w
}

// startDisplay starts BuildKit's own display of progress on stderr (a live
// view at a terminal, plain lines otherwise). Close the channel when done,
// then wait for shown.
func (p *Pusher) startDisplay() (chan<- *bkclient.SolveStatus, <-chan struct{}) {
	d, err := p.newDisplay()
	statuses := make(chan *bkclient.SolveStatus)
	shown := make(chan struct{})
	go func() {
		defer close(shown)
		if err != nil {
			for range statuses {
			}
			return
		}
		// Not a cancellable context: the display must drain every status.
		_, _ = d.UpdateFrom(context.Background(), statuses)
	}()
	return statuses, shown
}

// solveError says why a solve failed: the daemon went away, a step failed
// (and, for a foreign platform, what it takes to build for one), or the
// daemon refused the build.
func (p *Pusher) solveError(ctx context.Context, conn *bkdaemon.Conn, o Options, seen seenProgress, err error) error {
	var serr *sessionError
	if errors.As(context.Cause(ctx), &serr) {
		return fmt.Errorf("building: the BuildKit session with %s failed (%v): check that the daemon still runs, then rerun", p.Daemon, serr.err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := grpcMessage(err)
	if brokeOff(err) {
		return fmt.Errorf("building: the connection to %s broke off mid-build (%s): check that the daemon still runs, then rerun", p.Daemon, msg)
	}
	if seen.failedStep == "" {
		return fmt.Errorf("building on %s: %s", p.Daemon, msg)
	}
	out := fmt.Sprintf("build failed at %s: %s", seen.failedStep, msg)
	if foreign := foreignPlatform(seen, conn.Platforms, o.Platforms); foreign != "" {
		out += fmt.Sprintf(" (the step ran for %s, which %s does not run natively: without QEMU on the builder, only Dockerfiles that cross-build, with FROM --platform=$BUILDPLATFORM in the stages that RUN, can target another architecture)", foreign, p.Daemon)
	}
	return errors.New(out)
}

// foreignPlatform names the platform a failed step ran for when the
// daemon does not run it natively, "" otherwise. BuildKit prefixes a
// step's name with its platform when it builds several ("[linux/arm64
// build 2/3] RUN ..."); with one, that platform is the one asked for.
func foreignPlatform(seen seenProgress, native, asked []string) string {
	var platform string
	if name, ok := strings.CutPrefix(seen.failedStep, "["); ok {
		if first, _, _ := strings.Cut(name, " "); strings.Contains(first, "/") {
			platform = first
		}
	}
	if platform == "" && len(asked) == 1 {
		platform = asked[0]
	}
	if platform == "" {
		if strings.Contains(seen.stepError, "exec format error") {
			return "another architecture"
		}
		return ""
	}
	want, err := platforms.Parse(platform)
	if err != nil {
		return ""
	}
	for _, n := range native {
		if have, err := platforms.Parse(n); err == nil && platforms.Only(have).Match(want) {
			return ""
		}
	}
	return platforms.Format(want)
}

// brokeOff says whether a solve failed because the daemon went away.
func brokeOff(err error) bool {
	if bkdaemon.Unreachable(err) {
		return true
	}
	msg := err.Error()
	return slices.ContainsFunc([]string{"error reading from server", "transport is closing", "connection reset", "connection refused", io.ErrUnexpectedEOF.Error(), "EOF"},
		func(s string) bool {
			return strings.HasSuffix(msg, s) || strings.Contains(msg, s+":") || strings.Contains(msg, s+" ")
		})
}

// grpcMessage is err's message without gRPC's "rpc error: code = ..."
// prefix.
func grpcMessage(err error) string {
	if s, ok := status.FromError(err); ok && s.Code() != codes.OK {
		return s.Message()
	}
	return err.Error()
}

// cacheExportWarning says that the cache export failed and what follows.
func cacheExportWarning(ref, why string) string {
	msg := "warning: cache: exporting the build cache to " + ref + " failed (" + why + "): the image is pushed; the next build finds no newer cache"
	lower := strings.ToLower(why)
	switch {
	case strings.Contains(lower, "immutable") || strings.Contains(lower, "tag_invalid"):
		tag := ref[strings.LastIndex(ref, ":")+1:]
		rerun := "setup --immutable-tags"
		if tag != DefaultCacheTag {
			rerun += " --cache-tag " + tag
		}
		msg += "; the repository's tags are immutable: rerun " + rerun + ", which keeps the cache tag mutable, or push with --no-cache"
	case isAuthFailure(lower) || strings.Contains(lower, "forbidden"):
		msg += "; the role needs the push actions on the cache tag (rerun setup)"
	}
	return msg
}
