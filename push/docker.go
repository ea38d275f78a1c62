package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// engineAPI is the part of the Docker client a push uses.
type engineAPI interface {
	// Ping reaches the engine; NegotiateAPIVersionPing then settles on the
	// highest API version both sides speak.
	Ping(ctx context.Context) (types.Ping, error)
	NegotiateAPIVersionPing(types.Ping)
	ClientVersion() string
	DaemonHost() string
	ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
	// BuildCancel stops a BuildKit build by its BuildID.
	BuildCancel(ctx context.Context, id string) error
	// DialHijack opens the connection a BuildKit session runs over.
	DialHijack(ctx context.Context, url, proto string, meta map[string][]string) (net.Conn, error)
	// ImageInspect tells whether the engine has an image already.
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	// ImagePull fetches a cache source into the engine.
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
	// Info tells the engine's image store (for several platforms).
	Info(ctx context.Context) (system.Info, error)
	// ImageTag gives an image (here, a built image's ID) another reference.
	ImageTag(ctx context.Context, image, ref string) error
	ImagePush(ctx context.Context, image string, options image.PushOptions) (io.ReadCloser, error)
}

// NewEngine returns a Docker client configured from the environment:
// DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (what CircleCI's
// setup_remote_docker sets), DOCKER_API_VERSION; it negotiates the API version.
func NewEngine() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: %w", err)
	}
	return c, nil
}

// connect reaches the engine and negotiates the API version, so that an
// engine that is not there fails before anything else happens.
func (p *Pusher) connect(ctx context.Context) (types.Ping, error) {
	ping, err := p.Engine.Ping(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return types.Ping{}, err
		}
		return types.Ping{}, fmt.Errorf("cannot reach %s: %v; start Docker or point DOCKER_HOST at it (in CircleCI, add a setup_remote_docker step before this one)",
			p.engineDescription(), err)
	}
	p.Engine.NegotiateAPIVersionPing(ping)
	p.debugf("docker: engine at %s, API %s (engine offers %s)", p.Engine.DaemonHost(), p.Engine.ClientVersion(), ping.APIVersion)
	return ping, nil
}

// engineDescription names the engine and where its address came from, for
// errors that a user fixes by starting the engine or setting DOCKER_HOST.
func (p *Pusher) engineDescription() string {
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		return fmt.Sprintf("the Docker engine at %s (DOCKER_HOST=%s)", p.Engine.DaemonHost(), host)
	}
	return fmt.Sprintf("the Docker engine at %s (DOCKER_HOST is not set, so the default)", p.Engine.DaemonHost())
}

// tag gives the built image each ref, now that ECR has named the registry.
func (p *Pusher) tag(ctx context.Context, imageID string, refs []string) error {
	for _, ref := range refs {
		if err := p.Engine.ImageTag(ctx, imageID, ref); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("tagging the built image %s as %s on %s: %v", shortID(imageID), ref, p.engineDescription(), err)
		}
	}
	p.logf("tagged %s as %s", shortID(imageID), strings.Join(refs, ", "))
	return nil
}

// shortID is an image ID as the docker CLI shows it: 12 hex digits.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// push pushes one tag with the registry credentials in the request and
// returns the manifest digest the engine reports.
func (p *Pusher) push(ctx context.Context, ref, tag string, reg registryAuth) (string, error) {
	p.logf("pushing %s", ref)
	body, err := p.Engine.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: reg.Encoded})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return "", err
		}
		return "", fmt.Errorf("pushing %s: the Docker engine refused the push: %v", ref, err)
	}
	defer body.Close()
	var digest string
	err = p.display(body, p.Err, func(m jsonmessage.JSONMessage) {
		var aux types.PushResult
		if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" && (aux.Tag == "" || aux.Tag == tag) {
			digest = aux.Digest
		}
	})
	var jerr *jsonmessage.JSONError
	switch {
	case errors.As(err, &jerr):
		msg := fmt.Sprintf("pushing %s: %s", ref, jerr.Message)
		if isAuthFailure(jerr.Message) {
			msg += fmt.Sprintf(" (the registry %s refused the ECR token: the role's policy must allow the push actions on the repository; rerun setup)", reg.Host)
		}
		return "", errors.New(msg)
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil:
		return "", fmt.Errorf("pushing %s: the connection to %s broke off mid-push (%v): check that the engine is still running, then rerun", ref, p.engineDescription(), err)
	case !strings.HasPrefix(digest, "sha256:"):
		return "", fmt.Errorf("pushing %s: the Docker engine's push output ended without the pushed digest: the push did not finish", ref)
	}
	return digest, nil
}

func isAuthFailure(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{"unauthorized", "authentication required", "denied", "no basic auth credentials", "authorization"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// display shows an engine stream on out as the docker CLI does (bars at a
// terminal, plain lines otherwise) and reads it to the end. It returns the
// stream's first error message as a *jsonmessage.JSONError, or the error
// that broke the stream off.
func (p *Pusher) display(body io.Reader, out io.Writer, aux func(jsonmessage.JSONMessage)) error {
	err := jsonmessage.DisplayJSONMessagesStream(body, out, p.TerminalFd, p.Terminal, aux)
	var jerr *jsonmessage.JSONError
	if errors.As(err, &jerr) {
		// Read what follows the error so the engine finishes the request.
		_, _ = io.Copy(io.Discard, body)
	}
	return err
}

// stepWatcher passes the build output through and remembers the last
// "Step n/m : INSTRUCTION" line of the classic builder, to name the step that
// failed.
type stepWatcher struct {
	w    io.Writer
	last string
}

func (s *stepWatcher) Write(b []byte) (int, error) {
	if rest, ok := bytes.CutPrefix(b, []byte("Step ")); ok {
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		s.last = "Step " + strings.TrimSpace(string(line))
	}
	return s.w.Write(b)
}
