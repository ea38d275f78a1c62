package teardown

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
	"github.com/containerise/containerise/provision"
)

const (
	orgID     = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	projectID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

// setUp runs containerise setup on the fake, keyless or with keys.
func (w *world) setUp(keyless, confirmed bool) {
	w.t.Helper()
	o := provision.Options{Repository: DefaultRepository, Policy: DefaultPolicy, User: DefaultUser, Role: DefaultRole, Region: w.a.Region(), Confirmed: confirmed}
	if keyless {
		o.Auth = provision.AuthOIDC
		o.OIDC = circleci.Selector{OrgID: orgID, ProjectIDs: []string{projectID}}
	}
	p := &provision.Provisioner{IAM: w.a.IAM(), ECR: w.a.ECR(), STS: w.a.STS()}
	if _, err := p.Run(context.Background(), o); err != nil {
		w.t.Fatalf("setup: %v", err)
	}
}

func (w *world) providerARN() string {
	return policies.OIDCProviderARN(w.a.Partition(), w.a.ID(), circleci.Issuer(orgID))
}

func (w *world) providerExists() bool {
	w.t.Helper()
	_, err := w.a.IAM().GetOpenIDConnectProvider(context.Background(), &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(w.providerARN())})
	if err != nil && !awsx.IsNotFound(err) {
		w.t.Fatal(err)
	}
	return err == nil
}

func kinds(p *Plan) string {
	var k []string
	for _, r := range p.Resources {
		k = append(k, r.Kind+"="+string(r.Outcome))
	}
	return strings.Join(k, " ")
}

func TestTeardownAfterKeylessSetup(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	w.a.ResetCalls()
	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if got := kinds(p); got != "repository=deleted policy=deleted oidc-provider=deleted role=deleted user=gone" {
		t.Errorf("outcomes: %s", got)
	}
	w.wantExists(allGone)
	if w.providerExists() {
		t.Error("the provider is still there")
	}
	// The provider goes once the role that trusts it is gone, and is tagged
	// first, so that a rerun finds it without the role.
	before(t, w.a.Ops(), "iam.TagOpenIDConnectProvider", "iam.DeleteRole")
	before(t, w.a.Ops(), "iam.DeleteRole", "iam.DeleteOpenIDConnectProvider")

	w.a.ResetCalls()
	again, err := w.run(defaults)
	if err != nil || len(w.a.Mutating()) != 0 {
		t.Fatalf("rerun: %v, calls %v", err, w.a.Mutating())
	}
	if got := kinds(again); got != "repository=gone policy=gone role=gone user=gone" {
		t.Errorf("rerun outcomes: %s", got)
	}
}

// Another role still trusting the provider keeps it, which is no failure.
func TestTeardownKeepsAProviderAnotherRoleTrusts(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	trust := circleci.Trust(w.providerARN(), circleci.Selector{OrgID: orgID, AnyProject: true})
	must(w.a.IAM().CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String("other-app"), AssumeRolePolicyDocument: aws.String(trust.JSON())}))
	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	prov := reportOf(p, resource.KindOIDCProvider)
	if prov == nil || prov.State != resource.StateInUse || prov.Outcome != OutcomeLeftAlone || !strings.Contains(prov.Blocker, "role other-app") {
		t.Fatalf("provider %+v", prov)
	}
	if !w.providerExists() || slices.Contains(w.a.Mutating(), "iam.DeleteOpenIDConnectProvider") {
		t.Error("the provider was deleted")
	}
	w.wantExists(allGone)
	// Nothing is left to do: a rerun's plan is settled.
	again, err := w.td.Plan(context.Background(), defaults)
	if err != nil || !again.Settled() {
		t.Errorf("rerun plan: %v, not settled", err)
	}
}

// After switching back to keys the role trusts the user; its tag still
// names the organisation, so teardown finds the provider.
func TestTeardownFindsTheProviderAfterASwitchBackToKeys(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	w.setUp(false, false)
	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if got := kinds(p); got != "repository=deleted policy=deleted oidc-provider=deleted role=deleted user=deleted" {
		t.Errorf("outcomes: %s", got)
	}
	if w.providerExists() {
		t.Error("the provider is still there")
	}
}

func TestTeardownLeavesAHandMadeProvider(t *testing.T) {
	w := newWorld(t)
	must(w.a.IAM().CreateOpenIDConnectProvider(context.Background(), &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(circleci.Issuer(orgID)), ClientIDList: []string{orgID}}))
	w.setUp(true, false)
	p, err := w.run(defaults)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if prov := reportOf(p, resource.KindOIDCProvider); prov == nil || prov.State != StateUnmanaged || prov.Outcome != OutcomeLeftAlone {
		t.Fatalf("provider %+v", prov)
	}
	if !w.providerExists() {
		t.Error("the hand-made provider was deleted")
	}
}

// A failed provider deletion, after the role went: the rerun finds the
// provider through the tag teardown gave it, and finishes.
func TestTeardownProviderFailureThenRerun(t *testing.T) {
	w := newWorld(t)
	w.setUp(true, false)
	w.a.FailOperation("iam.DeleteOpenIDConnectProvider", awsfake.ServerError())
	p, err := w.run(defaults)
	if err == nil {
		t.Fatal("teardown succeeded despite the failure")
	}
	if o := outcomes(p); o[resource.KindOIDCProvider] != OutcomeFailed || o[KindRole] != OutcomeDeleted {
		t.Errorf("outcomes: %s", kinds(p))
	}
	w.a.ClearFaults()
	again, err := w.run(defaults)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if got := kinds(again); got != "repository=gone policy=gone oidc-provider=deleted role=gone user=gone" {
		t.Errorf("rerun outcomes: %s", got)
	}
	w.wantExists(allGone)
	if w.providerExists() {
		t.Error("the provider is still there")
	}
}
