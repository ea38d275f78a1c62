package commands

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/containerise/containerise/internal/ci/gitlab"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/push"
)

// pushFlags holds the push command's flag values.
type pushFlags struct {
	ciCredentials
	Repository   string
	Tags         []string
	Context      string
	File         string
	BuildArgs    []string
	Target       string
	Labels       []string
	SkipExisting bool
	Wait         time.Duration
	// The scan gate after the push (scan.go).
	Scan     bool
	ScanWait time.Duration
	policyFlags
	// The build (pushbuild.go).
	Builder   string
	Secrets   []string
	SSH       []string
	CacheFrom []string
	NoCache   bool
	Network   string
	Platform  string
	// A standalone BuildKit daemon (pushdaemon.go).
	BuildKitHost  string
	BuildKitCA    string
	BuildKitCert  string
	BuildKitKey   string
	BuildKitImage string
	CacheTag      string
}

func newPushCmd(g *Globals) *cobra.Command {
	return newPushCmdWith(g, os.Getenv, nil)
}

// newPushCmdWith takes the environment as a function and, for tests, a runF
// that receives the checked options instead of pushing.
func newPushCmdWith(g *Globals, getenv func(string) string, runF func(context.Context, push.Options) error) *cobra.Command {
	f := &pushFlags{}
	cmd := &cobra.Command{
		Use:     "push",
		Short:   "Assume the CI role, build the Dockerfile and push every tag to ECR",
		Long:    pushLong + pushOtherCIsHelp,
		Example: pushExample,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(g, getenv)
			if err != nil {
				return err
			}
			gate, err := f.scanGate()
			if err != nil {
				return err
			}
			if f.authNote != "" {
				g.Logf("%s", f.authNote)
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runPush(cmd.Context(), g, o, gate)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.RoleARN, "role-arn", "", "role to assume (default: "+names.EnvRoleARN+")")
	fl.StringVar(&f.Repository, "repository", push.DefaultRepository, "ECR repository to push to")
	fl.StringArrayVarP(&f.Tags, "tag", "t", []string{push.DefaultTag}, "image tag; repeat for several tags, all built at once")
	fl.StringVar(&f.Context, "context", ".", "build context folder")
	fl.StringVarP(&f.File, "file", "f", "", "Dockerfile (default: Dockerfile in the context)")
	fl.StringArrayVar(&f.BuildArgs, "build-arg", nil, "build argument KEY=VALUE (KEY alone takes the value from the environment); repeatable")
	fl.StringVar(&f.Target, "target", "", "build stage to stop at")
	fl.StringArrayVar(&f.Labels, "label", nil, "image label KEY=VALUE; repeatable")
	fl.BoolVar(&f.SkipExisting, "skip-existing", false, "neither build nor push tags that already exist in ECR (needs setup --allow-skip-existing)")
	fl.DurationVar(&f.Wait, "wait", push.DefaultWait, "how long to retry while IAM does not yet know a fresh key, role or OIDC provider (0: no retry)")
	fl.StringVar(&f.Auth, "auth", "", "the credential: oidc (the job's OIDC token) or keys (the CI user's); default: the keys when they are set, else the token")
	fl.StringVar(&f.Audience, "audience", "", "keyless in GitHub Actions, GitLab or Buildkite: the audience to ask the job's token for, or (GitLab) that its id_tokens asks for, as setup's --gitlab-audience; default "+gitlab.DefaultAudience)
	fl.StringVar(&f.OrgID, "circleci-org-id", "", "keyless: the CircleCI organization ID the role trusts; a token from another organization fails before any call")
	fl.BoolVar(&f.Scan, "scan", false, "after pushing, gate on ECR's scan of the image, as 'containerise scan' does (needs --fail-on)")
	fl.StringVar(&f.FailOn, "fail-on", "", "with --scan: exit 1 when a finding counts at or above this severity (CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL)")
	fl.DurationVar(&f.ScanWait, "scan-wait", DefaultScanWait, "with --scan: how long to wait for the scan to complete")
	f.policyFlags.add(fl, "with --scan: ")
	fl.StringVar(&f.Builder, "builder", string(push.BuilderAuto), "auto (the engine's BuildKit when it offers it, else its classic builder), buildkit, classic, remote (a BuildKit daemon you run, at --buildkit-host) or container (a BuildKit container push runs on the engine)")
	fl.StringArrayVar(&f.Secrets, "secret", nil, "build secret for RUN --mount=type=secret: id=ID,env=VAR or id=ID,src=FILE (BuildKit); repeatable")
	fl.StringArrayVar(&f.SSH, "ssh", nil, "SSH agent for RUN --mount=type=ssh: default (SSH_AUTH_SOCK), or ID=SOCKET|KEY[,...] (BuildKit); repeatable")
	fl.StringArrayVar(&f.CacheFrom, "cache-from", nil, "another image whose layers the build may reuse, besides the tags being pushed; repeatable")
	fl.BoolVar(&f.NoCache, "no-cache", false, "build from scratch: pull no cache source and reuse no layer the engine has")
	fl.StringVar(&f.Network, "network", "default", "network of RUN steps: default, host or none")
	fl.StringVar(&f.Platform, "platform", "", "target platform os/arch[/variant] (default: the builder's); several, comma-separated, need --builder remote or container, or an engine with the containerd image store")
	addDaemonFlags(fl, f)
	groupFlags(cmd,
		flagGroup{"What to push", []string{"repository", "tag", "skip-existing"}},
		flagGroup{"The build", []string{"context", "file", "build-arg", "target", "label", "builder", "secret", "ssh", "cache-from", "no-cache", "network", "platform"}},
		flagGroup{"BuildKit daemon (--builder remote or container)", daemonFlagNames},
		flagGroup{"Credentials", []string{"role-arn", "auth", "audience", "circleci-org-id", "wait"}},
		flagGroup{"Scan gate", []string{"scan", "fail-on", "scan-wait", "only-fixable", "ignore", "ignore-file", "junit"}},
	)
	return cmd
}

// options reads the environment, applies the flags and checks every value
// before any call, naming the variable or flag at fault.
func (f *pushFlags) options(g *Globals, getenv func(string) string) (push.Options, error) {
	creds, err := f.read(g, getenv)
	if err != nil {
		return push.Options{}, err
	}
	if err := validate.Repository("--repository", f.Repository); err != nil {
		return push.Options{}, err
	}
	tags, err := f.tags()
	if err != nil {
		return push.Options{}, err
	}
	if f.Wait < 0 {
		return push.Options{}, clierror.Usagef("--wait %s is negative", f.Wait)
	}
	if f.Context == "" {
		return push.Options{}, clierror.Usagef("--context is empty: name the build context folder")
	}
	buildArgs, err := buildArgs(f.BuildArgs, getenv)
	if err != nil {
		return push.Options{}, err
	}
	labels, err := labels(f.Labels)
	if err != nil {
		return push.Options{}, err
	}
	build, err := f.buildOptions(getenv)
	if err != nil {
		return push.Options{}, err
	}
	o := creds
	o.Repository, o.Tags = f.Repository, tags
	o.Context, o.Dockerfile, o.BuildArgs, o.Target, o.Labels = f.Context, f.File, buildArgs, f.Target, labels
	o.Builder, o.Secrets, o.SSH, o.CacheFrom, o.NoCache = build.Builder, build.Secrets, build.SSH, build.CacheFrom, f.NoCache
	o.Network, o.Platforms = build.Network, build.Platforms
	o.BuildKit, o.CacheTag = build.BuildKit, build.CacheTag
	o.SkipExisting, o.Wait = f.SkipExisting, f.Wait
	return o, nil
}

// tags are the --tag values, checked, each once, in order.
func (f *pushFlags) tags() ([]string, error) {
	var tags []string
	seen := map[string]bool{}
	for _, t := range f.Tags {
		if err := validate.Tag("--tag", t); err != nil {
			return nil, err
		}
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return nil, clierror.Usagef("--tag: at least one tag is needed")
	}
	return tags, nil
}

// buildArgs parses --build-arg KEY=VALUE; KEY alone takes the variable from
// the environment (and is left unset when it is empty there), as docker build does.
func buildArgs(values []string, getenv func(string) string) (map[string]*string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]*string{}
	for _, kv := range values {
		key, value, hasValue := strings.Cut(kv, "=")
		if key == "" || strings.ContainsAny(key, " \t") {
			return nil, clierror.Usagef("--build-arg %q: expected KEY=VALUE or KEY", kv)
		}
		if !hasValue {
			if value = getenv(key); value == "" {
				out[key] = nil
				continue
			}
		}
		out[key] = &value
	}
	return out, nil
}

