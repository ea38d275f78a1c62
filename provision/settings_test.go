package provision

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

func yes(b bool) *bool { return &b }
func num(n int) *int   { return &n }

// everySetting asks for every repository setting, the key by its alias.
func everySetting() resource.Settings {
	return resource.Settings{
		ScanOnPush: yes(true), ImmutableTags: yes(true), MutableTags: []string{"latest", "dev-*"},
		KeepImages: num(10), ExpireUntaggedDays: num(7), KMSKey: "alias/ecr-images",
	}
}

func withSettings(s resource.Settings) Options {
	o := defaults()
	o.Settings = s
	return o
}

func (e *env) withKMS() *env {
	e.p.KMS = e.acct.KMS()
	return e
}

// described is the repository as ECR describes it.
func described(t *testing.T, a *awsfake.Account) ecrtypes.Repository {
	t.Helper()
	out, err := a.ECR().DescribeRepositories(bg, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{names.Repository}})
	if err != nil || len(out.Repositories) != 1 {
		t.Fatalf("describing the repository: %v", err)
	}
	return out.Repositories[0]
}

// lifecycleText is the repository's lifecycle policy, "" for none.
func lifecycleText(t *testing.T, a *awsfake.Account) string {
	t.Helper()
	out, err := a.ECR().GetLifecyclePolicy(bg, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(names.Repository)})
	var none *ecrtypes.LifecyclePolicyNotFoundException
	if errors.As(err, &none) {
		return ""
	}
	if err != nil {
		t.Fatalf("reading the lifecycle policy: %v", err)
	}
	return aws.ToString(out.LifecyclePolicyText)
}

func filters(r ecrtypes.Repository) string {
	var out []string
	for _, f := range r.ImageTagMutabilityExclusionFilters {
		out = append(out, aws.ToString(f.Filter)+"/"+string(f.FilterType))
	}
	return strings.Join(out, ",")
}

// TestSettingsCreatedWithTheRepositoryThenRerun: a new repository gets
// every setting in CreateRepository, the lifecycle policy right after; a
// rerun reads the lifecycle policy and the key beside the other first
// reads (no extra round) and writes nothing.
func TestSettingsCreatedWithTheRepositoryThenRerun(t *testing.T) {
	e := newEnv(t, awsfake.Config{}).withKMS()
	keyARN := e.acct.AddKMSKey("alias/ecr-images")
	e.acct.SetLatency(50 * time.Millisecond)
	res := e.run(t, withSettings(everySetting()))

	r := described(t, e.acct)
	if !r.ImageScanningConfiguration.ScanOnPush || r.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutableWithExclusion ||
		filters(r) != "latest/WILDCARD,dev-*/WILDCARD" || r.EncryptionConfiguration.EncryptionType != ecrtypes.EncryptionTypeKms ||
		aws.ToString(r.EncryptionConfiguration.KmsKey) != keyARN {
		t.Errorf("repository created as %+v (filters %s, encryption %+v)", r, filters(r), r.EncryptionConfiguration)
	}
	want, _ := policies.LifecyclePolicy(policies.Retention{KeepImages: 10, ExpireUntaggedDays: 7})
	if same, err := policies.LifecycleEquivalent(lifecycleText(t, e.acct), want); !same || err != nil {
		t.Errorf("lifecycle policy %s, want %s", lifecycleText(t, e.acct), want.JSON())
	}
	if got := strings.Join(e.acct.Mutating(), " "); countOp(e.acct.Mutating(), "ecr.CreateRepository") != 1 || countOp(e.acct.Mutating(), "ecr.PutLifecyclePolicy") != 1 ||
		strings.Contains(got, "PutImageScanningConfiguration") || strings.Contains(got, "PutImageTagMutability") {
		t.Errorf("the settings should come with CreateRepository, the lifecycle policy after it: %s", got)
	}
	settings := report(res, resource.KindSettings)
	if settings == nil || settings.Status != resource.Created {
		t.Fatalf("settings report: %+v", settings)
	}
	wantChanges := "scan on push: on; tags: immutable except dev-*, latest; lifecycle: keep the 10 images most recently pushed; expire untagged images 7 days after their push; encryption: KMS key " + keyARN
	if got := strings.Join(settings.Changes, "; "); got != wantChanges {
		t.Errorf("settings changes:\n got %s\nwant %s", got, wantChanges)
	}
	if s := settings.Settings; s == nil || !s.ScanOnPush || s.Lifecycle == nil || *s.Lifecycle != (policies.Retention{KeepImages: 10, ExpireUntaggedDays: 7}) || s.KMSKey != keyARN {
		t.Errorf("settings state: %+v", settings.Settings)
	}

	e.acct.ResetCalls()
	again := e.run(t, withSettings(everySetting()))
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("rerun made mutating calls: %v", m)
	}
	calls, rounds := len(e.acct.Calls()), e.acct.Rounds()
	t.Logf("rerun with every setting: %d calls, %d rounds: %s", calls, rounds, strings.Join(e.acct.Ops(), " "))
	if calls != 10 || rounds != 2 {
		t.Errorf("rerun made %d calls in %d rounds, want 10 (8 + GetLifecyclePolicy + DescribeKey) in 2", calls, rounds)
	}
	if got := report(again, resource.KindSettings); got.Status != resource.Unchanged || len(got.Changes) != 0 {
		t.Errorf("rerun settings: %s %v", got.Status, got.Changes)
	}
}

