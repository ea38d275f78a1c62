package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/joho/godotenv"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// setupNames are setup's defaults, the blog's names.
var setupNames = struct{ repo, policy, user, role string }{"circleci-ecr-test", "ECRContainerise", "circleci", "containerise"}

// awsLine is one call the binary logs with --verbose.
var awsLine = regexp.MustCompile(`(?m)^aws: ([a-z0-9-]+\.[A-Za-z]+) \S+ (\S+)$`)

// calledOps returns the operations a --verbose run logged.
func calledOps(stderr string) []string {
	var ops []string
	for _, m := range awsLine.FindAllStringSubmatch(stderr, -1) {
		ops = append(ops, m[1])
	}
	return ops
}

func mutatingOps(stderr string) []string {
	var out []string
	for _, op := range calledOps(stderr) {
		if awsx.IsMutating(op) {
			out = append(out, op)
		}
	}
	return out
}

// dotenv parses NAME=value lines.
func dotenv(text string) map[string]string {
	vars, err := godotenv.Unmarshal(text)
	if err != nil {
		return map[string]string{}
	}
	return vars
}

// textVariables reads the variables from the text output's NAME=value lines.
func textVariables(stdout string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "AWS_") {
			continue
		}
		if name, value, ok := strings.Cut(line, "="); ok {
			vars[name] = value
		}
	}
	return vars
}

func setupAccount(t *testing.T, c clients) string {
	t.Helper()
	id, err := c.STS.GetCallerIdentity(context.Background(), nil)
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	return aws.ToString(id.Account)
}

// checkSetUp checks through the admin API everything setup makes: the
// tagged repository, policy (whose default version grants what
// policies.Permissions says, and whose tags name that version and the
// wanted document's digest, as a rerun reads them), user with exactly one
// key (keyID when given), and role trusting that user with the policy
// attached.
func checkSetUp(t *testing.T, c clients, keyID string) {
	t.Helper()
	ctx := context.Background()
	account := setupAccount(t, c)
	region := c.Cfg.Region

	repos, err := c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{setupNames.repo}})
	if err != nil {
		t.Fatalf("the repository: %v", err)
	}
	tags, err := c.ECR.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: repos.Repositories[0].RepositoryArn})
	if err != nil || !managed.ECR(tags.Tags) {
		t.Errorf("repository tags %+v (%v)", tags, err)
	}

	policyARN := policies.PolicyARN("aws", account, setupNames.policy)
	pol, err := c.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if err != nil {
		t.Fatalf("the policy: %v", err)
	}
	if !managed.IAM(pol.Policy.Tags) {
		ptags, _ := c.IAM.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: aws.String(policyARN)})
		if ptags == nil || !managed.IAM(ptags.Tags) {
			t.Errorf("policy not tagged")
		}
	}
	ver, err := c.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: pol.Policy.DefaultVersionId})
	if err != nil {
		t.Fatalf("the policy's default version: %v", err)
	}
	want := policies.Permissions(policies.Target{Region: region, AccountID: account, Repository: setupNames.repo}, policies.PermissionOptions{RegistryCache: true}) // setup's defaults: least privilege, with the build cache's reads
	if ok, err := policies.Equivalent(aws.ToString(ver.PolicyVersion.Document), want); !ok || err != nil {
		t.Errorf("policy document %s (%v)", aws.ToString(ver.PolicyVersion.Document), err)
	}
	versionTags := map[string]string{}
	for _, tag := range pol.Policy.Tags {
		versionTags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if versionTags["containerise/default-version"] != aws.ToString(pol.Policy.DefaultVersionId) || versionTags["containerise/document-sha256"] != want.Digest() {
		t.Errorf("policy tags %v from GetPolicy, want containerise/default-version=%s and containerise/document-sha256=%s",
			versionTags, aws.ToString(pol.Policy.DefaultVersionId), want.Digest())
	}

	user, err := c.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(setupNames.user)})
	if err != nil {
		t.Fatalf("the user: %v", err)
	}
	if !managed.IAM(user.User.Tags) {
		t.Errorf("user tags %+v", user.User.Tags)
	}
	keys, err := c.IAM.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(setupNames.user)})
	if err != nil || len(keys.AccessKeyMetadata) != 1 {
		t.Fatalf("the user's access keys: %+v (%v), want exactly one", keys, err)
	}
	if keyID != "" && aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) != keyID {
		t.Errorf("the user's key is %s, setup printed %s", aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId), keyID)
	}
	userPolicies, err := c.IAM.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(setupNames.user)})
	if err != nil || len(userPolicies.AttachedPolicies) != 0 {
		t.Errorf("the user has permissions of its own: %+v (%v)", userPolicies, err)
	}

	role, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(setupNames.role)})
	if err != nil {
		t.Fatalf("the role: %v", err)
	}
	if !managed.IAM(role.Role.Tags) {
		t.Errorf("role tags %+v", role.Role.Tags)
	}
	trust, err := policies.Parse(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		t.Fatalf("the role's trust policy: %v", err)
	}
	userARN := policies.UserARN("aws", account, setupNames.user)
	if len(trust.Statement) != 1 || trust.Statement[0].Principal == nil ||
		strings.Join(trust.Statement[0].Principal.AWS, ",") != userARN || strings.Join(trust.Statement[0].Action, ",") != "sts:AssumeRole" {
		d, _ := url.QueryUnescape(aws.ToString(role.Role.AssumeRolePolicyDocument))
		t.Errorf("trust policy %s, want only %s", d, userARN)
	}
	attached, err := c.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(setupNames.role)})
	if err != nil || len(attached.AttachedPolicies) != 1 || aws.ToString(attached.AttachedPolicies[0].PolicyArn) != policyARN {
		t.Errorf("attached to the role: %+v (%v)", attached, err)
	}
}

