package resource

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// TagCircleCIOrg is the role tag naming the CircleCI organisation whose OIDC
// provider setup made the role trust. Teardown finds the provider through
// it even after setup switched the role back to the user's keys.
const TagCircleCIOrg = "containerise/circleci-org-id"

// OIDCProvider is the IAM OpenID Connect provider for a CircleCI
// organisation's token issuer, https://oidc.circleci.com/org/<org>, with
// the organisation's ID as its client ID (the tokens' audience). As a
// Trustee it lets the organisation's jobs assume the role with their token,
// under the conditions of policies.CircleCITrust.
//
// IAM no longer uses thumbprints for an issuer it can verify itself, so
// setup gives none. A provider for the URL that containerise did not create
// is used as it is; the client ID is added to it only after confirmation.
type OIDCProvider struct {
	// CircleCI is what the role trusts. For a teardown only OrgID counts,
	// and may be empty: the provider is then found through the role.
	CircleCI policies.CircleCI
	// Role is the role whose trust and tags name the provider (teardown),
	// and which does not keep it.
	Role *Role

	report Report
	arn    string

	// Observed.
	found     bool
	managed   bool
	clientIDs []string
	keptBy    []string // other roles whose trust names it (teardown)

	// Setup.
	ready *Step
}

// NewOIDCProvider is the provider for the organisation of c.
func NewOIDCProvider(c policies.CircleCI) *OIDCProvider {
	o := &OIDCProvider{CircleCI: c, report: Report{Kind: KindOIDCProvider}}
	o.report.Name = issuerName(c.OrgID)
	return o
}

// issuerName is the provider's URL without its scheme, as IAM names it.
func issuerName(org string) string {
	return strings.TrimPrefix(policies.CircleCIIssuer(org), "https://")
}

// Reports is the provider's one report; none in a teardown that found no
// provider to consider.
func (o *OIDCProvider) Reports() []*Report {
	if o.CircleCI.OrgID == "" {
		return nil
	}
	return []*Report{&o.report}
}

// ARN is the provider's ARN.
func (o *OIDCProvider) ARN() string { return o.arn }

func (o *OIDCProvider) fail(doing, call string, err error) error {
	return fail(KindOIDCProvider, o.report.Name, doing, call, err)
}

// Observe reads the provider. A teardown first learns from the role which
// organisation it trusts (or trusted), then also lists the roles, to find
// those whose trust still names the provider.
func (o *OIDCProvider) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	id, err := env.Identity(ctx)
	if err != nil {
		return err
	}
	if purpose == ForTeardown && o.CircleCI.OrgID == "" {
		org, err := o.orgOfRole(ctx, id)
		if err != nil || org == "" {
			return err
		}
		o.CircleCI.OrgID = org
		o.report.Name = issuerName(org)
	}
	o.arn = policies.OIDCProviderARN(id.Partition, id.Account, policies.CircleCIIssuer(o.CircleCI.OrgID))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		out, err := env.IAM.GetOpenIDConnectProvider(gctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(o.arn)})
		switch {
		case awsx.IsNotFound(err):
			return nil
		case err != nil:
			return o.fail("reading IAM OIDC provider "+o.report.Name, "iam:GetOpenIDConnectProvider", err)
		}
		o.found, o.managed, o.clientIDs = true, managed.IAM(out.Tags), out.ClientIDList
		return nil
	})
	if purpose == ForTeardown {
		g.Go(func() error {
			var err error
			o.keptBy, err = o.rolesNaming(gctx, env)
			return o.fail("listing the IAM roles, to find those trusting OIDC provider "+o.report.Name, "iam:ListRoles", err)
		})
	}
	return g.Wait()
}

// orgOfRole waits for the role to be read, then returns the organisation
// its tag names or, failing that, the CircleCI provider its trust names.
func (o *OIDCProvider) orgOfRole(ctx context.Context, id awsx.Identity) (string, error) {
	if o.Role == nil {
		return "", nil
	}
	role, err := o.Role.observedRole(ctx)
	if err != nil || role == nil {
		return "", err
	}
	for _, t := range role.Tags {
		if aws.ToString(t.Key) == TagCircleCIOrg && aws.ToString(t.Value) != "" {
			return aws.ToString(t.Value), nil
		}
	}
	doc, err := policies.Parse(aws.ToString(role.AssumeRolePolicyDocument))
	if err != nil {
		return "", nil
	}
	prefix := policies.OIDCProviderARN(id.Partition, id.Account, policies.CircleCIIssuer(""))
	for _, p := range doc.FederatedPrincipals() {
		if org, ok := strings.CutPrefix(p, prefix); ok && org != "" && !strings.Contains(org, "/") {
			return org, nil
		}
	}
	return "", nil
}

