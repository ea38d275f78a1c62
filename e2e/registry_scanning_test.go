package e2e

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// registryScanning reads moto's registry scanning configuration: its type
// and rules, each as "FREQUENCY: filter, filter".
func registryScanning(t *testing.T) (ecrtypes.ScanType, string) {
	t.Helper()
	out, err := awsClients(t).ECR.GetRegistryScanningConfiguration(context.Background(), &ecr.GetRegistryScanningConfigurationInput{})
	if err != nil {
		t.Fatalf("reading the registry scanning configuration: %v", err)
	}
	var rules []string
	for _, r := range out.ScanningConfiguration.Rules {
		var f []string
		for _, fl := range r.RepositoryFilters {
			f = append(f, aws.ToString(fl.Filter))
		}
		sort.Strings(f)
		rules = append(rules, string(r.ScanFrequency)+": "+strings.Join(f, ", "))
	}
	sort.Strings(rules)
	return out.ScanningConfiguration.ScanType, strings.Join(rules, "; ")
}

// TestRegistryScanningThroughTheRealAPI: a rule for another repository
// survives setup and teardown; unconfirmed, setup refuses the change of
// the registry's scan type (exit 2) and changes nothing; confirmed, the
// registry is ENHANCED and a rule covers the repository; a rerun makes no
// write; teardown takes out setup's filter only.
func TestRegistryScanningThroughTheRealAPI(t *testing.T) {
	resetAWS(t)
	if _, err := awsClients(t).ECR.PutRegistryScanningConfiguration(context.Background(), &ecr.PutRegistryScanningConfigurationInput{
		ScanType: ecrtypes.ScanTypeBasic, Rules: []ecrtypes.RegistryScanningRule{{ScanFrequency: ecrtypes.ScanFrequencyScanOnPush,
			RepositoryFilters: []ecrtypes.ScanningRepositoryFilter{{Filter: aws.String("other-team/*"), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard}}}},
	}); err != nil {
		t.Fatalf("the other team's rule: %v", err)
	}

	refused := run(t, nil, "setup", "--scanning", "enhanced", "--verbose")
	if refused.Code != 2 || !strings.Contains(refused.Stderr, "every repository") || !strings.Contains(refused.Stderr, "--yes --scanning enhanced") {
		t.Fatalf("unconfirmed change of scan type:\n%s", refused)
	}
	if m := mutatingOps(refused.Stderr); len(m) != 0 {
		t.Fatalf("refused setup wrote %v", m)
	}
	if typ, rules := registryScanning(t); typ != ecrtypes.ScanTypeBasic || rules != "SCAN_ON_PUSH: other-team/*" {
		t.Fatalf("refused setup changed the registry: %s %s", typ, rules)
	}

	r := run(t, nil, "setup", "--scanning", "enhanced", "--yes")
	if r.Code != 0 {
		t.Fatalf("confirmed setup:\n%s", r)
	}
	if typ, rules := registryScanning(t); typ != ecrtypes.ScanTypeEnhanced || rules != "SCAN_ON_PUSH: circleci-ecr-test, other-team/*" {
		t.Errorf("after setup: %s %s", typ, rules)
	}
	if pol := policyDocument(t, "ECRContainerise"); !strings.Contains(pol, "inspector2:ListFindings") || !strings.Contains(pol, "ecr:DescribeImageScanFindings") {
		t.Errorf("the role cannot read enhanced findings:\n%s", pol)
	}

	again := run(t, nil, "setup", "--scanning", "enhanced", "--verbose")
	if m := mutatingOps(again.Stderr); again.Code != 0 || len(m) != 0 {
		t.Errorf("rerun wrote %v:\n%s", m, again)
	}

	td := run(t, nil, "teardown", "--yes")
	if td.Code != 0 {
		t.Fatalf("teardown:\n%s", td)
	}
	if typ, rules := registryScanning(t); typ != ecrtypes.ScanTypeEnhanced || rules != "SCAN_ON_PUSH: other-team/*" {
		t.Errorf("after teardown: %s %s (the other team's rule and the scan type stay)", typ, rules)
	}
}

// TestRegistryScanningOfTwoRepositoriesIsOneWrite: the registry scanning
// configuration is shared by the region's repositories, so setup for two
// writes it once with a filter for each, beside another team's rule; a
// rerun writes nothing; teardown takes both filters out in one write.
func TestRegistryScanningOfTwoRepositoriesIsOneWrite(t *testing.T) {
	resetAWS(t)
	if _, err := awsClients(t).ECR.PutRegistryScanningConfiguration(context.Background(), &ecr.PutRegistryScanningConfigurationInput{
		ScanType: ecrtypes.ScanTypeBasic, Rules: []ecrtypes.RegistryScanningRule{{ScanFrequency: ecrtypes.ScanFrequencyScanOnPush,
			RepositoryFilters: []ecrtypes.ScanningRepositoryFilter{{Filter: aws.String("other-team/*"), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard}}}},
	}); err != nil {
		t.Fatalf("the other team's rule: %v", err)
	}
	setup := []string{"setup", "--repository", "scan-api", "--repository", "scan-web", "--scanning", "basic", "--verbose"}
	r := run(t, nil, setup...)
	if r.Code != 0 {
		t.Fatalf("setup:\n%s", r)
	}
	if n := strings.Count(strings.Join(mutatingOps(r.Stderr), " "), "PutRegistryScanningConfiguration"); n != 1 {
		t.Errorf("setup wrote the registry scanning configuration %d times, want once: %v", n, mutatingOps(r.Stderr))
	}
	if typ, rules := registryScanning(t); typ != ecrtypes.ScanTypeBasic || rules != "SCAN_ON_PUSH: other-team/*, scan-api, scan-web" {
		t.Errorf("after setup: %s %s", typ, rules)
	}

	again := run(t, nil, setup...)
	if m := mutatingOps(again.Stderr); again.Code != 0 || len(m) != 0 {
		t.Errorf("rerun wrote %v:\n%s", m, again)
	}

	td := run(t, nil, "teardown", "--yes", "--verbose")
	if td.Code != 0 {
		t.Fatalf("teardown:\n%s", td)
	}
	if n := strings.Count(strings.Join(mutatingOps(td.Stderr), " "), "PutRegistryScanningConfiguration"); n != 1 {
		t.Errorf("teardown wrote the registry scanning configuration %d times, want once: %v", n, mutatingOps(td.Stderr))
	}
	if typ, rules := registryScanning(t); typ != ecrtypes.ScanTypeBasic || rules != "SCAN_ON_PUSH: other-team/*" {
		t.Errorf("after teardown: %s %s (the other team's rule stays)", typ, rules)
	}
}
