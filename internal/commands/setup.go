package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/prompt"
	"github.com/containerise/containerise/provision"
)

// setupOptions are setup's flags.
type setupOptions struct {
	provision.Options
	output  string
	yes     bool
	envFile string
}

// newProvisioner builds the provisioner over AWS clients and returns the
// region; tests pass fakes.
type newProvisioner func(ctx context.Context) (*provision.Provisioner, string, error)

func newSetupCmd(g *Globals) *cobra.Command {
	return newSetupCmdWith(g, func(ctx context.Context) (*provision.Provisioner, string, error) {
		cfg, err := g.AdminAWSConfig(ctx)
		if err != nil {
			return nil, "", err
		}
		return &provision.Provisioner{
			IAM: iam.NewFromConfig(cfg), ECR: ecr.NewFromConfig(cfg), STS: sts.NewFromConfig(cfg),
			Logf: g.Logf,
		}, cfg.Region, nil
	})
}

func newSetupCmdWith(g *Globals, build newProvisioner) *cobra.Command {
	o := setupOptions{}
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create or correct the repository, policy, user and role, and print the CI variables",
		Long: `Create, or correct, what the blog post clicks together, then print the
CircleCI environment variables:

  1. the ECR repository (--repository);
  2. the managed policy (--policy) allowing pushes to that repository only,
     plus ecr:GetAuthorizationToken (see 'containerise policies');
  3. the IAM user (--user), with no permissions, and one access key;
  4. the role (--role) with the policy attached, which only that user may
     assume.

Setup reads everything first, then makes only the changes needed, so it is
safe to rerun: a rerun changes nothing unless something drifted, and never
creates a second access key. A changed policy document gets a new default
version (the oldest is pruned when AWS's 5 are reached), a changed trust
policy is restored, a detached policy is re-attached. What setup creates is
tagged managed-by=containerise; resources without that tag (made by hand)
are used as they are, never changed, and reported as unmanaged. The policy's
containerise/default-version and containerise/document-sha256 tags let a
rerun skip reading its document; a rerun finding them stale rewrites them.

The secret access key exists only when the key is created: it is printed
then (stdout, never logs) and written to --env-file if given (mode 0600).
On a rerun, --rotate-key creates a new key, prints it, and deletes the old
one after you confirm at the terminal (or with --yes); without confirmation
the old key is kept and setup says how to delete it later.

Output (stdout): --output text (default) lists each resource and what was
done (created, updated, unchanged, unmanaged), then the variables;
--output json is one object (account, region, resources, variables,
secret_available, dry_run, notes, warnings); --output dotenv prints
NAME=value lines only. Progress and warnings go to stderr.`,
		Example: `  # First time, with the blog's names; store the printed values in CircleCI
  containerise setup

  # See what would change, without changing anything
  containerise setup --dry-run

  # Your own names, variables written to a file readable only by you
  containerise setup --repository my-app --user ci-bot --role ci-push --policy ci-push-ecr --env-file ci.env

  # Replace the CI user's key: prints the new key, then deletes the old one
  containerise setup --rotate-key --yes --output dotenv > ci.env`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			p, region, err := build(cmd.Context())
			if err != nil {
				return err
			}
			o.Region = region
			return runSetup(cmd.Context(), g, p, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Repository, "repository", provision.DefaultRepository, "ECR repository to create or use")
	f.StringVar(&o.Policy, "policy", provision.DefaultPolicy, "IAM managed policy allowing pushes to the repository")
	f.StringVar(&o.User, "user", provision.DefaultUser, "IAM user whose access key CI holds")
	f.StringVar(&o.Role, "role", provision.DefaultRole, "IAM role CI assumes to push")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text, json or dotenv")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the plan and make no change")
	f.BoolVar(&o.RotateKey, "rotate-key", false, "create a new access key and delete the old one after confirmation")
	f.BoolVarP(&o.yes, "yes", "y", false, "with --rotate-key: delete the old key without asking")
	f.StringVar(&o.envFile, "env-file", "", "also write the variables, secret included, to this file (mode 0600)")
	f.BoolVar(&o.AllowDescribeImages, "allow-skip-existing", false, "add ecr:DescribeImages to the policy, for 'push --skip-existing'")
	f.DurationVar(&o.PropagationWait, "wait", provision.DefaultPropagationWait, "how long to wait for IAM to accept a new user as the role's principal")
	return cmd
}

