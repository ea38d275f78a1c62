// Package commands is the cobra layer: flags, validation and output routing.
// Each command validates its input, then calls one function of provision,
// push or teardown; no AWS or Docker logic lives here.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/buildinfo"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/validate"
)

// Globals holds the root flags and the process's streams: results go to Out,
// progress and logs to Err.
type Globals struct {
	Region  string
	Profile string
	Verbose bool

	In  io.Reader
	Out io.Writer
	Err io.Writer

	// Calls counts AWS operations for the --verbose summary.
	Calls awsx.CallCounter
	// Words says the ways forward errors suggest, with the running
	// command's flags; nil means defaultWords.
	Words hint.Words
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string

	version string
}

// Version is the binary's version, set at build time.
func (g *Globals) Version() string { return g.version }

// Logf writes a progress line to stderr.
func (g *Globals) Logf(format string, args ...any) {
	fmt.Fprintf(g.Err, format+"\n", args...)
}

// Debugf writes a line to stderr only with --verbose.
func (g *Globals) Debugf(format string, args ...any) {
	if g.Verbose {
		fmt.Fprintf(g.Err, format+"\n", args...)
	}
}

// ValidateRegion checks --region when given (the SDK chain's own value is
// checked after loading).
func (g *Globals) ValidateRegion() error {
	if g.Region == "" {
		return nil
	}
	return validate.Region("--region", g.Region)
}

// AWSConfig loads the SDK configuration for the root flags.
func (g *Globals) AWSConfig(ctx context.Context) (aws.Config, error) {
	if err := g.ValidateRegion(); err != nil {
		return aws.Config{}, err
	}
	opts := awsx.Options{Region: g.Region, Profile: g.Profile}
	if g.Verbose {
		opts.Log = g.Err
	}
	cfg, err := awsx.Load(ctx, opts, &g.Calls)
	if err != nil {
		return aws.Config{}, fmt.Errorf("%w (check AWS_PROFILE, --profile and ~/.aws/config)", err)
	}
	if err := validate.Region("region (from AWS_REGION or the profile)", cfg.Region); err != nil {
		return aws.Config{}, err
	}
	return cfg, nil
}

// AdminAWSConfig is AWSConfig for commands that act with the caller's own
// credentials (setup, teardown): it resolves them first, so that a machine
// with none gets one clear error instead of the first API call's. The SDK
// caches what it resolved, so this costs no extra call later.
func (g *Globals) AdminAWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := g.AWSConfig(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return aws.Config{}, ctx.Err()
		}
		g.Debugf("aws: resolving credentials: %v", err)
		return aws.Config{}, clierror.Usagef("no AWS credentials found: set AWS_PROFILE (or --profile) to a configured profile, " +
			"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run 'aws sso login' for an SSO profile (--verbose shows what the SDK tried)")
	}
	return cfg, nil
}

// NewRoot builds the command tree.
func NewRoot(version string, g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "containerise",
		Short: "A least-privilege path from CI to Amazon ECR",
		Long: `containerise gives a CI job a least-privilege path to push images to Amazon ECR.
An admin runs setup once: the repository, a policy that may only push to it,
and a role the job assumes with its OIDC token (keyless) or a CI user's key.
The job runs push and scan; teardown removes what setup made, and only that.

AWS credentials and the region come from the SDK's chain (environment,
AWS_PROFILE or --profile, SSO). Results go to stdout, progress to stderr; exit
0 success, 1 failure, 2 invalid input (before any call), 130 interrupted.` + guideLine + "README.md",
		Example:       rootExample,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.ValidateRegion()
		},
		PersistentPostRun: func(cmd *cobra.Command, _ []string) {
			if g.Verbose && g.Calls.Total() > 0 {
				g.Logf("aws: %d calls, %d mutating", g.Calls.Total(), g.Calls.Mutating())
			}
		},
	}
	root.SetVersionTemplate("containerise {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.Region, "region", "", "AWS region (default: AWS_REGION, the profile's region, then us-east-1)")
	pf.StringVar(&g.Profile, "profile", "", "AWS shared config profile (default: AWS_PROFILE, then the default profile)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "log every AWS call and Docker step to stderr (never secrets)")

	root.SetIn(g.In)
	root.SetOut(g.Out)
	root.SetErr(g.Err)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return clierror.Usagef("%v (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(
		newSetupCmd(g),
		newPushCmd(g),
		newTeardownCmd(g),
		newPoliciesCmd(g),
		newCircleCIConfigCmd(g),
		newCIConfigCmd(g),
		newScanCmd(g),
	)
	sectionAll(root)
	groupCommands(root)
	return root
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return clierror.Usagef("unexpected argument %q: %s takes flags only (see '%s --help')", args[0], cmd.Name(), cmd.CommandPath())
	}
	return nil
}

// classify marks the errors cobra itself returns for unknown commands and
// bad arguments as usage errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "invalid argument") ||
		strings.Contains(msg, "flag needs an argument") {
		return clierror.AsUsage(err)
	}
	return err
}

