package resource

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// policyPrefix starts the policy's description, as in the blog.
const policyPrefix = "Allows Docker images to be built and pushed to the ECR repository "

// Policy is the customer managed policy that lets the role push.
type Policy struct {
	Name string
	// Repository names the repository in the policy's description.
	Repository string
	// Document is the wanted document for the caller's account.
	Document func(awsx.Identity) policies.Document
	// Variant is the document wanted instead when UseVariant, asked once
	// every resource has been observed, says so: a grant that follows what
	// was found (CI may read scan findings while the repository scans).
	// Observe recognises either one from the policy's tags.
	Variant    func(awsx.Identity) policies.Document
	UseVariant func() bool

	// Teardown: the role and user whose attachments teardown undoes itself.
	Role *Role
	User *User
	// Known, when set, is the policy as already read (teardown reads it
	// first for the repositories it grants): Observe does not read it again.
	Known *Granted

	report  Report
	want    policies.Document
	variant policies.Document
	arn     string

	// Observed.
	policy *iamtypes.Policy
	doc    string // the default version's document, as IAM returns it
	// current: the policy's tags show its default version holds the wanted
	// document (or the variant: proved says which), which was therefore not
	// read (doc is empty).
	current bool
	proved  policies.Document
	// Teardown.
	versions             []string // non-default version IDs
	roles, users, groups []string // entities it is attached to

	// Setup: the step that creates or corrects it, and the version to
	// record in its tags once it is done.
	ready         *Step
	recordVersion string
	// dropped are the repositories the policy grants today and the wanted
	// document does not: CI could no longer push there.
	dropped, added []policies.RepositoryRef
}

// NewPolicy is the managed policy called name.
func NewPolicy(name, repository string, document func(awsx.Identity) policies.Document) *Policy {
	return &Policy{Name: name, Repository: repository, Document: document, report: Report{Kind: KindPolicy, Name: name}}
}

// Reports is the policy's one report.
func (p *Policy) Reports() []*Report { return []*Report{&p.report} }

// ARN is the policy's ARN.
func (p *Policy) ARN() string { return p.arn }

func (p *Policy) fail(doing, call string, err error) error {
	return fail(KindPolicy, p.Name, doing, call, err)
}

// Observe reads the policy. For setup it also reads the default version's
// document, unless the policy's tags prove it is the wanted one; for
// teardown, its versions and what it is attached to.
func (p *Policy) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	id, err := env.Identity(ctx)
	if err != nil {
		return err
	}
	p.arn = policies.PolicyARN(id.Partition, id.Account, p.Name)
	if p.Document != nil {
		p.want = p.Document(id)
	}
	if p.Variant != nil {
		p.variant = p.Variant(id)
	}
	pol, err := p.read(ctx, env)
	if pol == nil || err != nil {
		return err
	}
	if purpose == ForTeardown {
		return p.observeAttachments(ctx, env, pol)
	}
	for _, candidate := range []policies.Document{p.want, p.variant} {
		if (candidate.Version != "" || len(candidate.Statement) > 0) && knownCurrent(pol, candidate) {
			p.policy, p.current, p.proved = pol, true, candidate
			return nil
		}
	}
	doc, err := policyDocument(ctx, env, pol)
	if awsx.IsNotFound(err) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return p.fail("reading the document of IAM policy "+p.Name, "iam:GetPolicyVersion", err)
	}
	p.policy, p.doc = pol, doc
	return nil
}

// read reads the policy, unless Known already did: nil when it does not
// exist.
func (p *Policy) read(ctx context.Context, env *Env) (*iamtypes.Policy, error) {
	if p.Known != nil {
		return p.Known.policy, nil
	}
	out, err := env.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(p.arn)})
	if awsx.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, p.fail("reading IAM policy "+p.Name, "iam:GetPolicy", err)
	}
	return out.Policy, nil
}

