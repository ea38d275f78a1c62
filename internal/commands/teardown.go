package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/prompt"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/teardown"
)

type teardownOptions struct {
	teardown.Options
	yes    bool
	dryRun bool
	output string
	ci     circleCIFlags
}

// newTeardown builds the teardown over AWS clients; tests pass fakes.
type newTeardown func(ctx context.Context) (*teardown.Teardown, error)

func newTeardownCmd(g *Globals) *cobra.Command {
	return newTeardownCmdWith(g, func(ctx context.Context) (*teardown.Teardown, error) {
		cfg, err := g.AdminAWSConfig(ctx)
		if err != nil {
			return nil, err
		}
		td := teardown.New(iam.NewFromConfig(cfg), ecr.NewFromConfig(cfg), sts.NewFromConfig(cfg), g.Err)
		td.Region = cfg.Region
		td.ECRIn = func(region string) resource.ECR {
			return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region = region })
		}
		return td, nil
	})
}

func newTeardownCmdWith(g *Globals, build newTeardown) *cobra.Command {
	o := teardownOptions{}
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove the repository, policy, role and user setup created",
		Long: `Remove what setup created (the repository with its images, the policy,
the role, the CI user with its keys, the OIDC provider) in the order AWS
requires, and only what carries the managed-by=containerise tag. It prints
the plan and asks at a terminal; without one it deletes nothing unless --yes
is given. Without --repository it removes the repositories setup's policy
grants, each in its region. A rerun finishes a teardown that was cut off.` + guideLine + "teardown.md",
		Example: `  # See what would be deleted, without changing anything
  containerise teardown --dry-run

  # Delete, after confirming at the terminal
  containerise teardown

  # Delete from a script, with setup's non-default names (the repositories
  # come from the policy; naming them checks the policy grants them)
  containerise teardown --yes --user ci-bot --role ci-push --policy ci-push-ecr
  containerise teardown --yes --repository my-app --repository my-api --user ci-bot --role ci-push --policy ci-push-ecr

  # Also remove the variables setup wrote into a CircleCI project
  containerise teardown --circleci-project gh/acme/app

  # Also delete resources made by hand (no managed-by=containerise tag)
  containerise teardown --include-unmanaged`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			var err error
			if o.CircleCI, err = o.ci.target(g.getenv); err != nil {
				return err
			}
			td, err := build(cmd.Context())
			if err != nil {
				return err
			}
			if o.CircleCI != nil && td.CircleCI == nil {
				if td.CircleCI, err = o.ci.client(g); err != nil {
					return err
				}
			}
			return runTeardown(cmd.Context(), g, td, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Repositories, "repository", nil,
		"ECR repository to delete, with its images; repeat it for several (default: those the policy grants, in their regions, else "+names.Repository+")")
	f.StringVar(&o.Policy, "policy", names.Policy, "IAM managed policy to delete")
	f.StringVar(&o.User, "user", names.User, "IAM user to delete, with its access keys")
	f.StringVar(&o.Role, "role", names.Role, "IAM role to delete")
	f.BoolVarP(&o.yes, "yes", "y", false, "delete without asking (required without a terminal)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&o.IncludeUnmanaged, "include-unmanaged", false, "also delete resources without the managed-by=containerise tag")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	addTeardownCircleCIFlags(f, &o.ci)
	return cmd
}

func (o *teardownOptions) validate() error {
	if o.output != "text" && o.output != "json" {
		return clierror.Usagef("--output %q is invalid: use text or json", o.output)
	}
	spec := resource.Spec{Repository: names.Repository, Policy: o.Policy, User: o.User, Role: o.Role}
	for _, r := range o.Repositories {
		spec.Repositories = append(spec.Repositories, resource.RepositoryAt{Name: r})
	}
	return spec.ValidateNames(flagLabels)
}

func runTeardown(ctx context.Context, g *Globals, td *teardown.Teardown, o teardownOptions) error {
	text := o.output == "text"
	plan, applyErr := td.Run(ctx, o.Options, func(plan *teardown.Plan) (bool, error) {
		if text {
			writePlanText(g.Out, plan)
		}
		if o.dryRun {
			if text {
				fmt.Fprintf(g.Out, "Dry run: nothing was deleted (a teardown would make %d deleting calls).\n", plan.Steps())
				return false, nil
			}
			return false, writeJSON(g, teardownJSON(plan, true))
		}
		if text && plan.Settled() {
			// The plan already said everything is gone or left alone.
			fmt.Fprintln(g.Out, "Nothing to delete.")
			return false, nil
		}
		if plan.Deletes() && !o.yes {
			if !prompt.IsTerminal(g.In) {
				return false, clierror.Usagef("teardown needs confirmation, and stdin is not a terminal: nothing was deleted (pass --yes to delete what the plan lists, or --dry-run to only see it)")
			}
			ok, err := prompt.Confirm(g.In, g.Err, "Delete what the plan above lists?")
			if err != nil {
				return false, err
			}
			if !ok {
				return false, errors.New("teardown not confirmed: nothing was deleted (answer y to delete, or pass --yes)")
			}
		}
		return true, nil
	})
	if plan == nil || !plan.Applied() {
		return explainNotGranted(applyErr)
	}
	if text {
		writeResultsText(g.Out, plan, g.words())
	} else if err := writeJSON(g, teardownJSON(plan, false)); err != nil {
		return err
	}
	if applyErr != nil {
		failed := 0
		for _, r := range plan.Resources {
			if r.Outcome == resource.OutcomeFailed {
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

// unmanagedReason says why a resource is left alone, and how to include it.
const unmanagedReason = "not managed by containerise (no tag managed-by=containerise); --include-unmanaged deletes it"

// reason says why a resource is left alone or blocked, and what to do.
func reason(r *resource.Report) string {
	switch r.State {
	case resource.StateUnmanaged:
		return unmanagedReason
	case resource.StateBlocked, resource.StateInUse:
		return r.Blocker
	}
	return ""
}

// writePlanText writes the plan for people: one line per resource, then its
// steps.
func writePlanText(w io.Writer, p *teardown.Plan) {
	fmt.Fprintf(w, "Teardown plan (account %s; repositories as region/name, IAM resources are global):\n", p.Account)
	for _, r := range p.Resources {
		fmt.Fprintf(w, "  %s %s: %s\n", r.Kind, r.Label(), planText(r))
		for _, s := range r.Steps {
			fmt.Fprintf(w, "      - %s\n", s.Action)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func planText(r *resource.Report) string {
	var text string
	switch r.State {
	case resource.StateGone:
		return "already gone"
	case resource.StateUnmanaged:
		text = "left alone: " + reason(r)
	case resource.StateBlocked:
		text = "blocked: " + reason(r)
	case resource.StateInUse:
		text = "kept: " + reason(r)
	case resource.StateDelete:
		text = "delete"
		if !r.Managed {
			text += " (not managed by containerise; included by --include-unmanaged)"
		}
	}
	if r.Images != nil && r.State != resource.StateDelete {
		text += fmt.Sprintf(" [holds %s]", resource.Images(*r.Images))
	}
	return text
}

// writeResultsText writes one line per resource with what Apply did, after
// a blank line that separates them from the plan.
func writeResultsText(w io.Writer, p *teardown.Plan, words hint.Words) {
	fmt.Fprintf(w, "\nTeardown of account %s:\n", p.Account)
	for _, r := range p.Resources {
		fmt.Fprintf(w, "%s %s: %s\n", r.Kind, r.Label(), resultText(r, words))
	}
}

func resultText(r *resource.Report, words hint.Words) string {
	switch r.Outcome {
	case resource.OutcomeDeleted:
		if r.Images != nil && *r.Images > 0 {
			return "deleted, with its " + resource.Images(*r.Images)
		}
		return "deleted"
	case resource.OutcomeGone:
		return "already gone"
	case resource.OutcomeLeftAlone:
		if r.State == resource.StateInUse {
			return "kept: " + r.Blocker
		}
		return "left alone (not managed by containerise; --include-unmanaged deletes it)"
	case resource.OutcomeFailed:
		// The error names the resource already; the line does too.
		return "failed: " + strings.TrimPrefix(hint.Message(r.Err, words), r.Kind+" "+r.Label()+": ")
	default:
		return "not changed"
	}
}

// teardownReport is the --output json document.
type teardownReport struct {
	DryRun    bool               `json:"dry_run"`
	Account   string             `json:"account"`
	Resources []teardownResource `json:"resources"`
	// Notes say what is left in CircleCI, and why.
	Notes []string `json:"notes,omitempty"`
}

type teardownResource struct {
	Kind    string         `json:"kind"`
	Name    string         `json:"name"`
	Region  string         `json:"region,omitempty"` // a repository's; IAM is global
	ARN     string         `json:"arn,omitempty"`
	Managed *bool          `json:"managed,omitempty"` // absent when the resource does not exist
	Images  *int           `json:"images,omitempty"`
	State   string         `json:"state"`
	Reason  string         `json:"reason,omitempty"`
	Steps   []teardownStep `json:"steps,omitempty"`
	Outcome string         `json:"outcome,omitempty"`
	Error   string         `json:"error,omitempty"`
}

type teardownStep struct {
	Action string `json:"action"`
	Call   string `json:"call"`
}

func teardownJSON(p *teardown.Plan, dryRun bool) teardownReport {
	doc := teardownReport{DryRun: dryRun, Account: p.Account, Resources: []teardownResource{}, Notes: p.Notes}
	for _, r := range p.Resources {
		tr := teardownResource{Kind: r.Kind, Name: r.Name, Region: r.Region, ARN: r.ARN, Images: r.Images, State: string(r.State),
			Reason: reason(r), Outcome: string(r.Outcome)}
		if r.Exists {
			tr.Managed = &r.Managed
		}
		for _, s := range r.Steps {
			tr.Steps = append(tr.Steps, teardownStep{Action: s.Action, Call: s.Call})
		}
		if r.Err != nil {
			tr.Error = hint.Message(r.Err, defaultWords)
		}
		doc.Resources = append(doc.Resources, tr)
	}
	return doc
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
