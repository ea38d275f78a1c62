package resource

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// OIDCProvider is the IAM OpenID Connect provider of one CI token issuer
// (CircleCI: https://oidc.circleci.com/org/<org>), with the audiences of
// the selectors that trust it as its client IDs. An account has one
// provider per issuer URL, so every role trusting that issuer shares it.
//
// IAM no longer uses thumbprints for an issuer it can verify itself, so
// setup gives none. A provider for the URL that containerise did not create
// is used as it is; a client ID is added to it only after confirmation.
type OIDCProvider struct {
	// URL is the issuer's URL; Selectors are the jobs trusted through it
	// (setup), none in a teardown.
	URL       string
	Selectors []ci.Selector
	// Role is the role teardown deletes, which does not keep the provider.
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

// NewOIDCProvider is the provider of the issuer at url, trusted by the
// selectors.
func NewOIDCProvider(url string, selectors ...ci.Selector) *OIDCProvider {
	return &OIDCProvider{URL: url, Selectors: selectors, report: Report{Kind: KindOIDCProvider, Name: strings.TrimPrefix(url, "https://")}}
}

// Reports is the provider's one report.
func (o *OIDCProvider) Reports() []*Report { return []*Report{&o.report} }

// ARN is the provider's ARN.
func (o *OIDCProvider) ARN() string { return o.arn }

func (o *OIDCProvider) fail(doing, call string, err error) error {
	return fail(KindOIDCProvider, o.report.Name, doing, call, err)
}

// audiences are the client IDs the selectors need, each once, in order.
func (o *OIDCProvider) audiences() []string {
	var out []string
	for _, s := range o.Selectors {
		if a := s.Audience(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// Observe reads the provider; a teardown also lists the roles, to find
// those other than Role whose trust still names it.
func (o *OIDCProvider) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	id, err := env.Identity(ctx)
	if err != nil {
		return err
	}
	o.arn = policies.OIDCProviderARN(id.Partition, id.Account, o.URL)
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

// rolesNaming lists the roles other than o.Role whose trust policy lets
// the provider's tokens in, read in IAM's full grammar; one that cannot be
// read counts when it names the provider. o.Role's own trust is judged
// once its deletion is decided (see Delete).
func (o *OIDCProvider) rolesNaming(ctx context.Context, env *Env) ([]string, error) {
	var names []string
	p := iam.NewListRolesPaginator(env.IAM, &iam.ListRolesInput{})
	err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListRolesOutput) {
		for _, r := range page.Roles {
			name := aws.ToString(r.RoleName)
			if o.Role != nil && name == o.Role.Name {
				continue
			}
			if trusts, _ := policies.TrustsProvider(aws.ToString(r.AssumeRolePolicyDocument), o.arn); trusts {
				names = append(names, name)
			}
		}
	})
	sort.Strings(names)
	return names, err
}

// Describe names the provider and the jobs it lets in, for people: "OIDC
// provider oidc.circleci.com/org/<org> for project <id> on branch main".
func (o *OIDCProvider) Describe() string {
	var jobs []string
	for _, s := range o.Selectors {
		jobs = append(jobs, s.Describe())
	}
	return "OIDC provider " + o.report.Name + " for " + strings.Join(jobs, " and ")
}

// missing are the client IDs the provider lacks.
func (o *OIDCProvider) missing() []string {
	var out []string
	for _, a := range o.audiences() {
		if !slices.Contains(o.clientIDs, a) {
			out = append(out, a)
		}
	}
	return out
}

// AddClientIDCommands are the aws CLI commands adding the client IDs the
// provider lacks.
func (o *OIDCProvider) AddClientIDCommands(ids []string) string {
	var cmds []string
	for _, id := range ids {
		cmds = append(cmds, fmt.Sprintf("aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn %s --client-id %s", o.arn, id))
	}
	return strings.Join(cmds, "; ")
}

// Reconcile creates the provider, or gives it the client IDs it lacks: at
// once when containerise made it, after confirmation when someone else did.
func (o *OIDCProvider) Reconcile(p *Plan) {
	rep := &o.report
	rep.ARN, rep.Managed, rep.Status = o.arn, true, Unchanged
	switch missing := strings.Join(o.missing(), ", "); {
	case !o.found:
		rep.Status = WouldCreate
		rep.Changes = []string{"client ID (audience) " + strings.Join(o.audiences(), ", ")}
		o.ready = p.Add(rep, &Step{Action: "create OIDC provider " + rep.Name, Call: "iam:CreateOpenIDConnectProvider",
			Do: func(ctx context.Context) error { return o.create(ctx, p) }})
	case !o.managed:
		rep.Status, rep.Managed = Unmanaged, false
		if missing == "" {
			return
		}
		rep.Changes = []string{"lacks client ID (audience) " + missing + ", so STS refuses its jobs' tokens"}
		ids := o.missing()
		p.Add(rep, &Step{Action: "add client ID " + missing + " to OIDC provider " + rep.Name, Call: "iam:AddClientIDToOpenIDConnectProvider",
			Confirm: fmt.Sprintf("add client ID (audience) %s to OIDC provider %s, which containerise did not create (it keeps its other client IDs)", missing, rep.Name),
			Declined: func() {
				p.Note(Note{Text: fmt.Sprintf("OIDC provider %s was not changed: it lacks client ID %s, so STS refuses the jobs' tokens until it is added (%s)",
					rep.Name, missing, o.AddClientIDCommands(ids)), Next: hint.Confirm})
			},
			Do: func(ctx context.Context) error {
				if err := o.addClientIDs(ctx, p.Env, ids); err != nil {
					return err
				}
				rep.Changes = []string{"client ID (audience) " + missing + " added, as confirmed"}
				return nil
			}})
	case missing != "":
		rep.Status, rep.Changes = WouldUpdate, []string{"client ID (audience) " + missing + " added"}
		ids := o.missing()
		p.Add(rep, &Step{Action: "add client ID " + missing + " to OIDC provider " + rep.Name, Call: "iam:AddClientIDToOpenIDConnectProvider",
			Do: func(ctx context.Context) error {
				if err := o.addClientIDs(ctx, p.Env, ids); err != nil {
					return err
				}
				rep.Status = Updated
				return nil
			}})
	}
}

func (o *OIDCProvider) create(ctx context.Context, p *Plan) error {
	rep, env := &o.report, p.Env
	ids := o.audiences()
	env.logf("creating IAM OIDC provider %s (client ID %s)", rep.Name, strings.Join(ids, ", "))
	out, err := env.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(o.URL), ClientIDList: ids, Tags: managed.IAMTags(),
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
// between the read and the write: ours gets the client IDs it lacks; one
// made by someone else is left as it is, with a warning when it lacks one.
func (o *OIDCProvider) createdMeanwhile(ctx context.Context, p *Plan) error {
	rep, env := &o.report, p.Env
	out, err := env.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(o.arn)})
	if err != nil {
		return o.fail("reading IAM OIDC provider "+rep.Name+" (it was created meanwhile)", "iam:GetOpenIDConnectProvider", err)
	}
	o.found, o.managed, o.clientIDs = true, managed.IAM(out.Tags), out.ClientIDList
	rep.Status, rep.Managed, rep.Changes = Exists, o.managed, nil
	ids := o.missing()
	switch {
	case len(ids) == 0:
	case o.managed:
		if err := o.addClientIDs(ctx, env, ids); err != nil {
			return err
		}
		rep.Changes = []string{"client ID (audience) " + strings.Join(ids, ", ") + " added"}
	default:
		p.Warn(fmt.Sprintf("OIDC provider %s was created meanwhile, not by containerise, and lacks client ID %s: STS refuses the jobs' tokens until it is added (%s)",
			rep.Name, strings.Join(ids, ", "), o.AddClientIDCommands(ids)))
	}
	if !o.managed {
		rep.Status = Unmanaged
	}
	return nil
}

func (o *OIDCProvider) addClientIDs(ctx context.Context, env *Env, ids []string) error {
	for _, id := range ids {
		env.logf("adding client ID %s to IAM OIDC provider %s", id, o.report.Name)
		_, err := env.IAM.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{
			OpenIDConnectProviderArn: aws.String(o.arn), ClientID: aws.String(id),
		})
		if err != nil {
			return o.fail(fmt.Sprintf("adding client ID %s to IAM OIDC provider %s", id, o.report.Name), "iam:AddClientIDToOpenIDConnectProvider", err)
		}
	}
	return nil
}