func (p *Policy) observeAttachments(ctx context.Context, env *Env, pol *iamtypes.Policy) error {
	var versions, roles, users, groups []string
	found, err := readEntity(ctx, true, func(ctx context.Context) error {
		pg := iam.NewListPolicyVersionsPaginator(env.IAM, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(p.arn)})
		err := awsx.Pages(ctx, pg.HasMorePages, pg.NextPage, func(page *iam.ListPolicyVersionsOutput) {
			for _, v := range page.Versions {
				if !v.IsDefaultVersion {
					versions = append(versions, aws.ToString(v.VersionId))
				}
			}
		})
		return p.fail("listing the versions of IAM policy "+p.Name, "iam:ListPolicyVersions", err)
	}, func(ctx context.Context) error {
		pg := iam.NewListEntitiesForPolicyPaginator(env.IAM, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(p.arn)})
		err := awsx.Pages(ctx, pg.HasMorePages, pg.NextPage, func(page *iam.ListEntitiesForPolicyOutput) {
			for _, r := range page.PolicyRoles {
				roles = append(roles, aws.ToString(r.RoleName))
			}
			for _, u := range page.PolicyUsers {
				users = append(users, aws.ToString(u.UserName))
			}
			for _, gr := range page.PolicyGroups {
				groups = append(groups, aws.ToString(gr.GroupName))
			}
		})
		return p.fail("listing what IAM policy "+p.Name+" is attached to", "iam:ListEntitiesForPolicy", err)
	})
	if found {
		p.policy, p.versions, p.roles, p.users, p.groups = pol, versions, roles, users, groups
	}
	return err
}

// policyDocument returns the default version's document (URL-encoded, as
// IAM returns it).
func policyDocument(ctx context.Context, env *Env, pol *iamtypes.Policy) (string, error) {
	out, err := env.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: pol.Arn, VersionId: pol.DefaultVersionId})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.PolicyVersion.Document), nil
}

// Reconcile creates the policy, or gives it a new default version when its
// document drifted, and records in its tags which version holds the wanted
// document.
func (p *Policy) Reconcile(pl *Plan) {
	rep := &p.report
	if p.UseVariant != nil && p.UseVariant() {
		p.want = p.variant
	}
	if p.current && p.proved.Digest() != p.want.Digest() {
		// The tags prove the default version holds the other document:
		// its text is known without reading it.
		p.doc, p.current = p.proved.JSON(), false
	}
	rep.ARN, rep.Managed, rep.Status = p.arn, true, Unchanged
	if p.policy == nil {
		rep.Status = WouldCreate
		p.ready = pl.Add(rep, &Step{Action: "create policy " + p.Name, Call: "iam:CreatePolicy", Do: func(ctx context.Context) error {
			return p.create(ctx, pl)
		}})
		p.addTagStep(pl)
		return
	}
	rep.Managed = managed.IAM(p.policy.Tags)
	same := p.current
	var diffs []string
	if !same {
		same, _ = policies.Equivalent(p.doc, p.want)
		var skip []string
		if rep.Managed { // setup rewrites only its own policy
			skip = p.repositoriesChanged()
		}
		diffs = differences(p.doc, p.want, skip...)
	}
	switch {
	case !rep.Managed:
		rep.Status = Unmanaged
		if !same {
			rep.Changes = diffs
			if len(diffs) == 0 {
				rep.Changes = []string{"same permissions, written differently"}
			} else {
				pl.Warn(fmt.Sprintf("policy %s is not managed by containerise and its document differs from what setup makes: %s; left as is (compare with 'containerise policies')",
					p.Name, strings.Join(diffs, "; ")))
			}
		}
	case !same:
		rep.Status = WouldUpdate
		rep.Changes = append(p.repositoryChanges(), append([]string{"new default version"}, diffs...)...)
		p.ready = pl.Add(rep, &Step{Action: "add a new default version to policy " + p.Name, Call: "iam:CreatePolicyVersion", Do: func(ctx context.Context) error {
			version, err := p.newDefaultVersion(ctx, pl.Env)
			if err != nil {
				return err
			}
			rep.Status, p.recordVersion = Updated, version
			return nil
		}})
		p.addTagStep(pl)
	case !p.current:
		// Right, but its tags do not say so (made by an earlier
		// containerise, a failed TagPolicy, a default version set by hand
		// to an equivalent one): the status stays unchanged.
		p.recordVersion = aws.ToString(p.policy.DefaultVersionId)
		p.addTagStep(pl)
	}
}

// repositoriesChanged are the ARNs of the repositories the document found
// grants and the wanted one does not, or the other way round: their
// grants are said in one line each (repositoryChanges), not one per action.
// It records the dropped ones.
func (p *Policy) repositoriesChanged() []string {
	have, err := policies.Parse(p.doc)
	if err != nil {
		return nil
	}
	p.dropped = policies.Dropped(have, p.want)
	p.added = policies.Dropped(p.want, have)
	var out []string
	for _, r := range append(append([]policies.RepositoryRef(nil), p.dropped...), p.added...) {
		out = append(out, r.ARN())
	}
	return out
}

