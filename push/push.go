// Package push is the CI half of containerise: it assumes the push role with
// the CI user's static keys, gets an ECR authorization token with the role's
// credentials, builds the Dockerfile through the Docker Engine API and pushes
// every tag, passing the registry credentials with each request; or it
// builds and pushes on a standalone BuildKit daemon (bkdaemon: remote or
// container) through BuildKit's own client.
//
// Everything outside the process is reached through narrow interfaces (STS,
// ECR, the Docker engine) injected through Pusher, so that tests replay the
// engine's recorded streams and AWS's real errors.
package push

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/containerise/containerise/push/bkdaemon"
	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/names"
)

// DefaultRepository and DefaultTag are the blog's.
const (
	DefaultRepository = names.Repository
	DefaultTag        = "v1"
	// DefaultWait bounds the wait for IAM to know a fresh key or role.
	DefaultWait = time.Minute
)

// Options are the inputs of one push, already read from flags and the
// environment and checked for shape by the caller.
type Options struct {
	// The CI user's static keys (AWS_IAM_USER_ACCESS_KEY_ID and
	// AWS_IAM_USER_SECRET_ACCESS_KEY) and the role they assume.
	AccessKeyID     string
	SecretAccessKey string
	RoleARN         string
	// WebIdentity, when set, is the job's OIDC token: the role is assumed
	// with it (keyless) instead of the keys.
	WebIdentity *WebIdentity
	// SessionName is the role session name auditors see: the job's CI names
	// it after the run (ci.Provider.SessionName).
	SessionName string

	// Region is the repository's region; with the role's account it names
	// the ECR registry before ECR answers.
	Region     string
	Repository string
	Tags       []string

	// Context is the build context folder; Dockerfile the Dockerfile's path
	// (relative to the working directory, as with `docker build -f`), empty
	// for Dockerfile in the context.
	Context    string
	Dockerfile string
	BuildArgs  map[string]*string
	Target     string
	Labels     map[string]string

	// Builder chooses the builder (BuilderAuto when empty): one of the
	// engine's, or a standalone BuildKit daemon (Pusher.Daemon).
	Builder Builder
	// CacheTag is the registry cache's tag in Repository with a BuildKit
	// daemon (DefaultCacheTag when empty).
	CacheTag string
	// BuildKit says where the daemon of the remote and container builders
	// is, or which image the container runs.
	BuildKit BuildKitOptions
	// Secrets reach RUN --mount=type=secret (BuildKit only); SSH forwards
	// SSH agents to RUN --mount=type=ssh.
	Secrets []Secret
	SSH     []SSHAgent
	// CacheFrom names images, beyond the tags being pushed, whose layers
	// the build may reuse. NoCache builds from scratch: no cache source, no
	// layer from the engine's own cache.
	CacheFrom []string
	NoCache   bool
	// Network is the network of RUN steps: "", "default", "host" or "none".
	Network string
	// Platforms are the target platforms (os/arch[/variant]); none means
	// the engine's own.
	Platforms []string

	// SkipExisting leaves out the tags that already exist in ECR.
	SkipExisting bool
	// Wait bounds the retries while IAM does not yet know the key or the
	// role; zero means a single attempt.
	Wait time.Duration
}

// Builder is one of the engine's builders.
type Builder string

const (
	// BuilderAuto is BuildKit when the engine offers it, else the classic
	// builder.
	BuilderAuto     Builder = "auto"
	BuilderBuildKit Builder = "buildkit"
	BuilderClassic  Builder = "classic"
	// BuilderRemote is a BuildKit daemon the user runs; BuilderContainer
	// one that push runs as a container on the engine. Both take
	// Pusher.Daemon.
	BuilderRemote    Builder = "remote"
	BuilderContainer Builder = "container"
)

// OnDaemon says whether b builds on a standalone BuildKit daemon.
func (b Builder) OnDaemon() bool { return b == BuilderRemote || b == BuilderContainer }

// BuildKitOptions locate a standalone BuildKit daemon, checked by the
// caller: the remote builder's address (unix:// or tcp://, with TLS files
// for tcp), and the container builder's image.
type BuildKitOptions struct {
	Host string
	// HostFrom names where Host came from (--buildkit-host, BUILDKIT_HOST).
	HostFrom      string
	CA, Cert, Key string
	// Image is the container builder's image (bkdaemon.DefaultImage when
	// empty).
	Image string
}

// Secret is a build secret: its ID in the Dockerfile and where its value
// is read when the build asks for it (an environment variable or a file).
// The value itself is never held here.
type Secret struct {
	ID   string
	Env  string
	File string
}

// SSHAgent is an SSH agent socket (or key files) the build may use through
// RUN --mount=type=ssh,id=ID; no paths means SSH_AUTH_SOCK.
type SSHAgent struct {
	ID    string
	Paths []string
}

