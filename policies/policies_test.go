package policies

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

var target = Target{Region: "us-east-1", AccountID: "123456789012", Repository: "circleci-ecr-test"}

func TestPermissionsMatchTheBlog(t *testing.T) {
	doc := Permissions(target, PermissionOptions{Set: Blog})
	repoARN := "arn:aws:ecr:us-east-1:123456789012:repository/circleci-ecr-test"
	if len(doc.Statement) != 3 {
		t.Fatalf("want the blog's 3 statements, got %d", len(doc.Statement))
	}
	push := doc.Statement[0]
	if len(push.Action) != 14 || push.Resource[0] != repoARN {
		t.Errorf("push statement: %d actions on %v, want 14 on %s", len(push.Action), push.Resource, repoARN)
	}
	if got := doc.Statement[1]; got.Action[0] != "ecr:GetAuthorizationToken" || got.Resource[0] != "*" {
		t.Errorf("token statement = %+v", got)
	}
	if got := doc.Statement[2]; got.Action[0] != "ecr:BatchCheckLayerAvailability" || got.Resource[0] != repoARN {
		t.Errorf("layer check statement = %+v", got)
	}
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			if a == "ecr:DescribeImages" {
				t.Errorf("DescribeImages granted without the option")
			}
		}
	}
	with := Permissions(target, PermissionOptions{Set: Blog, AllowDescribeImages: true})
	if last := with.Statement[len(with.Statement)-1]; last.Action[0] != "ecr:DescribeImages" || last.Resource[0] != repoARN {
		t.Errorf("AllowDescribeImages statement = %+v", last)
	}
}

func TestJSONIsValidAndUsesIAMShapes(t *testing.T) {
	text := Permissions(target, PermissionOptions{}).JSON()
	var raw map[string]any
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, text)
	}
	// A single action or resource is written as a bare string, like the blog.
	if !strings.Contains(text, `"Action": "ecr:GetAuthorizationToken"`) || !strings.Contains(text, `"Resource": "*"`) {
		t.Errorf("single values should be strings:\n%s", text)
	}
	trust := Trust("arn:aws:iam::123456789012:user/circleci").JSON()
	if !strings.Contains(trust, `"AWS": "arn:aws:iam::123456789012:user/circleci"`) || !strings.Contains(trust, `"Action": "sts:AssumeRole"`) {
		t.Errorf("trust policy:\n%s", trust)
	}
}

