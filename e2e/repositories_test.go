package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/policies"
)

// grantedRepositories are the repositories setup's policy grants anything
// on, as region/name, sorted, read through IAM and parsed here (not with
// the product's policies package, which is under test).
func grantedRepositories(t *testing.T, c clients) []string {
	t.Helper()
	ctx := context.Background()
	arn := policies.PolicyARN("aws", accountID(t, c), setupNames.policy)
	pol, err := c.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("reading the policy: %v", err)
	}
	v, err := c.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: pol.Policy.DefaultVersionId})
	if err != nil {
		t.Fatalf("reading the policy's document: %v", err)
	}
	text, _ := url.QueryUnescape(aws.ToString(v.PolicyVersion.Document))
	var doc struct{ Statement []struct{ Resource any } }
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("policy document %s: %v", text, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range doc.Statement {
		var res []string
		switch x := s.Resource.(type) {
		case string:
			res = []string{x}
		case []any:
			for _, e := range x {
				res = append(res, e.(string))
			}
		}
		for _, r := range res {
			// arn:aws:ecr:REGION:ACCOUNT:repository/NAME
			parts := strings.SplitN(r, ":", 6)
			if len(parts) == 6 && parts[2] == "ecr" && strings.HasPrefix(parts[5], "repository/") {
				name := parts[3] + "/" + strings.TrimPrefix(parts[5], "repository/")
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// repositoryIn reports whether the repository exists in region.
func repositoryIn(t *testing.T, c clients, region, name string) bool {
	t.Helper()
	api := ecr.NewFromConfig(c.Cfg, func(o *ecr.Options) { o.Region = region })
	_, err := api.DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
	var gone *ecrtypes.RepositoryNotFoundException
	if errors.As(err, &gone) {
		return false
	}
	if err != nil {
		t.Fatalf("looking up repository %s/%s: %v", region, name, err)
	}
	return true
}

// TestOneRoleForTwoRepositories: two --repository flags make one role that
// pushes to both, and a rerun naming the same set makes no write.
func TestOneRoleForTwoRepositories(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	stamp := nonce()
	repos := []string{"mono-api-" + stamp[len(stamp)-6:], "mono-web-" + stamp[len(stamp)-6:]}
	setup := []string{"setup", "--repository", repos[0], "--repository", repos[1]}
	r := run(t, nil, append(setup, "--output", "dotenv")...)
	if r.Code != 0 {
		t.Fatalf("setup with two repositories:\n%s", r)
	}
	vars := ciVars(dotenv(r.Stdout))
	region := c.Cfg.Region
	if got, want := grantedRepositories(t, c), []string{region + "/" + repos[0], region + "/" + repos[1]}; !slices.Equal(got, want) {
		t.Errorf("the policy grants %v, want %v", got, want)
	}
	for _, repo := range repos {
		tag := "v-" + stamp
		p := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, repo)}, "push", "--repository", repo, "--tag", tag)
		if p.Code != 0 || !strings.Contains(p.Stdout, "/"+repo+":"+tag+"@sha256:") {
			t.Errorf("push to %s with the one role:\n%s", repo, p)
		}
	}

	again := run(t, nil, append(setup, "--verbose")...)
	if again.Code != 0 {
		t.Fatalf("rerun:\n%s", again)
	}
	if m := mutatingOps(again.Stderr); len(m) != 0 {
		t.Errorf("a rerun naming the same set made writes %v:\n%s", m, again.Stderr)
	}
	for _, repo := range repos {
		line := regexp.MustCompile(`(?m)^\s+repository\s+` + regexp.QuoteMeta(region+"/"+repo) + `\s+unchanged$`)
		if !line.MatchString(again.Stdout) {
			t.Errorf("rerun does not show repository %s/%s unchanged:\n%s", region, repo, again.Stdout)
		}
	}
}

// TestSetupThatWouldDropARepositoryRefuses: the case. A setup in
// eu-west-1, then one with the default names in the stack's region, would
// rewrite the shared policy to grant only the latter. Without confirmation
// it is refused (exit 2), names eu-west-1/my-app, and changes nothing.
func TestSetupThatWouldDropARepositoryRefuses(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	if r := run(t, nil, "setup", "--region", "eu-west-1", "--repository", "my-app"); r.Code != 0 {
		t.Fatalf("setup in eu-west-1:\n%s", r)
	}
	before := grantedRepositories(t, c)
	if !slices.Equal(before, []string{"eu-west-1/my-app"}) {
		t.Fatalf("the policy grants %v, want eu-west-1/my-app", before)
	}

	r := run(t, nil, "setup", "--verbose")
	if r.Code != 2 {
		t.Fatalf("setup that drops eu-west-1/my-app: want exit 2\n%s", r)
	}
	for _, want := range []string{"would stop granting push to eu-west-1/my-app", "Nothing was changed", "--policy", "--role", "--yes"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	if m := mutatingOps(r.Stderr); len(m) != 0 {
		t.Errorf("the refused setup made writes %v", m)
	}
	if got := grantedRepositories(t, c); !slices.Equal(got, before) {
		t.Errorf("the policy grants %v after the refusal, want %v", got, before)
	}
	if repositoryIn(t, c, c.Cfg.Region, setupNames.repo) {
		t.Errorf("the refused setup created repository %s", setupNames.repo)
	}
}

// TestBareTeardownFindsWhatSetupMade: after setup --repository my-app, a
// bare teardown --yes removes my-app (read from the policy) and leaves no
// resource behind.
func TestBareTeardownFindsWhatSetupMade(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	if r := run(t, nil, "setup", "--region", "eu-west-1", "--repository", "my-app"); r.Code != 0 {
		t.Fatalf("setup --repository my-app:\n%s", r)
	}
	r := run(t, nil, "teardown", "--yes")
	if r.Code != 0 {
		t.Fatalf("teardown --yes:\n%s", r)
	}
	account := accountID(t, c)
	for _, want := range []string{
		"Teardown plan (account " + account,
		"repository eu-west-1/my-app: delete",
		"Teardown of account " + account,
		"repository eu-west-1/my-app: deleted",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r)
		}
	}
	if repositoryIn(t, c, "eu-west-1", "my-app") {
		t.Error("my-app is left behind in eu-west-1")
	}
	if repositoryIn(t, c, c.Cfg.Region, setupNames.repo) {
		t.Errorf("repository %s exists", setupNames.repo)
	}
	if got := lookup(t, c); got != (present{}) {
		t.Errorf("after teardown, still present: %+v", got)
	}
}