// rolesNaming lists the roles other than o.Role whose trust policy names
// the provider.
func (o *OIDCProvider) rolesNaming(ctx context.Context, env *Env) ([]string, error) {
	var names []string
	p := iam.NewListRolesPaginator(env.IAM, &iam.ListRolesInput{})
	err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListRolesOutput) {
		for _, r := range page.Roles {
			name := aws.ToString(r.RoleName)
			if o.Role != nil && name == o.Role.Name {
				continue
			}
			doc, err := policies.Parse(aws.ToString(r.AssumeRolePolicyDocument))
			if err != nil {
				continue
			}
			for _, f := range doc.FederatedPrincipals() {
				if f == o.arn {
					names = append(names, name)
					break
				}
			}
		}
	})
	sort.Strings(names)
	return names, err
}

// TrustPolicy is the trust policy of a role the organisation's jobs assume
// with their OIDC token.
func (o *OIDCProvider) TrustPolicy() policies.Document {
	return policies.CircleCITrust(o.arn, o.CircleCI)
}

// Ready is the step after which the provider exists (nil: it does).
func (o *OIDCProvider) Ready() *Step { return o.ready }

// Describe names the provider and the jobs it lets in, for people: "OIDC
// provider oidc.circleci.com/org/<org> for project <id> on branch main".
func (o *OIDCProvider) Describe() string {
	c := o.CircleCI
	s := "OIDC provider " + o.report.Name + " for "
	switch {
	case c.AnyProject:
		s += "any project"
	case len(c.ProjectIDs) == 1:
		s += "project " + c.ProjectIDs[0]
	default:
		s += "projects " + strings.Join(c.ProjectIDs, ", ")
	}
	switch len(c.Branches) {
	case 0:
	case 1:
		s += " on branch " + c.Branches[0]
	default:
		s += " on branches " + strings.Join(c.Branches, ", ")
	}
	return s
}

// roleTags are the tags of a role trusting the provider.
func (o *OIDCProvider) roleTags() []iamtypes.Tag {
	return []iamtypes.Tag{{Key: aws.String(TagCircleCIOrg), Value: aws.String(o.CircleCI.OrgID)}}
}

func (o *OIDCProvider) hasClientID() bool {
	for _, id := range o.clientIDs {
		if id == o.CircleCI.OrgID {
			return true
		}
	}
	return false
}

// AddClientIDCommand is the aws CLI command adding the organisation's ID to
// the provider's client IDs.
func (o *OIDCProvider) AddClientIDCommand() string {
	return fmt.Sprintf("aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn %s --client-id %s", o.arn, o.CircleCI.OrgID)
}

// Reconcile creates the provider, or gives it the organisation's ID as a
// client ID when it lacks it: at once when containerise made it, after
// confirmation when someone else did.
func (o *OIDCProvider) Reconcile(p *Plan) {
	rep := &o.report
	rep.ARN, rep.Managed, rep.Status = o.arn, true, Unchanged
	org := o.CircleCI.OrgID
	switch {
	case !o.found:
		rep.Status = WouldCreate
		rep.Changes = []string{"client ID (audience) " + org}
		o.ready = p.Add(rep, &Step{Action: "create OIDC provider " + rep.Name, Call: "iam:CreateOpenIDConnectProvider",
			Do: func(ctx context.Context) error { return o.create(ctx, p) }})
	case !o.managed:
		rep.Status, rep.Managed = Unmanaged, false
		if o.hasClientID() {
			return
		}
		rep.Changes = []string{"lacks client ID (audience) " + org + ", so STS refuses the organisation's tokens"}
		p.Add(rep, &Step{Action: "add client ID " + org + " to OIDC provider " + rep.Name, Call: "iam:AddClientIDToOpenIDConnectProvider",
			Confirm: fmt.Sprintf("add client ID (audience) %s to OIDC provider %s, which containerise did not create (it keeps its other client IDs)", org, rep.Name),
			Declined: func() {
				p.Note(Note{Text: fmt.Sprintf("OIDC provider %s was not changed: it lacks client ID %s, so STS refuses CircleCI's tokens until it is added (%s)",
					rep.Name, org, o.AddClientIDCommand()), Next: hint.Confirm})
			},
			Do: func(ctx context.Context) error {
				if err := o.addClientID(ctx, p.Env); err != nil {
					return err
				}
				rep.Changes = []string{"client ID (audience) " + org + " added, as confirmed"}
				return nil
			}})
	case !o.hasClientID():
		rep.Status, rep.Changes = WouldUpdate, []string{"client ID (audience) " + org + " added"}
		p.Add(rep, &Step{Action: "add client ID " + org + " to OIDC provider " + rep.Name, Call: "iam:AddClientIDToOpenIDConnectProvider",
			Do: func(ctx context.Context) error {
				if err := o.addClientID(ctx, p.Env); err != nil {
					return err
				}
				rep.Status = Updated
				return nil
			}})
	}
}