func TestSetupColdThenRerunMakesNoMutatingCall(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	r := run(t, nil, "setup", "--verbose")
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	vars := textVariables(r.Stdout)
	account := setupAccount(t, c)
	if vars["AWS_IAM_ROLE_ARN"] != policies.RoleARN("aws", account, setupNames.role) || vars["AWS_REGION"] != c.Cfg.Region ||
		vars["AWS_DEFAULT_REGION"] != c.Cfg.Region || vars["AWS_IAM_USER_ACCESS_KEY_ID"] == "" || len(vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]) < 20 {
		t.Fatalf("variables %v from:\n%s", vars, r.Stdout)
	}
	if strings.Contains(r.Stderr, vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]) {
		t.Fatal("the secret appeared on stderr (--verbose)")
	}
	for _, status := range []string{"created"} {
		if strings.Count(r.Stdout, status) < 5 {
			t.Errorf("stdout does not report 5 resources %s:\n%s", status, r.Stdout)
		}
	}
	cold := calledOps(r.Stderr)
	t.Logf("cold setup: %d calls, %d mutating: %v", len(cold), len(mutatingOps(r.Stderr)), cold)
	if !strings.Contains(r.Stderr, "mutating") {
		t.Errorf("no call summary with --verbose:\n%s", r.Stderr)
	}
	checkSetUp(t, c, vars["AWS_IAM_USER_ACCESS_KEY_ID"])

	again := run(t, nil, "setup", "--verbose")
	if again.Code != 0 {
		t.Fatalf("rerun failed:\n%s", again)
	}
	if m := mutatingOps(again.Stderr); len(m) != 0 {
		t.Fatalf("the rerun made mutating calls %v:\n%s", m, again.Stderr)
	}
	ops := calledOps(again.Stderr)
	if len(ops) == 0 || !regexp.MustCompile(`aws: \d+ calls, 0 mutating`).MatchString(again.Stderr) {
		t.Fatalf("no call log in the rerun's stderr:\n%s", again.Stderr)
	}
	t.Logf("rerun: %d calls: %v", len(ops), ops)
	// The policy's tags show its default version holds the wanted document,
	// so the rerun does not read it: 6 reads, then GetPolicy and the
	// repository's tags.
	if len(ops) != 8 || strings.Contains(strings.Join(ops, " "), "iam.GetPolicyVersion") {
		t.Errorf("rerun made %d calls, want 8 without iam.GetPolicyVersion: %v", len(ops), ops)
	}
	if strings.Contains(again.Stdout, vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]) || !strings.Contains(again.Stdout, "--rotate-key") ||
		strings.Count(again.Stdout, "unchanged") < 5 {
		t.Fatalf("rerun output:\n%s", again.Stdout)
	}
	checkSetUp(t, c, vars["AWS_IAM_USER_ACCESS_KEY_ID"])
}

