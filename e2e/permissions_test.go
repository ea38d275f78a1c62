package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// grantsOf reads the default version of the setup's policy through the
// admin API, as action -> resources, parsed here (not with the product's
// own policies package, which is what is under test).
func grantsOf(t *testing.T) map[string][]string {
	t.Helper()
	c := awsClients(t)
	ctx := context.Background()
	arn := aws.String("arn:aws:iam::" + setupAccount(t, c) + ":policy/" + setupNames.policy)
	pol, err := c.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: arn})
	if err != nil {
		t.Fatalf("the policy: %v", err)
	}
	ver, err := c.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: pol.Policy.DefaultVersionId})
	if err != nil {
		t.Fatalf("its default version: %v", err)
	}
	text, _ := url.QueryUnescape(aws.ToString(ver.PolicyVersion.Document))
	var doc struct {
		Statement []struct {
			Effect   string
			Action   any
			Resource any
		}
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("policy document %s: %v", text, err)
	}
	list := func(v any) []string {
		switch x := v.(type) {
		case string:
			return []string{x}
		case []any:
			var out []string
			for _, e := range x {
				out = append(out, e.(string))
			}
			return out
		}
		return nil
	}
	grants := map[string][]string{}
	for _, s := range doc.Statement {
		if s.Effect != "Allow" {
			t.Errorf("a statement with effect %s", s.Effect)
		}
		for _, a := range list(s.Action) {
			grants[a] = append(grants[a], list(s.Resource)...)
		}
	}
	return grants
}

func TestPermissionsDefaultIsLeastPrivilegeAndBlogIsTheBlogs(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	repo := "arn:aws:ecr:" + vars["AWS_REGION"] + ":" + setupAccount(t, awsClients(t)) + ":repository/" + pushRepo
	got := grantsOf(t)
	// What a push needs, the token, and the build cache's reads, plus
	// DescribeImages, which setupCI asks for (--allow-skip-existing).
	want := map[string]string{
		"ecr:BatchCheckLayerAvailability": repo, "ecr:InitiateLayerUpload": repo, "ecr:UploadLayerPart": repo,
		"ecr:CompleteLayerUpload": repo, "ecr:PutImage": repo, "ecr:GetAuthorizationToken": "*",
		"ecr:BatchGetImage": repo, "ecr:GetDownloadUrlForLayer": repo, "ecr:DescribeImages": repo,
	}
	for action, resources := range got {
		if want[action] == "" || len(resources) != 1 || resources[0] != want[action] {
			t.Errorf("the default policy grants %s on %v", action, resources)
		}
		if strings.Contains(action, "Delete") || strings.Contains(action, "Lifecycle") || strings.Contains(action, "Mutability") || strings.Contains(action, "ScanningConfiguration") {
			t.Errorf("the default policy grants %s", action)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the default policy grants %d actions, want %d: %v", len(got), len(want), got)
	}
	// And CI pushes under it.
	stamp := nonce()
	if r := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp)}, "push", "--tag", "least-"+stamp); r.Code != 0 {
		t.Fatalf("push under the least-privilege policy:\n%s", r)
	}

	// --permissions blog: the blog's statements, word for word.
	if r := run(t, nil, "setup", "--permissions", "blog", "--registry-cache=false"); r.Code != 0 {
		t.Fatalf("setup --permissions blog:\n%s", r)
	}
	blog := []string{"ecr:PutLifecyclePolicy", "ecr:PutImageTagMutability", "ecr:StartImageScan", "ecr:CreateRepository",
		"ecr:PutImageScanningConfiguration", "ecr:UploadLayerPart", "ecr:BatchDeleteImage", "ecr:DeleteLifecyclePolicy",
		"ecr:DeleteRepository", "ecr:PutImage", "ecr:CompleteLayerUpload", "ecr:StartLifecyclePolicyPreview",
		"ecr:InitiateLayerUpload", "ecr:DeleteRepositoryPolicy", "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability"}
	got = grantsOf(t)
	var actions []string
	for a, resources := range got {
		actions = append(actions, a)
		wantRes := repo
		if a == "ecr:GetAuthorizationToken" {
			wantRes = "*"
		}
		if len(resources) != 1 || resources[0] != wantRes {
			t.Errorf("blog: %s on %v, want on %s", a, resources, wantRes)
		}
	}
	sort.Strings(actions)
	sort.Strings(blog)
	if strings.Join(actions, " ") != strings.Join(blog, " ") {
		t.Errorf("--permissions blog grants\n%v\nthe blog grants\n%v", actions, blog)
	}
}
