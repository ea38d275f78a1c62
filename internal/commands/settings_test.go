package commands

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

var everySettingArgs = []string{"--scan-on-push", "--immutable-tags", "--mutable-tag", "latest", "--keep-images", "10",
	"--expire-untagged-days", "7", "--kms-key", "alias/ecr-images"}

func TestSetupSettingsInEveryFormat(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	keyARN := acct.AddKMSKey("alias/ecr-images")
	r := runSetupCmd(t, acct, append([]string{"-o", "json"}, everySettingArgs...)...)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	var doc setupJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	last := doc.Resources[len(doc.Resources)-1]
	if last.Kind != "settings" || last.Name != "circleci-ecr-test" || last.Status != "created" || last.Settings == nil {
		t.Fatalf("settings resource: %+v", last)
	}
	s := last.Settings
	if !s.ScanOnPush || s.TagMutability != "IMMUTABLE_WITH_EXCLUSION" || strings.Join(s.MutableTags, ",") != "buildcache,latest" ||
		s.Lifecycle == nil || *s.Lifecycle != (lifecycleJSON{Policy: "containerise", KeepImages: 10, ExpireUntaggedDays: 7}) ||
		s.Encryption != "KMS" || s.KMSKey != keyARN {
		t.Errorf("settings: %+v %+v", s, s.Lifecycle)
	}
	// --scan-on-push lets the role read the findings.
	pol := must(acct.IAM().GetPolicyVersion(context.Background(), &iam.GetPolicyVersionInput{
		PolicyArn: aws.String("arn:aws:iam::123456789012:policy/ECRContainerise"), VersionId: aws.String("v1")}))
	doc1, _ := url.QueryUnescape(*pol.PolicyVersion.Document)
	if !strings.Contains(doc1, "ecr:DescribeImageScanFindings") || strings.Contains(doc1, "ecr:StartImageScan") {
		t.Errorf("policy: %s", doc1)
	}

	text := runSetupCmd(t, acct, everySettingArgs...)
	if text.err != nil || !strings.Contains(text.stdout, "settings") || !regexpLine(text.stdout, `^\s+settings\s+us-east-1/circleci-ecr-test\s+unchanged$`) {
		t.Errorf("text rerun:\n%s\n%v", text.stdout, text.err)
	}
	dotenv := runSetupCmd(t, acct, "-o", "dotenv", "--keep-images", "20")
	if dotenv.err != nil || strings.Contains(dotenv.stdout, "settings") ||
		!strings.Contains(dotenv.stderr, "repository settings us-east-1/circleci-ecr-test: updated (lifecycle: keep the 20 images most recently pushed") {
		t.Errorf("dotenv:\n%s\n--- stderr\n%s\n%v", dotenv.stdout, dotenv.stderr, dotenv.err)
	}

	// No settings flag: no settings line, nothing read for them, and the
	// role may still read the findings of a repository that scans.
	acct.ResetCalls()
	plain := runSetupCmd(t, acct)
	if plain.err != nil || strings.Contains(plain.stdout, "settings") || len(acct.Calls()) != 8 || len(acct.Mutating()) != 0 {
		t.Errorf("plain rerun (%d calls):\n%s", len(acct.Calls()), plain.stdout)
	}
}

func regexpLine(text, pattern string) bool {
	for _, line := range strings.Split(text, "\n") {
		if ok, _ := matchString(pattern, line); ok {
			return true
		}
	}
	return false
}

