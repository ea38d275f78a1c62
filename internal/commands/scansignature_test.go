package commands

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// --require-signature fails a clean image that is not signed, and passes
// it once a signing rule covers its repository; the report says which
// profile signed it. Run against the fake: moto answers 500 to
// DescribeImageSigningStatus.
func TestScanRequireSignature(t *testing.T) {
	acct := scanAccount(t, map[string]int32{"LOW": 1})
	r := runScanCmd(t, acct, blogEnv(), "--tag", "v1", "--fail-on", "HIGH", "--require-signature")
	if r.code != 1 || !strings.Contains(r.message, "circleci-ecr-test:v1 is not signed, and --require-signature asks for a signature") ||
		!strings.Contains(r.stdout, "NOT SIGNED") || !strings.Contains(r.stdout, "FAIL: not signed") {
		t.Fatalf("unsigned: exit %d, %q\n%s", r.code, r.message, r.stdout)
	}
	if r = runScanCmd(t, acct, blogEnv(), "--tag", "v1", "--fail-on", "HIGH"); r.code != 0 || strings.Contains(r.stdout, "SIGNED") {
		t.Errorf("without --require-signature the signature is neither read nor gated: exit %d\n%s", r.code, r.stdout)
	}

	must(acct.ECR().PutSigningConfiguration(context.Background(), &ecr.PutSigningConfigurationInput{SigningConfiguration: &ecrtypes.SigningConfiguration{
		Rules: []ecrtypes.SigningRule{{SigningProfileArn: aws.String(profileA), RepositoryFilters: []ecrtypes.SigningRepositoryFilter{
			{Filter: aws.String("circleci-*"), FilterType: ecrtypes.SigningRepositoryFilterTypeWildcardMatch}}}}}}))
	r = runScanCmd(t, acct, blogEnv(), "--tag", "v1", "--fail-on", "HIGH", "--require-signature", "-o", "json")
	if r.code != 0 {
		t.Fatalf("signed: exit %d %s\n%s", r.code, r.message, r.stdout)
	}
	var doc scanJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if sig := doc.Images[0].Signature; sig == nil || !sig.Signed || strings.Join(sig.Profiles, ",") != profileA || !doc.Passed {
		t.Errorf("json: %+v", doc.Images[0].Signature)
	}
}