// TestSettingsNotAskedForAreNotRead: without a setting, setup neither
// shows nor reads the settings, and a plain rerun costs what it did.
func TestSettingsNotAskedForAreNotRead(t *testing.T) {
	e := newEnv(t, awsfake.Config{}).withKMS()
	e.run(t, withSettings(resource.Settings{ScanOnPush: yes(true)}))
	e.acct.ResetCalls()
	res := e.run(t, defaults())
	if report(res, resource.KindSettings) != nil {
		t.Error("a run asking for no setting reports settings")
	}
	if n := len(e.acct.Calls()); n != 8 || len(e.acct.Mutating()) != 0 {
		t.Errorf("plain rerun: %d calls (want 8), mutating %v", n, e.acct.Mutating())
	}
	if !described(t, e.acct).ImageScanningConfiguration.ScanOnPush {
		t.Error("a setting not given was changed")
	}
	// Scanning alone: no lifecycle read, no KMS call.
	e.acct.ResetCalls()
	e.run(t, withSettings(resource.Settings{ScanOnPush: yes(true)}))
	if ops := strings.Join(e.acct.Ops(), " "); strings.Contains(ops, "GetLifecyclePolicy") || strings.Contains(ops, "kms.") {
		t.Errorf("reads for settings not asked for: %s", ops)
	}
}

