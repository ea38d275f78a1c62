package bkdaemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	bkclient "github.com/moby/buildkit/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerName is the container push runs BuildKit in, one per engine.
const ContainerName = "containerise-buildkit"

// DefaultImage is the BuildKit release the container runs unless told
// otherwise: the version whose client push links.
const DefaultImage = "moby/buildkit:v0.34.2"

// Labels on the container: it is push's own, which image it was asked to
// run, and which way it runs.
const (
	labelOwner = "containerise.buildkit"
	labelImage = "containerise.buildkit.image"
	labelMode  = "containerise.buildkit.mode"
)

// The daemon's socket inside the container; push reaches it through
// `buildctl dial-stdio` run in the container, so the job needs no access
// to the engine's network or files (CircleCI's remote engines).
const containerSocket = "unix:///run/buildkit/buildkitd.sock"

// ContainerEngine is the part of the Docker client the container builder
// uses.
type ContainerEngine interface {
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerCreate(ctx context.Context, config *container.Config, host *container.HostConfig, networking *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, id string, options container.StartOptions) error
	ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error
	ContainerLogs(ctx context.Context, id string, options container.LogsOptions) (io.ReadCloser, error)
	ContainerExecCreate(ctx context.Context, id string, options container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string, options container.ExecAttachOptions) (types.HijackedResponse, error)
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
}

var _ ContainerEngine = (*client.Client)(nil)

// Container is a BuildKit daemon that push runs as a container on the
// job's engine, as `docker buildx create --driver docker-container` does:
// named ContainerName, on the engine's host network, reused by later
// pushes on the same engine and recreated when its image differs.
type Container struct {
	Engine ContainerEngine
	// EngineName names the engine for messages.
	EngineName string
	// Image is the BuildKit image to run (DefaultImage when empty).
	Image string
	// Logf says what happened to the container (stderr).
	Logf func(format string, args ...any)
	// Ready bounds the wait for a started daemon to answer (readyWait
	// when zero).
	Ready time.Duration
}

func (c *Container) image() string {
	if c.Image == "" {
		return DefaultImage
	}
	return c.Image
}

func (c *Container) String() string {
	return fmt.Sprintf("the BuildKit container %s on %s", ContainerName, c.EngineName)
}

func (c *Container) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// mode is a way of running the daemon's container.
type mode string

const (
	// modePrivileged is buildx's way.
	modePrivileged mode = "privileged"
	// modeSysAdmin is for engines that refuse privileged containers:
	// CAP_SYS_ADMIN, seccomp and AppArmor unconfined, and the cgroup
	// hierarchy writable, which is what BuildKit's RUN steps need.
	modeSysAdmin mode = "sys-admin"
)

func (m mode) describe() string {
	if m == modePrivileged {
		return "privileged"
	}
	return "with CAP_SYS_ADMIN, seccomp and AppArmor unconfined and /sys/fs/cgroup writable (not privileged)"
}

func (m mode) hostConfig() *container.HostConfig {
	hc := &container.HostConfig{NetworkMode: "host"}
	if m == modePrivileged {
		hc.Privileged = true
		return hc
	}
	hc.CapAdd = []string{"SYS_ADMIN"}
	hc.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
	hc.Binds = []string{"/sys/fs/cgroup:/sys/fs/cgroup:rw"}
	return hc
}

