package teardown

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

// handMade is the fake's IAM with what its CreateRole would not take: a
// role without the managed-by tag (as a person made it), and trust policies
// in shapes IAM accepts but setup never writes, returned URL-encoded, as
// IAM returns them.
type handMade struct {
	resource.IAM
	untagged map[string]bool
	trust    map[string]string
}

func (h *handMade) GetRole(ctx context.Context, in *iam.GetRoleInput, opts ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	out, err := h.IAM.GetRole(ctx, in, opts...)
	if err == nil {
		r := *out.Role
		h.edit(&r)
		out = &iam.GetRoleOutput{Role: &r}
	}
	return out, err
}

func (h *handMade) ListRoles(ctx context.Context, in *iam.ListRolesInput, opts ...func(*iam.Options)) (*iam.ListRolesOutput, error) {
	out, err := h.IAM.ListRoles(ctx, in, opts...)
	if err == nil {
		roles := append([]iamtypes.Role(nil), out.Roles...)
		for i := range roles {
			h.edit(&roles[i])
		}
		copied := *out
		copied.Roles = roles
		out = &copied
	}
	return out, err
}

func (h *handMade) edit(r *iamtypes.Role) {
	name := aws.ToString(r.RoleName)
	if h.untagged[name] {
		var tags []iamtypes.Tag
		for _, t := range r.Tags {
			if !managed.IAM([]iamtypes.Tag{t}) {
				tags = append(tags, t)
			}
		}
		r.Tags = tags
	}
	if doc, ok := h.trust[name]; ok {
		r.AssumeRolePolicyDocument = aws.String(url.QueryEscape(doc))
	}
}

// overIAM makes the world's teardown read IAM through h.
func (w *world) overIAM(h *handMade) {
	h.IAM = w.a.IAM()
	w.td = New(h, w.a.ECR(), w.a.STS(), &w.log)
	w.td.Region = w.a.Region()
	w.td.conflictWait, w.td.conflictPoll = 50*time.Millisecond, time.Millisecond
}

// wantKept checks the provider stayed, reported as kept for role.
func (w *world) wantKept(p *Plan, role string) {
	w.t.Helper()
	prov := reportOf(p, resource.KindOIDCProvider)
	if prov == nil || prov.State != resource.StateInUse || prov.Outcome != resource.OutcomeLeftAlone || !strings.Contains(prov.Blocker, "role "+role) {
		w.t.Errorf("provider %+v, want kept for role %s", prov, role)
	}
	if !w.providerExists() {
		w.t.Error("the provider was deleted under a role that still trusts it")
	}
}

// The role --role names, left alone because a person made it, still
// trusts the provider: the provider stays, and teardown says why.
func TestTeardownKeepsTheProviderForAHandMadeRole(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	w.overIAM(&handMade{untagged: map[string]bool{DefaultRole: true}})
	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if role := reportOf(p, KindRole); role.Outcome != resource.OutcomeLeftAlone {
		t.Errorf("role %s, want left alone", role.Outcome)
	}
	w.wantKept(p, DefaultRole)
	if prov := reportOf(p, resource.KindOIDCProvider); !strings.Contains(prov.Blocker, "still trusts it") || !strings.Contains(prov.Blocker, "not managed by containerise") {
		t.Errorf("the reason does not say why: %s", prov.Blocker)
	}
}

// A role in an instance profile is not deleted: it keeps the provider.
func TestTeardownKeepsTheProviderForABlockedRole(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	if err := w.a.AddInstanceProfile("ec2-app", DefaultRole); err != nil {
		t.Fatal(err)
	}
	p, err := w.run(defaults)
	if err == nil {
		t.Fatal("teardown succeeded with the role blocked")
	}
	w.wantKept(p, DefaultRole)
	if prov := reportOf(p, resource.KindOIDCProvider); !strings.Contains(prov.Blocker, "instance profile ec2-app") {
		t.Errorf("the reason does not name what holds the role: %s", prov.Blocker)
	}
}