// TestSettingDriftRepairedOneWriteEach: each setting changed behind
// setup's back is corrected with exactly its own write, and only that
// setting's line says so.
func TestSettingDriftRepairedOneWriteEach(t *testing.T) {
	name := aws.String(names.Repository)
	otherLifecycle, _ := policies.LifecyclePolicy(policies.Retention{KeepImages: 3})
	cases := []struct {
		name   string
		drift  func(t *testing.T, e *env)
		write  string
		change string
	}{
		{"scan on push turned off", func(t *testing.T, e *env) {
			must(e.acct.ECR().PutImageScanningConfiguration(bg, &ecr.PutImageScanningConfigurationInput{RepositoryName: name,
				ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: false}}))
		}, "ecr.PutImageScanningConfiguration", "scan on push: on (was off)"},
		{"tags made mutable", func(t *testing.T, e *env) {
			must(e.acct.ECR().PutImageTagMutability(bg, &ecr.PutImageTagMutabilityInput{RepositoryName: name, ImageTagMutability: ecrtypes.ImageTagMutabilityMutable}))
		}, "ecr.PutImageTagMutability", "tags: immutable except dev-*, latest (was mutable)"},
		{"an exclusion filter dropped", func(t *testing.T, e *env) {
			must(e.acct.ECR().PutImageTagMutability(bg, &ecr.PutImageTagMutabilityInput{RepositoryName: name, ImageTagMutability: ecrtypes.ImageTagMutabilityImmutableWithExclusion,
				ImageTagMutabilityExclusionFilters: []ecrtypes.ImageTagMutabilityExclusionFilter{{Filter: aws.String("latest"), FilterType: ecrtypes.ImageTagMutabilityExclusionFilterTypeWildcard}}}))
		}, "ecr.PutImageTagMutability", "tags: immutable except dev-*, latest (was immutable except latest)"},
		{"lifecycle count edited", func(t *testing.T, e *env) {
			must(e.acct.ECR().PutLifecyclePolicy(bg, &ecr.PutLifecyclePolicyInput{RepositoryName: name, LifecyclePolicyText: aws.String(otherLifecycle.JSON())}))
		}, "ecr.PutLifecyclePolicy", "lifecycle: keep the 10 images most recently pushed; expire untagged images 7 days after their push (was keep the 3 images most recently pushed)"},
		{"lifecycle policy deleted", func(t *testing.T, e *env) {
			must(e.acct.ECR().DeleteLifecyclePolicy(bg, &ecr.DeleteLifecyclePolicyInput{RepositoryName: name}))
		}, "ecr.PutLifecyclePolicy", "lifecycle: keep the 10 images most recently pushed; expire untagged images 7 days after their push (was none)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, awsfake.Config{}).withKMS()
			e.acct.AddKMSKey("alias/ecr-images")
			e.run(t, withSettings(everySetting()))
			c.drift(t, e)
			e.acct.ResetCalls()
			res := e.run(t, withSettings(everySetting()))
			if got := strings.Join(e.acct.Mutating(), " "); got != c.write {
				t.Errorf("repair wrote %q, want %q", got, c.write)
			}
			rep := report(res, resource.KindSettings)
			if rep.Status != resource.Updated || strings.Join(rep.Changes, "; ") != c.change {
				t.Errorf("settings: %s %q, want updated %q", rep.Status, rep.Changes, c.change)
			}
			e.acct.ResetCalls()
			e.run(t, withSettings(everySetting()))
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Errorf("the run after the repair still writes: %v", m)
			}
		})
	}
}

// TestChangedSettingsOneWriteEach: a rerun with other values writes each
// changed setting once; the dry run before it writes nothing and says the
// same.
func TestChangedSettingsOneWriteEach(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	first := resource.Settings{ScanOnPush: yes(false), ImmutableTags: yes(false), KeepImages: num(5)}
	e.run(t, withSettings(first))
	second := resource.Settings{ScanOnPush: yes(true), ImmutableTags: yes(true), KeepImages: num(5), ExpireUntaggedDays: num(1)}
	dry := withSettings(second)
	dry.DryRun = true
	e.acct.ResetCalls()
	planned := e.run(t, dry)
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("dry run wrote: %v", m)
	}
	plan := report(planned, resource.KindSettings)
	if plan.Status != resource.WouldUpdate || len(plan.Changes) != 3 {
		t.Errorf("dry run: %s %q", plan.Status, plan.Changes)
	}
	e.acct.ResetCalls()
	res := e.run(t, withSettings(second))
	for _, op := range []string{"ecr.PutImageScanningConfiguration", "ecr.PutImageTagMutability", "ecr.PutLifecyclePolicy"} {
		if n := countOp(e.acct.Mutating(), op); n != 1 {
			t.Errorf("%s made %d times, want once: %v", op, n, e.acct.Mutating())
		}
	}
	// Scanning on push also lets CI read the findings: the policy's new
	// version, and its tags.
	if got := strings.Join(e.acct.Mutating(), " "); len(e.acct.Mutating()) != 5 || countOp(e.acct.Mutating(), "iam.CreatePolicyVersion") != 1 {
		t.Errorf("writes: %s", got)
	}
	if got := report(res, resource.KindSettings); got.Status != resource.Updated || strings.Join(got.Changes, "; ") != strings.Join(plan.Changes, "; ") {
		t.Errorf("run says %q, its dry run said %q", got.Changes, plan.Changes)
	}
	r := described(t, e.acct)
	if !r.ImageScanningConfiguration.ScanOnPush || r.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutable {
		t.Errorf("repository: %+v", r)
	}
}