// exitCodeOf is the exit code Execute would return for err.
func exitCodeOf(err error) int { return clierror.Code(classify(err)) }

// Execute runs the command line and returns the exit code. An error is
// printed exactly once, here.
func Execute(ctx context.Context, build buildinfo.Info, in io.Reader, out, errw io.Writer) int {
	return executeBuild(ctx, build, nil, in, out, errw)
}

// execute runs args (nil: the process's own) as a binary of that version
// would.
func execute(ctx context.Context, version string, args []string, in io.Reader, out, errw io.Writer) int {
	return executeBuild(ctx, buildinfo.Info{Version: version}, args, in, out, errw)
}

func executeBuild(ctx context.Context, build buildinfo.Info, args []string, in io.Reader, out, errw io.Writer) int {
	g := &Globals{In: in, Out: out, Err: errw, version: build.Version}
	root := NewRoot(build.Version, g)
	// --version says the commit and date too, when known.
	root.SetVersionTemplate(build.String() + "\n")
	if args != nil {
		root.SetArgs(args)
	}
	err := classify(root.ExecuteContext(ctx))
	if err == nil {
		return clierror.ExitOK
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(errw, "Error: cancelled")
	} else {
		words := g.Words
		if words == nil {
			words = defaultWords
		}
		fmt.Fprintf(errw, "Error: %s\n", hint.Message(err, words))
	}
	return clierror.Code(err)
}

// defaultWords says the ways forward every command shares.
func defaultWords(n hint.Next) string {
	switch n {
	case hint.WaitLonger:
		return "or allow longer with --wait"
	case hint.AdminCredentials:
		return "e.g. with --profile"
	case hint.RotateKey:
		return "for a new key: containerise setup --rotate-key"
	case hint.IncludeUnmanaged:
		return "--include-unmanaged deletes it"
	case hint.AllowSkipExisting:
		return "rerun setup with --allow-skip-existing, or push without --skip-existing"
	case hint.CircleCIToken:
		return "in CIRCLECI_TOKEN"
	case hint.CreateContext:
		return "or add --create-context"
	case hint.Confirm:
		return "to confirm, rerun with --yes (or answer yes at a terminal)"
	case hint.RecreateRepository:
		return "set up a new repository with it (containerise setup --repository NEW-NAME --kms-key KEY), or run containerise teardown (which deletes the images) and then setup again"
	case hint.AllowScan:
		return "rerun setup with --scan-on-push (the repository scans every push) or --allow-scan (the gate may also start scans)"
	}
	return ""
}

// words is how this run words ways forward.
func (g *Globals) words() hint.Words {
	if g.Words != nil {
		return g.Words
	}
	return defaultWords
}

// getenv reads a variable of this run's environment.
func (g *Globals) getenv(name string) string {
	if g.Getenv != nil {
		return g.Getenv(name)
	}
	return os.Getenv(name)
}