// repositoryChanges say which repositories the new document stops or
// starts granting push to.
func (p *Policy) repositoryChanges() []string {
	var out []string
	for _, r := range p.dropped {
		out = append(out, "stops granting push to "+r.String())
	}
	for _, r := range p.added {
		out = append(out, "starts granting push to "+r.String())
	}
	return out
}

// Dropped are the repositories the policy grants today that setup's
// document no longer grants, as Reconcile found them: a change to what CI
// may do, which the caller has confirmed before applying.
func (p *Policy) Dropped() []policies.RepositoryRef { return p.dropped }

// Ready is the step after which the policy exists as wanted (nil: it
// already does, or setup leaves it alone).
func (p *Policy) Ready() *Step { return p.ready }

// addTagStep records the default version in the policy's tags once the
// policy step is done; nothing waits for it.
func (p *Policy) addTagStep(pl *Plan) {
	var needs []*Step
	if p.ready != nil {
		needs = []*Step{p.ready}
	}
	pl.Add(&p.report, &Step{Action: "tag policy " + p.Name + " with its default version", Call: "iam:TagPolicy", Needs: needs,
		Do: func(ctx context.Context) error {
			p.tagVersion(ctx, pl.Env)
			return nil
		}})
}

func (p *Policy) create(ctx context.Context, pl *Plan) error {
	rep, env := &p.report, pl.Env
	env.logf("creating IAM policy %s", p.Name)
	out, err := env.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName: aws.String(p.Name), PolicyDocument: aws.String(p.want.JSON()),
		Description: aws.String(policyPrefix + p.Repository),
		// A new policy's first version is always v1.
		Tags: append(managed.IAMTags(), versionTags("v1", p.want)...),
	})
	if awsx.IsAlreadyExists(err) {
		return p.createdMeanwhile(ctx, pl)
	}
	if err != nil {
		return p.fail("creating policy "+p.Name, "iam:CreatePolicy", err)
	}
	rep.Status, rep.ARN = Created, aws.ToString(out.Policy.Arn)
	return nil
}

// createdMeanwhile handles a policy another setup created between the read
// and the write: use it, repairing its document if it is ours.
func (p *Policy) createdMeanwhile(ctx context.Context, pl *Plan) error {
	rep, env := &p.report, pl.Env
	out, err := env.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(p.arn)})
	if err != nil {
		return p.fail("reading policy "+p.Name+" (it was created meanwhile)", "iam:GetPolicy", err)
	}
	have, err := policyDocument(ctx, env, out.Policy)
	if err != nil {
		return p.fail("reading the document of policy "+p.Name, "iam:GetPolicyVersion", err)
	}
	rep.Status, rep.Managed = Exists, managed.IAM(out.Policy.Tags)
	same, _ := policies.Equivalent(have, p.want)
	switch {
	case same && rep.Managed && !knownCurrent(out.Policy, p.want):
		p.recordVersion = aws.ToString(out.Policy.DefaultVersionId)
	case same:
	case !rep.Managed:
		rep.Changes = differences(have, p.want)
		pl.Warn(fmt.Sprintf("policy %s was created meanwhile, not by containerise, and differs from what setup makes; left as is", p.Name))
	default:
		version, err := p.newDefaultVersion(ctx, env)
		if err != nil {
			return err
		}
		rep.Status, rep.Changes = Updated, []string{"new default version"}
		p.recordVersion = version
	}
	if !rep.Managed {
		rep.Status = Unmanaged
	}
	return nil
}