func TestSetupJSONAndDotenv(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	r := run(t, nil, "setup", "--output", "json")
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	var doc struct {
		Account   string `json:"account"`
		Region    string `json:"region"`
		Resources []struct {
			Kind, Name, ARN, Status string
			Managed                 bool
			Changes                 []string
		} `json:"resources"`
		Variables       map[string]string `json:"variables"`
		SecretAvailable bool              `json:"secret_available"`
		DryRun          bool              `json:"dry_run"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.Stdout)
	}
	if doc.Account != setupAccount(t, c) || doc.Region != c.Cfg.Region || !doc.SecretAvailable || doc.DryRun || len(doc.Variables) != 5 {
		t.Fatalf("JSON %+v", doc)
	}
	kinds := []string{}
	for _, res := range doc.Resources {
		kinds = append(kinds, res.Kind)
		if res.Status != "created" || !res.Managed {
			t.Errorf("resource %+v", res)
		}
	}
	if strings.Join(kinds, ",") != "repository,policy,user,access-key,role" {
		t.Errorf("kinds %v", kinds)
	}
	checkSetUp(t, c, doc.Variables["AWS_IAM_USER_ACCESS_KEY_ID"])

	again := run(t, nil, "setup", "--output", "dotenv")
	if again.Code != 0 {
		t.Fatalf("rerun failed:\n%s", again)
	}
	vars := dotenv(again.Stdout)
	if len(vars) != 4 || vars["AWS_IAM_USER_ACCESS_KEY_ID"] != doc.Variables["AWS_IAM_USER_ACCESS_KEY_ID"] ||
		vars["AWS_IAM_ROLE_ARN"] != doc.Variables["AWS_IAM_ROLE_ARN"] || vars["AWS_REGION"] != c.Cfg.Region ||
		vars["AWS_DEFAULT_REGION"] != c.Cfg.Region {
		t.Fatalf("dotenv output:\n%s", again.Stdout)
	}
	for _, line := range strings.Split(strings.TrimSpace(again.Stdout), "\n") {
		if !regexp.MustCompile(`^[A-Z_]+=\S+$`).MatchString(line) {
			t.Errorf("not a NAME=value line: %q", line)
		}
	}
	if !strings.Contains(again.Stderr, "AWS_IAM_USER_SECRET_ACCESS_KEY is not printed") {
		t.Errorf("no note about the secret on stderr:\n%s", again.Stderr)
	}
}

func TestSetupEnvFileAndRotation(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	path := filepath.Join(t.TempDir(), "ci.env")
	r := run(t, nil, "setup", "--output", "dotenv", "--env-file", path)
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("env file: %v %v", info, err)
	}
	file, _ := os.ReadFile(path)
	if string(file) != r.Stdout {
		t.Fatalf("env file:\n%s\nstdout:\n%s", file, r.Stdout)
	}
	old := dotenv(r.Stdout)["AWS_IAM_USER_ACCESS_KEY_ID"]

	rot := run(t, nil, "setup", "--output", "dotenv", "--rotate-key", "--yes", "--env-file", path)
	if rot.Code != 0 {
		t.Fatalf("rotation failed:\n%s", rot)
	}
	vars := dotenv(rot.Stdout)
	if vars["AWS_IAM_USER_ACCESS_KEY_ID"] == old || vars["AWS_IAM_USER_SECRET_ACCESS_KEY"] == "" {
		t.Fatalf("no new key:\n%s", rot.Stdout)
	}
	if file, _ := os.ReadFile(path); string(file) != rot.Stdout {
		t.Fatal("the env file does not hold the new key")
	}
	checkSetUp(t, c, vars["AWS_IAM_USER_ACCESS_KEY_ID"])
}

func TestSetupLeavesHandMadeRoleUnchanged(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	ctx := context.Background()
	// The blog's console step: a role trusting EC2, without the tag.
	ec2Trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := c.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(setupNames.role), AssumeRolePolicyDocument: aws.String(ec2Trust),
		Description: aws.String("Allows CircleCI to containerise Docker images")}); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "setup", "--output", "json", "--verbose")
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	for _, op := range mutatingOps(r.Stderr) {
		if op == "iam.UpdateAssumeRolePolicy" || op == "iam.AttachRolePolicy" || op == "iam.CreateRole" || op == "iam.TagRole" {
			t.Fatalf("setup changed the hand-made role (%s):\n%s", op, r.Stderr)
		}
	}
	var doc struct {
		Resources []struct {
			Kind, Status string
			Managed      bool
			Changes      []string
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatal(err)
	}
	role := doc.Resources[4]
	if role.Kind != "role" || role.Status != "unmanaged" || role.Managed || len(role.Changes) == 0 {
		t.Fatalf("role reported as %+v", role)
	}
	if !strings.Contains(r.Stderr, "warning: role containerise is not managed by containerise") {
		t.Errorf("no warning on stderr:\n%s", r.Stderr)
	}
	got, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(setupNames.role)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := policies.Equivalent(aws.ToString(got.Role.AssumeRolePolicyDocument), mustParse(t, ec2Trust)); !ok {
		t.Errorf("the hand-made role's trust changed: %s", aws.ToString(got.Role.AssumeRolePolicyDocument))
	}
	if managed.IAM(got.Role.Tags) {
		t.Error("the hand-made role was tagged")
	}
	attached, _ := c.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(setupNames.role)})
	if attached == nil || len(attached.AttachedPolicies) != 0 {
		t.Errorf("a policy was attached to the hand-made role: %+v", attached)
	}
}

func mustParse(t *testing.T, doc string) policies.Document {
	t.Helper()
	d, err := policies.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSetupRepairsDrift(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	ctx := context.Background()
	r := run(t, nil, "setup", "--output", "dotenv")
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	keyID := dotenv(r.Stdout)["AWS_IAM_USER_ACCESS_KEY_ID"]
	policyARN := policies.PolicyARN("aws", setupAccount(t, c), setupNames.policy)
	// Someone widens the policy, opens the trust, and detaches the policy.
	wide := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`
	if _, err := c.IAM.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(policyARN), PolicyDocument: aws.String(wide), SetAsDefault: true}); err != nil {
		t.Fatal(err)
	}
	ec2Trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := c.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(setupNames.role), PolicyDocument: aws.String(ec2Trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(setupNames.role), PolicyArn: aws.String(policyARN)}); err != nil {
		t.Fatal(err)
	}

	plan := run(t, nil, "setup", "--dry-run", "--verbose")
	if plan.Code != 0 || len(mutatingOps(plan.Stderr)) != 0 || !strings.Contains(plan.Stdout, "would update") {
		t.Fatalf("dry run:\n%s", plan)
	}

	fix := run(t, nil, "setup", "--verbose")
	if fix.Code != 0 {
		t.Fatalf("repair failed:\n%s", fix)
	}
	m := strings.Join(mutatingOps(fix.Stderr), " ")
	for _, op := range []string{"iam.CreatePolicyVersion", "iam.TagPolicy", "iam.UpdateAssumeRolePolicy", "iam.AttachRolePolicy"} {
		if !strings.Contains(m, op) {
			t.Errorf("no %s among the repair's calls: %s", op, m)
		}
	}
	if strings.Contains(m, "iam.CreateAccessKey") {
		t.Error("the repair created an access key")
	}
	pol, err := c.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(pol.Policy.DefaultVersionId); v != "v3" {
		t.Errorf("default version %s, want v3 (v1 setup's, v2 the drift)", v)
	}
	checkSetUp(t, c, keyID)

	again := run(t, nil, "setup", "--verbose")
	if again.Code != 0 || len(mutatingOps(again.Stderr)) != 0 {
		t.Fatalf("rerun after the repair:\n%s", again)
	}
	// The repair tagged the new version: the rerun need not read it.
	if ops := strings.Join(calledOps(again.Stderr), " "); strings.Contains(ops, "iam.GetPolicyVersion") {
		t.Errorf("the rerun after the repair read the policy's document: %s", ops)
	}
}