// labels parses --label KEY=VALUE (KEY alone is an empty label).
func labels(values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range values {
		key, value, _ := strings.Cut(kv, "=")
		if key == "" {
			return nil, clierror.Usagef("--label %q: expected KEY=VALUE", kv)
		}
		out[key] = value
	}
	return out, nil
}

// runPush wires the real clients and pushes, then runs the scan gate when
// asked (gate not nil).
func runPush(ctx context.Context, g *Globals, o push.Options, gate *pushGate) error {
	cfg, err := g.AWSConfig(ctx)
	if err != nil {
		return err
	}
	engine, err := push.NewEngine()
	if err != nil {
		return err
	}
	defer engine.Close()
	p := push.New(cfg, o.AccessKeyID, o.SecretAccessKey, engine)
	p.Out, p.Err = g.Out, g.Err
	if f, ok := g.Err.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.Terminal, p.TerminalFd = true, f.Fd()
	}
	if g.Verbose {
		p.Debugf = g.Debugf
	}
	pushed, err := p.Push(ctx, o)
	if err := flagged(err); err != nil {
		return err
	}
	return gate.run(ctx, g, p, o, pushed)
}

// flagged words a push input error with the flag that gives the input.
func flagged(err error) error {
	var ie *push.InputError
	if !errors.As(err, &ie) {
		return err
	}
	switch {
	case ie.Input == push.InputContext && ie.Missing:
		return clierror.Usagef("--context %q: no such folder", ie.Value)
	case ie.Input == push.InputContext:
		return clierror.Usagef("--context %q %s", ie.Value, ie.Problem)
	case ie.Input == push.InputContextDockerfile && ie.Missing:
		return clierror.Usagef("Dockerfile in --context: %s does not exist", ie.Value)
	case ie.Input == push.InputContextDockerfile:
		return clierror.Usagef("Dockerfile in --context: %q %s", ie.Value, ie.Problem)
	case ie.Missing:
		return clierror.Usagef("--file: %s does not exist", ie.Value)
	default:
		return clierror.Usagef("--file %q %s", ie.Value, ie.Problem)
	}
}