// Connect makes sure the container runs the wanted image, starting or
// recreating it as needed, then reaches its daemon.
func (c *Container) Connect(ctx context.Context) (*Conn, error) {
	imageID, err := c.ensureImage(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.ensureRunning(ctx, imageID); err != nil {
		return nil, err
	}
	return c.waitReady(ctx)
}

// ensureImage returns the ID of the wanted image on the engine, pulling it
// (anonymously) when the engine lacks it.
func (c *Container) ensureImage(ctx context.Context) (string, error) {
	ref := c.image()
	if img, err := c.Engine.ImageInspect(ctx, ref); err == nil {
		return img.ID, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", c.engineError(ctx, "looking for the BuildKit image "+ref, err)
	}
	c.logf("builder: pulling the BuildKit image %s", ref)
	body, err := c.Engine.ImagePull(ctx, ref, image.PullOptions{})
	if err == nil {
		err = jsonmessage.DisplayJSONMessagesStream(body, io.Discard, 0, false, nil)
		body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("pulling the BuildKit image %s on %s: %v; give another with --buildkit-image, or load it on the engine first", ref, c.EngineName, err)
	}
	img, err := c.Engine.ImageInspect(ctx, ref)
	if err != nil {
		return "", c.engineError(ctx, "looking for the pulled BuildKit image "+ref, err)
	}
	return img.ID, nil
}

// ensureRunning reuses the container when it runs imageID as asked,
// starts it when it stopped, and otherwise (re)creates it.
func (c *Container) ensureRunning(ctx context.Context, imageID string) error {
	info, err := c.Engine.ContainerInspect(ctx, ContainerName)
	switch {
	case cerrdefs.IsNotFound(err):
		return c.create(ctx, imageID)
	case err != nil:
		return c.engineError(ctx, "looking for the container "+ContainerName, err)
	}
	labels := map[string]string{}
	if info.Config != nil && info.Config.Labels != nil {
		labels = info.Config.Labels
	}
	if labels[labelOwner] == "" {
		return fmt.Errorf("a container named %s exists on %s and containerise did not make it: remove or rename it, then rerun", ContainerName, c.EngineName)
	}
	running := info.State != nil && info.State.Running
	switch {
	case labels[labelImage] != c.image() || info.Image != imageID:
		c.logf("builder: %s runs %s, not %s (%s): recreating it", ContainerName, labels[labelImage], c.image(), shortID(imageID))
	case running:
		c.logf("builder: reusing the BuildKit container %s (%s, %s)", ContainerName, c.image(), mode(labels[labelMode]).describe())
		return nil
	default:
		if err := c.Engine.ContainerStart(ctx, ContainerName, container.StartOptions{}); err == nil {
			c.logf("builder: restarted the BuildKit container %s (%s, %s)", ContainerName, c.image(), mode(labels[labelMode]).describe())
			return nil
		}
		c.logf("builder: %s did not start again: recreating it", ContainerName)
	}
	if err := c.remove(ctx); err != nil {
		return err
	}
	return c.create(ctx, imageID)
}

// create makes and starts the container privileged, as buildx does, and,
// when the engine refuses that, with only what BuildKit needs.
func (c *Container) create(ctx context.Context, imageID string) error {
	err := c.createAs(ctx, imageID, modePrivileged)
	if err == nil {
		c.logf("builder: started the BuildKit container %s (%s), %s", ContainerName, c.image(), modePrivileged.describe())
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := c.remove(ctx); err != nil {
		return err
	}
	refused := reason(err)
	if err := c.createAs(ctx, imageID, modeSysAdmin); err != nil {
		_ = c.remove(context.WithoutCancel(ctx))
		return c.engineError(ctx, fmt.Sprintf("starting the BuildKit container %s (%s); privileged, the engine said: %s; %s", ContainerName, c.image(), refused, modeSysAdmin.describe()), err)
	}
	c.logf("builder: the engine refused a privileged container (%s): started the BuildKit container %s (%s) %s", refused, ContainerName, c.image(), modeSysAdmin.describe())
	return nil
}

func (c *Container) createAs(ctx context.Context, imageID string, m mode) error {
	cfg := &container.Config{
		Image: imageID,
		Cmd:   []string{"--addr", containerSocket, "--allow-insecure-entitlement=network.host"},
		Labels: map[string]string{
			labelOwner: "1",
			labelImage: c.image(),
			labelMode:  string(m),
		},
	}
	_, err := c.Engine.ContainerCreate(ctx, cfg, m.hostConfig(), nil, nil, ContainerName)
	if cerrdefs.IsConflict(err) {
		// Another push on this engine made it meanwhile: use theirs.
		return nil
	}
	if err != nil {
		return err
	}
	return c.Engine.ContainerStart(ctx, ContainerName, container.StartOptions{})
}

func (c *Container) remove(ctx context.Context) error {
	err := c.Engine.ContainerRemove(ctx, ContainerName, container.RemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return c.engineError(ctx, "removing the container "+ContainerName, err)
	}
	return nil
}

// waitReady dials the daemon until it answers: a fresh container needs a
// moment before its socket is there.
func (c *Container) waitReady(ctx context.Context) (*Conn, error) {
	wait := c.Ready
	if wait == 0 {
		wait = readyWait
	}
	deadline := time.Now().Add(wait)
	pause := 100 * time.Millisecond
	for {
		bc, err := bkclient.New(ctx, "", bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return c.dial(ctx)
		}))
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %v", c, err)
		}
		conn, err := connect(ctx, bc, 5*time.Second)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not answer within %s (%s)%s; remove it (docker rm -f %s) and rerun", c, wait, reason(err), c.lastLog(ctx), ContainerName)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// dial runs `buildctl dial-stdio` in the container: its standard input and
// output are a connection to the daemon's socket.
func (c *Container) dial(ctx context.Context) (net.Conn, error) {
	exec, err := c.Engine.ContainerExecCreate(ctx, ContainerName, container.ExecOptions{
		Cmd:          []string{"buildctl", "--addr", containerSocket, "dial-stdio"},
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		return nil, err
	}
	resp, err := c.Engine.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		return nil, err
	}
	return newExecConn(resp), nil
}

// lastLog is the end of the container's log, for an error.
func (c *Container) lastLog(ctx context.Context) string {
	rc, err := c.Engine.ContainerLogs(context.WithoutCancel(ctx), ContainerName, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "3"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 4096))
	text := strings.Join(strings.Fields(out.String()), " ")
	if text == "" {
		return ""
	}
	return "; its log ends: " + text
}

func (c *Container) engineError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s on %s: %v", what, c.EngineName, reason(err))
}

// execConn is an exec's hijacked stream as a connection: writes go to the
// process's standard input; reads take its standard output out of the
// engine's multiplexed stream (standard error is dropped).
type execConn struct {
	net.Conn
	r *io.PipeReader
}

func newExecConn(resp types.HijackedResponse) net.Conn {
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, io.Discard, resp.Reader)
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
	}()
	return &execConn{Conn: resp.Conn, r: pr}
}

func (e *execConn) Read(b []byte) (int, error) { return e.r.Read(b) }

func (e *execConn) Close() error {
	e.r.Close()
	return e.Conn.Close()
}

// shortID is an image ID as the docker CLI shows it.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