// TestLifecycleRulesAreSetupsOwn: a rule not asked for is kept; 0 removes
// a rule, and the policy with the last one; a policy with rules setup did
// not write is left alone, with a warning.
func TestLifecycleRulesAreSetupsOwn(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, withSettings(resource.Settings{KeepImages: num(10), ExpireUntaggedDays: num(7)}))

	// Only the keep rule asked for: the untagged rule stays.
	e.acct.ResetCalls()
	e.run(t, withSettings(resource.Settings{KeepImages: num(20)}))
	if r, ours := policies.SetupRetention(lifecycleText(t, e.acct)); !ours || r != (policies.Retention{KeepImages: 20, ExpireUntaggedDays: 7}) {
		t.Errorf("after --keep-images 20: %+v %v", r, ours)
	}
	// --keep-images 0 removes that rule only.
	e.run(t, withSettings(resource.Settings{KeepImages: num(0)}))
	if r, ours := policies.SetupRetention(lifecycleText(t, e.acct)); !ours || r != (policies.Retention{ExpireUntaggedDays: 7}) {
		t.Errorf("after --keep-images 0: %+v %v", r, ours)
	}
	// The last rule removed: the policy goes.
	e.acct.ResetCalls()
	res := e.run(t, withSettings(resource.Settings{ExpireUntaggedDays: num(0), KeepImages: num(0)}))
	if lifecycleText(t, e.acct) != "" || strings.Join(e.acct.Mutating(), " ") != "ecr.DeleteLifecyclePolicy" {
		t.Errorf("policy %q after removing every rule; writes %v", lifecycleText(t, e.acct), e.acct.Mutating())
	}
	if got := report(res, resource.KindSettings).Changes; len(got) != 1 || got[0] != "lifecycle: none (was expire untagged images 7 days after their push)" {
		t.Errorf("changes: %q", got)
	}
	// And with none left, asking for none changes nothing.
	e.acct.ResetCalls()
	e.run(t, withSettings(resource.Settings{KeepImages: num(0)}))
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Errorf("nothing to remove, yet: %v", m)
	}

	// Someone's own policy is never replaced or deleted.
	handMade := `{"rules":[{"rulePriority":1,"description":"keep prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}}]}`
	must(e.acct.ECR().PutLifecyclePolicy(bg, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(names.Repository), LifecyclePolicyText: aws.String(handMade)}))
	for _, s := range []resource.Settings{{KeepImages: num(10)}, {KeepImages: num(0)}} {
		e.acct.ResetCalls()
		res := e.run(t, withSettings(s))
		if m := e.acct.Mutating(); len(m) != 0 || lifecycleText(t, e.acct) != handMade {
			t.Errorf("%+v: a hand-made lifecycle policy was touched: %v", s, m)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "aws ecr delete-lifecycle-policy --repository-name "+names.Repository) {
			t.Errorf("warnings: %q", res.Warnings)
		}
		if rep := report(res, resource.KindSettings); rep.Status != resource.Unchanged || rep.Settings.Lifecycle != nil || !rep.Settings.LifecycleForeign {
			t.Errorf("settings: %s %+v", rep.Status, rep.Settings)
		}
	}
}

