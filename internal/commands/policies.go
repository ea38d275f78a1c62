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
	auth                                  authFlags
}

func newPoliciesCmd(g *Globals) *cobra.Command {
	o := policiesOptions{}
	cmd := &cobra.Command{
		Use:   "policies",
		Short: "Print the permissions and trust policy documents setup manages",
		Long: `Print the IAM documents setup would create, without calling AWS: the
permissions policy attached to the role (push to the repository, or to
each of several with --repository repeated, plus the reads of the features
asked for, the same flags as setup's) and the role's
trust policy: only the CI user may assume it or, with --auth oidc, only
CircleCI jobs of the named projects (and branches) with their OIDC token,
through the organization's IAM OIDC provider.

Use --document to print one of them as bare JSON, e.g. for a review or for
'aws iam create-policy --policy-document file://...'.

The region in the ARNs is the one setup would use: --region, else
AWS_REGION, AWS_DEFAULT_REGION or the profile's region (AWS_PROFILE or
--profile), else us-east-1. No credentials are needed.`,
		Example: `  containerise policies --account 123456789012
  containerise policies --account 123456789012 --document trust --user ci-bot
  containerise policies --account 123456789012 --document trust --auth oidc \
    --circleci-org-id <org UUID> --circleci-project-id <project UUID> --branch main
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
	spec.Trust = provision.Options{Auth: auth, OIDC: circle}.Spec().Trust
	if cmd.Flags().Changed("scan-on-push") {
		// As for setup: also the repository's setting, which the
		// policy's grant follows.
		v := o.grants.scanOnPush
		spec.Settings.ScanOnPush = &v
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
