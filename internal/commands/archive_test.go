package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

func lifecycleText(t *testing.T, acct *awsfake.Account) string {
	t.Helper()
	out, err := acct.ECR().GetLifecyclePolicy(context.Background(), &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("circleci-ecr-test")})
	if err != nil {
		return ""
	}
	return aws.ToString(out.LifecyclePolicyText)
}

// The archive rule round-trips like setup's other lifecycle rules: written
// beside them, recognised on a rerun (no write), changed, removed with 0
// (the other rules stay), and gone with the repository at teardown. Run
// against the fake: moto refuses a transition action.
func TestArchiveRuleRoundTrip(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct, "--keep-images", "10", "--archive-after-days", "30")
	if r.err != nil {
		t.Fatalf("setup: %s", r.message)
	}
	if got, ours := policies.SetupRetention(lifecycleText(t, acct)); !ours || got != (policies.Retention{KeepImages: 10, ArchiveAfterDays: 30}) {
		t.Fatalf("lifecycle: %+v %v\n%s", got, ours, lifecycleText(t, acct))
	}
	if !strings.Contains(lifecycleText(t, acct), `"targetStorageClass": "archive"`) || !strings.Contains(r.stdout, "archive images not pulled for 30 days") {
		t.Errorf("archive rule not written or not said:\n%s\n%s", lifecycleText(t, acct), r.stdout)
	}

	acct.ResetCalls()
	if r = runSetupCmd(t, acct, "--keep-images", "10", "--archive-after-days", "30"); r.err != nil || len(acct.Mutating()) != 0 {
		t.Errorf("rerun: %v wrote %v", r.err, acct.Mutating())
	}
	if r = runSetupCmd(t, acct, "--archive-after-days", "60"); r.err != nil || !strings.Contains(r.stdout, "archive images not pulled for 60 days (was keep the 10 images most recently pushed; archive images not pulled for 30 days)") {
		t.Errorf("change:\n%s %v", r.stdout, r.err)
	}
	if r = runSetupCmd(t, acct, "--archive-after-days", "0"); r.err != nil {
		t.Fatalf("remove: %s", r.message)
	}
	if got, ours := policies.SetupRetention(lifecycleText(t, acct)); !ours || got != (policies.Retention{KeepImages: 10}) {
		t.Errorf("after --archive-after-days 0: %+v %v", got, ours)
	}
	if td := runTeardownCmd(t, acct, "--yes"); td.code != 0 {
		t.Fatalf("teardown: %s", td.stderr)
	}
	if lifecycleText(t, acct) != "" {
		t.Error("lifecycle policy left after teardown")
	}
}

// A policy with a hand-made archive rule is not setup's: left alone.
func TestArchiveLeavesAHandMadePolicyAlone(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	if r := runSetupCmd(t, acct); r.err != nil {
		t.Fatal(r.message)
	}
	hand := `{"rules":[{"rulePriority":1,"description":"archive old","selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}}]}`
	must(acct.ECR().PutLifecyclePolicy(context.Background(), &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("circleci-ecr-test"), LifecyclePolicyText: aws.String(hand)}))
	acct.ResetCalls()
	r := runSetupCmd(t, acct, "--archive-after-days", "30")
	if r.err != nil || len(acct.Mutating()) != 0 || lifecycleText(t, acct) != hand {
		t.Errorf("hand-made policy changed: %v %v", r.err, acct.Mutating())
	}
}