// TestKMSKeyIsSetOnlyAtCreation: a different key on an existing
// repository cannot be corrected in place: the other settings are, and the
// run fails saying what to do; the key asked for by alias matches the
// key's ARN that ECR reports.
func TestKMSKeyIsSetOnlyAtCreation(t *testing.T) {
	e := newEnv(t, awsfake.Config{}).withKMS()
	keyARN := e.acct.AddKMSKey("alias/ecr-images")
	e.acct.AddKMSKey("alias/other")
	e.run(t, withSettings(resource.Settings{KMSKey: keyARN}))

	// The same key, by alias: nothing to do.
	e.acct.ResetCalls()
	e.run(t, withSettings(resource.Settings{KMSKey: "alias/ecr-images"}))
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Errorf("the same key by its alias: %v", m)
	}

	// Another key, with a scan setting to correct.
	e.acct.ResetCalls()
	res, err := e.p.Run(bg, withSettings(resource.Settings{KMSKey: "alias/other", ScanOnPush: yes(true)}))
	if err == nil {
		t.Fatal("another key on an existing repository: want an error")
	}
	if got := ecrWrites(e.acct); got != "ecr.PutImageScanningConfiguration" {
		t.Errorf("writes %q: the other settings must still be corrected", got)
	}
	var re *resource.Error
	if !errors.As(err, &re) || re.Next != hint.RecreateRepository || !strings.Contains(err.Error(), "only when it creates") {
		t.Errorf("error: %v", err)
	}
	rep := report(res, resource.KindSettings)
	if rep.Status != resource.Failed || !strings.Contains(strings.Join(rep.Changes, "; "), "not KMS key alias/other") {
		t.Errorf("settings: %s %q", rep.Status, rep.Changes)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "cannot change that in place") {
		t.Errorf("warnings: %q", res.Warnings)
	}

	// A key that does not exist stops setup before anything is created.
	e2 := newEnv(t, awsfake.Config{}).withKMS()
	_, err = e2.p.Run(bg, withSettings(resource.Settings{KMSKey: "alias/missing"}))
	if err == nil || !strings.Contains(err.Error(), "alias/missing") || len(e2.acct.Mutating()) != 0 {
		t.Errorf("missing key: err %v, writes %v", err, e2.acct.Mutating())
	}
}

// TestUnmanagedRepositorySettingsAreLeftAlone: a hand-made repository's
// settings are reported as differing, with a warning, never written.
func TestUnmanagedRepositorySettingsAreLeftAlone(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	seed(t, e.acct, pRepo, false)
	e.acct.ResetCalls()
	res := e.run(t, withSettings(resource.Settings{ScanOnPush: yes(true), KeepImages: num(3)}))
	for _, op := range e.acct.Mutating() {
		if strings.HasPrefix(op, "ecr.") {
			t.Errorf("wrote to a hand-made repository: %s", op)
		}
	}
	rep := report(res, resource.KindSettings)
	if rep.Status != resource.Unmanaged || rep.Managed || len(rep.Changes) != 2 {
		t.Errorf("settings: %s managed=%v %q", rep.Status, rep.Managed, rep.Changes)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "not managed by containerise") {
		t.Errorf("warnings: %q", res.Warnings)
	}
}

// TestSettingsRefusedBeforeAnyCall: bad values are usage errors (exit 2)
// before any call.
func TestSettingsRefusedBeforeAnyCall(t *testing.T) {
	for _, c := range []struct {
		name string
		s    resource.Settings
		want string
	}{
		{"negative count", resource.Settings{KeepImages: num(-1)}, "negative"},
		{"negative days", resource.Settings{ExpireUntaggedDays: num(-3)}, "negative"},
		{"a pattern ECR refuses", resource.Settings{ImmutableTags: yes(true), MutableTags: []string{"v[0-9]"}}, "tag pattern"},
		{"patterns without immutable tags", resource.Settings{MutableTags: []string{"latest"}}, "immutable"},
		{"six patterns", resource.Settings{ImmutableTags: yes(true), MutableTags: []string{"a", "b", "c", "d", "e", "f"}}, "at most 5"},
		{"not an alias", resource.Settings{KMSKey: "my-key"}, "alias/NAME"},
		{"a key of another region", resource.Settings{KMSKey: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}, "eu-west-1"},
	} {
		e := newEnv(t, awsfake.Config{}).withKMS()
		_, err := e.p.Run(bg, withSettings(c.s))
		var u *clierror.UsageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want a usage error about %q", c.name, err, c.want)
		}
		if n := len(e.acct.Calls()); n != 0 {
			t.Errorf("%s: %d calls before the refusal", c.name, n)
		}
	}
}

