package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
	"github.com/containerise/containerise/teardown"
)

// teardownRun is one run of `containerise teardown` over a fake account.
type teardownRun struct {
	stdout, stderr string
	code           int
	built          bool // whether AWS clients were asked for
}

func runTeardownCmd(t *testing.T, a *awsfake.Account, args ...string) teardownRun {
	t.Helper()
	// A strings.Reader is not a terminal, as in CI.
	return runTeardownCmdIn(t, a, strings.NewReader(""), args...)
}

func runTeardownCmdIn(t *testing.T, a *awsfake.Account, in io.Reader, args ...string) teardownRun {
	t.Helper()
	var out, errw bytes.Buffer
	g := &Globals{In: in, Out: &out, Err: &errw}
	root := NewRoot("test", g)
	for _, c := range root.Commands() {
		if c.Name() == "teardown" {
			root.RemoveCommand(c)
		}
	}
	var r teardownRun
	root.AddCommand(newTeardownCmdWith(g, func(context.Context) (*teardown.Teardown, error) {
		r.built = true
		td := teardown.New(a.IAM(), a.ECR(), a.STS(), g.Err)
		td.Region = a.Region() // as the command sets it from the SDK's config
		return td, nil
	}))
	root.SetArgs(append([]string{"teardown"}, args...))
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errw.WriteString("Error: " + err.Error() + "\n")
	}
	r.stdout, r.stderr, r.code = out.String(), errw.String(), exitCodeOf(err)
	return r
}

// seedSetup makes what setup makes, with two images in the repository.
func seedSetup(t *testing.T, isManaged bool) *awsfake.Account {
	t.Helper()
	a := awsfake.New(awsfake.Config{})
	ctx := context.Background()
	check := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seeding the fake: %v", err)
		}
	}
	var iamTags = managed.IAMTags()
	repo := &ecr.CreateRepositoryInput{RepositoryName: aws.String("circleci-ecr-test"), Tags: managed.ECRTags()}
	if !isManaged {
		iamTags, repo.Tags = nil, nil
	}
	check(a.ECR().CreateRepository(ctx, repo))
	check(a.AddImage("circleci-ecr-test", "v1"))
	check(a.AddImage("circleci-ecr-test", "v2"))
	doc := policies.Permissions(policies.Target{Region: a.Region(), AccountID: a.ID(), Repository: "circleci-ecr-test"}, policies.PermissionOptions{})
	policy, err := a.IAM().CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("ECRContainerise"), PolicyDocument: aws.String(doc.JSON()), Tags: iamTags})
	check(policy, err)
	check(a.IAM().CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("circleci"), Tags: iamTags}))
	check(a.IAM().CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("circleci")}))
	trust := policies.Trust(policies.UserARN(a.Partition(), a.ID(), "circleci"))
	check(a.IAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("containerise"), AssumeRolePolicyDocument: aws.String(trust.JSON()), Tags: iamTags}))
	check(a.IAM().AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("containerise"), PolicyArn: policy.Policy.Arn}))
	a.ResetCalls()
	return a
}

func TestTeardownRefusesBadInputBeforeAnyCall(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--repository", "Bad_Repo"}, "--repository"},
		{[]string{"--repository", ""}, "--repository is empty"},
		{[]string{"--user", "bad user"}, "--user"},
		{[]string{"--role", strings.Repeat("r", 65)}, "--role"},
		{[]string{"--policy", "a/b"}, "--policy"},
		{[]string{"--output", "yaml"}, "--output"},
		{[]string{"--region", "mars"}, "--region"},
		{[]string{"--no-such-flag"}, "unknown flag"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			a := seedSetup(t, true)
			r := runTeardownCmd(t, a, append(tc.args, "--yes")...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not name %q:\n%s", tc.want, r.stderr)
			}
			if r.built || len(a.Calls()) > 0 {
				t.Errorf("AWS was called: %v", a.Ops())
			}
		})
	}
}

func TestTeardownWithoutTerminalOrYesDeletesNothing(t *testing.T) {
	a := seedSetup(t, true)
	r := runTeardownCmd(t, a)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"nothing was deleted", "--yes"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "its 2 images") {
		t.Errorf("the plan does not show the repository's images:\n%s", r.stdout)
	}
	if m := a.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls: %v", m)
	}
}

