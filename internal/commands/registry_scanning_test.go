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
	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

// scanRules words the registry's rules: "SCAN_ON_PUSH: a, b".
func scanRules(acct *awsfake.Account) (ecrtypes.ScanType, []string) {
	c := acct.RegistryScanning()
	var out []string
	for _, r := range c.Rules {
		var f []string
		for _, fl := range r.RepositoryFilters {
			f = append(f, aws.ToString(fl.Filter))
		}
		sort.Strings(f)
		out = append(out, fmt.Sprintf("%s: %s", r.ScanFrequency, strings.Join(f, ", ")))
	}
	sort.Strings(out)
	return c.ScanType, out
}

func putScanning(t *testing.T, acct *awsfake.Account, typ ecrtypes.ScanType, rules ...ecrtypes.RegistryScanningRule) {
	t.Helper()
	must(acct.ECR().PutRegistryScanningConfiguration(context.Background(), &ecr.PutRegistryScanningConfigurationInput{ScanType: typ, Rules: rules}))
}

func rule(freq ecrtypes.ScanFrequency, filters ...string) ecrtypes.RegistryScanningRule {
	r := ecrtypes.RegistryScanningRule{ScanFrequency: freq}
	for _, f := range filters {
		r.RepositoryFilters = append(r.RepositoryFilters, ecrtypes.ScanningRepositoryFilter{Filter: aws.String(f), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard})
	}
	return r
}

// Enhanced scanning: without confirmation nothing changes and setup says
// how to confirm; confirmed, the registry is ENHANCED, a rule covers the
// repository and another repository's rule survives; a rerun writes
// nothing; teardown takes out only setup's filter and leaves the type.
func TestRegistryScanningRoundTrip(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	putScanning(t, acct, ecrtypes.ScanTypeBasic, rule(ecrtypes.ScanFrequencyScanOnPush, "other-app"))
	acct.ResetCalls()

	r := runSetupCmd(t, acct, "--scanning", "enhanced")
	if r.err == nil || clierror.Code(r.err) != clierror.ExitUsage {
		t.Fatalf("unconfirmed change of scan type: err %v, want exit 2", r.err)
	}
	for _, want := range []string{"every repository", "to confirm, rerun: containerise setup --yes --scanning enhanced"} {
		if !strings.Contains(r.message, want) {
			t.Errorf("message lacks %q: %s", want, r.message)
		}
	}
	if m := acct.Mutating(); len(m) != 0 {
		t.Fatalf("refused setup changed things: %v", m)
	}

	r = runSetupCmd(t, acct, "--scanning", "enhanced", "--yes")
	if r.err != nil {
		t.Fatalf("setup --yes: %s", r.message)
	}
	typ, rules := scanRules(acct)
	if typ != ecrtypes.ScanTypeEnhanced || len(rules) != 1 || rules[0] != "SCAN_ON_PUSH: circleci-ecr-test, other-app" {
		t.Errorf("registry: %s %v", typ, rules)
	}
	if !strings.Contains(r.stdout, "registry-scanning") || !strings.Contains(r.stdout, "every repository") {
		t.Errorf("setup does not say the scan type changed for every repository:\n%s", r.stdout)
	}

	acct.ResetCalls()
	if r = runSetupCmd(t, acct, "--scanning", "enhanced"); r.err != nil {
		t.Fatalf("rerun: %s", r.message)
	}
	if m := acct.Mutating(); len(m) != 0 {
		t.Errorf("rerun wrote %v", m)
	}

	// Continuous: setup's filter moves to a rule of its own frequency.
	if r = runSetupCmd(t, acct, "--scanning", "enhanced", "--scan-frequency", "continuous"); r.err != nil {
		t.Fatalf("continuous: %s", r.message)
	}
	if _, rules = scanRules(acct); strings.Join(rules, "; ") != "CONTINUOUS_SCAN: circleci-ecr-test; SCAN_ON_PUSH: other-app" {
		t.Errorf("after continuous: %v", rules)
	}

	td := runTeardownCmd(t, acct, "--yes")
	if td.code != 0 {
		t.Fatalf("teardown: %d\n%s", td.code, td.stderr)
	}
	typ, rules = scanRules(acct)
	if typ != ecrtypes.ScanTypeEnhanced || strings.Join(rules, "; ") != "SCAN_ON_PUSH: other-app" {
		t.Errorf("after teardown: %s %v", typ, rules)
	}
	if !strings.Contains(td.stdout, "registry-scanning") {
		t.Errorf("teardown does not list the rule:\n%s", td.stdout)
	}
}