// TestSettingsFailureThenRerunConverges: a write that fails fails the
// settings (and setup), and the next run makes it.
func TestSettingsFailureThenRerunConverges(t *testing.T) {
	for _, op := range []string{"ecr.CreateRepository", "ecr.PutLifecyclePolicy", "kms.DescribeKey", "ecr.GetLifecyclePolicy"} {
		t.Run(op, func(t *testing.T) {
			e := newEnv(t, awsfake.Config{}).withKMS()
			e.acct.AddKMSKey("alias/ecr-images")
			e.acct.FailOperationTimes(op, 1, awsfake.ServerError())
			if _, err := e.p.Run(bg, withSettings(everySetting())); err == nil {
				t.Fatalf("%s failed, yet setup succeeded", op)
			}
			e.acct.ResetCalls()
			res := e.run(t, withSettings(everySetting()))
			if st := report(res, resource.KindSettings).Status; st != resource.Created && st != resource.Updated {
				t.Errorf("rerun: settings %s", st)
			}
			if lifecycleText(t, e.acct) == "" || !described(t, e.acct).ImageScanningConfiguration.ScanOnPush {
				t.Error("the rerun did not converge")
			}
			e.acct.ResetCalls()
			e.run(t, withSettings(everySetting()))
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Errorf("third run writes: %v", m)
			}
		})
	}
}

// ecrWrites are the mutating ECR calls made so far.
func ecrWrites(a *awsfake.Account) string {
	var out []string
	for _, op := range a.Mutating() {
		if strings.HasPrefix(op, "ecr.") {
			out = append(out, op)
		}
	}
	return strings.Join(out, " ")
}

func policyGrants(t *testing.T, a *awsfake.Account, action string) bool {
	t.Helper()
	pol := must(a.IAM().GetPolicy(bg, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)}))
	v := must(a.IAM().GetPolicyVersion(bg, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: pol.Policy.DefaultVersionId}))
	doc, err := url.QueryUnescape(aws.ToString(v.PolicyVersion.Document))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(doc, `"`+action+`"`)
}

// TestScanGrantFollowsTheRepository: CI may read scan findings while the
// repository scans on push, whether this run asked for scanning or left it
// as it was; a rerun that leaves it keeps the grant without reading the
// policy's document.
func TestScanGrantFollowsTheRepository(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, withSettings(resource.Settings{ScanOnPush: yes(true)}))
	if !policyGrants(t, e.acct, "ecr:DescribeImageScanFindings") || policyGrants(t, e.acct, "ecr:StartImageScan") {
		t.Fatal("--scan-on-push: the policy does not let CI read the findings (and only that)")
	}

	// Scanning not asked for: the repository still scans, the grant stays.
	e.acct.ResetCalls()
	res := e.run(t, defaults())
	if m := e.acct.Mutating(); len(m) != 0 || len(e.acct.Calls()) != 8 {
		t.Errorf("plain rerun on a scanning repository: %d calls, writes %v", len(e.acct.Calls()), m)
	}
	if st := report(res, resource.KindPolicy).Status; st != resource.Unchanged {
		t.Errorf("policy %s", st)
	}

	// Scanning turned off by hand: the grant goes, the repository is left.
	must(e.acct.ECR().PutImageScanningConfiguration(bg, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String(names.Repository),
		ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: false}}))
	e.acct.ResetCalls()
	e.run(t, defaults())
	if policyGrants(t, e.acct, "ecr:DescribeImageScanFindings") || ecrWrites(e.acct) != "" {
		t.Errorf("repository no longer scans: grant kept, or ECR written: %v", e.acct.Mutating())
	}

	// --allow-scan grants both, whatever the repository does.
	o := defaults()
	o.Grants.StartScan = true
	e.run(t, o)
	if !policyGrants(t, e.acct, "ecr:DescribeImageScanFindings") || !policyGrants(t, e.acct, "ecr:StartImageScan") {
		t.Error("--allow-scan: the policy lacks the scan gate's actions")
	}
}
