package commands

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/policies"
	"github.com/containerise/containerise/provision"
)

type policiesOptions struct {
	account, user, role, policy, document string
	repositories                          []string
	grants                                grantFlags
	registry                              registryFlags
	auth                                  authFlags
}

func newPoliciesCmd(g *Globals) *cobra.Command {
	o := policiesOptions{}
	cmd := &cobra.Command{
		Use:   "policies",
		Short: "Print the permissions and trust policy documents setup manages",
		Long: `Print the IAM documents setup would write, from the same code and flags:
the role's permissions policy (for every --repository) and its trust
policy. It calls no AWS API and
needs no credentials; --document prints one of them as bare JSON, for a
review or for 'aws iam create-policy'.` + guideLine + "policies.md",
		Example: `  containerise policies --account 123456789012
  containerise policies --account 123456789012 --document trust --user ci-bot
  containerise policies --account 123456789012 --document trust --auth oidc \
    --circleci-org-id <org UUID> --circleci-project-id <project UUID> --branch main
  containerise policies --account 123456789012 --document trust --auth oidc --github-repo acme/app --branch main
  containerise policies --account 123456789012 --region eu-west-1 --document permissions > policy.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPolicies(cmd, g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.account, "account", "", "AWS account ID (12 digits) the documents refer to (required)")
	f.StringArrayVar(&o.repositories, "repository", []string{names.Repository}, "ECR repository the role may push to; repeat it for several")
	f.StringVar(&o.user, "user", names.User, "IAM user allowed to assume the role")
	f.StringVar(&o.role, "role", names.Role, "IAM role name (for the heading)")
	f.StringVar(&o.policy, "policy", names.Policy, "IAM policy name (for the heading)")
	f.StringVar(&o.document, "document", "all", "which document: permissions, trust or all")
	o.grants.add(f)
	o.registry.addForPolicies(f)
	o.auth.add(f, true)
	return cmd
}

// runPolicies turns the flags into a spec and prints the Stack's documents
// for it: what setup writes.
func runPolicies(cmd *cobra.Command, g *Globals, o policiesOptions) error {
	if err := validate.AccountID("--account", o.account); err != nil {
		return err
	}
	spec := resource.Spec{Policy: o.policy, User: o.user, Role: o.role}
	for _, r := range o.repositories {
		spec.Repositories = append(spec.Repositories, resource.RepositoryAt{Name: r})
	}
	if err := spec.ValidateNames(flagLabels); err != nil {
		return err
	}
	var err error
	if spec.Grants, err = o.grants.options(); err != nil {
		return err
	}
	auth, circle, err := o.auth.options(true)
	if err != nil {
		return err
	}
	spec.Trust = provision.Options{Auth: auth, OIDC: circle, Trust: o.auth.selectors}.Spec().Trust
	if cmd.Flags().Changed("scan-on-push") {
		// As for setup: also the repository's setting, which the
		// policy's grant follows.
		v := o.grants.scanOnPush
		spec.Settings.ScanOnPush = &v
	}
	if spec.Scanning, _, spec.SigningProfile, err = o.registry.spec(cmd); err != nil {
		return err
	}
	switch o.document {
	case "permissions", "trust", "all":
	default:
		return clierror.Usagef("--document %q is invalid: use permissions, trust or all", o.document)
	}
	// The region setup would use, so the ARNs match what setup makes.
	// Loading the SDK configuration reads the environment and the
	// shared config files only: no credentials, no AWS call.
	cfg, err := g.AWSConfig(cmd.Context())
	if err != nil {
		return err
	}
	spec.Region = cfg.Region
	docs := resource.NewStack(spec, resource.ForSetup, nil).Documents(awsx.Identity{Account: o.account, Partition: policies.PartitionOf(spec.Region)})
	switch o.document {
	case "permissions":
		fmt.Fprintln(g.Out, docs.Permissions.JSON())
	case "trust":
		fmt.Fprintln(g.Out, docs.Trust.JSON())
	default:
		fmt.Fprintf(g.Out, "# Permissions policy %s (attached to role %s)\n%s\n\n# Trust policy of role %s\n%s\n",
			o.policy, o.role, docs.Permissions.JSON(), o.role, docs.Trust.JSON())
		if v := docs.ScanningPermissions; v != nil {
			fmt.Fprintf(g.Out, "\n# Permissions policy %s while %s scans on push (setup follows the repository when --scan-on-push is not given)\n%s\n",
				o.policy, scanningWhich(o.repositories), v.JSON())
		}
	}
	return nil
}