func TestSetupDryRunMakesNoMutatingCall(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	r := run(t, nil, "setup", "--dry-run", "--verbose")
	if r.Code != 0 {
		t.Fatalf("dry run failed:\n%s", r)
	}
	if m := mutatingOps(r.Stderr); len(m) != 0 || !regexp.MustCompile(`aws: \d+ calls, 0 mutating`).MatchString(r.Stderr) {
		t.Fatalf("dry run calls %v:\n%s", m, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "Dry run: nothing was changed") || strings.Count(r.Stdout, "would create") != 5 {
		t.Fatalf("dry run output:\n%s", r.Stdout)
	}
	_, err := c.IAM.GetUser(context.Background(), &iam.GetUserInput{UserName: aws.String(setupNames.user)})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Fatalf("the dry run created the user (GetUser: %v)", err)
	}
}

func TestSetupRefusesBadNamesBeforeAnyCall(t *testing.T) {
	resetAWS(t)
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--repository", "Not_Valid"}, "--repository"},
		{[]string{"--user", "ci bot"}, "--user"},
		{[]string{"--role", "role/with/slash"}, "--role"},
		{[]string{"--policy", strings.Repeat("p", 129)}, "--policy"},
		{[]string{"--output", "yaml"}, "--output"},
		{[]string{"--region", "moon-1"}, "--region"},
	} {
		r := run(t, nil, append([]string{"setup", "--verbose"}, c.args...)...)
		if r.Code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", c.args, r.Code, r)
		}
		if !strings.Contains(r.Stderr, c.flag) {
			t.Errorf("%v: stderr does not name %s:\n%s", c.args, c.flag, r.Stderr)
		}
		if ops := calledOps(r.Stderr); len(ops) != 0 {
			t.Errorf("%v: AWS was called: %v", c.args, ops)
		}
		if r.Stdout != "" {
			t.Errorf("%v: stdout %q", c.args, r.Stdout)
		}
	}
}
