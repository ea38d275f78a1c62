// Package push is the CI half of containerise: it assumes the push role with
// the CI user's static keys, gets an ECR authorization token with the role's
// credentials, builds the Dockerfile through the Docker Engine API and pushes
// every tag, passing the registry credentials with each request.
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
)

// DefaultRepository and DefaultTag are the blog's.
const (
	DefaultRepository = "circleci-ecr-test"
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
	// SessionName is the role session name auditors see (see SessionName).
	SessionName string

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

	// SkipExisting leaves out the tags that already exist in ECR.
	SkipExisting bool
	// Wait bounds the retries while IAM does not yet know the key or the
	// role; zero means a single attempt.
	Wait time.Duration
}

// Pusher holds what a push talks to and where it reports.
type Pusher struct {
	// STS is called with the CI user's static keys.
	STS stsAPI
	// NewECR returns an ECR client that signs with the role's credentials.
	NewECR func(aws.Credentials) ecrAPI
	// Engine is the Docker engine.
	Engine engineAPI

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
// call), then the engine is reached and its API version negotiated (so a
// missing engine fails before AWS is asked anything), then STS, ECR, the
// build and the pushes.
func (p *Pusher) Run(ctx context.Context, o Options) error {
	bc, err := prepareContext(o.Context, o.Dockerfile)
	if err != nil {
		return err
	}
	if err := p.connect(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(o.Wait)
	creds, err := p.assumeRole(ctx, o, deadline)
	if err != nil {
		return err
	}
	ecrClient := p.NewECR(creds)
	reg, err := p.registryLogin(ctx, ecrClient, deadline)
	if err != nil {
		return err
	}

	tags := o.Tags
	if o.SkipExisting {
		existing, err := p.existingTags(ctx, ecrClient, o.Repository, o.Tags)
		if err != nil {
			return err
		}
		tags = nil
		for _, tag := range o.Tags {
			ref := reg.ref(o.Repository, tag)
			if digest, ok := existing[tag]; ok {
				p.logf("%s: exists, skipped", ref)
				fmt.Fprintf(p.Out, "%s@%s\n", ref, digest)
				continue
			}
			tags = append(tags, tag)
		}
		if len(tags) == 0 {
			p.logf("every tag already exists in %s: nothing to build", o.Repository)
			return nil
		}
	}

	refs := make([]string, len(tags))
	for i, tag := range tags {
		refs[i] = reg.ref(o.Repository, tag)
	}
	imageID, err := p.build(ctx, o, bc, refs)
	if err != nil {
		return err
	}
	p.debugf("docker: built %s", imageID)
	for i, ref := range refs {
		digest, err := p.push(ctx, ref, tags[i], reg)
		if err != nil {
			return err
		}
		fmt.Fprintf(p.Out, "%s@%s\n", ref, digest)
	}
	return nil
}