// Delete removes the provider once no role that stays trusts it. Another
// role trusting it keeps it. The role teardown deletes keeps it too when
// its trust names it and it stays: left alone, blocked, or its deletion
// failed; so the provider's deletion then waits for the role's, and is
// decided by how that turned out. Before the role goes, the provider is
// tagged with the role's name, so that a teardown cut off between the two
// still finds it when run again (see FoundProviders). A provider found only
// through the role's tag (the role trusts a user again) goes first, as
// before: a rerun finds it through the role.
func (o *OIDCProvider) Delete(p *Plan) {
	rep := &o.report
	rep.ARN = o.arn
	if !p.decide(rep, o.found, o.managed, "") {
		return
	}
	role := o.Role
	ours := role != nil && role.readAs != nil
	if len(o.keptBy) > 0 {
		rep.State = StateInUse
		noun := "role " + o.keptBy[0] + "'s trust policy names"
		if len(o.keptBy) > 1 {
			noun = "roles " + strings.Join(o.keptBy, ", ") + " have trust policies naming"
		}
		rep.Blocker = fmt.Sprintf("%s it: kept for them (delete it with `aws iam delete-open-id-connect-provider --open-id-connect-provider-arn %s` once nothing uses it)",
			noun, o.arn)
		if ours {
			// A teardown once they are gone finds it through the tag.
			p.Later(func() { o.release(p) })
		}
		return
	}
	if !ours || !o.roleTrusts() {
		step := p.Add(rep, o.deleteStep(p, nil))
		if ours {
			role.deleteAfter = append(role.deleteAfter, step)
		}
		return
	}
	p.Later(func() {
		o.release(p)
		o.afterRole(p)
	})
}