func TestEquivalentIgnoresLayoutNotContent(t *testing.T) {
	want := Trust("arn:aws:iam::123456789012:user/circleci")
	cases := []struct {
		name string
		have string
		same bool
	}{
		{"same", want.JSON(), true},
		{"url-encoded as GetRole returns it", url.QueryEscape(want.JSON()), true},
		{"list instead of string", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/circleci"]},"Action":["sts:AssumeRole"]}]}`, true},
		{"other user", Trust("arn:aws:iam::123456789012:user/someone").JSON(), false},
		{"extra statement", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/circleci"},"Action":"sts:AssumeRole"},{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, false},
	}
	for _, c := range cases {
		got, err := Equivalent(c.have, want)
		if err != nil || got != c.same {
			t.Errorf("%s: Equivalent = %v, %v; want %v", c.name, got, err, c.same)
		}
	}
	reordered := Permissions(target, PermissionOptions{Set: Blog})
	reordered.Statement[0].Action = append(Values(nil), reordered.Statement[0].Action...)
	a := reordered.Statement[0].Action
	a[0], a[len(a)-1] = a[len(a)-1], a[0]
	reordered.Statement[0], reordered.Statement[2] = reordered.Statement[2], reordered.Statement[0]
	if same, _ := Equivalent(reordered.JSON(), Permissions(target, PermissionOptions{Set: Blog})); !same {
		t.Errorf("reordered actions and statements should be equivalent")
	}
	if _, err := Equivalent("%zz", want); err == nil {
		t.Errorf("garbage should not parse")
	}
}

func TestARNsFollowThePartition(t *testing.T) {
	if got := PartitionOf("cn-north-1"); got != "aws-cn" {
		t.Errorf("cn-north-1 partition = %s", got)
	}
	if got := PartitionOf("us-gov-west-1"); got != "aws-us-gov" {
		t.Errorf("us-gov-west-1 partition = %s", got)
	}
	doc := Permissions(Target{Region: "cn-north-1", AccountID: "123456789012", Repository: "r1"}, PermissionOptions{})
	if got := doc.Statement[0].Resource[0]; got != "arn:aws-cn:ecr:cn-north-1:123456789012:repository/r1" {
		t.Errorf("repository ARN = %s", got)
	}
}

func TestDigestIgnoresLayoutNotContent(t *testing.T) {
	want := Permissions(target, PermissionOptions{Set: Blog})
	d := want.Digest()
	if len(d) != 64 || strings.Trim(d, "0123456789abcdef") != "" {
		t.Fatalf("digest %q is not hex SHA-256", d)
	}
	if again := Permissions(target, PermissionOptions{Set: Blog}).Digest(); again != d {
		t.Fatalf("digest not stable: %s then %s", d, again)
	}
	parse := func(text string) Document {
		t.Helper()
		doc, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}

	// Same grants, written differently: same digest.
	reordered := Permissions(target, PermissionOptions{Set: Blog})
	a := append(Values(nil), reordered.Statement[0].Action...)
	a[0], a[len(a)-1] = a[len(a)-1], a[0]
	reordered.Statement[0].Action = a
	reordered.Statement[0], reordered.Statement[2] = reordered.Statement[2], reordered.Statement[0]
	trust := Trust("arn:aws:iam::123456789012:user/circleci")
	for name, c := range map[string]struct{ doc, of Document }{
		"reordered actions and statements": {reordered, want},
		"URL-encoded, as IAM returns it":   {parse(url.QueryEscape(want.JSON())), want},
		"list instead of string": {parse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/circleci"]},"Action":["sts:AssumeRole"]}]}`),
			trust},
	} {
		if c.doc.Digest() != c.of.Digest() {
			t.Errorf("%s: digest changed", name)
		}
	}

	// Different grants: different digest.
	other := target
	other.Repository = "other"
	dropped := Permissions(target, PermissionOptions{})
	dropped.Statement[0].Action = dropped.Statement[0].Action[1:]
	deny := Permissions(target, PermissionOptions{})
	deny.Statement[1].Effect = "Deny"
	for name, doc := range map[string]Document{
		"DescribeImages added": Permissions(target, PermissionOptions{AllowDescribeImages: true}),
		"another repository":   Permissions(other, PermissionOptions{}),
		"an action dropped":    dropped,
		"allow becomes deny":   deny,
	} {
		if doc.Digest() == d {
			t.Errorf("%s: same digest", name)
		}
	}
	if trust.Digest() == Trust("arn:aws:iam::123456789012:user/someone").Digest() {
		t.Errorf("trust for another user: same digest")
	}
}

// The default is least privilege: what a push needs, and nothing that
// deletes or changes the repository's settings. Features add only reads.
func TestDefaultPermissionsAreLeastPrivilege(t *testing.T) {
	repoARN := "arn:aws:ecr:us-east-1:123456789012:repository/circleci-ecr-test"
	granted := func(d Document) map[string]string {
		out := map[string]string{}
		for _, s := range d.Statement {
			for _, a := range s.Action {
				out[a] = strings.Join(s.Resource, ",")
			}
		}
		return out
	}
	got := granted(Permissions(target, PermissionOptions{}))
	want := map[string]string{
		"ecr:BatchCheckLayerAvailability": repoARN, "ecr:InitiateLayerUpload": repoARN, "ecr:UploadLayerPart": repoARN,
		"ecr:CompleteLayerUpload": repoARN, "ecr:PutImage": repoARN, "ecr:GetAuthorizationToken": "*",
	}
	if len(got) != len(want) {
		t.Errorf("granted %v, want %v", got, want)
	}
	for a, r := range want {
		if got[a] != r {
			t.Errorf("%s on %q, want on %q", a, got[a], r)
		}
	}
	for a := range got {
		if strings.Contains(a, "Delete") || strings.Contains(a, "Put") && a != "ecr:PutImage" || strings.Contains(a, "Create") || strings.Contains(a, "Start") {
			t.Errorf("the default grants %s", a)
		}
	}
	all := granted(Permissions(target, PermissionOptions{AllowDescribeImages: true, RegistryCache: true}))
	for _, a := range []string{"ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"} {
		if all[a] != repoARN {
			t.Errorf("%s on %q, want on the repository", a, all[a])
		}
	}
	if len(all) != len(want)+3 {
		t.Errorf("features granted more than their reads: %v", all)
	}
	if _, err := ParseSet("root"); err == nil {
		t.Error("an unknown permission set was accepted")
	}
}

// The scan gate's grants: reading findings when the repository scans on
// push, also starting a scan when asked; both on the repository only, and
// neither by default.
func TestScanGatePermissions(t *testing.T) {
	repoARN := "arn:aws:ecr:us-east-1:123456789012:repository/circleci-ecr-test"
	actions := func(o PermissionOptions) map[string]string {
		out := map[string]string{}
		for _, s := range Permissions(target, o).Statement {
			if s.Sid == "ScanGate" {
				for _, a := range s.Action {
					out[a] = strings.Join(s.Resource, ",")
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		name string
		o    PermissionOptions
		want []string
	}{
		{"default", PermissionOptions{}, nil},
		{"findings", PermissionOptions{ScanFindings: true}, []string{"ecr:DescribeImageScanFindings"}},
		{"start", PermissionOptions{StartScan: true}, []string{"ecr:DescribeImageScanFindings", "ecr:StartImageScan"}},
		{"both", PermissionOptions{ScanFindings: true, StartScan: true}, []string{"ecr:DescribeImageScanFindings", "ecr:StartImageScan"}},
		{"blog base with findings", PermissionOptions{Set: Blog, ScanFindings: true}, []string{"ecr:DescribeImageScanFindings"}},
	} {
		got := actions(c.o)
		if len(got) != len(c.want) {
			t.Errorf("%s: granted %v, want %v", c.name, got, c.want)
		}
		for _, a := range c.want {
			if got[a] != repoARN {
				t.Errorf("%s: %s on %q, want on the repository", c.name, a, got[a])
			}
		}
	}
}

// TestCacheTagNeedsNoGrantOfItsOwn: push's registry cache is an image under
// a tag of the repository (buildcache). The role's statements cover the
// repository as a whole, with no condition on tags, so the push grant
// writes the cache and --registry-cache's reads import it.
func TestCacheTagNeedsNoGrantOfItsOwn(t *testing.T) {
	repoARN := "arn:aws:ecr:us-east-1:123456789012:repository/circleci-ecr-test"
	doc := Permissions(target, PermissionOptions{RegistryCache: true})
	granted := map[string]bool{}
	for _, s := range doc.Statement {
		if len(s.Condition) > 0 {
			t.Errorf("statement %s has a condition %v: the cache tag might fall outside it", s.Sid, s.Condition)
		}
		for _, a := range s.Action {
			if s.Resource[0] == repoARN {
				granted[a] = true
			}
		}
	}
	for _, a := range []string{"ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:BatchCheckLayerAvailability",
		"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"} {
		if !granted[a] {
			t.Errorf("%s is not granted on the repository, which the cache needs", a)
		}
	}
}
