package commands

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

const (
	profileA = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/team_a"
	profileB = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/team_b"
)

// signingRules words the registry's signing rules: "team_a: app".
func signingRules(acct *awsfake.Account) []string {
	var out []string
	for _, r := range acct.SigningRules() {
		var f []string
		for _, fl := range r.RepositoryFilters {
			f = append(f, aws.ToString(fl.Filter))
		}
		arn := aws.ToString(r.SigningProfileArn)
		out = append(out, fmt.Sprintf("%s: %s", arn[strings.LastIndex(arn, "/")+1:], strings.Join(f, ", ")))
	}
	sort.Strings(out)
	return out
}

func repoTag(t *testing.T, acct *awsfake.Account, key string) string {
	t.Helper()
	tags := must(acct.ECR().ListTagsForResource(context.Background(), &ecr.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecr:us-east-1:123456789012:repository/circleci-ecr-test")}))
	for _, tg := range tags.Tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

// Managed signing round-trips through setup, rerun, a change of profile
// and teardown, and another repository's rule survives all of it. Run
// against the fake: moto answers 500 to the signing configuration calls.
func TestSigningRuleRoundTrip(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	must(acct.ECR().PutSigningConfiguration(context.Background(), &ecr.PutSigningConfigurationInput{SigningConfiguration: &ecrtypes.SigningConfiguration{
		Rules: []ecrtypes.SigningRule{{SigningProfileArn: aws.String(profileB), RepositoryFilters: []ecrtypes.SigningRepositoryFilter{
			{Filter: aws.String("other-app"), FilterType: ecrtypes.SigningRepositoryFilterTypeWildcardMatch}}}}}}))

	r := runSetupCmd(t, acct, "--signing-profile", profileA)
	if r.err != nil {
		t.Fatalf("setup: %s", r.message)
	}
	if got := strings.Join(signingRules(acct), "; "); got != "team_a: circleci-ecr-test; team_b: other-app" {
		t.Errorf("rules: %s", got)
	}
	if repoTag(t, acct, resource.SigningTag) != profileA {
		t.Errorf("the repository does not record setup's rule")
	}
	if perms, _ := written(t, acct); !strings.Contains(perms, "signer%3ASignPayload") && !strings.Contains(perms, "signer:SignPayload") {
		t.Errorf("the role may not sign: %s", perms)
	}

	acct.ResetCalls()
	if r = runSetupCmd(t, acct, "--signing-profile", profileA); r.err != nil || len(acct.Mutating()) != 0 {
		t.Errorf("rerun: %v wrote %v", r.err, acct.Mutating())
	}

	if r = runSetupCmd(t, acct, "--signing-profile", profileB); r.err != nil {
		t.Fatalf("change: %s", r.message)
	}
	if got := strings.Join(signingRules(acct), "; "); got != "team_b: circleci-ecr-test; team_b: other-app" {
		t.Errorf("after the change: %s", got)
	}

	td := runTeardownCmd(t, acct, "--yes")
	if td.code != 0 {
		t.Fatalf("teardown: %s", td.stderr)
	}
	if got := strings.Join(signingRules(acct), "; "); got != "team_b: other-app" {
		t.Errorf("after teardown: %s", got)
	}
	if !strings.Contains(td.stdout, "signing") {
		t.Errorf("teardown does not list the rule:\n%s", td.stdout)
	}
}

// setup's rule alone: teardown deletes the configuration; a rerun of
// teardown finds nothing to do.
func TestSigningTeardownDeletesAConfigurationOfSetupsRuleAlone(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	if r := runSetupCmd(t, acct, "--signing-profile", profileA); r.err != nil {
		t.Fatal(r.message)
	}
	if td := runTeardownCmd(t, acct, "--yes"); td.code != 0 {
		t.Fatalf("teardown: %s", td.stderr)
	}
	if acct.SigningRules() != nil {
		t.Errorf("signing configuration left: %v", signingRules(acct))
	}
	acct.ResetCalls()
	if td := runTeardownCmd(t, acct, "--yes"); td.code != 0 || len(acct.Mutating()) != 0 {
		t.Errorf("rerun: %d %v", td.code, acct.Mutating())
	}
}

// A repository setup did not create is not tagged, so its rule is not
// provably setup's: teardown, which leaves the repository, leaves it too.
func TestSigningRuleOfAnUnmanagedRepositoryStays(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	must(acct.ECR().CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("circleci-ecr-test")}))
	if r := runSetupCmd(t, acct, "--signing-profile", profileA); r.err != nil {
		t.Fatal(r.message)
	}
	if repoTag(t, acct, resource.SigningTag) != "" {
		t.Error("setup tagged a repository it did not create")
	}
	if td := runTeardownCmd(t, acct, "--yes"); td.code != 0 {
		t.Fatalf("teardown: %s", td.stderr)
	}
	if got := strings.Join(signingRules(acct), "; "); got != "team_a: circleci-ecr-test" {
		t.Errorf("rules: %s", got)
	}
}