func (o *setupOptions) validate() error {
	switch o.output {
	case "text", "json", "dotenv":
	default:
		return clierror.Usagef("--output %q is invalid: use text, json or dotenv", o.output)
	}
	if err := (names.Set{Repository: o.Repository, Policy: o.Policy, User: o.User, Role: o.Role}).Validate(); err != nil {
		return err
	}
	if o.PropagationWait <= 0 {
		return clierror.Usagef("--wait %s is invalid: give a positive duration such as 2m or 90s", o.PropagationWait)
	}
	if o.envFile != "" {
		if o.DryRun {
			return clierror.Usagef("--env-file cannot be used with --dry-run: a dry run creates no key to write")
		}
		if info, err := os.Stat(o.envFile); err == nil && info.IsDir() {
			return clierror.Usagef("--env-file %q is a directory: give a file path", o.envFile)
		}
		if info, err := os.Stat(filepath.Dir(o.envFile)); err != nil || !info.IsDir() {
			return clierror.Usagef("--env-file %q: its directory does not exist", o.envFile)
		}
	}
	return nil
}

func runSetup(ctx context.Context, g *Globals, p *provision.Provisioner, o setupOptions) error {
	envWritten := false
	writeEnv := func(v provision.Variables) error {
		if o.envFile == "" || envWritten {
			return nil
		}
		if err := writeEnvFile(o.envFile, v); err != nil {
			return err
		}
		envWritten = true
		g.Logf("wrote the CircleCI variables, secret included, to %s (mode 0600)", o.envFile)
		return nil
	}
	o.ConfirmDeleteKey = func(ctx context.Context, r provision.Rotation) (bool, error) {
		if err := writeEnv(r.Variables); err != nil {
			return false, err
		}
		if o.yes {
			return true, nil
		}
		if !prompt.IsTerminal(g.In) {
			g.Logf("old access key %s kept: no terminal to confirm its deletion (pass --yes to delete it)", r.OldKeyID)
			return false, nil
		}
		switch {
		case o.output == "text":
			fmt.Fprintf(g.Out, "New access key for user %s (the secret is shown once):\n", r.User)
			writeVariables(g.Out, r.Variables, "  ")
			fmt.Fprintln(g.Out)
		case envWritten:
			g.Logf("the new key is in %s", o.envFile)
		default:
			g.Logf("old access key %s kept: with --output %s the new key is printed only when setup ends; delete the old key once CI uses the new one: %s",
				r.OldKeyID, o.output, r.DeleteCommandOldKey)
			return false, nil
		}
		return prompt.Confirm(g.In, g.Err, fmt.Sprintf(
			"Update %s and %s in CircleCI with the new key first. Delete old access key %s of user %s now?",
			provision.VarAccessKeyID, provision.VarSecretAccessKey, r.OldKeyID, r.User))
	}

	res, runErr := p.Run(ctx, o.Options)
	if res == nil {
		return runErr
	}
	g.Debugf("setup: %s", summariseStatuses(res))
	// Render even after a failure: a key created before it must not be lost.
	for _, w := range res.Warnings {
		g.Logf("warning: %s", w)
	}
	var envErr error
	if res.SecretAvailable {
		envErr = writeEnv(res.Variables)
	} else if o.envFile != "" {
		g.Logf("%s not written: no new secret to store (the access key already existed; --rotate-key makes a new one)", o.envFile)
	}
	var err error
	switch o.output {
	case "json":
		err = renderSetupJSON(g.Out, res)
	case "dotenv":
		renderSetupDotenv(g.Out, res)
		if !res.SecretAvailable && !res.DryRun {
			g.Logf("note: %s is not printed: the access key already existed, and AWS shows a secret only when its key is created", provision.VarSecretAccessKey)
		}
		for _, n := range res.Notes {
			g.Logf("note: %s", n)
		}
	default:
		renderSetupText(g.Out, res)
	}
	if runErr != nil {
		return runErr
	}
	if envErr != nil {
		return envErr
	}
	return err
}

// writeEnvFile writes NAME=value lines to path with mode 0600, replacing it
// atomically so that no reader sees a partial file.
func writeEnvFile(path string, v provision.Variables) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".containerise-env-*")
	if err != nil {
		return fmt.Errorf("writing --env-file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing --env-file %s: %w", path, err)
	}
	for _, kv := range v.Pairs() {
		fmt.Fprintf(tmp, "%s=%s\n", kv[0], kv[1])
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing --env-file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing --env-file %s: %w", path, err)
	}
	return nil
}

func writeVariables(w io.Writer, v provision.Variables, indent string) {
	for _, kv := range v.Pairs() {
		fmt.Fprintf(w, "%s%s=%s\n", indent, kv[0], kv[1])
	}
}

var statusText = map[provision.Status]string{
	provision.Created:     "created",
	provision.Updated:     "updated",
	provision.Unchanged:   "unchanged",
	provision.Exists:      "exists (created meanwhile by another setup)",
	provision.Unmanaged:   "unmanaged",
	provision.WouldCreate: "would create",
	provision.WouldUpdate: "would update",
	provision.Failed:      "failed",
	provision.Skipped:     "skipped",
}

