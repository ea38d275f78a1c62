package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/prompt"
	"github.com/containerise/containerise/teardown"
)

type teardownOptions struct {
	teardown.Options
	yes    bool
	dryRun bool
	output string
}

// newTeardown builds the teardown over AWS clients; tests pass fakes.
type newTeardown func(ctx context.Context) (*teardown.Teardown, error)

func newTeardownCmd(g *Globals) *cobra.Command {
	return newTeardownCmdWith(g, func(ctx context.Context) (*teardown.Teardown, error) {
		cfg, err := g.AdminAWSConfig(ctx)
		if err != nil {
			return nil, err
		}
		return teardown.New(iam.NewFromConfig(cfg), ecr.NewFromConfig(cfg), sts.NewFromConfig(cfg), g.Err), nil
	})
}

func newTeardownCmdWith(g *Globals, build newTeardown) *cobra.Command {
	o := teardownOptions{}
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove the repository, policy, role and user setup created",
		Long: `Remove what setup created: the ECR repository (with its images), the
policy, the role and the CI user (with its access keys), in the order AWS
requires.

Only resources tagged managed-by=containerise are deleted. A resource
without the tag (made by hand, as in the blog) is listed and left alone
unless --include-unmanaged is given. A role in an instance profile, or a
policy attached to something else, is not forced: teardown says what holds
it and how to remove that, and still deletes the rest.

Teardown first reads everything and prints the plan, including how many
images the repository holds, then asks for confirmation at a terminal.
Without a terminal (CI, a pipe) it deletes nothing unless --yes is given.
What is already gone is reported as gone, so a teardown that was cut off
finishes when run again.

Exit status: 0 when every resource is deleted, gone or left alone; 1 when
one failed (each is named, with what to do); 2 for invalid input or a
missing --yes without a terminal (nothing deleted).`,
		Example: `  # See what would be deleted, without changing anything
  containerise teardown --dry-run

  # Delete, after confirming at the terminal
  containerise teardown

  # Delete from a script, with setup's non-default names
  containerise teardown --yes --repository my-app --user ci-bot --role ci-push --policy ci-push-ecr

  # Also delete resources made by hand (no managed-by=containerise tag)
  containerise teardown --include-unmanaged`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			td, err := build(cmd.Context())
			if err != nil {
				return err
			}
			return runTeardown(cmd.Context(), g, td, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Repository, "repository", teardown.DefaultRepository, "ECR repository to delete, with its images")
	f.StringVar(&o.Policy, "policy", teardown.DefaultPolicy, "IAM managed policy to delete")
	f.StringVar(&o.User, "user", teardown.DefaultUser, "IAM user to delete, with its access keys")
	f.StringVar(&o.Role, "role", teardown.DefaultRole, "IAM role to delete")
	f.BoolVarP(&o.yes, "yes", "y", false, "delete without asking (required without a terminal)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&o.IncludeUnmanaged, "include-unmanaged", false, "also delete resources without the managed-by=containerise tag")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func (o *teardownOptions) validate() error {
	if o.output != "text" && o.output != "json" {
		return clierror.Usagef("--output %q is invalid: use text or json", o.output)
	}
	return names.Set{Repository: o.Repository, Policy: o.Policy, User: o.User, Role: o.Role}.Validate()
}

// teardownReport is the --output json document.
type teardownReport struct {
	DryRun bool `json:"dry_run"`
	*teardown.Plan
}

func runTeardown(ctx context.Context, g *Globals, td *teardown.Teardown, o teardownOptions) error {
	plan, err := td.Plan(ctx, o.Options)
	if err != nil {
		return err
	}
	text := o.output == "text"
	if text {
		plan.WriteText(g.Out)
	}
	if o.dryRun {
		if text {
			fmt.Fprintf(g.Out, "Dry run: nothing was deleted (a teardown would make %d deleting calls).\n", plan.Steps())
			return nil
		}
		return writeJSON(g, teardownReport{DryRun: true, Plan: plan})
	}

	if text && plan.Settled() {
		// The plan already said everything is gone or left alone.
		fmt.Fprintln(g.Out, "Nothing to delete.")
		return nil
	}

	if plan.Deletes() && !o.yes {
		if !prompt.IsTerminal(g.In) {
			return clierror.Usagef("teardown needs confirmation, and stdin is not a terminal: nothing was deleted (pass --yes to delete what the plan lists, or --dry-run to only see it)")
		}
		ok, err := prompt.Confirm(g.In, g.Err, "Delete what the plan above lists?")
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("teardown not confirmed: nothing was deleted (answer y to delete, or pass --yes)")
		}
	}

	applyErr := td.Apply(ctx, plan)
	if text {
		plan.WriteResults(g.Out)
	} else if err := writeJSON(g, teardownReport{Plan: plan}); err != nil {
		return err
	}
	if applyErr != nil {
		failed := 0
		for _, r := range plan.Resources {
			if r.Outcome == teardown.OutcomeFailed {
				failed++
			}
		}
		return &teardownIncomplete{failed: failed, total: len(plan.Resources), err: applyErr}
	}
	return nil
}

func writeJSON(g *Globals, v any) error {
	enc := json.NewEncoder(g.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}

// teardownIncomplete summarises failed resources in one line (each was
// already reported with its reason) and still unwraps to their errors.
type teardownIncomplete struct {
	failed, total int
	err           error
}

func (e *teardownIncomplete) Error() string {
	return fmt.Sprintf("teardown incomplete: %d of %d resources failed; do what each failure above says, then rerun teardown", e.failed, e.total)
}

func (e *teardownIncomplete) Unwrap() error { return e.err }
