package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/pkg/jsonmessage"
	controlapi "github.com/moby/buildkit/api/services/control"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/util/progress/progressui"
)

// The aux message IDs of a BuildKit build stream (Engine API).
const (
	auxBuildKitTrace = "moby.buildkit.trace" // a base64 protobuf StatusResponse
	auxImageID       = "moby.image.id"       // {"ID": "sha256:..."}
)

// inlineCacheArg makes BuildKit write its cache metadata into the image
// config, so that a later build on another engine can reuse the layers.
const inlineCacheArg = "BUILDKIT_INLINE_CACHE"

// buildKit builds through the engine's BuildKit, as the docker CLI did before
// buildx: a session that the engine calls back over a hijacked connection
// serves the context and Dockerfile (file by file, as it asks), the build
// secrets, SSH agents and registry credentials; the build request names the
// session, and the build stream carries BuildKit's progress, which is shown
// as `docker buildx build` shows it.
func (p *Pusher) buildKit(ctx context.Context, o Options, bc buildContext, req buildRequest) (string, error) {
	sess, err := p.newSession(o, bc, req)
	if err != nil {
		return "", err
	}
	// The session lives until the build is over; it stops when this
	// function returns, whatever happened. Should it fail (the engine
	// refused or dropped it), the build, which the engine would otherwise
	// hold waiting for it, is cancelled with that reason.
	ctx, cancelBuild := context.WithCancelCause(ctx)
	defer cancelBuild(nil)
	sessCtx, stopSession := context.WithCancel(ctx)
	go func() {
		err := sess.Run(sessCtx, func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return p.Engine.DialHijack(ctx, "/session", proto, meta)
		})
		if err != nil && sessCtx.Err() == nil {
			cancelBuild(&sessionError{err})
		}
	}()
	defer func() {
		stopSession()
		sess.Close()
	}()

	buildID := identity.NewID()
	// An interrupted build is cancelled on the engine too; otherwise the
	// engine would finish it for nobody.
	stopCancel := context.AfterFunc(ctx, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Engine.BuildCancel(cctx, buildID)
	})
	defer stopCancel()

	buildArgs := maps.Clone(o.BuildArgs)
	if buildArgs == nil {
		buildArgs = map[string]*string{}
	}
	one := "1"
	buildArgs[inlineCacheArg] = &one
	resp, err := p.Engine.ImageBuild(ctx, nil, build.ImageBuildOptions{
		Version:       build.BuilderBuildKit,
		SessionID:     sess.ID(),
		RemoteContext: "client-session",
		BuildID:       buildID,
		Dockerfile:    filepath.Base(bc.DockerfilePath),
		Tags:          req.refs,
		BuildArgs:     buildArgs,
		Target:        o.Target,
		Labels:        o.Labels,
		CacheFrom:     req.cacheFrom,
		NoCache:       o.NoCache,
		NetworkMode:   o.Network,
		Platform:      strings.Join(o.Platforms, ","),
	})
	if err != nil {
		return "", p.sessionFailed(ctx, p.refusedBuild(ctx, err))
	}
	defer resp.Body.Close()
	id, err := p.followBuildKit(ctx, resp.Body)
	return id, p.sessionFailed(ctx, err)
}

// sessionError is why a BuildKit session ended before its build.
type sessionError struct{ err error }

func (e *sessionError) Error() string { return e.err.Error() }

// sessionFailed puts the session's failure in place of the cancellation it
// caused.
func (p *Pusher) sessionFailed(ctx context.Context, err error) error {
	var serr *sessionError
	if err != nil && errors.As(context.Cause(ctx), &serr) {
		return fmt.Errorf("building: the BuildKit session with %s failed (%v): check that the engine is still running, then rerun", p.engineDescription(), serr.err)
	}
	return err
}