// renderSetupText writes the readable summary.
func renderSetupText(w io.Writer, res *provision.Result) {
	if res.DryRun {
		fmt.Fprintf(w, "Dry run: nothing was changed. Plan for account %s, region %s:\n\n", res.Account, res.Region)
	} else {
		fmt.Fprintf(w, "Account %s, region %s:\n\n", res.Account, res.Region)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range res.Resources {
		name := r.Name
		if name == "" {
			name = "-"
		}
		line := fmt.Sprintf("  %s\t%s\t%s", r.Kind, name, statusText[r.Status])
		if len(r.Changes) > 0 {
			label := ""
			if r.Status == provision.Unmanaged {
				label = "differs: "
			}
			line += "\t" + label + strings.Join(r.Changes, "; ")
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nCircleCI environment variables:")
	v := res.Variables
	key := v.AccessKeyID
	if key == "" {
		key = "(the new key's ID)"
	}
	fmt.Fprintf(w, "  %s=%s\n", provision.VarAccessKeyID, key)
	switch {
	case res.SecretAvailable:
		fmt.Fprintf(w, "  %s=%s\n", provision.VarSecretAccessKey, v.SecretAccessKey)
	case res.DryRun:
		fmt.Fprintf(w, "  %s=(shown when the key is created)\n", provision.VarSecretAccessKey)
	default:
		fmt.Fprintf(w, "  %s: not shown: AWS shows a secret only when its key is created\n", provision.VarSecretAccessKey)
	}
	fmt.Fprintf(w, "  %s=%s\n", provision.VarRoleARN, v.RoleARN)
	fmt.Fprintf(w, "  %s=%s\n", provision.VarRegion, v.Region)
	fmt.Fprintf(w, "  %s=%s\n", provision.VarDefaultRegion, v.Region)
	if res.SecretAvailable {
		fmt.Fprintln(w, "\nThe secret access key is shown this once: store it in CircleCI now.")
	}
	for _, r := range res.Resources {
		if r.Status == provision.Unmanaged {
			fmt.Fprintln(w, "\nUnmanaged resources have no managed-by=containerise tag (made by hand): setup uses them as they are and never changes them.")
			break
		}
	}
	if len(res.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range res.Notes {
			fmt.Fprintf(w, "Note: %s\n", n)
		}
	}
}

// setupJSON is the --output json document. Its keys are stable.
type setupJSON struct {
	Account         string            `json:"account"`
	Region          string            `json:"region"`
	DryRun          bool              `json:"dry_run"`
	Resources       []setupResource   `json:"resources"`
	Variables       map[string]string `json:"variables"`
	SecretAvailable bool              `json:"secret_available"`
	Notes           []string          `json:"notes"`
	Warnings        []string          `json:"warnings"`
}

type setupResource struct {
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	ARN     string   `json:"arn"`
	Status  string   `json:"status"`
	Managed bool     `json:"managed"`
	Changes []string `json:"changes"`
}

func renderSetupJSON(w io.Writer, res *provision.Result) error {
	doc := setupJSON{
		Account: res.Account, Region: res.Region, DryRun: res.DryRun, SecretAvailable: res.SecretAvailable,
		Resources: []setupResource{}, Variables: map[string]string{},
		Notes: append([]string{}, res.Notes...), Warnings: append([]string{}, res.Warnings...),
	}
	for _, r := range res.Resources {
		doc.Resources = append(doc.Resources, setupResource{
			Kind: r.Kind, Name: r.Name, ARN: r.ARN, Status: string(r.Status), Managed: r.Managed,
			Changes: append([]string{}, r.Changes...),
		})
	}
	for _, kv := range res.Variables.Pairs() {
		if kv[1] != "" {
			doc.Variables[kv[0]] = kv[1]
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing the JSON result: %w", err)
	}
	return nil
}

// renderSetupDotenv writes NAME=value lines only; unknown values (a dry
// run's key) and an unavailable secret are left out.
func renderSetupDotenv(w io.Writer, res *provision.Result) {
	for _, kv := range res.Variables.Pairs() {
		if kv[1] != "" {
			fmt.Fprintf(w, "%s=%s\n", kv[0], kv[1])
		}
	}
}

// summariseStatuses counts resources by status, for --verbose: "5 created".
func summariseStatuses(res *provision.Result) string {
	counts := map[provision.Status]int{}
	var order []provision.Status
	for _, r := range res.Resources {
		if counts[r.Status] == 0 {
			order = append(order, r.Status)
		}
		counts[r.Status]++
	}
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	return strings.Join(parts, ", ")
}