// DeleteRole fails: the provider, whose deletion waits for the role's, is
// kept; once the role can go, a rerun deletes both.
func TestTeardownKeepsTheProviderWhenTheRoleDeletionFails(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	w.a.FailOperation("iam.DeleteRole", awsfake.ServerError())
	p, err := w.run(defaults)
	if err == nil {
		t.Fatal("teardown succeeded despite the failure")
	}
	if o := outcomes(p); o[KindRole] != OutcomeFailed {
		t.Errorf("outcomes: %s", kinds(p))
	}
	w.wantKept(p, DefaultRole)
	w.a.ClearFaults()
	again, err := w.run(defaults)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if got := kinds(again); got != "repository=gone policy=gone oidc-provider=deleted role=deleted user=gone" {
		t.Errorf("rerun outcomes: %s", got)
	}
	if w.providerExists() {
		t.Error("the provider is still there")
	}
}

// Another role's trust policy, in each shape IAM accepts, keeps the
// provider; one that cannot be read keeps it when it names the provider.
func TestTeardownReadsOtherRolesTrustInIAMsGrammar(t *testing.T) {
	arnOf := func(w *world) string { return w.providerARN() }
	host := strings.TrimPrefix(circleci.Issuer(orgID), "https://")
	for _, c := range []struct {
		name  string
		doc   func(arn string) string
		keeps bool
	}{
		{"one statement object", func(arn string) string {
			return `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + arn + `"},"Action":"sts:AssumeRoleWithWebIdentity"}}`
		}, true},
		{"principal and action lists", func(arn string) string {
			return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":["` + arn + `"]},"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"]}]}`
		}, true},
		{"boolean and number condition values", func(arn string) string {
			return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + arn + `"},"Action":"sts:AssumeRoleWithWebIdentity",` +
				`"Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThanEquals":{"aws:TokenIssueTime":1700000000}}}]}`
		}, true},
		{"principal * testing the provider's claims", func(string) string {
			return `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + host + `:aud":"` + orgID + `"}}}}`
		}, true},
		{"unreadable, naming the provider", func(arn string) string {
			return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + arn + `"},"Action":{"unexpected":1}}]}`
		}, true},
		{"unreadable, naming another provider", func(string) string {
			return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/example.com"},"Action":{"unexpected":1}}]}`
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.setUp(true, false)
			// A role of another team, made by hand.
			trust := circleci.Trust(w.providerARN(), circleci.Selector{OrgID: orgID, AnyProject: true})
			must(w.a.IAM().CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("other-team-role"), AssumeRolePolicyDocument: aws.String(trust.JSON())}))
			w.overIAM(&handMade{trust: map[string]string{"other-team-role": c.doc(arnOf(w))}})
			p, err := w.run(defaults)
			if err != nil {
				t.Fatalf("teardown: %v", err)
			}
			if !c.keeps {
				if w.providerExists() {
					t.Error("the provider was kept for a role that does not trust it")
				}
				return
			}
			w.wantKept(p, "other-team-role")
		})
	}
}

// Kept for another team's role, the provider is found again by a later
// teardown of the same role once that team's role is gone, and deleted.
func TestTeardownRemovesTheProviderOnceTheOtherRoleIsGone(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	trust := circleci.Trust(w.providerARN(), circleci.Selector{OrgID: orgID, AnyProject: true})
	must(w.a.IAM().CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("other-team-role"), AssumeRolePolicyDocument: aws.String(trust.JSON())}))
	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	w.wantKept(p, "other-team-role")
	if again, err := w.td.Plan(context.Background(), defaults); err != nil || !again.Settled() {
		t.Errorf("rerun plan while the other role stays: %v, settled %v", err, err == nil && again.Settled())
	}

	must(w.a.IAM().DeleteRole(context.Background(), &iam.DeleteRoleInput{RoleName: aws.String("other-team-role")}))
	second, err := w.run(defaults)
	if err != nil {
		t.Fatalf("second teardown: %v", err)
	}
	if got := kinds(second); got != "repository=gone policy=gone oidc-provider=deleted role=gone user=gone" {
		t.Errorf("second teardown: %s", got)
	}
	if w.providerExists() {
		t.Error("the provider is still there")
	}
}