func TestTeardownYesDeletesThenRerunSucceeds(t *testing.T) {
	a := seedSetup(t, true)
	r := runTeardownCmd(t, a, "--yes")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		// A repository is named with its region.
		"repository us-east-1/circleci-ecr-test: deleted, with its 2 images\n",
		"policy ECRContainerise: deleted\n",
		"role containerise: deleted\n",
		"user circleci: deleted\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "\ndelete role containerise: done") {
		t.Errorf("no progress on stderr:\n%s", r.stderr)
	}

	a.ResetCalls()
	r = runTeardownCmd(t, a)
	if r.code != 0 {
		t.Fatalf("rerun (nothing to delete, so no --yes needed): exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, ": already gone\n"); n != 4 || !strings.Contains(r.stdout, "Nothing to delete.") {
		t.Errorf("want every resource listed once as already gone, then nothing to delete:\n%s", r.stdout)
	}
	if m := a.Mutating(); len(m) != 0 {
		t.Errorf("rerun mutating calls: %v", m)
	}
}

func TestTeardownDryRunChangesNothing(t *testing.T) {
	a := seedSetup(t, true)
	r := runTeardownCmd(t, a, "--dry-run")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if m := a.Mutating(); len(m) != 0 {
		t.Errorf("dry run made mutating calls: %v", m)
	}
	for _, want := range []string{"delete repository circleci-ecr-test and its 2 images", "detach policy ECRContainerise from role containerise", "Dry run: nothing was deleted"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestTeardownUnmanagedLeftAloneUnlessIncluded(t *testing.T) {
	a := seedSetup(t, false)
	r := runTeardownCmd(t, a)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "left alone: not managed by containerise"); n != 4 {
		t.Errorf("want 4 resources left alone:\n%s", r.stdout)
	}
	// Moved from teardown: each says how to delete it.
	if n := strings.Count(r.stdout, "--include-unmanaged deletes it"); n != 4 {
		t.Errorf("want 4 resources saying how to delete them:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "[holds 2 images]") {
		t.Errorf("plan does not show the unmanaged repository's images:\n%s", r.stdout)
	}
	if m := a.Mutating(); len(m) != 0 {
		t.Errorf("mutating calls: %v", m)
	}

	r = runTeardownCmd(t, a, "--include-unmanaged", "--yes")
	if r.code != 0 || strings.Count(r.stdout, ": deleted") != 4 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestTeardownFailureExitsOneAndNamesTheResource(t *testing.T) {
	a := seedSetup(t, true)
	if err := a.AddInstanceProfile("web-servers", "containerise"); err != nil {
		t.Fatal(err)
	}
	r := runTeardownCmd(t, a, "--yes")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "role containerise: failed: role containerise is in instance profile web-servers") {
		t.Errorf("stdout lacks the role's failure:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "Error: teardown incomplete: 1 of 4 resources failed") {
		t.Errorf("stderr lacks the summary:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "user circleci: deleted") {
		t.Errorf("the rest should be deleted:\n%s", r.stdout)
	}
}

func TestTeardownJSON(t *testing.T) {
	a := seedSetup(t, true)
	r := runTeardownCmd(t, a, "--yes", "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var doc struct {
		DryRun    bool   `json:"dry_run"`
		Account   string `json:"account"`
		Resources []struct {
			Kind, Name, State, Outcome string
			Images                     *int
			Steps                      []struct{ Action, Call string }
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if doc.Account != a.ID() || len(doc.Resources) != 4 {
		t.Fatalf("unexpected report: %+v", doc)
	}
	for _, res := range doc.Resources {
		if res.State != "delete" || res.Outcome != "deleted" || len(res.Steps) == 0 {
			t.Errorf("%s: %+v", res.Kind, res)
		}
	}
	if doc.Resources[0].Images == nil || *doc.Resources[0].Images != 2 {
		t.Errorf("repository images missing: %+v", doc.Resources[0])
	}

	r = runTeardownCmd(t, seedSetup(t, true), "--dry-run", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"dry_run": true`) || strings.Contains(r.stdout, `"outcome"`) {
		t.Errorf("dry run JSON:\n%s", r.stdout)
	}
}

func TestTeardownHelp(t *testing.T) {
	var out bytes.Buffer
	g := &Globals{In: strings.NewReader(""), Out: &out, Err: &out}
	root := NewRoot("test", g)
	root.SetArgs([]string{"teardown", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Examples:", "containerise teardown --dry-run", "--yes", "--include-unmanaged", "--output", "managed-by=containerise",
		"those the policy grants, in their regions, else circleci-ecr-test", "default \"ECRContainerise\"", "default \"containerise\"", "default \"circleci\""} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
