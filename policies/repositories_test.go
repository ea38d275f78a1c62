package policies

import (
	"reflect"
	"strings"
	"testing"
)

func TestSeveralRepositoriesShareEveryRepositoryStatement(t *testing.T) {
	tg := Target{Region: "eu-west-1", AccountID: "123456789012", Repositories: []string{"api", "web"}}
	doc := Permissions(tg, PermissionOptions{AllowDescribeImages: true, RegistryCache: true, ScanFindings: true})
	want := Values{"arn:aws:ecr:eu-west-1:123456789012:repository/api", "arn:aws:ecr:eu-west-1:123456789012:repository/web"}
	for _, s := range doc.Statement {
		if s.Sid == "GetAuthorizationToken" {
			if !reflect.DeepEqual(s.Resource, Values{"*"}) {
				t.Errorf("token statement on %v", s.Resource)
			}
			continue
		}
		if !reflect.DeepEqual(s.Resource, want) {
			t.Errorf("statement %s on %v, want both repositories %v", s.Sid, s.Resource, want)
		}
	}
	if n := len(doc.Statement); n != 5 {
		t.Errorf("%d statements, want 5 (push, token, describe, cache, scan): one list of repositories each", n)
	}
	// One repository reads exactly as before: a bare string.
	one := Permissions(Target{Region: "eu-west-1", AccountID: "123456789012", Repositories: []string{"api"}}, PermissionOptions{})
	if !strings.Contains(one.JSON(), `"Resource": "arn:aws:ecr:eu-west-1:123456789012:repository/api"`) {
		t.Errorf("one repository not written as a string:\n%s", one.JSON())
	}
	if one.Digest() != Permissions(Target{Region: "eu-west-1", AccountID: "123456789012", Repository: "api"}, PermissionOptions{}).Digest() {
		t.Errorf("Repositories with one name differs from Repository")
	}
}

func TestRepositoriesReadFromTheDocument(t *testing.T) {
	doc := Permissions(Target{Region: "us-east-1", AccountID: "123456789012", Repositories: []string{"web", "api"}}, PermissionOptions{Set: Blog})
	doc.Statement = append(doc.Statement,
		Statement{Effect: "Allow", Action: Values{"ecr:PutImage"}, Resource: Values{"arn:aws:ecr:eu-west-1:123456789012:repository/team/app"}},
		Statement{Effect: "Allow", Action: Values{"ecr:PutImage"}, Resource: Values{"arn:aws:ecr:eu-west-1:123456789012:repository/*"}},
		Statement{Effect: "Deny", Action: Values{"ecr:PutImage"}, Resource: Values{"arn:aws:ecr:ap-south-1:123456789012:repository/denied"}},
	)
	var got []string
	for _, r := range doc.Repositories() {
		got = append(got, r.String())
	}
	want := []string{"eu-west-1/team/app", "us-east-1/api", "us-east-1/web"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("repositories %v, want %v (allowed, named, once each, region first)", got, want)
	}
	r, ok := ParseRepositoryARN("arn:aws-cn:ecr:cn-north-1:123456789012:repository/x")
	if !ok || r.Partition != "aws-cn" || r.Region != "cn-north-1" || r.Account != "123456789012" || r.Name != "x" {
		t.Errorf("parsed %+v %v", r, ok)
	}
	for _, bad := range []string{"*", "arn:aws:iam::123456789012:user/x", "arn:aws:ecr:us-east-1:123456789012:repository/"} {
		if _, ok := ParseRepositoryARN(bad); ok {
			t.Errorf("%q read as a repository", bad)
		}
	}
}

func TestDroppedNamesWhatCIWouldLose(t *testing.T) {
	doc := func(region string, names ...string) Document {
		return Permissions(Target{Region: region, AccountID: "123456789012", Repositories: names}, PermissionOptions{})
	}
	cases := []struct {
		name       string
		have, want Document
		dropped    []string
	}{
		{"same set", doc("eu-west-1", "a", "b"), doc("eu-west-1", "b", "a"), nil},
		{"a repository added", doc("eu-west-1", "a"), doc("eu-west-1", "a", "b"), nil},
		{"another repository instead", doc("eu-west-1", "a"), doc("eu-west-1", "b"), []string{"eu-west-1/a"}},
		{"the same name in another region", doc("eu-west-1", "my-app"), doc("us-east-1", "my-app"), []string{"eu-west-1/my-app"}},
		{"one of two", doc("eu-west-1", "a", "b"), doc("eu-west-1", "b"), []string{"eu-west-1/a"}},
	}
	for _, c := range cases {
		var got []string
		for _, r := range Dropped(c.have, c.want) {
			got = append(got, r.String())
		}
		if !reflect.DeepEqual(got, c.dropped) {
			t.Errorf("%s: dropped %v, want %v", c.name, got, c.dropped)
		}
	}
}
