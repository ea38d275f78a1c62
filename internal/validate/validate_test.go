package validate

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/clierror"
)

func TestRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name  string
		check func() error
		ok    bool
	}{
		{"repo default", func() error { return Repository("--repository", "circleci-ecr-test") }, true},
		{"repo with namespace", func() error { return Repository("--repository", "team/app.v2") }, true},
		{"repo uppercase", func() error { return Repository("--repository", "Circleci") }, false},
		{"repo one char", func() error { return Repository("--repository", "a") }, false},
		{"repo double dash", func() error { return Repository("--repository", "a--b") }, false},
		{"repo trailing slash", func() error { return Repository("--repository", "ab/") }, false},
		{"repo too long", func() error { return Repository("--repository", long(257)) }, false},
		{"user", func() error { return UserName("--user", "ci+bot@x.y=z,w_-") }, true},
		{"user space", func() error { return UserName("--user", "ci bot") }, false},
		{"user 65", func() error { return UserName("--user", long(65)) }, false},
		{"role empty", func() error { return RoleName("--role", "") }, false},
		{"policy 128", func() error { return PolicyName("--policy", long(128)) }, true},
		{"policy 129", func() error { return PolicyName("--policy", long(129)) }, false},
		{"region", func() error { return Region("--region", "eu-west-2") }, true},
		{"region gov", func() error { return Region("--region", "us-gov-west-1") }, true},
		{"region bad", func() error { return Region("--region", "mars") }, false},
		{"account", func() error { return AccountID("--account", "123456789012") }, true},
		{"account short", func() error { return AccountID("--account", "12345") }, false},
		{"role arn", func() error { return RoleARN("AWS_IAM_ROLE_ARN", "arn:aws:iam::123456789012:role/containerise") }, true},
		{"role arn with path", func() error { return RoleARN("AWS_IAM_ROLE_ARN", "arn:aws:iam::123456789012:role/ci/containerise") }, true},
		{"user arn", func() error { return RoleARN("AWS_IAM_ROLE_ARN", "arn:aws:iam::123456789012:user/circleci") }, false},
		{"role arn bad account", func() error { return RoleARN("AWS_IAM_ROLE_ARN", "arn:aws:iam::1234:role/x") }, false},
		{"tag", func() error { return Tag("--tag", "v1.2_3-rc") }, true},
		{"tag leading dot", func() error { return Tag("--tag", ".v1") }, false},
		{"tag colon", func() error { return Tag("--tag", "v1:2") }, false},
		{"tag 129", func() error { return Tag("--tag", long(129)) }, false},
		{"key id", func() error { return AccessKeyID("AWS_IAM_USER_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE") }, true},
		{"key id lower", func() error { return AccessKeyID("AWS_IAM_USER_ACCESS_KEY_ID", "akia") }, false},
		{"tag filter", func() error { return TagFilter("--mutable-tag", "latest") }, true},
		{"tag filter wildcard", func() error { return TagFilter("--mutable-tag", "dev-*") }, true},
		{"tag filter slash", func() error { return TagFilter("--mutable-tag", "dev/x") }, false},
		{"tag filter regex", func() error { return TagFilter("--mutable-tag", "v[0-9]+") }, false},
		{"tag filter empty", func() error { return TagFilter("--mutable-tag", "") }, false},
		{"tag filter 129", func() error { return TagFilter("--mutable-tag", long(129)) }, false},
		{"kms alias", func() error { return KMSKey("--kms-key", "alias/ecr-images", "us-east-1") }, true},
		{"kms aws alias", func() error { return KMSKey("--kms-key", "alias/aws/ecr", "us-east-1") }, true},
		{"kms key arn", func() error {
			return KMSKey("--kms-key", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1")
		}, true},
		{"kms multi-region key arn", func() error {
			return KMSKey("--kms-key", "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", "")
		}, true},
		{"kms alias arn", func() error { return KMSKey("--kms-key", "arn:aws:kms:us-east-1:123456789012:alias/ecr", "us-east-1") }, true},
		{"kms key in another region", func() error {
			return KMSKey("--kms-key", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1")
		}, false},
		{"kms bare alias name", func() error { return KMSKey("--kms-key", "ecr-images", "us-east-1") }, false},
		{"kms bare key id", func() error { return KMSKey("--kms-key", "1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1") }, false},
		{"kms alias with space", func() error { return KMSKey("--kms-key", "alias/my key", "us-east-1") }, false},
		{"kms s3 arn", func() error { return KMSKey("--kms-key", "arn:aws:s3:::bucket", "us-east-1") }, false},
	}
	for _, c := range cases {
		err := c.check()
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if err != nil {
			var u *clierror.UsageError
			if !errors.As(err, &u) {
				t.Errorf("%s: %v is not a usage error (exit 2)", c.name, err)
			}
		}
	}
}

func TestMessageNamesFlagAndRule(t *testing.T) {
	err := Repository("--repository", "Bad")
	if !strings.Contains(err.Error(), "--repository") || !strings.Contains(err.Error(), "lowercase") {
		t.Errorf("message %q should name the flag and the rule", err)
	}
	if err := UserName("--user", ""); !strings.Contains(err.Error(), "--user is empty") {
		t.Errorf("empty message %q", err)
	}
}

func TestCircleCIIDsAndBranches(t *testing.T) {
	const org = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	for _, c := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"uuid", UUID("--circleci-org-id", org, "x"), true},
		{"uuid upper case", UUID("--circleci-org-id", strings.ToUpper(org), "x"), true},
		{"uuid without dashes", UUID("--circleci-org-id", strings.ReplaceAll(org, "-", ""), "x"), false},
		{"org slug", UUID("--circleci-org-id", "gh/acme", "x"), false},
		{"uuid empty", UUID("--circleci-org-id", "", "x"), false},
	} {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
	for name, ok := range map[string]bool{
		"main": true, "release/v1.2": true, "feature/JIRA-12_x": true, "refs/heads/main": true, "a$b": true, "ünïcode": true,
		"": false, "HEAD": false, "@": false, "-x": false, "/x": false, "x/": false, "a//b": false, "x.": false, "a..b": false,
		"a@{1}": false, "a b": false, "a~1": false, "a^": false, "a:b": false, "a?": false, "a*": false, "a[b": false, `a\b`: false,
		"a\tb": false, "a\x7fb": false, ".hidden": false, "a/.b": false, "x.lock": false, "a/b.lock/c": false, "refs/heads/": false,
	} {
		err := Branch("--branch", name)
		if (err == nil) != ok {
			t.Errorf("Branch(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--branch") {
			t.Errorf("Branch(%q): the error does not name the flag: %v", name, err)
		}
	}
}

// A branch whose ref holds CircleCI's subject separator could never pass
// the trust's guard: it is refused up front, as a usage error.
func TestBranchWithCircleCISeparatorIsRefused(t *testing.T) {
	for _, b := range []string{"x/vcs-ref/refs/heads/main", "vcs-ref/main", "refs/heads/vcs-ref/x"} {
		err := Branch("--branch", b)
		if err == nil || clierror.Code(err) != clierror.ExitUsage || !strings.Contains(err.Error(), "/vcs-ref/") {
			t.Errorf("--branch %q: %v", b, err)
		}
	}
	for _, b := range []string{"main", "release/vcs-refs", "vcs-ref"} {
		if err := Branch("--branch", b); err != nil {
			t.Errorf("--branch %q refused: %v", b, err)
		}
	}
}