// Pusher holds what a push talks to and where it reports.
type Pusher struct {
	// STS is called with the CI user's static keys.
	STS stsAPI
	// NewECR returns an ECR client that signs with the role's credentials.
	NewECR func(aws.Credentials) ecrAPI
	// Engine is the Docker engine.
	Engine engineAPI
	// Daemon is the BuildKit daemon of the remote and container builders.
	Daemon bkdaemon.Daemon

	// Out receives one line per pushed tag; Err the progress.
	Out io.Writer
	Err io.Writer
	// Terminal says Err is a terminal (progress bars) with file descriptor
	// TerminalFd.
	Terminal   bool
	TerminalFd uintptr
	// Debugf logs details with --verbose; nil logs nothing. Never given a
	// secret.
	Debugf func(format string, args ...any)

	// Backoff returns the pause before retry n (1-based) while waiting for
	// IAM; nil means 1s, 2s, 4s, then 5s.
	Backoff func(n int) time.Duration
}

func (p *Pusher) logf(format string, args ...any) {
	fmt.Fprintf(p.Err, format+"\n", args...)
}

func (p *Pusher) debugf(format string, args ...any) {
	if p.Debugf != nil {
		p.Debugf(format, args...)
	}
}

// Run pushes every tag of o.Tags to o.Repository and prints one line per tag
// on Out: <registry>/<repository>:<tag>@sha256:<digest>.
//
// Order: the build inputs are checked first (a usage error, before any
// call). A standalone BuildKit daemon takes it from there (runOnDaemon).
// Otherwise the engine is reached, its API version negotiated and the
// builder chosen (so a missing engine fails before AWS is asked anything).
// On a cold engine (no cache source on it), AWS (STS, then ECR) comes first,
// since the cache sources are pulled from ECR with its token: the cache
// sources are pulled, the image is built with the registry refs as its
// tags, and every tag is pushed. When nothing needs ECR before the build
// (NoCache, or a warm engine that has cache sources already), the AWS half
// and the build run together, and the image is tagged for the registry once
// ECR has named it. With SkipExisting, whether to build depends on ECR's
// answer, so AWS comes first too.
func (p *Pusher) Run(ctx context.Context, o Options) error {
	_, err := p.Push(ctx, o)
	return err
}

// Pushed is one tag a push left in ECR, with the digest it names there.
type Pushed struct {
	Tag, Digest string
}

// Push is Run, returning what each tag names in ECR: the digest this push
// wrote (or, with SkipExisting, the one already there).
func (p *Pusher) Push(ctx context.Context, o Options) ([]Pushed, error) {
	var pushed []Pushed
	bc, err := prepareContext(o.Context, o.Dockerfile)
	if err != nil {
		return nil, err
	}
	if o.Builder.OnDaemon() {
		return p.runOnDaemon(ctx, o, bc)
	}
	ping, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	builder, err := p.chooseBuilder(ctx, o, ping)
	if err != nil {
		return nil, err
	}
	p.adviseOnStages(o, bc)
	req := buildRequest{builder: builder, registry: newRegistryGate(o.RoleARN, p.Debugf)}
	deadline := time.Now().Add(o.Wait)
	var (
		reg  registryAuth
		tags []string
	)
	overlap := o.NoCache && !o.SkipExisting
	if !o.NoCache && !o.SkipExisting {
		// A warm engine that has cache sources already builds from them
		// at once, without pulling: then nothing waits for ECR.
		req.cacheFrom = p.cacheSourcesOnEngine(ctx, o)
		overlap = len(req.cacheFrom) > 0
	}
	if overlap {
		reg, err = p.buildWhileLoggingIn(ctx, o, bc, req, deadline)
		tags = o.Tags
	} else {
		reg, tags, err = p.loginThenBuild(ctx, o, bc, req, deadline, &pushed)
	}
	if err != nil {
		return nil, err
	}
	for _, tag := range tags {
		ref := reg.ref(o.Repository, tag)
		digest, err := p.push(ctx, ref, tag, reg)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(p.Out, "%s@%s\n", ref, digest)
		pushed = append(pushed, Pushed{Tag: tag, Digest: digest})
	}
	return pushed, nil
}

// login is the AWS half: the role's credentials, then the ECR token. It
// returns the ECR client too, signed as the role.
func (p *Pusher) login(ctx context.Context, o Options, deadline time.Time) (registryAuth, ecrAPI, error) {
	creds, err := p.assumeRole(ctx, o, deadline)
	if err != nil {
		return registryAuth{}, nil, err
	}
	ecrClient := p.NewECR(creds)
	reg, err := p.registryLogin(ctx, ecrClient, deadline)
	if err != nil {
		return registryAuth{}, nil, err
	}
	return reg, ecrClient, nil
}