// release tags the provider with the role's name just before the role is
// deleted, so that a later teardown of that role still finds it: when the
// provider's own deletion fails or is cut off, or when other roles keep it
// now and are gone by then.
func (o *OIDCProvider) release(p *Plan) {
	role := o.Role
	if role.report.State != StateDelete || role.deleteStep == nil {
		return
	}
	tag := &Step{Action: fmt.Sprintf("tag OIDC provider %s as released by role %s, so that a later teardown finds it", o.report.Name, role.Name),
		Call: "iam:TagOpenIDConnectProvider",
		Do: func(ctx context.Context) error {
			_, err := p.Env.IAM.TagOpenIDConnectProvider(ctx, &iam.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(o.arn),
				Tags: []iamtypes.Tag{{Key: aws.String(releasedByKey(role.Name)), Value: aws.String(role.ARN())}}})
			return err
		}}
	p.Add(&role.report, tag)
	role.deleteStep.Needs = append(role.deleteStep.Needs, tag)
	// Listed before the deletion it comes before.
	steps := role.report.Steps
	for i, s := range steps {
		if s == role.deleteStep {
			copy(steps[i+1:], steps[i:len(steps)-1])
			steps[i] = tag
			break
		}
	}
}

// roleTrusts reports whether the role teardown deletes trusts the provider.
func (o *OIDCProvider) roleTrusts() bool {
	trusts, _ := policies.TrustsProvider(aws.ToString(o.Role.readAs.AssumeRolePolicyDocument), o.arn)
	return trusts
}

// afterRole decides, once the role's deletion is planned, whether the
// provider goes after it: kept for a role that stays.
func (o *OIDCProvider) afterRole(p *Plan) {
	rep, role := &o.report, o.Role
	if role.report.State != StateDelete || role.deleteStep == nil {
		why := "which stays"
		switch {
		case role.report.State == StateUnmanaged:
			why = "which is left alone (not managed by containerise)"
		case role.report.State == StateBlocked:
			why = "which is not deleted: " + role.report.Blocker
		}
		rep.State = StateInUse
		rep.Blocker = fmt.Sprintf("role %s still trusts it, %s", role.Name, why)
		return
	}
	p.Add(rep, o.deleteStep(p, &Step{Needs: []*Step{role.deleteStep},
		Skipped: func(_ context.Context, cause *Step) error {
			rep.State = StateInUse
			rep.Blocker = fmt.Sprintf("role %s still trusts it, because %q failed (see %s %s); rerun teardown once that is fixed",
				role.Name, cause.Action, cause.Report.Kind, cause.Report.Name)
			return nil
		}}))
}

// deleteStep is the step deleting the provider, added to base when given.
func (o *OIDCProvider) deleteStep(p *Plan, base *Step) *Step {
	s := base
	if s == nil {
		s = &Step{}
	}
	s.Action, s.Call = "delete OIDC provider "+o.report.Name, "iam:DeleteOpenIDConnectProvider"
	s.Do = func(ctx context.Context) error {
		_, err := p.Env.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(o.arn)})
		return err
	}
	return s
}

// releasedByKey is the key of the tag teardown gives a provider just
// before it deletes a role that trusts it (its value is the role's ARN):
// one per role, as roles share the provider. Role names may hold commas,
// which tag keys may not.
func releasedByKey(role string) string {
	return "containerise/released-by-role/" + strings.ReplaceAll(role, ",", "_")
}

// Federation is the role's trustee in a keyless setup: the jobs of every
// selector, each through its issuer's provider, one trust statement each.
type Federation struct {
	Providers []*OIDCProvider
}

// Federate groups the selectors by issuer: one provider per issuer URL,
// in the order the issuers first appear.
func Federate(selectors []ci.Selector) *Federation {
	f := &Federation{}
	byURL := map[string]*OIDCProvider{}
	for _, s := range selectors {
		if o := byURL[s.Issuer()]; o != nil {
			o.Selectors = append(o.Selectors, s)
			continue
		}
		o := NewOIDCProvider(s.Issuer(), s)
		byURL[s.Issuer()] = o
		f.Providers = append(f.Providers, o)
	}
	return f
}