// A repository a registry filter already covers at the frequency asked
// for ("*") needs no write, and teardown has nothing of setup's to remove.
func TestRegistryScanningCoveredByAnotherFilter(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	putScanning(t, acct, ecrtypes.ScanTypeBasic, rule(ecrtypes.ScanFrequencyScanOnPush, "*"))
	acct.ResetCalls()
	r := runSetupCmd(t, acct, "--scanning", "basic")
	if r.err != nil {
		t.Fatalf("setup: %s", r.message)
	}
	for _, op := range acct.Mutating() {
		if strings.Contains(op, "RegistryScanning") {
			t.Errorf("covered repository: setup wrote %s", op)
		}
	}
	if !strings.Contains(r.stdout, "covered by the registry's filter *") {
		t.Errorf("setup does not say what covers it:\n%s", r.stdout)
	}
	if td := runTeardownCmd(t, acct, "--yes"); td.code != 0 {
		t.Fatalf("teardown: %s", td.stderr)
	}
	if _, rules := scanRules(acct); strings.Join(rules, "; ") != "SCAN_ON_PUSH: *" {
		t.Errorf("teardown touched another filter: %v", rules)
	}
}

// A filter naming the repository in a registry where the repository is
// not setup's (made by hand) stays with it.
func TestRegistryScanningTeardownKeepsRuleOfUnmanagedRepository(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	must(acct.ECR().CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("circleci-ecr-test")}))
	putScanning(t, acct, ecrtypes.ScanTypeBasic, rule(ecrtypes.ScanFrequencyScanOnPush, "circleci-ecr-test"))
	if td := runTeardownCmd(t, acct, "--yes"); td.code != 0 {
		t.Fatalf("teardown: %s", td.stderr)
	}
	if _, rules := scanRules(acct); strings.Join(rules, "; ") != "SCAN_ON_PUSH: circleci-ecr-test" {
		t.Errorf("teardown removed the filter of a repository it kept: %v", rules)
	}
}

func TestRegistryScanningBadInputBeforeAnyCall(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--scanning", "deep"}, "--scanning"},
		{[]string{"--scanning", "basic", "--scan-frequency", "continuous"}, "--scan-frequency continuous needs --scanning enhanced"},
		{[]string{"--scanning", "enhanced", "--scan-frequency", "hourly"}, "--scan-frequency"},
		{[]string{"--scan-frequency", "continuous"}, "--scan-frequency needs --scanning"},
		{[]string{"--archive-after-days", "-1"}, "--archive-after-days"},
		{[]string{"--signing-profile", ""}, "--signing-profile"},
		{[]string{"--signing-profile", "profile"}, "--signing-profile"},
	} {
		acct := awsfake.New(awsfake.Config{})
		r := runSetupCmd(t, acct, c.args...)
		if r.err == nil || clierror.Code(r.err) != clierror.ExitUsage || !strings.Contains(r.message, c.want) {
			t.Errorf("%v: err %v, want exit 2 naming %q", c.args, r.message, c.want)
		}
		if r.built || len(acct.Calls()) > 0 {
			t.Errorf("%v: AWS was called", c.args)
		}
	}
}

// An admin who may not read the registry scanning configuration can still
// tear down: teardown says what it could not check.
func TestRegistryScanningTeardownWithoutTheRead(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	if r := runSetupCmd(t, acct); r.err != nil {
		t.Fatal(r.message)
	}
	acct.FailOperation("ecr.GetRegistryScanningConfiguration", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not allowed"})
	td := runTeardownCmd(t, acct, "--yes")
	if td.code != 0 || !strings.Contains(td.stderr, "registry scanning configuration could not be read") {
		t.Errorf("teardown: %d\n%s", td.code, td.stderr)
	}
}

// A dry run shows the change of scan type, and what it affects, without
// asking and without a write.
func TestRegistryScanningDryRun(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct, "--scanning", "enhanced", "--scan-frequency", "continuous", "--dry-run")
	if r.err != nil || len(acct.Mutating()) != 0 {
		t.Fatalf("dry run: %v %v", r.message, acct.Mutating())
	}
	if !strings.Contains(r.stdout, "registry scan type: ENHANCED (was BASIC): this changes how every repository of the registry in us-east-1 is scanned") ||
		!strings.Contains(r.stdout, "enhanced scanning continuously") {
		t.Errorf("dry run does not show the change:\n%s", r.stdout)
	}
}