// tagsToPush asks ECR which tags exist already, prints those as pushed,
// adds them to skipped, and returns the others, none when every tag exists (SkipExisting).
func (p *Pusher) tagsToPush(ctx context.Context, o Options, reg registryAuth, ecrClient ecrAPI, skipped *[]Pushed) ([]string, error) {
	existing, err := p.existingTags(ctx, ecrClient, o.Repository, o.Tags)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, tag := range o.Tags {
		ref := reg.ref(o.Repository, tag)
		if digest, ok := existing[tag]; ok {
			p.logf("%s: exists, skipped", ref)
			fmt.Fprintf(p.Out, "%s@%s\n", ref, digest)
			*skipped = append(*skipped, Pushed{Tag: tag, Digest: digest})
			continue
		}
		tags = append(tags, tag)
	}
	if len(tags) == 0 {
		p.logf("every tag already exists in %s: nothing to build", o.Repository)
	}
	return tags, nil
}

// buildWhileLoggingIn runs the AWS half and the build together. The build
// cannot know the registry's host name, which only ECR's answer gives, so it
// builds untagged and the image is tagged <registry>/<repository>:<tag> once
// both halves are done. Should BuildKit need the ECR registry meanwhile (a
// FROM image there), its request waits for the token. The first failure of
// either half cancels the other and is the error returned (errgroup keeps
// the first error, and cancels the shared context only after recording it,
// so the cancelled half's "context canceled" is never the one reported).
//
// What a failure leaves on the engine: a build that fails or is cancelled
// leaves no tag, as before. A build that succeeded while the AWS half failed
// or was interrupted leaves its image without this push's tags (dangling,
// unless an earlier build already tagged the same image). It is left there
// on purpose, and said on stderr: it is what a rerun's build finds in its
// cache, removing it could take another tag's image, and `docker image
// prune` removes it if nothing else tags it.
func (p *Pusher) buildWhileLoggingIn(ctx context.Context, o Options, bc buildContext, req buildRequest, deadline time.Time) (registryAuth, error) {
	// The two halves share stderr through progress; each works on its own
	// copy of the Pusher, whose writers lead there.
	out := newProgress(p.Err, p.Terminal)
	awsHalf, buildHalf := *p, *p
	awsHalf.Err = out.lines()
	if p.Debugf != nil {
		awsHalf.Debugf = func(format string, args ...any) {
			line := fmt.Sprintf(format, args...)
			out.say(func() { p.Debugf("%s", line) })
		}
	}
	buildHalf.Err = out

	var (
		reg     registryAuth
		imageID string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		reg, _, err = awsHalf.login(gctx, o, deadline)
		if err != nil {
			req.registry.close()
			return err
		}
		req.registry.open(reg)
		return nil
	})
	g.Go(func() error {
		defer out.done()
		var err error
		imageID, err = buildHalf.build(gctx, o, bc, req)
		return err
	})
	err := g.Wait()
	if imageID != "" {
		p.debugf("docker: built %s", imageID)
	}
	if err != nil {
		if imageID != "" {
			p.logf("the built image %s stays on the engine without this push's tags; docker image prune removes it if nothing else tags it", shortID(imageID))
		}
		return registryAuth{}, err
	}
	refs := make([]string, len(o.Tags))
	for i, tag := range o.Tags {
		refs[i] = reg.ref(o.Repository, tag)
	}
	return reg, p.tag(ctx, imageID, refs)
}

// loginThenBuild is the order for the cache and for SkipExisting: AWS
// first, then (SkipExisting) ECR's list of the tags it already has, then
// (unless NoCache) the cache sources pulled, then a build with the registry
// refs of the tags left as its tags. It returns the tags left to push, none
// when every tag exists, and adds the tags it skipped to skipped.
func (p *Pusher) loginThenBuild(ctx context.Context, o Options, bc buildContext, req buildRequest, deadline time.Time, skipped *[]Pushed) (registryAuth, []string, error) {
	reg, ecrClient, err := p.login(ctx, o, deadline)
	if err != nil {
		return registryAuth{}, nil, err
	}
	req.registry.open(reg)
	tags := o.Tags
	if o.SkipExisting {
		if tags, err = p.tagsToPush(ctx, o, reg, ecrClient, skipped); err != nil || len(tags) == 0 {
			return reg, nil, err
		}
	}
	for _, tag := range tags {
		req.refs = append(req.refs, reg.ref(o.Repository, tag))
	}
	if !o.NoCache {
		// With SkipExisting, ECR just said the tags left do not exist.
		cacheTags := tags
		if o.SkipExisting {
			cacheTags = nil
		}
		req.cacheFrom, err = p.pullCacheSources(ctx, cacheSources(o, reg, cacheTags), reg, o.Platforms)
		if err != nil {
			return registryAuth{}, nil, err
		}
	}
	imageID, err := p.build(ctx, o, bc, req)
	if err != nil {
		return registryAuth{}, nil, err
	}
	p.debugf("docker: built %s", imageID)
	return reg, tags, nil
}