// newSession makes the BuildKit session of one build with everything the
// engine may ask of it.
func (p *Pusher) newSession(o Options, bc buildContext, req buildRequest) (*session.Session, error) {
	dirs, err := bc.sessionDirs()
	if err != nil {
		return nil, err
	}
	attach := []session.Attachable{filesync.NewFSSyncProvider(dirs), req.registry}
	if len(o.Secrets) > 0 {
		var sources []secretsprovider.Source
		for _, s := range o.Secrets {
			sources = append(sources, secretsprovider.Source{ID: s.ID, Env: s.Env, FilePath: s.File})
		}
		store, err := secretsprovider.NewStore(sources)
		if err != nil {
			return nil, fmt.Errorf("preparing the build secrets: %v", err)
		}
		attach = append(attach, secretsprovider.NewSecretProvider(store))
	}
	if len(o.SSH) > 0 {
		var agents []sshprovider.AgentConfig
		for _, a := range o.SSH {
			agents = append(agents, sshprovider.AgentConfig{ID: a.ID, Paths: a.Paths})
		}
		provider, err := sshprovider.NewSSHAgentProvider(agents)
		if err != nil {
			return nil, fmt.Errorf("preparing SSH forwarding: %v", err)
		}
		attach = append(attach, provider)
	}
	// The shared key lets the engine keep what it received of this context
	// and ask only for what changed next time.
	sess, err := session.NewSession(context.Background(), sharedKey(bc.Dir))
	if err != nil {
		return nil, fmt.Errorf("starting a BuildKit session: %v", err)
	}
	for _, a := range attach {
		sess.Allow(a)
	}
	return sess, nil
}

// sharedKey names a context folder on this machine for the engine.
func sharedKey(dir string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + ":" + dir))
	return hex.EncodeToString(sum[:])
}

// followBuildKit reads a BuildKit build stream to its end: progress goes to
// BuildKit's own display (a live view at a terminal, plain lines otherwise),
// and the image ID or the error is returned. The error names the step that
// failed, as BuildKit names it ("[3/4] RUN make").
func (p *Pusher) followBuildKit(ctx context.Context, body io.Reader) (string, error) {
	statuses, shown := p.startDisplay()

	var (
		imageID    string
		failedStep string
		buildErr   *jsonmessage.JSONError
		readErr    error
	)
	dec := json.NewDecoder(body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		switch {
		case m.Error != nil:
			if buildErr == nil {
				buildErr = m.Error
			}
		case m.ID == auxBuildKitTrace && m.Aux != nil:
			status, err := decodeTrace(*m.Aux)
			if err != nil {
				p.debugf("docker: an unreadable BuildKit progress message: %v", err)
				continue
			}
			for _, v := range status.Vertexes {
				if failedStep == "" && v.Error != "" && !strings.Contains(v.Error, context.Canceled.Error()) {
					failedStep = v.Name
				}
			}
			statuses <- status
		case m.ID == auxImageID && m.Aux != nil:
			var aux build.Result
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				imageID = aux.ID
			}
		}
	}
	close(statuses)
	<-shown

	switch {
	case buildErr != nil:
		if failedStep != "" {
			return "", fmt.Errorf("build failed at %s: %s", failedStep, buildErr.Message)
		}
		return "", fmt.Errorf("build failed: %s", buildErr.Message)
	case ctx.Err() != nil:
		return "", ctx.Err()
	case readErr != nil:
		return "", p.brokenBuild(readErr)
	case imageID == "":
		return "", errNoImageID
	}
	return imageID, nil
}

// newDisplay is BuildKit's display of progress on stderr: a live view at a
// terminal, plain lines otherwise.
func (p *Pusher) newDisplay() (progressui.Display, error) {
	mode := progressui.PlainMode
	var out io.Writer = p.Err
	if p.Terminal {
		mode, out = progressui.TtyMode, terminalWriter{Writer: p.Err, fd: p.TerminalFd}
	}
	display, err := progressui.NewDisplay(out, mode)
	if err != nil {
		return progressui.NewDisplay(p.Err, progressui.PlainMode)
	}
	return display, nil
}

// decodeTrace reads one BuildKit progress message of the Engine API: a JSON
// string holding a protobuf StatusResponse.
func decodeTrace(aux json.RawMessage) (*bkclient.SolveStatus, error) {
	var raw []byte
	if err := json.Unmarshal(aux, &raw); err != nil {
		return nil, err
	}
	var resp controlapi.StatusResponse
	if err := resp.UnmarshalVT(raw); err != nil {
		return nil, err
	}
	return bkclient.NewSolveStatus(&resp), nil
}

// terminalWriter lets BuildKit's live display write through w (which keeps
// the AWS half's lines out of its redraws) while it reads the terminal's
// size from fd.
type terminalWriter struct {
	io.Writer
	fd uintptr
}

func (t terminalWriter) Read([]byte) (int, error) { return 0, io.EOF }
func (t terminalWriter) Close() error             { return nil }
func (t terminalWriter) Fd() uintptr              { return t.fd }
func (t terminalWriter) Name() string             { return "/dev/stderr" }