// newDefaultVersion makes the wanted document the policy's default version,
// first deleting the oldest non-default version when the policy already has
// the five AWS allows. It returns the new default version's ID.
func (p *Policy) newDefaultVersion(ctx context.Context, env *Env) (string, error) {
	var version string
	// CreatePolicyVersion is not idempotent: after an uncertain failure,
	// look whether the version was made before trying again, so that a
	// lost answer leaves no stray version.
	create := func() error {
		return env.once(ctx, func(noRetry func(*iam.Options)) error {
			out, err := env.IAM.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{
				PolicyArn: aws.String(p.arn), PolicyDocument: aws.String(p.want.JSON()), SetAsDefault: true,
			}, noRetry)
			if err == nil && out.PolicyVersion != nil {
				version = aws.ToString(out.PolicyVersion.VersionId)
			}
			return err
		}, func(error) (bool, error) {
			pol, err := env.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(p.arn)})
			if err != nil {
				return false, nil
			}
			have, err := policyDocument(ctx, env, pol.Policy)
			if same, _ := policies.Equivalent(have, p.want); err == nil && same {
				version = aws.ToString(pol.Policy.DefaultVersionId)
				return true, nil // made despite the error
			}
			return false, nil
		})
	}
	env.logf("updating IAM policy %s: its document drifted; adding a new default version", p.Name)
	err := create()
	var limit *iamtypes.LimitExceededException
	if !errors.As(err, &limit) {
		return version, p.fail("updating policy "+p.Name+" (new default version)", "iam:CreatePolicyVersion", err)
	}
	out, lerr := env.IAM.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(p.arn)})
	if lerr != nil {
		return "", p.fail("listing the versions of policy "+p.Name, "iam:ListPolicyVersions", lerr)
	}
	oldest := oldestNonDefault(out.Versions)
	if oldest == "" {
		return "", p.fail("updating policy "+p.Name, "iam:CreatePolicyVersion", err)
	}
	env.logf("policy %s has the %d versions AWS allows: deleting the oldest non-default one, %s", p.Name, len(out.Versions), oldest)
	_, derr := env.IAM.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(p.arn), VersionId: aws.String(oldest)})
	if derr != nil && !awsx.IsNotFound(derr) {
		return "", p.fail(fmt.Sprintf("deleting version %s of policy %s", oldest, p.Name), "iam:DeletePolicyVersion", derr)
	}
	err = create()
	return version, p.fail("updating policy "+p.Name+" (new default version)", "iam:CreatePolicyVersion", err)
}

// oldestNonDefault returns the ID of the oldest non-default version.
func oldestNonDefault(versions []iamtypes.PolicyVersion) string {
	var cands []iamtypes.PolicyVersion
	for _, v := range versions {
		if !v.IsDefaultVersion {
			cands = append(cands, v)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := aws.ToTime(cands[i].CreateDate), aws.ToTime(cands[j].CreateDate)
		if !a.Equal(b) {
			return a.Before(b)
		}
		return versionNumber(cands[i].VersionId) < versionNumber(cands[j].VersionId)
	})
	if len(cands) == 0 {
		return ""
	}
	return aws.ToString(cands[0].VersionId)
}

func versionNumber(id *string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(aws.ToString(id), "v"))
	return n
}

// The policy's version tags say which version setup last made the default
// and the digest (policies.Document.Digest) of the document it wrote there.
// IAM policy versions are immutable and their IDs never reused, so while
// the policy's default version is still the tagged one and the tagged
// digest is the wanted document's, the default document is known to be the
// wanted one: a rerun need not read it (iam:GetPolicyVersion, a third level
// of calls). Anything else (no tags, a hand-made policy, another default
// version set by hand, a changed wanted document, tags edited) falls back
// to reading and comparing the document.
//
// Both tags are written by one call (CreatePolicy's Tags, or TagPolicy), so
// they always name a version together with that version's own digest. Only
// someone writing a matching pair by hand, naming a version that holds
// another document, could mislead setup; that is no accident.
//
// IAM tag rules: keys of at most 128 characters, values of at most 256, of
// letters, digits, white space and _.:/=+-@. "v12" and 64 hex digits fit.
const (
	TagDefaultVersion = "containerise/default-version"
	TagDocumentSHA256 = "containerise/document-sha256"
)

// versionTags are the tags recording that version holds doc.
func versionTags(version string, doc policies.Document) []iamtypes.Tag {
	return []iamtypes.Tag{
		{Key: aws.String(TagDefaultVersion), Value: aws.String(version)},
		{Key: aws.String(TagDocumentSHA256), Value: aws.String(doc.Digest())},
	}
}

// knownCurrent reports whether the tags of pol (as GetPolicy returns it)
// show that its default version holds want. Only managed policies count:
// setup never tags a policy it does not manage.
func knownCurrent(pol *iamtypes.Policy, want policies.Document) bool {
	def := aws.ToString(pol.DefaultVersionId)
	if def == "" || !managed.IAM(pol.Tags) {
		return false
	}
	var version, digest string
	for _, t := range pol.Tags {
		switch aws.ToString(t.Key) {
		case TagDefaultVersion:
			version = aws.ToString(t.Value)
		case TagDocumentSHA256:
			digest = aws.ToString(t.Value)
		}
	}
	return version == def && digest == want.Digest()
}