// pushLong is the help text of push.
const pushLong = `push is what a CI job runs. It assumes the role with the CI user's keys, gets an
ECR token with the role's credentials, builds the Dockerfile through the Docker
Engine API and pushes every tag, passing the registry credentials with each
request or through the BuildKit session: no docker login, nothing written to
~/.docker/config.json.

Builder: --builder auto (the default) builds with BuildKit when the engine
offers it (Engine API 1.39 or later, on Linux), else with the classic builder
and a one-line notice. BuildKit serves today's Dockerfiles (RUN --mount,
COPY --link, ...) and reads <Dockerfile>.dockerignore beside the Dockerfile
in place of the context's .dockerignore. Progress goes to stderr as docker
buildx build shows it: a live view at a terminal, plain lines in CI.

BuildKit daemons: --builder remote and --builder container build on a
standalone BuildKit daemon, through BuildKit's client with the same session
(context, secrets, SSH, the ECR token for the ECR registry only), in one build
for every tag and platform, pushed straight from the daemon.
  remote     a BuildKit service you run and share between jobs (buildkitd on a
             host or in Kubernetes), at --buildkit-host or BUILDKIT_HOST:
             unix:///PATH, or tcp://HOST:PORT with --buildkit-ca and, for
             mutual TLS, --buildkit-cert and --buildkit-key. It is reached
             before AWS is asked anything.
  container  for a cold CI engine (setup_remote_docker) and a multi-stage
             Dockerfile: push runs --buildkit-image as the container
             containerise-buildkit on the job's engine (host network), reuses
             it on later pushes and recreates it for another image. It runs
             privileged, or, where the engine refuses that, with CAP_SYS_ADMIN,
             seccomp and AppArmor unconfined and /sys/fs/cgroup writable; push
             says which.
Both keep a registry cache in max mode (every build stage) at
REPOSITORY:buildcache (--cache-tag), imported first and exported last with
image-manifest=true,oci-mediatypes=true, the form ECR takes; a failed export is
a warning. With immutable tags, setup --immutable-tags keeps the cache tag
mutable (its --cache-tag, default buildcache, must match push's); superseded
cache manifests become untagged, which setup --expire-untagged-days cleans up.
--platform linux/amd64,linux/arm64 pushes one OCI index under every tag and
prints its digest; without QEMU on the daemon,
only Dockerfiles that cross-build (FROM --platform=$BUILDPLATFORM) can target
another architecture.

Build secrets (BuildKit): --secret id=ID,env=VAR or id=ID,src=FILE, as docker
buildx build spells them, reach RUN --mount=type=secret,id=ID only: never the
image, its history, the build log or push's output. --ssh default forwards
the SSH agent at SSH_AUTH_SOCK to RUN --mount=type=ssh.

Registry cache (on unless --no-cache): a CI engine starts cold, so before the
build, push pulls the tags it is about to push (and every --cache-from) from
the registry with the ECR token, and the build reuses their layers; BuildKit
writes its cache metadata into each image for the next run. Pulling first,
rather than importing the cache from the registry, keeps the cache holding
run after run on engines whose BuildKit would otherwise miss every other run.
A source that is missing or refused is skipped with one line on stderr. The
pull needs the token, so AWS answers first. On a warm engine that has a
source already, push uses it as it is and pulls nothing; then, as with
--no-cache, the build needs nothing from AWS and runs while STS and ECR
answer, and the image is tagged for the registry once ECR names it. With
--skip-existing, ECR is asked first, since its answer decides what to build.

Keyless (after 'setup --auth oidc'): in a CircleCI job, push assumes the role
with the job's OIDC token, which CircleCI sets in CIRCLE_OIDC_TOKEN_V2 (else
CIRCLE_OIDC_TOKEN); no key is needed. It reads the token's claims first, so
that a token that expired, comes from another organization (--circleci-org-id)
or is not a JWT fails before AWS is asked; the token itself is never printed.
CircleCI sets a token in every job, so when the user's keys are set too, the
keys win (the role was set up for them), unless --auth oidc is given; push
says which it used.

Environment (the blog's variables, as setup prints them):
  CIRCLE_OIDC_TOKEN_V2, CIRCLE_OIDC_TOKEN
                                  keyless: the job's OIDC token (CircleCI sets them)
  AWS_IAM_USER_ACCESS_KEY_ID      the CI user's access key ID (environment only)
  AWS_IAM_USER_SECRET_ACCESS_KEY  its secret access key (environment only)
  AWS_IAM_ROLE_ARN                the role to assume (or --role-arn)
  AWS_REGION                      the ECR region (or --region)
  AWS_ENDPOINT_URL                optional, another endpoint for STS and ECR
  DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
                                  the engine (CircleCI's setup_remote_docker sets them)
  CIRCLE_PROJECT_REPONAME, CIRCLE_BUILD_NUM
                                  name the role session for auditors
  SSH_AUTH_SOCK                   the SSH agent that --ssh default forwards
  BUILDKIT_HOST                   --builder remote: the daemon (or --buildkit-host)

Right after setup, IAM may not know the new key or role for a few seconds:
push retries those refusals for up to --wait.

stdout gets one line per tag, <registry>/<repository>:<tag>@sha256:<digest>;
progress goes to stderr. A failed build step (named as the builder names it),
a refused layer or bad credentials exit 1 with the engine's message; invalid
input exits 2.`

