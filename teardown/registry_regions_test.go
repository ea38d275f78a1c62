package teardown

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
	"github.com/containerise/containerise/provision"
)

const signingProfile = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/team_a"

// setUpWithRegistryRules runs setup for repo in a's region with a registry
// scanning rule and a signing rule.
func setUpWithRegistryRules(t *testing.T, a *awsfake.Account, repo string) {
	t.Helper()
	o := provision.Options{Repository: repo, Policy: DefaultPolicy, User: DefaultUser, Role: DefaultRole, Region: a.Region(),
		Scanning:       &resource.Scanning{Type: ecrtypes.ScanTypeBasic, Frequency: ecrtypes.ScanFrequencyScanOnPush},
		SigningProfile: signingProfile}
	p := &provision.Provisioner{IAM: a.IAM(), ECR: a.ECR(), STS: a.STS()}
	if _, err := p.Run(context.Background(), o); err != nil {
		t.Fatalf("setup of %s in %s: %v", repo, a.Region(), err)
	}
}

// filters are the registry scanning filters of a's region.
func filters(a *awsfake.Account) []string {
	var out []string
	for _, r := range a.RegistryScanning().Rules {
		for _, f := range r.RepositoryFilters {
			out = append(out, aws.ToString(f.Filter))
		}
	}
	return out
}

// Repositories in two regions: each region's registry configurations are
// its own, so teardown takes each repository's rules out of its region's,
// through that region's ECR client, one write per region.
func TestTeardownTakesRegistryRulesOutInEachRepositorysRegion(t *testing.T) {
	w := newWorld(t)
	eu := awsfake.New(awsfake.Config{Region: "eu-west-1"}) // the fake's ECR has no regions: another account stands for eu-west-1's
	setUpWithRegistryRules(t, w.a, "my-app")
	setUpWithRegistryRules(t, eu, "my-api")
	if !slices.Equal(filters(w.a), []string{"my-app"}) || !slices.Equal(filters(eu), []string{"my-api"}) {
		t.Fatalf("after setup: %v, %v", filters(w.a), filters(eu))
	}
	// The role's policy grants both, as a policy covering two regions would.
	doc := policies.Permissions(policies.Target{Partition: "aws", Region: "us-east-1", AccountID: w.a.ID(), Repositories: []string{"my-app"}}, policies.PermissionOptions{})
	doc.Statement = append(doc.Statement, policies.Statement{Sid: "PushInEurope", Effect: "Allow", Action: policies.Values{"ecr:PutImage"},
		Resource: policies.Values{policies.RepositoryARN("aws", "eu-west-1", w.a.ID(), "my-api")}})
	if _, err := w.a.IAM().CreatePolicyVersion(context.Background(), &iam.CreatePolicyVersionInput{PolicyArn: aws.String(w.policyARN()),
		PolicyDocument: aws.String(doc.JSON()), SetAsDefault: true}); err != nil {
		t.Fatal(err)
	}
	w.td.ECRIn = func(region string) resource.ECR {
		if region != "eu-west-1" {
			t.Errorf("ECR client asked for %s", region)
		}
		return eu.ECR()
	}
	w.a.ResetCalls()
	eu.ResetCalls()

	if _, err := w.run(bare); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	for _, a := range []*awsfake.Account{w.a, eu} {
		if f := filters(a); len(f) != 0 {
			t.Errorf("%s: filters left: %v", a.Region(), f)
		}
		if a.SigningRules() != nil {
			t.Errorf("%s: signing rules left", a.Region())
		}
		m := a.Mutating()
		for _, op := range []string{"ecr.PutRegistryScanningConfiguration", "ecr.DeleteSigningConfiguration", "ecr.DeleteRepository"} {
			if n := len(slices.DeleteFunc(slices.Clone(m), func(o string) bool { return o != op })); n != 1 {
				t.Errorf("%s: %d %s, want 1: %v", a.Region(), n, op, m)
			}
		}
	}
}