// tagVersion tags the policy: its version holds the wanted document. The
// tags only spare a later rerun a read, so failing to write them fails
// nothing: the next setup reads the document, finds it right, and tags it.
func (p *Policy) tagVersion(ctx context.Context, env *Env) {
	version := p.recordVersion
	if version == "" {
		return
	}
	env.logf("tagging IAM policy %s: its default version %s holds setup's document", p.Name, version)
	_, err := env.IAM.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(p.arn), Tags: versionTags(version, p.want)})
	if err != nil {
		env.logf("warning: could not tag IAM policy %s with its default version (%s); the policy is right, and the next setup reads its document instead, then tags it",
			p.Name, awsx.Describe(err))
	}
}

// Delete removes the policy: first its non-default versions (IAM refuses
// DeletePolicy while it has any), then the policy, once the role and the
// user no longer hold it. Its attachment to the role is setup's own, and
// one to the user goes with the user; any other attachment was made by
// someone else and blocks the policy.
func (p *Policy) Delete(pl *Plan) {
	// The blockers and needs depend on what the role and user decide.
	pl.Later(func() { p.delete(pl) })
}

func (p *Policy) delete(pl *Plan) {
	rep := &p.report
	if p.policy != nil {
		rep.ARN = p.arn
	}
	isManaged := p.policy != nil && managed.IAM(p.policy.Tags)
	if !pl.decide(rep, p.policy != nil, isManaged, p.blocker()) {
		return
	}
	var needs []*Step
	chain := pl.chain(rep)
	for _, name := range p.roles {
		if p.Role == nil || name != p.Role.Name {
			continue
		}
		if d := p.Role.detachment(p.arn); d != nil {
			needs = append(needs, d) // the role's own steps detach it
			continue
		}
		chain(&Step{Action: fmt.Sprintf("detach policy %s from role %s", p.Name, name), Call: "iam:DetachRolePolicy",
			Do: func(ctx context.Context) error {
				_, err := pl.Env.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(p.arn)})
				return err
			}})
	}
	for _, name := range p.users {
		if p.User != nil && name == p.User.Name {
			if d := p.User.detachment(p.arn); d != nil {
				needs = append(needs, d)
			}
		}
	}
	for _, v := range p.versions {
		chain(&Step{Action: fmt.Sprintf("delete version %s of policy %s", v, p.Name), Call: "iam:DeletePolicyVersion",
			Do: func(ctx context.Context) error {
				_, err := pl.Env.IAM.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(p.arn), VersionId: aws.String(v)})
				return err
			}})
	}
	action := "delete policy " + p.Name
	if len(needs) > 0 {
		var after []string
		for _, n := range needs {
			after = append(after, n.Report.Kind+" "+n.Report.Name)
		}
		action += " (after " + strings.Join(after, " and ") + " let go of it)"
	}
	chain(&Step{Action: action, Call: "iam:DeletePolicy", Needs: needs, Do: func(ctx context.Context) error {
		return pl.Env.untilFree(ctx, action, func() error {
			_, err := pl.Env.IAM.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(p.arn)})
			return err
		})
	}})
}

// blocker names the attachments teardown must not undo: every one but the
// role's and, when the user is being deleted, the user's.
func (p *Policy) blocker() string {
	var who, cmds []string
	for _, r := range p.roles {
		if p.Role == nil || r != p.Role.Name {
			who = append(who, "role "+r)
			cmds = append(cmds, fmt.Sprintf("`aws iam detach-role-policy --role-name %s --policy-arn %s`", r, p.arn))
		}
	}
	userDeleted := p.User != nil && p.User.report.State == StateDelete
	for _, u := range p.users {
		if p.User == nil || u != p.User.Name || !userDeleted {
			who = append(who, "user "+u)
			cmds = append(cmds, fmt.Sprintf("`aws iam detach-user-policy --user-name %s --policy-arn %s`", u, p.arn))
		}
	}
	for _, g := range p.groups {
		who = append(who, "group "+g)
		cmds = append(cmds, fmt.Sprintf("`aws iam detach-group-policy --group-name %s --policy-arn %s`", g, p.arn))
	}
	if len(who) == 0 {
		return ""
	}
	return fmt.Sprintf("policy %s is also attached to %s, which containerise did not attach: if nothing there needs it, detach it with %s, then rerun teardown",
		p.Name, strings.Join(who, ", "), strings.Join(cmds, " and "))
}
