package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/joho/godotenv"
	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/prompt"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/provision"
)

// setupOptions are setup's flags.
type setupOptions struct {
	provision.Options
	output   string
	yes      bool
	envFile  string
	grants   grantFlags
	settings settingsFlags
	registry registryFlags
	ci       circleCIFlags
	auth     authFlags
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
			IAM: iam.NewFromConfig(cfg), ECR: ecr.NewFromConfig(cfg), STS: sts.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg),
			Logf: g.Logf,
		}, cfg.Region, nil
	})
}

func newSetupCmdWith(g *Globals, build newProvisioner) *cobra.Command {
	o := setupOptions{}
	cmd := &cobra.Command{
		Use:     "setup",
		Short:   "Create or correct the repository, policy, user (or OIDC provider) and role, and print the CI variables",
		Long:    setupLong,
		Example: setupExample,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(g.getenv); err != nil {
				return err
			}
			settings, err := o.settings.settings(cmd, o.grants)
			if err != nil {
				return err
			}
			o.Settings = settings
			if err := o.registry.apply(cmd, &o.Options); err != nil {
				return err
			}
			p, region, err := build(cmd.Context())
			if err != nil {
				return err
			}
			if o.CircleCI != nil && p.CircleCI == nil {
				if p.CircleCI, err = o.ci.client(g); err != nil {
					return err
				}
			}
			o.Region = region
			return runSetup(cmd.Context(), g, p, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Repositories, "repository", []string{names.Repository}, "ECR repository to create or use; repeat it for several, one role pushes to each")
	f.StringVar(&o.Policy, "policy", names.Policy, "IAM managed policy allowing pushes to the repository")
	f.StringVar(&o.User, "user", names.User, "IAM user whose access key CI holds")
	f.StringVar(&o.Role, "role", names.Role, "IAM role CI assumes to push")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text, json or dotenv")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the plan and make no change")
	f.BoolVar(&o.RotateKey, "rotate-key", false, "create a new access key and delete the old one after confirmation (into CircleCI, a user with two keys first loses the one CircleCI's key ID does not name)")
	f.BoolVarP(&o.yes, "yes", "y", false,
		"confirm without asking what takes away or changes what someone else may use: --rotate-key's deletion of the old key (once the new one is written), a keyless setup's deletion of the user it no longer needs, a change to an OIDC provider or a key for a user containerise did not create, the removal of key variables from CircleCI")
	f.StringVar(&o.envFile, "env-file", "", "also write the variables, secret included, to this file (mode 0600)")
	o.grants.add(f)
	o.settings.add(f)
	o.registry.add(f)
	o.ci.add(f)
	o.ci.addRestrict(f)
	o.auth.add(f, true)
	f.DurationVar(&o.PropagationWait, "wait", provision.DefaultPropagationWait, "how long to wait for IAM to accept a new user or OIDC provider as the role's principal")
	groupFlags(cmd,
		flagGroup{"What to set up", []string{"repository", "policy", "user", "role"}},
		flagGroup{"How CI assumes the role", []string{"auth", "circleci-org-id", "circleci-project-id", "any-project", "branch"}},
		ciTrustGroup,
		flagGroup{"What the role may do", []string{"permissions", "allow-skip-existing", "registry-cache", "allow-scan"}},
		flagGroup{"Repository settings (not given: left as they are)", []string{"scan-on-push", "immutable-tags", "mutable-tag", "cache-tag", "keep-images", "expire-untagged-days", "archive-after-days", "kms-key"}},
		flagGroup{"Registry settings (shared by every repository of the account and region)", []string{"scanning", "scan-frequency", "signing-profile"}},
		flagGroup{"Where the variables go", []string{"output", "env-file", "circleci-project", "circleci-context", "circleci-org", "circleci-context-id", "create-context", "context-project", "circleci-host"}},
		flagGroup{"Keys and confirmation", []string{"rotate-key", "yes", "dry-run", "wait"}},
	)
	return cmd
}

