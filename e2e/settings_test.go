package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/containerise/containerise/policies"
)

// kmsKey makes a KMS key with an alias in moto and returns the key's ARN.
func kmsKey(t *testing.T, alias string) string {
	t.Helper()
	c := kms.NewFromConfig(awsClients(t).Cfg)
	key, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("containerise e2e")})
	if err != nil {
		t.Fatalf("creating a KMS key: %v", err)
	}
	if _, err := c.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("creating alias %s: %v", alias, err)
	}
	return aws.ToString(key.KeyMetadata.Arn)
}

func describeRepository(t *testing.T, name string) ecrtypes.Repository {
	t.Helper()
	out, err := awsClients(t).ECR.DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
	if err != nil || len(out.Repositories) != 1 {
		t.Fatalf("describing repository %s: %v", name, err)
	}
	return out.Repositories[0]
}

func lifecyclePolicy(t *testing.T, name string) string {
	t.Helper()
	out, err := awsClients(t).ECR.GetLifecyclePolicy(context.Background(), &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(name)})
	if err != nil {
		t.Fatalf("reading the lifecycle policy of %s: %v", name, err)
	}
	return aws.ToString(out.LifecyclePolicyText)
}

var settingsArgs = []string{"--scan-on-push", "--immutable-tags", "--mutable-tag", "latest", "--keep-images", "10",
	"--expire-untagged-days", "7", "--kms-key", "alias/containerise-e2e"}