func TestSetupSettingsBadValuesExit2BeforeAnyCall(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--keep-images", "-1"}, "--keep-images -1"},
		{[]string{"--expire-untagged-days", "-2"}, "--expire-untagged-days -2"},
		{[]string{"--mutable-tag", "latest"}, "--mutable-tag needs --immutable-tags"},
		{[]string{"--immutable-tags=false", "--mutable-tag", "latest"}, "--mutable-tag needs --immutable-tags"},
		{[]string{"--immutable-tags", "--mutable-tag", "release/1"}, `--mutable-tag "release/1"`},
		{[]string{"--immutable-tags", "--mutable-tag", "a", "--mutable-tag", "b", "--mutable-tag", "c", "--mutable-tag", "d", "--mutable-tag", "e", "--mutable-tag", "f"}, "at most 5"},
		{[]string{"--immutable-tags", "--mutable-tag", "a", "--mutable-tag", "b", "--mutable-tag", "c", "--mutable-tag", "d", "--mutable-tag", "e"}, "the cache tag buildcache stays mutable too"},
		{[]string{"--cache-tag", "cache"}, "--cache-tag needs --immutable-tags"},
		{[]string{"--immutable-tags", "--cache-tag", "-cache"}, `--cache-tag "-cache"`},
		{[]string{"--kms-key", "my-key"}, `--kms-key "my-key"`},
		{[]string{"--kms-key", ""}, "--kms-key is empty"},
		{[]string{"--keep-images", "many"}, "--keep-images"},
	} {
		acct := awsfake.New(awsfake.Config{})
		r := runSetupCmd(t, acct, c.args...)
		var u *clierror.UsageError
		if !errors.As(r.err, &u) && exitCodeOf(r.err) != clierror.ExitUsage || r.err == nil || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error naming %s", c.args, r.err, c.want)
		}
		if r.built || len(acct.Calls()) != 0 {
			t.Errorf("%v: AWS was called", c.args)
		}
	}
}

func TestSetupKMSKeyOnAnExistingRepositorySaysWhatToDo(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	acct.AddKMSKey("alias/ecr-images")
	if r := runSetupCmd(t, acct, "--repository", "my-app"); r.err != nil {
		t.Fatal(r.err)
	}
	r := runSetupCmd(t, acct, "--repository", "my-app", "--kms-key", "alias/ecr-images", "--scan-on-push")
	if exitCodeOf(r.err) != clierror.ExitFailure {
		t.Fatalf("want exit 1, got %v", r.err)
	}
	for _, want := range []string{"ECR sets encryption only when it creates a repository", "containerise setup --repository NEW-NAME --kms-key alias/ecr-images",
		"containerise teardown --repository my-app"} {
		if !strings.Contains(r.message, want) {
			t.Errorf("message lacks %q:\n%s", want, r.message)
		}
	}
	if !strings.Contains(r.stdout, "scan on push: on (was off)") || !strings.Contains(r.stderr, "warning: repository my-app is encrypted with AES256") {
		t.Errorf("output:\n%s\n--- stderr\n%s", r.stdout, r.stderr)
	}
}

var matchString = regexp.MatchString

// TestSetupExemptsTheCacheTag: with --immutable-tags, push's cache tag
// stays mutable (an ECR exclusion filter), so that every push can rewrite
// the cache; the settings line says which filter is the cache's. A pattern
// that covers it stands for it, and --cache-tag "" exempts none.
func TestSetupExemptsTheCacheTag(t *testing.T) {
	for _, c := range []struct {
		args    []string
		filters string
		line    string
	}{
		{[]string{"--immutable-tags"}, "buildcache", "tags: immutable except buildcache (push's cache)"},
		{[]string{"--immutable-tags", "--cache-tag", "ci-cache", "--mutable-tag", "latest"}, "ci-cache,latest", "tags: immutable except ci-cache (push's cache), latest"},
		{[]string{"--immutable-tags", "--mutable-tag", "build*"}, "build*", "tags: immutable except build* (push's cache)"},
		{[]string{"--immutable-tags", "--cache-tag", ""}, "", "tags: immutable)"},
	} {
		acct := awsfake.New(awsfake.Config{})
		r := runSetupCmd(t, acct, append([]string{"-o", "dotenv"}, c.args...)...)
		if r.err != nil {
			t.Fatalf("%v: %v\n%s", c.args, r.err, r.stderr)
		}
		if !strings.Contains(r.stderr, c.line) {
			t.Errorf("%v: the settings line does not say %q:\n%s", c.args, c.line, r.stderr)
		}
		repo := must(acct.ECR().DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{})).Repositories[0]
		var filters []string
		for _, f := range repo.ImageTagMutabilityExclusionFilters {
			filters = append(filters, aws.ToString(f.Filter))
		}
		sort.Strings(filters)
		if strings.Join(filters, ",") != c.filters {
			t.Errorf("%v: exclusion filters %v, want %s", c.args, filters, c.filters)
		}
		// A rerun asks for nothing new.
		acct.ResetCalls()
		if again := runSetupCmd(t, acct, c.args...); again.err != nil || len(acct.Mutating()) != 0 {
			t.Errorf("%v: rerun changed %v: %v", c.args, acct.Mutating(), again.err)
		}
	}
}