func (o *setupOptions) validate(getenv func(string) string) error {
	switch o.output {
	case "text", "json", "dotenv":
	default:
		return clierror.Usagef("--output %q is invalid: use text, json or dotenv", o.output)
	}
	o.useRepositories()
	if err := o.Spec().ValidateNames(flagLabels); err != nil {
		return err
	}
	grants, err := o.grants.options()
	if err != nil {
		return err
	}
	o.Grants = grants
	if o.Auth, o.OIDC, err = o.auth.options(true); err != nil {
		return err
	}
	o.Trust = o.auth.selectors
	if o.Keyless() && o.RotateKey {
		return clierror.Usagef("--rotate-key is for --auth keys: a keyless setup has no access key")
	}
	if o.PropagationWait <= 0 {
		return clierror.Usagef("--wait %s is invalid: give a positive duration such as 2m or 90s", o.PropagationWait)
	}
	if o.CircleCI, err = o.ci.target(getenv); err != nil {
		return err
	}
	if t := o.CircleCI; t != nil && t.CreateContext {
		if o.Keyless() {
			t.RestrictToIDs = o.OIDC.ProjectIDs
		} else if len(t.RestrictTo) == 0 {
			return clierror.Usagef("--create-context needs --context-project SLUG (repeatable): the project whose jobs may use the context; " +
				"setup restricts the context it creates to it, so that the key does not reach every project of the organization " +
				"(for a context open to all, create it in CircleCI yourself and leave out --create-context)")
		}
	}
	if o.CircleCI != nil && o.envFile != "" {
		return clierror.Usagef("--env-file cannot be used with a CircleCI target: the secret goes to CircleCI and nowhere else")
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

// words says setup's ways forward with its flags.
func (o setupOptions) words(n hint.Next) string {
	switch n {
	case hint.RotateKey:
		if o.yes && o.RotateKey {
			// The same command: with --yes it also retires the key
			// replaced, so IAM ends with one.
			return "for a new key: " + o.rotateCommand() + " --yes"
		}
		return "for a new key: " + o.rotateCommand()
	case hint.WaitLonger:
		return "or allow longer with --wait"
	case hint.Confirm:
		return "to confirm, rerun: " + o.commandLine("--yes")
	case hint.RecreateRepository:
		key := o.Settings.KMSKey
		if key == "" {
			key = "KEY"
		}
		return fmt.Sprintf("e.g. containerise setup --repository NEW-NAME --kms-key %s, or containerise teardown%s (which deletes the images) then this setup again",
			key, resourceArgs(o.Options))
	}
	return defaultWords(n)
}

// rotateCommand is the setup command line that rotates this user's key,
// naming every non-default resource so that copying it acts on the same set.
func (o setupOptions) rotateCommand() string { return o.commandLine("--rotate-key") }

// commandLine is a setup command line with first, then every non-default
// name, grant and authentication, so that copying it acts on the same set.
func (o setupOptions) commandLine(first string) string {
	return "containerise setup " + first + resourceArgs(o.Options) + grantArgs(o.Grants) + registryArgs(o.Options) + authArgs(o.Auth, o.OIDC) + o.auth.others.args() + o.ci.args()
}

// resourceArgs names the non-default resources, so that a suggested
// command acts on the same set.
func resourceArgs(o provision.Options) string {
	args := repositoryArgs(o)
	for _, f := range []struct{ flag, value, def string }{
		{"--policy", o.Policy, names.Policy},
		{"--user", o.User, names.User},
		{"--role", o.Role, names.Role},
	} {
		if f.value != "" && f.value != f.def {
			args += " " + f.flag + " " + f.value
		}
	}
	return args
}

func runSetup(ctx context.Context, g *Globals, p *provision.Provisioner, o setupOptions) error {
	g.Words = o.words
	res, runErr := prepareAndApply(ctx, g, p, o)
	if res == nil {
		return o.explainDrop(runErr)
	}
	g.Debugf("setup: %s", summariseStatuses(res))
	for _, w := range res.Warnings {
		g.Logf("warning: %s", w)
	}
	// A rotation that will not be confirmed keeps the old key; say so in
	// the output itself.
	retire := false
	if res.Rotation != nil {
		switch {
		case o.yes:
			retire = true
		case !prompt.IsTerminal(g.In):
			g.Logf("old access key %s kept: no terminal to confirm its deletion (pass --yes to delete it)", res.Rotation.OldKeyID)
		case o.output != "text" && o.envFile == "" && res.SecretIn == "":
			g.Logf("old access key %s kept: with --output %s the new key is printed only when setup ends; delete the old key once CI uses the new one: %s",
				res.Rotation.OldKeyID, o.output, res.Rotation.DeleteCommand)
		default:
			retire = true // after asking, below
		}
		if !retire {
			if err := p.Finish(ctx, res, false); err != nil {
				return err
			}
		}
	}

	// Deliver the new secret, checking every write, before anything it
	// replaces is deleted.
	if err := deliver(g, o, res); err != nil {
		return deliveryFailed(ctx, g, p, o, res, err)
	}
	if res.Rotation != nil {
		if !o.yes {
			if o.output != "text" && o.envFile != "" {
				g.Logf("the new key is in %s", o.envFile)
			}
			question := fmt.Sprintf("Update %s and %s in CircleCI with the new key first. Delete old access key %s of user %s now?",
				names.EnvAccessKeyID, names.EnvSecretAccessKey, res.Rotation.OldKeyID, res.Rotation.User)
			if res.SecretIn != "" {
				question = fmt.Sprintf("The new key is in %s. Delete old access key %s of user %s now?", res.SecretIn, res.Rotation.OldKeyID, res.Rotation.User)
			}
			ok, err := prompt.Confirm(g.In, g.Err, question)
			if err != nil {
				err = fmt.Errorf("confirming the deletion of old access key %s: %w (the new key works; delete the old one later: %s)",
					res.Rotation.OldKeyID, err, res.Rotation.DeleteCommand)
				return errors.Join(runErr, err)
			}
			retire = ok
		}
		old, cmd := res.Rotation.OldKeyID, res.Rotation.DeleteCommand
		if err := p.Finish(ctx, res, retire); err != nil {
			return errors.Join(runErr, err)
		}
		switch {
		case retire && o.output == "text":
			fmt.Fprintf(g.Out, "\nOld access key %s deleted.\n", old)
		case retire:
			g.Logf("deleted old access key %s", old)
		case o.output == "text":
			fmt.Fprintf(g.Out, "\nOld access key %s kept; once CI uses the new key, delete it: %s\n", old, cmd)
		default:
			g.Logf("old access key %s kept; once CI uses the new key, delete it: %s", old, cmd)
		}
	}
	return runErr
}

// prepareAndApply runs setup: planned, then applied unless it is a dry
// run. What the plan asks confirmation for (taking away what someone may
// still use) runs with --yes, or after a yes at a terminal; otherwise it is
// left, and the result says so.
func prepareAndApply(ctx context.Context, g *Globals, p *provision.Provisioner, o setupOptions) (*provision.Result, error) {
	opts := o.Options
	opts.Confirmed = o.yes
	opts.Confirm = func(qs []string) (bool, error) {
		if !prompt.IsTerminal(g.In) {
			g.Logf("not done without confirmation (no terminal to ask at; pass --yes): %s", strings.Join(qs, "; "))
			return false, nil
		}
		for _, q := range qs {
			fmt.Fprintf(g.Err, "setup will: %s\n", q)
		}
		return prompt.Confirm(g.In, g.Err, "Go ahead?")
	}
	return p.Run(ctx, opts)
}

// deliver writes the result: the --env-file (when there is a new secret),
// then stdout, each checked, flushed and synced, so that a key is known to
// be delivered before an old one is deleted.
func deliver(g *Globals, o setupOptions, res *provision.Result) error {
	if (res.SecretAvailable || res.Keyless) && o.envFile != "" {
		if err := writeEnvFile(o.envFile, res.Variables); err != nil {
			return err
		}
		if res.Keyless {
			g.Logf("wrote the CircleCI variables to %s (mode 0600)", o.envFile)
		} else {
			g.Logf("wrote the CircleCI variables, secret included, to %s (mode 0600)", o.envFile)
		}
	} else if o.envFile != "" {
		g.Logf("%s not written: no new secret to store (the access key already existed; --rotate-key makes a new one)", o.envFile)
	}
	var out bytes.Buffer
	switch o.output {
	case "json":
		if err := renderSetupJSON(&out, res, g.Words); err != nil {
			return err
		}
	case "dotenv":
		if err := renderSetupDotenv(&out, res); err != nil {
			return err
		}
		if !res.SecretAvailable && !res.DryRun && !res.Keyless {
			g.Logf("note: %s is not printed: the access key already existed, and AWS shows a secret only when its key is created", names.EnvSecretAccessKey)
		}
		for _, r := range res.Resources {
			if r.Kind == resource.KindSettings {
				g.Logf("repository settings %s: %s", r.Label(), settingsLine(r))
			}
		}
		for _, n := range res.Notes {
			g.Logf("note: %s", noteText(n, g.Words))
		}
	default:
		renderSetupText(&out, res, g.Words)
	}
	if err := writeChecked(g.Out, out.Bytes()); err != nil {
		return fmt.Errorf("writing the result to stdout: %w", err)
	}
	return nil
}

// writeChecked writes b whole and, when w is a file, syncs it: a full disk
// or a closed pipe is an error, not a lost secret.
func writeChecked(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return err
	}
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	// Terminals, pipes and character devices cannot be synced; regular
	// files can, and must be.
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// deliveryFailed handles a new secret that could not be written: a
// rotation's new key is deleted again (nobody has its secret) and the old
// key stays; a first key stays, and the user is told how to replace it.
func deliveryFailed(ctx context.Context, g *Globals, p *provision.Provisioner, o setupOptions, res *provision.Result, werr error) error {
	if !res.SecretAvailable {
		return werr
	}
	newKey := res.Variables.AccessKeyID
	if res.Rotation != nil {
		old := res.Rotation.OldKeyID
		if err := p.Discard(ctx, res); err != nil {
			return fmt.Errorf("%w; the new access key %s could not be deleted either (%s): delete it with 'aws iam delete-access-key --user-name %s --access-key-id %s'; the old key %s still works",
				werr, newKey, hint.Message(err, g.Words), res.Rotation.User, newKey, old)
		}
		return fmt.Errorf("%w; the new access key %s was deleted again, so nothing changed for CI: the old key %s still works (rerun the rotation once the output can be written)",
			werr, newKey, old)
	}
	return fmt.Errorf("%w; access key %s was created but its secret may not have reached you: %s", werr, newKey, o.words(hint.RotateKey))
}

// writeEnvFile writes NAME=value lines to path with mode 0600, synced and
// replacing it atomically, so that no reader sees a partial file and a
// written file is on disk before anything it replaces is deleted.
func writeEnvFile(path string, v provision.Variables) error {
	fail := func(err error) error { return fmt.Errorf("writing --env-file %s: %w", path, err) }
	tmp, err := os.CreateTemp(filepath.Dir(path), ".containerise-env-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fail(err)
	}
	var b bytes.Buffer
	if err := writeDotenv(&b, v.Pairs()); err != nil {
		tmp.Close()
		return fail(err)
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	return nil
}

var statusText = map[resource.Status]string{
	resource.Created:     "created",
	resource.Updated:     "updated",
	resource.Unchanged:   "unchanged",
	resource.Exists:      "exists (created meanwhile by another setup)",
	resource.Unmanaged:   "unmanaged",
	resource.WouldCreate: "would create",
	resource.WouldUpdate: "would update",
	resource.Failed:      "failed",
	resource.Skipped:     "skipped",
	resource.WouldDelete: "would delete",
	resource.Deleted:     "deleted",
	resource.Kept:        "kept",
}

// noteText words a note, with its way forward.
func noteText(n resource.Note, words hint.Words) string {
	if n.Next == hint.None || words == nil {
		return n.Text
	}
	next := words(n.Next)
	if next == "" {
		return n.Text
	}
	return n.Text + ". " + strings.ToUpper(next[:1]) + next[1:]
}

// renderSetupText writes the readable summary.
func renderSetupText(w io.Writer, res *provision.Result, words hint.Words) {
	if res.DryRun {
		fmt.Fprintf(w, "Dry run: nothing was changed. Plan for account %s, region %s:\n\n", res.Account, res.Region)
	} else {
		fmt.Fprintf(w, "Account %s, region %s:\n\n", res.Account, res.Region)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range res.Resources {
		name := r.Label()
		if name == "" {
			name = "-"
		}
		line := fmt.Sprintf("  %s\t%s\t%s", r.Kind, name, statusText[r.Status])
		if len(r.Changes) > 0 {
			label := ""
			if r.Status == resource.Unmanaged {
				label = "differs: "
			}
			line += "\t" + label + strings.Join(r.Changes, "; ")
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	if o := circleCIOf(res); o != "" && res.CircleCIHolds != "" {
		fmt.Fprintf(w, "\nCircleCI environment variables, in %s (setup did not finish; read back):\n", o)
	} else if o != "" {
		fmt.Fprintf(w, "\nCircleCI environment variables, kept in %s:\n", o)
	} else {
		fmt.Fprintf(w, "\n%s:\n", variablesHeading(res))
	}
	v := res.Variables
	if res.Keyless {
		for _, kv := range v.Pairs() {
			fmt.Fprintf(w, "  %s=%s\n", kv[0], kv[1])
		}
		fmt.Fprintln(w, "\n"+keylessNote(res))
		renderSetupFooter(w, res, words)
		return
	}
	key := v.AccessKeyID
	switch {
	case key == "" && res.CircleCIHolds != "":
		key = "(unknown: see the note below)"
	case key == "":
		key = "(the new key's ID)"
	}
	fmt.Fprintf(w, "  %s=%s\n", names.EnvAccessKeyID, key)
	switch {
	case res.CircleCIHolds != "":
		fmt.Fprintf(w, "  %s: not shown; see the note below for whose secret CircleCI holds\n", names.EnvSecretAccessKey)
	case res.SecretIn != "":
		fmt.Fprintf(w, "  %s: written to %s, not shown\n", names.EnvSecretAccessKey, res.SecretIn)
	case res.SecretAvailable:
		fmt.Fprintf(w, "  %s=%s\n", names.EnvSecretAccessKey, v.SecretAccessKey)
	case res.DryRun:
		fmt.Fprintf(w, "  %s=(shown when the key is created)\n", names.EnvSecretAccessKey)
	default:
		fmt.Fprintf(w, "  %s: not shown: AWS shows a secret only when its key is created\n", names.EnvSecretAccessKey)
	}
	for _, kv := range v.Pairs() {
		if kv[0] != names.EnvAccessKeyID && kv[0] != names.EnvSecretAccessKey {
			fmt.Fprintf(w, "  %s=%s\n", kv[0], kv[1])
		}
	}
	if res.SecretAvailable {
		fmt.Fprintln(w, "\nThe secret access key is shown this once: store it in CircleCI now.")
	}
	renderSetupFooter(w, res, words)
}

// renderSetupFooter says what unmanaged means, when it matters, and the
// notes.
func renderSetupFooter(w io.Writer, res *provision.Result, words hint.Words) {
	for _, r := range res.Resources {
		if r.Status == resource.Unmanaged {
			fmt.Fprintln(w, "\nUnmanaged resources have no managed-by=containerise tag (made by hand): setup uses them as they are and never changes them.")
			break
		}
	}
	if len(res.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range res.Notes {
			fmt.Fprintf(w, "Note: %s\n", noteText(n, words))
		}
	}
}

// circleCIOf names the CircleCI target of a setup that writes there.
func circleCIOf(res *provision.Result) string {
	for _, r := range res.Resources {
		if r.Kind == resource.KindCircleCI {
			return "CircleCI " + r.Name
		}
	}
	return ""
}

// setupJSON is the --output json document. Its keys are stable.
type setupJSON struct {
	Account         string            `json:"account"`
	Region          string            `json:"region"`
	DryRun          bool              `json:"dry_run"`
	Auth            string            `json:"auth"`
	Resources       []setupResource   `json:"resources"`
	Variables       map[string]string `json:"variables"`
	SecretAvailable bool              `json:"secret_available"`
	// SecretWrittenTo names where the new secret went instead (CircleCI).
	SecretWrittenTo string `json:"secret_written_to,omitempty"`
	// CircleCIHolds says, after a failure while writing the key, what
	// CircleCI holds of it (read back).
	CircleCIHolds string   `json:"circleci_holds,omitempty"`
	Notes         []string `json:"notes"`
	Warnings      []string `json:"warnings"`
}

type setupResource struct {
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	Region  string   `json:"region,omitempty"` // a repository's, and its settings'
	ARN     string   `json:"arn"`
	Status  string   `json:"status"`
	Managed bool     `json:"managed"`
	Changes []string `json:"changes"`
	// Settings: only the settings' resource has them.
	Settings *settingsJSON `json:"settings,omitempty"`
}

func renderSetupJSON(w io.Writer, res *provision.Result, words hint.Words) error {
	doc := setupJSON{
		Account: res.Account, Region: res.Region, DryRun: res.DryRun, SecretAvailable: res.SecretAvailable, Auth: string(provision.AuthKeys),
		SecretWrittenTo: res.SecretIn, CircleCIHolds: res.CircleCIHolds, Resources: []setupResource{}, Variables: map[string]string{},
		Notes: []string{}, Warnings: append([]string{}, res.Warnings...),
	}
	if res.Keyless {
		doc.Auth = string(provision.AuthOIDC)
	}
	for _, n := range res.Notes {
		doc.Notes = append(doc.Notes, noteText(n, words))
	}
	for _, r := range res.Resources {
		doc.Resources = append(doc.Resources, setupResource{
			Kind: r.Kind, Name: r.Name, Region: r.Region, ARN: r.ARN, Status: string(r.Status), Managed: r.Managed,
			Changes: append([]string{}, r.Changes...), Settings: settingsDoc(r.Settings),
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

// renderSetupDotenv writes NAME="value" lines only; unknown values (a dry
// run's key) and an unavailable secret are left out.
func renderSetupDotenv(w io.Writer, res *provision.Result) error {
	var known [][2]string
	for _, kv := range res.Variables.Pairs() {
		if kv[1] != "" {
			known = append(known, kv)
		}
	}
	return writeDotenv(w, known)
}

// writeDotenv writes the pairs in order, one NAME="value" line each, quoted
// and escaped by godotenv so that dotenv readers (and a shell's source) read
// back the same values.
func writeDotenv(w io.Writer, pairs [][2]string) error {
	for _, kv := range pairs {
		line, err := godotenv.Marshal(map[string]string{kv[0]: kv[1]})
		if err != nil {
			return fmt.Errorf("writing %s: %w", kv[0], err)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// summariseStatuses counts resources by status, for --verbose: "5 created".
func summariseStatuses(res *provision.Result) string {
	counts := map[resource.Status]int{}
	var order []resource.Status
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

// setupLong is the help text of setup.
const setupLong = `Create, or correct, the ECR repository, a policy that may only push to it,
and the role CI assumes: keyless with --auth oidc (the role trusts the OIDC
tokens of the CI jobs you name), or the blog's way, with an IAM user and its
access key. It reads first and changes only what differs, so a rerun is safe;
then it prints the CI's variables, or writes them into CircleCI.` + guideLine + "setup.md"

// setupExample is setup's examples.
const setupExample = `  # Keyless: GitHub Actions jobs of one repository, on main, assume the role with their OIDC token
  containerise setup --auth oidc --github-repo acme/app --branch main

  # ... or the jobs of one CircleCI project
  containerise setup --auth oidc --circleci-org-id <org UUID> --circleci-project-id <project UUID>

  # The blog's way: a CI user and its key; see the plan first
  containerise setup --dry-run

  # One role pushing to two repositories, the variables in a file only you can read
  containerise setup --repository my-app --repository my-api --env-file ci.env

  # Write the variables into a CircleCI project (token in CIRCLECI_TOKEN)
  containerise setup --circleci-project gh/acme/app

  # Replace the CI user's key, unattended
  containerise setup --circleci-project gh/acme/app --rotate-key --yes

  # Scan every push, immutable tags except latest, keep the 50 newest images
  containerise setup --scan-on-push --immutable-tags --mutable-tag latest --keep-images 50`