// TestSetupSettingsThroughTheRealAPI: setup with every setting, checked
// through ECR's API; a rerun makes no mutating call; one changed setting
// is one write, shown first by a dry run.
func TestSetupSettingsThroughTheRealAPI(t *testing.T) {
	resetAWS(t)
	keyARN := kmsKey(t, "alias/containerise-e2e")
	r := run(t, nil, append([]string{"setup", "--output", "json", "--verbose"}, settingsArgs...)...)
	if r.Code != 0 {
		t.Fatalf("setup with every setting:\n%s", r)
	}
	var doc struct {
		Resources []struct {
			Kind, Status string
			Changes      []string
			Settings     map[string]any
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	last := doc.Resources[len(doc.Resources)-1]
	if last.Kind != "settings" || last.Status != "created" || last.Settings["kms_key"] != keyARN || last.Settings["scan_on_push"] != true {
		t.Errorf("settings resource: %+v", last)
	}

	repo := describeRepository(t, pushRepo)
	if !repo.ImageScanningConfiguration.ScanOnPush {
		t.Error("the repository does not scan on push")
	}
	// latest, and push's cache tag, which setup keeps mutable by default.
	var filters []string
	for _, f := range repo.ImageTagMutabilityExclusionFilters {
		filters = append(filters, aws.ToString(f.Filter))
	}
	slices.Sort(filters)
	if repo.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutableWithExclusion || strings.Join(filters, ",") != "buildcache,latest" {
		t.Errorf("tag mutability %s %+v", repo.ImageTagMutability, repo.ImageTagMutabilityExclusionFilters)
	}
	if e := repo.EncryptionConfiguration; e == nil || e.EncryptionType != ecrtypes.EncryptionTypeKms || aws.ToString(e.KmsKey) != keyARN {
		t.Errorf("encryption %+v, want KMS with %s", repo.EncryptionConfiguration, keyARN)
	}
	want, _ := policies.LifecyclePolicy(policies.Retention{KeepImages: 10, ExpireUntaggedDays: 7})
	if same, err := policies.LifecycleEquivalent(lifecyclePolicy(t, pushRepo), want); !same || err != nil {
		t.Errorf("lifecycle policy %s (%v), want %s", lifecyclePolicy(t, pushRepo), err, want.JSON())
	}
	// The role may read what the scans find, and no more than that.
	pol := policyDocument(t, "ECRContainerise")
	if !strings.Contains(pol, "ecr:DescribeImageScanFindings") || strings.Contains(pol, "ecr:StartImageScan") {
		t.Errorf("the policy's scan grants:\n%s", pol)
	}

	again := run(t, nil, append([]string{"setup", "--verbose"}, settingsArgs...)...)
	if again.Code != 0 || len(mutatingOps(again.Stderr)) != 0 {
		t.Fatalf("rerun made mutating calls %v:\n%s", mutatingOps(again.Stderr), again)
	}
	ops := calledOps(again.Stderr)
	t.Logf("rerun with every setting: %d calls: %v", len(ops), ops)
	if len(ops) != 10 || !regexp.MustCompile(`(?m)^\s+settings\s+us-east-1/circleci-ecr-test\s+unchanged$`).MatchString(again.Stdout) {
		t.Errorf("rerun: %d calls (want 10: the 8 of a plain rerun, GetLifecyclePolicy and DescribeKey):\n%s", len(ops), again)
	}

	plan := run(t, nil, append([]string{"setup", "--dry-run", "--verbose", "--keep-images", "20"}, settingsArgs[:4]...)...)
	if plan.Code != 0 || len(mutatingOps(plan.Stderr)) != 0 ||
		!strings.Contains(plan.Stdout, "would update  lifecycle: keep the 20 images most recently pushed; expire untagged images 7 days after their push (was keep the 10 images") {
		t.Errorf("dry run of one changed setting:\n%s", plan)
	}
	one := run(t, nil, append([]string{"setup", "--verbose", "--keep-images", "20"}, settingsArgs[:4]...)...)
	if m := mutatingOps(one.Stderr); one.Code != 0 || len(m) != 1 || m[0] != "ecr.PutLifecyclePolicy" {
		t.Errorf("one changed setting made %v:\n%s", m, one)
	}
	if r, ours := policies.SetupRetention(lifecyclePolicy(t, pushRepo)); !ours || r != (policies.Retention{KeepImages: 20, ExpireUntaggedDays: 7}) {
		t.Errorf("lifecycle after the change: %+v %v", r, ours)
	}

	// Another key cannot be set in place: exit 1 saying what to do.
	kmsKey(t, "alias/containerise-e2e-other")
	other := run(t, nil, "setup", "--kms-key", "alias/containerise-e2e-other")
	if other.Code != 1 || !strings.Contains(other.Stderr, "ECR sets encryption only when it creates a repository") ||
		!strings.Contains(other.Stderr, "containerise teardown") {
		t.Errorf("another key on the repository:\n%s", other)
	}
}

// policyDocument is the default version's document of a managed policy.
func policyDocument(t *testing.T, name string) string {
	t.Helper()
	c := awsClients(t)
	arn := aws.String(policies.PolicyARN("aws", accountID(t, c), name))
	pol, err := c.IAM.GetPolicy(context.Background(), &iam.GetPolicyInput{PolicyArn: arn})
	if err != nil {
		t.Fatalf("reading policy %s: %v", name, err)
	}
	v, err := c.IAM.GetPolicyVersion(context.Background(), &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: pol.Policy.DefaultVersionId})
	if err != nil {
		t.Fatalf("reading policy %s's document: %v", name, err)
	}
	doc, err := url.QueryUnescape(aws.ToString(v.PolicyVersion.Document))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// scanFindings tells moto what its scan of repo:tag reports: a complete
// scan with these counts (moto's API for tests), answered as ECR answers,
// with the image's digest and the scan's time.
func scanFindings(t *testing.T, repo, tag string, counts map[string]int) {
	t.Helper()
	digest := ecrDigest(t, repo, tag)
	var findings []map[string]any
	for sev, n := range counts {
		for i := 0; i < n; i++ {
			findings = append(findings, map[string]any{"name": fmt.Sprintf("CVE-2099-%s-%d", sev, i), "severity": sev,
				"attributes": []map[string]string{{"key": "package_name", "value": "e2epkg"}, {"key": "package_version", "value": "1.0"}}})
		}
	}
	postScanResult(t, repo, map[string]string{"imageTag": tag, "imageDigest": digest}, counts, findings)
}

// scanFindingsBefore is scanFindings for an image not pushed yet: the
// answer names it by tag only.
func scanFindingsBefore(t *testing.T, repo, tag string, counts map[string]int) {
	t.Helper()
	postScanResult(t, repo, map[string]string{"imageTag": tag}, counts, nil)
}

func postScanResult(t *testing.T, repo string, id map[string]string, counts map[string]int, findings []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"region": awsClients(t).Cfg.Region,
		"results": []map[string]any{{
			"registryId": os.Getenv("STACK_ACCOUNT_ID"), "repositoryName": repo, "imageId": id,
			"imageScanStatus": map[string]string{"status": "COMPLETE", "description": "The scan was completed successfully."},
			"imageScanFindings": map[string]any{"findingSeverityCounts": counts, "findings": findings,
				"imageScanCompletedAt": time.Now().Unix()},
		}},
	})
	resp, err := http.Post(os.Getenv("STACK_MOTO_URL")+"/moto-api/static/ecr/scan-finding-results", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("setting moto's scan findings: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("setting moto's scan findings: HTTP %d", resp.StatusCode)
	}
}

// TestScanGate: a push to a repository that scans on push, then the gate
// fails on HIGH findings and passes on LOW ones; push --scan does the same
// after pushing; a repository that does not scan gets a scan started.
func TestScanGate(t *testing.T) {
	resetAWS(t)
	r := run(t, nil, "setup", "--output", "dotenv", "--scan-on-push")
	if r.Code != 0 {
		t.Fatalf("setup --scan-on-push:\n%s", r)
	}
	vars := ciVars(dotenv(r.Stdout))
	stamp := nonce()

	bad, good := "high-"+stamp, "low-"+stamp
	if p := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, bad)}, "push", "--tag", bad); p.Code != 0 {
		t.Fatalf("push:\n%s", p)
	}
	scanFindings(t, pushRepo, bad, map[string]int{"HIGH": 2, "LOW": 1})
	fail := run(t, vars.env(), "scan", "--tag", bad, "--fail-on", "HIGH")
	if fail.Code != 1 || !strings.Contains(fail.Stdout, "FAIL: 2 findings at or above HIGH") || !regexp.MustCompile(`(?m)^  HIGH\s+2$`).MatchString(fail.Stdout) ||
		!strings.Contains(fail.Stderr, "2 findings at or above HIGH") {
		t.Errorf("scan of an image with HIGH findings, --fail-on HIGH:\n%s", fail)
	}
	checkNoSecrets(t, fail, vars)

	if p := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, good)}, "push", "--tag", good); p.Code != 0 {
		t.Fatalf("push:\n%s", p)
	}
	scanFindings(t, pushRepo, good, map[string]int{"LOW": 3})
	pass := run(t, vars.env(), "scan", "--tag", good, "--fail-on", "HIGH", "--output", "json")
	var doc struct {
		Passed bool
		Images []struct {
			Counts map[string]int
			Digest string
		}
	}
	if pass.Code != 0 || json.Unmarshal([]byte(pass.Stdout), &doc) != nil || !doc.Passed || doc.Images[0].Counts["LOW"] != 3 ||
		doc.Images[0].Digest != ecrDigest(t, pushRepo, good) {
		t.Errorf("scan of an image with LOW findings, --fail-on HIGH:\n%s", pass)
	}

	// push --scan: the gate right after the push; stdout keeps push's lines.
	gated := "gated-" + stamp
	scanFindingsBefore(t, pushRepo, gated, map[string]int{"CRITICAL": 1})
	pg := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, gated)}, "push", "--tag", gated, "--scan", "--fail-on", "HIGH")
	if pg.Code != 1 || !strings.Contains(pg.Stderr, "FAIL: 1 finding at or above HIGH") {
		t.Errorf("push --scan --fail-on HIGH of an image with a CRITICAL finding:\n%s", pg)
	}
	pushedDigests(t, pg, gated)
}

