package push

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/containerise/containerise/internal/clierror"
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
func (p *Pusher) connect(ctx context.Context) error {
	ping, err := p.Engine.Ping(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("cannot reach %s: %v; start Docker or point DOCKER_HOST at it (in CircleCI, add a setup_remote_docker step before this one)",
			p.engineDescription(), err)
	}
	p.Engine.NegotiateAPIVersionPing(ping)
	p.debugf("docker: engine at %s, API %s (engine offers %s)", p.Engine.DaemonHost(), p.Engine.ClientVersion(), ping.APIVersion)
	return nil
}

// engineDescription names the engine and where its address came from, for
// errors that a user fixes by starting the engine or setting DOCKER_HOST.
func (p *Pusher) engineDescription() string {
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		return fmt.Sprintf("the Docker engine at %s (DOCKER_HOST=%s)", p.Engine.DaemonHost(), host)
	}
	return fmt.Sprintf("the Docker engine at %s (DOCKER_HOST is not set, so the default)", p.Engine.DaemonHost())
}

// buildContext is a checked build context: the folder and the Dockerfile's
// path inside it (with '/' separators).
type buildContext struct {
	Dir        string
	Dockerfile string
	// External is the Dockerfile's own path when it lies outside Dir: as the
	// docker CLI does, it is added to the streamed context under Dockerfile,
	// a name no file of the context has.
	External string
}

// prepareContext checks that the context folder and the Dockerfile exist,
// and notes whether the Dockerfile lies outside the context. Failures are
// usage errors, reported before any call.
func prepareContext(dir, dockerfile string) (buildContext, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return buildContext{}, clierror.Usagef("--context %q: %v", dir, err)
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return buildContext{}, clierror.Usagef("--context %q: no such folder", dir)
	case err != nil:
		return buildContext{}, clierror.Usagef("--context %q: %v", dir, err)
	case !st.IsDir():
		return buildContext{}, clierror.Usagef("--context %q is not a folder", dir)
	}
	flag := "--file"
	if dockerfile == "" {
		dockerfile = filepath.Join(abs, "Dockerfile")
		flag = "Dockerfile in --context"
	}
	dfAbs, err := filepath.Abs(dockerfile)
	if err != nil {
		return buildContext{}, clierror.Usagef("%s %q: %v", flag, dockerfile, err)
	}
	st, err = os.Stat(dfAbs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return buildContext{}, clierror.Usagef("%s: %s does not exist", flag, dockerfile)
	case err != nil:
		return buildContext{}, clierror.Usagef("%s %q: %v", flag, dockerfile, err)
	case st.IsDir():
		return buildContext{}, clierror.Usagef("%s %q is a folder, not a Dockerfile", flag, dockerfile)
	}
	rel, err := filepath.Rel(abs, dfAbs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return buildContext{Dir: abs, Dockerfile: externalDockerfileName(), External: dfAbs}, nil
	}
	return buildContext{Dir: abs, Dockerfile: filepath.ToSlash(rel)}, nil
}

// externalDockerfileName is a fresh name for a Dockerfile from outside the
// context, so it cannot replace a file of the context.
func externalDockerfileName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return ".containerise-dockerfile-" + hex.EncodeToString(b)
}

// excludes reads the context's .dockerignore and, as the docker CLI does,
// never lets it exclude the Dockerfile or the .dockerignore itself (the
// engine needs both).
func (bc buildContext) excludes() ([]string, error) {
	f, err := os.Open(filepath.Join(bc.Dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	for _, keep := range []string{".dockerignore", bc.Dockerfile} {
		excluded, err := patternmatcher.MatchesOrParentMatches(keep, patterns)
		if err != nil {
			return nil, fmt.Errorf("reading .dockerignore: %w", err)
		}
		if excluded {
			patterns = append(patterns, "!"+keep)
		}
	}
	return patterns, nil
}

// tar streams the context as a tar through a pipe: it is never held whole in
// memory. Owners are reset to root, as the docker CLI does.
func (bc buildContext) tar() (io.ReadCloser, error) {
	excludes, err := bc.excludes()
	if err != nil {
		return nil, err
	}
	var external []byte
	if bc.External != "" {
		// Read before the stream starts, so a vanished file fails here.
		if external, err = os.ReadFile(bc.External); err != nil {
			return nil, fmt.Errorf("reading the Dockerfile %s: %w", bc.External, err)
		}
	}
	rc, err := archive.TarWithOptions(bc.Dir, &archive.TarOptions{
		ExcludePatterns: excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("archiving the build context %s: %w", bc.Dir, err)
	}
	if bc.External == "" {
		return rc, nil
	}
	// The wrapper appends the entry when the stream has no file of that name.
	return archive.ReplaceFileTarWrapper(rc, map[string]archive.TarModifierFunc{
		bc.Dockerfile: func(string, *tar.Header, io.Reader) (*tar.Header, []byte, error) {
			return &tar.Header{Name: bc.Dockerfile, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: time.Now()}, external, nil
		},
	}), nil
}

// build builds the Dockerfile once and returns the image ID the build
// stream reports. With refs, the engine tags the image with each of them when
// the build succeeds; without, the image is left untagged for the caller to
// tag (names are then the repository:tag pairs the progress line shows).
func (p *Pusher) build(ctx context.Context, o Options, bc buildContext, refs []string) (string, error) {
	names := refs
	if len(names) == 0 {
		for _, tag := range o.Tags {
			names = append(names, o.Repository+":"+tag)
		}
	}
	p.logf("building %s (context %s, %s)", strings.Join(names, ", "), bc.Dir, bc.Dockerfile)
	tarball, err := bc.tar()
	if err != nil {
		return "", err
	}
	defer tarball.Close()
	resp, err := p.Engine.ImageBuild(ctx, tarball, build.ImageBuildOptions{
		Tags:       refs,
		Dockerfile: bc.Dockerfile,
		BuildArgs:  o.BuildArgs,
		Target:     o.Target,
		Labels:     o.Labels,
		Remove:     true,
		// The classic builder: BuildKit over the API needs a session the
		// engine calls back, and the engines CI offers all still serve it.
		Version: build.BuilderV1,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return "", err
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("building: the Docker engine refused the build: %v", err)
	}
	defer resp.Body.Close()

	var imageID string
	steps := &stepWatcher{w: p.Err}
	err = p.display(resp.Body, steps, func(m jsonmessage.JSONMessage) {
		var aux build.Result
		if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
			imageID = aux.ID
		}
	})
	var jerr *jsonmessage.JSONError
	switch {
	case errors.As(err, &jerr):
		if steps.last != "" {
			return "", fmt.Errorf("build failed at %s: %s", steps.last, jerr.Message)
		}
		return "", fmt.Errorf("build failed: %s", jerr.Message)
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil:
		return "", fmt.Errorf("building: the connection to %s broke off mid-build (%v): check that the engine is still running, then rerun", p.engineDescription(), err)
	case imageID == "":
		return "", errors.New("building: the Docker engine's build output ended without an image ID: the build did not finish")
	}
	return imageID, nil
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