// TrustPolicy lets in the jobs of every selector through its provider.
func (f *Federation) TrustPolicy() policies.Document {
	return f.trust(func(o *OIDCProvider) string { return o.arn })
}

func (f *Federation) trust(arn func(*OIDCProvider) string) policies.Document {
	var statements []policies.Statement
	for _, o := range f.Providers {
		for _, s := range o.Selectors {
			statements = append(statements, s.Statement(arn(o)))
		}
	}
	return policies.FederatedTrust(statements...)
}

// Ready are the steps that create the providers.
func (f *Federation) Ready() []*Step {
	var out []*Step
	for _, o := range f.Providers {
		if o.ready != nil {
			out = append(out, o.ready)
		}
	}
	return out
}

// Describe names the providers and the jobs they let in.
func (f *Federation) Describe() string {
	var out []string
	for _, o := range f.Providers {
		out = append(out, o.Describe())
	}
	return strings.Join(out, " and ")
}

// roleTags are the tags the selectors want on the role, in a stable order.
func (f *Federation) roleTags() []iamtypes.Tag {
	tags := map[string]string{}
	for _, o := range f.Providers {
		for _, s := range o.Selectors {
			if t, ok := s.(ci.RoleTagger); ok {
				for k, v := range t.RoleTags() {
					tags[k] = v
				}
			}
		}
	}
	var keys []string
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []iamtypes.Tag
	for _, k := range keys {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// RoleIssuers finds, for teardown, the issuers a role trusts or trusted:
// from its tags (kept after setup switched the role back to keys) and the
// OIDC providers its trust policy names.
type RoleIssuers func(id awsx.Identity, tags map[string]string, trust policies.Document) []string

// FoundProviders are the OIDC providers teardown finds through the role,
// one report each, each deleted unless another role still trusts it.
type FoundProviders struct {
	Role  *Role
	Find  RoleIssuers
	found []*OIDCProvider
}

// Reports are the found providers' reports.
func (f *FoundProviders) Reports() []*Report {
	var out []*Report
	for _, o := range f.found {
		out = append(out, o.Reports()...)
	}
	return out
}

// Observe waits for the role to be read, finds the issuers it names and
// reads their providers.
func (f *FoundProviders) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	id, err := env.Identity(ctx)
	if err != nil {
		return err
	}
	role, err := f.Role.observedRole(ctx)
	if err != nil {
		return err
	}
	if role == nil {
		return f.observeReleased(ctx, env, purpose)
	}
	tags := map[string]string{}
	for _, t := range role.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	trust, _ := policies.Parse(aws.ToString(role.AssumeRolePolicyDocument))
	for _, url := range f.Find(id, tags, trust) {
		o := NewOIDCProvider(url)
		o.Role = f.Role
		f.found = append(f.found, o)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, o := range f.found {
		g.Go(func() error { return o.Observe(gctx, env, purpose) })
	}
	return g.Wait()
}

// observeReleased finds, once the role is gone, the providers an earlier
// teardown tagged as released by it but could not delete (it was cut off,
// or the deletion failed), and reads them. Looking is best effort: an admin
// may lack iam:ListOpenIDConnectProviders, and the role is gone either way.
func (f *FoundProviders) observeReleased(ctx context.Context, env *Env, purpose Purpose) error {
	list, err := env.IAM.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		env.logf("warning: could not list the IAM OIDC providers, to find one an earlier teardown of role %s left (%s)", f.Role.Name, awsx.Describe(err))
		return nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, e := range list.OpenIDConnectProviderList {
		g.Go(func() error {
			out, err := env.IAM.GetOpenIDConnectProvider(gctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: e.Arn})
			switch {
			case awsx.IsNotFound(err):
				return nil
			case err != nil:
				return fail(KindOIDCProvider, aws.ToString(e.Arn), "reading IAM OIDC provider "+aws.ToString(e.Arn), "iam:GetOpenIDConnectProvider", err)
			}
			for _, t := range out.Tags {
				if aws.ToString(t.Key) == releasedByKey(f.Role.Name) {
					o := NewOIDCProvider("https://" + strings.TrimPrefix(aws.ToString(out.Url), "https://"))
					o.Role = f.Role
					mu.Lock()
					f.found = append(f.found, o)
					mu.Unlock()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	sort.Slice(f.found, func(i, j int) bool { return f.found[i].URL < f.found[j].URL })
	g, gctx = errgroup.WithContext(ctx)
	for _, o := range f.found {
		g.Go(func() error { return o.Observe(gctx, env, purpose) })
	}
	return g.Wait()
}

// Reconcile does nothing: setup wants providers through a Federation.
func (f *FoundProviders) Reconcile(*Plan) {}

// Delete deletes each found provider no other role trusts.
func (f *FoundProviders) Delete(p *Plan) {
	for _, o := range f.found {
		o.Delete(p)
	}
}