// TestScanGateStartsAScan: without scan on push, the gate starts the scan
// (setup --allow-scan lets the role).
func TestScanGateStartsAScan(t *testing.T) {
	resetAWS(t)
	r := run(t, nil, "setup", "--output", "dotenv", "--allow-scan")
	if r.Code != 0 {
		t.Fatalf("setup --allow-scan:\n%s", r)
	}
	vars := ciVars(dotenv(r.Stdout))
	tag := "manual-" + nonce()
	if p := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, tag)}, "push", "--tag", tag); p.Code != 0 {
		t.Fatalf("push:\n%s", p)
	}
	scanFindings(t, pushRepo, tag, map[string]int{"MEDIUM": 1})
	s := run(t, vars.env(), "scan", "--tag", tag, "--fail-on", "HIGH", "--verbose")
	if s.Code != 0 || !strings.Contains(s.Stderr, "starting ECR's scan") || !strings.Contains(s.Stderr, "ecr.StartImageScan") ||
		!strings.Contains(s.Stdout, "started by this run") {
		t.Errorf("gate on an image the repository did not scan:\n%s", s)
	}
}

// TestImmutableTagsDoNotBreakReruns: with immutable tags, a push over an
// existing tag is refused by the registry as ECR refuses it; a tag left
// mutable moves; push --skip-existing makes the rerun pass.
func TestImmutableTagsDoNotBreakReruns(t *testing.T) {
	resetAWS(t)
	r := run(t, nil, "setup", "--output", "dotenv", "--allow-skip-existing", "--immutable-tags", "--mutable-tag", "latest")
	if r.Code != 0 {
		t.Fatalf("setup:\n%s", r)
	}
	vars := ciVars(dotenv(r.Stdout))
	stamp := nonce()
	tag := "v-" + stamp
	first := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp)}, "push", "--tag", tag, "--tag", "latest")
	if first.Code != 0 {
		t.Fatalf("first push:\n%s", first)
	}
	again := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp+"-rebuilt")}, "push", "--tag", tag)
	if again.Code != 1 || !strings.Contains(again.Stderr, "cannot be overwritten because the tag is immutable") {
		t.Errorf("a rerun overwriting an immutable tag:\n%s", again)
	}
	moved := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp+"-next")}, "push", "--tag", "latest")
	if moved.Code != 0 || ecrDigest(t, pushRepo, "latest") != pushedDigests(t, moved, "latest")["latest"] {
		t.Errorf("latest, left mutable, did not move:\n%s", moved)
	}
	rerun := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp+"-rebuilt")}, "push", "--tag", tag, "--skip-existing")
	if rerun.Code != 0 || pushedDigests(t, rerun, tag)[tag] != pushedDigests(t, first, tag, "latest")[tag] {
		t.Errorf("the rerun with --skip-existing:\n%s", rerun)
	}
}

// TestTeardownCountsTheImagesPushMade: teardown sees, through ECR's API,
// the images push pushed.
func TestTeardownCountsTheImagesPushMade(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	for _, tag := range []string{"one-" + stamp, "two-" + stamp} {
		if p := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, tag)}, "push", "--tag", tag); p.Code != 0 {
			t.Fatalf("push %s:\n%s", tag, p)
		}
	}
	td := run(t, nil, "teardown", "--yes")
	if td.Code != 0 || !strings.Contains(td.Stdout, "repository us-east-1/circleci-ecr-test: deleted, with its 2 images") {
		t.Errorf("teardown after two pushes:\n%s", td)
	}
}