func (o *OIDCProvider) create(ctx context.Context, p *Plan) error {
	rep, env := &o.report, p.Env
	env.logf("creating IAM OIDC provider %s (client ID %s)", rep.Name, o.CircleCI.OrgID)
	out, err := env.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(policies.CircleCIIssuer(o.CircleCI.OrgID)), ClientIDList: []string{o.CircleCI.OrgID}, Tags: managed.IAMTags(),
	})
	if awsx.IsAlreadyExists(err) {
		return o.createdMeanwhile(ctx, p)
	}
	if err != nil {
		return o.fail("creating IAM OIDC provider "+rep.Name, "iam:CreateOpenIDConnectProvider", err)
	}
	rep.Status, rep.ARN = Created, aws.ToString(out.OpenIDConnectProviderArn)
	return nil
}

// createdMeanwhile handles a provider another setup (or a person) created
// between the read and the write: ours gets the client ID it lacks; one
// made by someone else is left as it is, with a warning when it lacks it.
func (o *OIDCProvider) createdMeanwhile(ctx context.Context, p *Plan) error {
	rep, env := &o.report, p.Env
	out, err := env.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(o.arn)})
	if err != nil {
		return o.fail("reading IAM OIDC provider "+rep.Name+" (it was created meanwhile)", "iam:GetOpenIDConnectProvider", err)
	}
	o.found, o.managed, o.clientIDs = true, managed.IAM(out.Tags), out.ClientIDList
	rep.Status, rep.Managed, rep.Changes = Exists, o.managed, nil
	switch {
	case o.hasClientID():
	case o.managed:
		if err := o.addClientID(ctx, env); err != nil {
			return err
		}
		rep.Changes = []string{"client ID (audience) " + o.CircleCI.OrgID + " added"}
	default:
		p.Warn(fmt.Sprintf("OIDC provider %s was created meanwhile, not by containerise, and lacks client ID %s: STS refuses CircleCI's tokens until it is added (%s)",
			rep.Name, o.CircleCI.OrgID, o.AddClientIDCommand()))
	}
	if !o.managed {
		rep.Status = Unmanaged
	}
	return nil
}

func (o *OIDCProvider) addClientID(ctx context.Context, env *Env) error {
	env.logf("adding client ID %s to IAM OIDC provider %s", o.CircleCI.OrgID, o.report.Name)
	_, err := env.IAM.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{
		OpenIDConnectProviderArn: aws.String(o.arn), ClientID: aws.String(o.CircleCI.OrgID),
	})
	return o.fail(fmt.Sprintf("adding client ID %s to IAM OIDC provider %s", o.CircleCI.OrgID, o.report.Name), "iam:AddClientIDToOpenIDConnectProvider", err)
}

// Delete removes the provider, unless another role's trust still names it:
// then it is kept for that role. The role teardown deletes waits for the
// provider's deletion, so that a teardown cut off in between still finds
// the provider through the role when run again.
func (o *OIDCProvider) Delete(p *Plan) {
	if o.CircleCI.OrgID == "" {
		return
	}
	rep := &o.report
	rep.ARN = o.arn
	if !p.decide(rep, o.found, o.managed, "") {
		return
	}
	if len(o.keptBy) > 0 {
		rep.State = StateInUse
		noun := "role " + o.keptBy[0] + "'s trust policy names"
		if len(o.keptBy) > 1 {
			noun = "roles " + strings.Join(o.keptBy, ", ") + " have trust policies naming"
		}
		rep.Blocker = fmt.Sprintf("%s it: kept for them (delete it with `aws iam delete-open-id-connect-provider --open-id-connect-provider-arn %s` once nothing uses it)",
			noun, o.arn)
		return
	}
	step := p.Add(rep, &Step{Action: "delete OIDC provider " + rep.Name, Call: "iam:DeleteOpenIDConnectProvider",
		Do: func(ctx context.Context) error {
			_, err := p.Env.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(o.arn)})
			return err
		}})
	if o.Role != nil {
		o.Role.deleteAfter = append(o.Role.deleteAfter, step)
	}
}