// pushExample is push's examples.
const pushExample = `  # In a CircleCI job, after setup_remote_docker:
  containerise push --tag "$CIRCLE_SHA1" --tag latest

  # Another folder, Dockerfile and repository, with build arguments:
  containerise push --context app --file app/Dockerfile.prod \
    --repository team/api --tag v2 --build-arg VERSION=2.0 --target runtime

  # A secret for RUN --mount=type=secret,id=npm, from a CircleCI variable:
  containerise push --tag v3 --secret id=npm,env=NPM_TOKEN

  # Reuse layers of another image too, or build from scratch:
  containerise push --tag v3 --cache-from "$REGISTRY/team/base:latest"
  containerise push --tag v3 --no-cache

  # A multi-stage Dockerfile on a cold CircleCI engine: a BuildKit container
  # caches its build stages in the registry:
  containerise push --tag "$CIRCLE_SHA1" --builder container

  # A shared BuildKit service, over mutual TLS, for two platforms:
  containerise push --tag v3 --builder remote --buildkit-host tcp://buildkitd:1234 \
    --buildkit-ca ca.pem --buildkit-cert cert.pem --buildkit-key key.pem \
    --platform linux/amd64,linux/arm64

  # Rerun-safe: tags already in ECR are neither built nor pushed
  # (needs setup --allow-skip-existing):
  containerise push --tag v1 --skip-existing`
