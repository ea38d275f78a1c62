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
		Long:    pushLong,
		Example: pushExample,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The gate's flags first: a --scan without --fail-on is wrong
			// whatever the job's credentials.
			gate, err := f.scanGate()
			if err != nil {
				return err
			}
			o, err := f.options(g, getenv)
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
		flagGroup{"Scan gate", []string{"scan", "fail-on", "scan-wait", "only-fixable", "ignore", "ignore-file", "junit", "require-signature"}},
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
		if strings.Contains(t, "$") {
			return nil, clierror.Usagef("--tag %q holds a variable reference the shell did not expand: push takes the tag as the job's shell expands it, so write --tag \"$CIRCLE_SHA1\" (double quotes, or none), not in single quotes; circleci-config and ci-config write it so", t)
		}
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
const pushLong = `Run in the CI job: assume the role (with the job's OIDC token, or the CI
user's key from AWS_IAM_USER_ACCESS_KEY_ID and AWS_IAM_USER_SECRET_ACCESS_KEY),
build the Dockerfile with BuildKit through the job's Docker engine, and push
every tag. It reads AWS_IAM_ROLE_ARN and AWS_REGION, and the engine from
DOCKER_HOST; stdout gets one line per tag, REGISTRY/REPOSITORY:TAG@sha256:DIGEST.` + guideLine + "push.md"

// pushExample is push's examples.
const pushExample = `  # In a CircleCI job, after setup_remote_docker:
  containerise push --tag "$CIRCLE_SHA1" --tag latest

  # Another folder, Dockerfile and repository, with a build argument and a secret:
  containerise push --context app --file app/Dockerfile.prod --repository team/api \
    --tag v2 --build-arg VERSION=2.0 --secret id=npm,env=NPM_TOKEN

  # A multi-stage Dockerfile on a cold engine: cache every stage in the registry
  containerise push --tag "$CIRCLE_SHA1" --builder container

  # Push, then fail the job on HIGH or CRITICAL findings
  containerise push --tag "$CIRCLE_SHA1" --scan --fail-on HIGH`
