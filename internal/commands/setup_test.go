package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/joho/godotenv"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
	"github.com/containerise/containerise/provision"
)

// setupRun runs `setup args...` against a fake account.
type setupRun struct {
	stdout, stderr string
	err            error
	message        string // the error as the command prints it
	built          bool
}

func runSetupCmd(t *testing.T, acct *awsfake.Account, args ...string) setupRun {
	t.Helper()
	return execSetup(t, setupEnv{acct: acct}, args...)
}

// setupEnv is what a test's setup runs against: a fake account, and
// optionally a CircleCI client, the environment and stdin.
type setupEnv struct {
	acct     *awsfake.Account
	circleCI func() (resource.CircleCIAPI, error)
	getenv   func(string) string
	in       io.Reader // nil: no terminal, empty input
}

// execSetup runs `setup args...` as the binary would, with the fakes.
func execSetup(t *testing.T, e setupEnv, args ...string) setupRun {
	t.Helper()
	var out, errb bytes.Buffer
	in := e.in
	if in == nil {
		in = strings.NewReader("")
	}
	g := &Globals{In: in, Out: &out, Err: &errb, Getenv: e.getenv}
	var r setupRun
	cmd := newSetupCmdWith(g, func(context.Context) (*provision.Provisioner, string, error) {
		r.built = true
		p := &provision.Provisioner{IAM: e.acct.IAM(), ECR: e.acct.ECR(), STS: e.acct.STS(), KMS: e.acct.KMS(), Logf: g.Logf}
		if e.circleCI != nil {
			c, err := e.circleCI()
			if err != nil {
				return nil, "", err
			}
			p.CircleCI = c
		}
		return p, e.acct.Region(), nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	r.err = cmd.ExecuteContext(context.Background())
	r.stdout, r.stderr = out.String(), errb.String()
	if r.err != nil {
		r.message = hint.Message(r.err, g.words())
	}
	return r
}

func TestSetupFlagDefaults(t *testing.T) {
	g := &Globals{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	cmd := newSetupCmd(g)
	for flag, want := range map[string]string{
		"repository": "[circleci-ecr-test]", "policy": "ECRContainerise", "user": "circleci", "role": "containerise",
		"output": "text", "wait": "2m0s", "dry-run": "false", "rotate-key": "false", "yes": "false",
		"env-file": "", "allow-skip-existing": "false",
	} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Fatalf("no --%s", flag)
		}
		if f.DefValue != want {
			t.Errorf("--%s defaults to %q, want %q", flag, f.DefValue, want)
		}
	}
	if !strings.Contains(cmd.Example, "containerise setup --dry-run") {
		t.Error("help has no example")
	}
}

func TestSetupRefusesBadInputBeforeAnyCall(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--repository", "Bad Repo"}, "--repository"},
		{[]string{"--policy", "a/b"}, "--policy"},
		{[]string{"--user", ""}, "--user"},
		{[]string{"--role", strings.Repeat("r", 65)}, "--role"},
		{[]string{"--output", "yaml"}, "--output"},
		{[]string{"--wait", "0s"}, "--wait"},
		{[]string{"--env-file", dir}, "--env-file"},
		{[]string{"--env-file", filepath.Join(dir, "missing", "ci.env")}, "--env-file"},
		{[]string{"--env-file", filepath.Join(dir, "ci.env"), "--dry-run"}, "--env-file"},
	} {
		acct := awsfake.New(awsfake.Config{})
		r := runSetupCmd(t, acct, c.args...)
		var u *clierror.UsageError
		if !errors.As(r.err, &u) || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error naming %s", c.args, r.err, c.want)
		}
		if r.built || len(acct.Calls()) != 0 {
			t.Errorf("%v: AWS was called", c.args)
		}
	}
}

func TestSetupFlagsReachProvision(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct, "--repository", "my-app", "--policy", "ci-push-ecr", "--user", "ci-bot", "--role", "ci-push",
		"--allow-skip-existing", "--wait", "30s", "--output", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var doc setupJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, res := range doc.Resources {
		names = append(names, res.Kind+":"+res.Name)
	}
	if got := strings.Join(names[:3], " "); got != "repository:my-app policy:ci-push-ecr user:ci-bot" || doc.Resources[4].Name != "ci-push" {
		t.Fatalf("resources %v", names)
	}
	pol := must(acct.IAM().GetPolicyVersion(context.Background(), &iam.GetPolicyVersionInput{
		PolicyArn: aws.String("arn:aws:iam::123456789012:policy/ci-push-ecr"), VersionId: aws.String("v1")}))
	if !strings.Contains(*pol.PolicyVersion.Document, "ecr%3ADescribeImages") {
		t.Fatal("--allow-skip-existing did not add ecr:DescribeImages")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSetupTextThenRerun(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct)
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"Account 123456789012, region us-east-1", "circleci-ecr-test", "trusts user circleci; policy ECRContainerise attached",
		"AWS_IAM_USER_ACCESS_KEY_ID=AKIA", "AWS_IAM_USER_SECRET_ACCESS_KEY=", "AWS_IAM_ROLE_ARN=arn:aws:iam::123456789012:role/containerise",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "shown this once"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	secret := secretFrom(t, r.stdout)
	if strings.Contains(r.stderr, secret) {
		t.Fatal("the secret reached stderr")
	}
	if !strings.Contains(r.stderr, "creating IAM role containerise") {
		t.Errorf("no progress on stderr:\n%s", r.stderr)
	}

	again := runSetupCmd(t, acct)
	if again.err != nil {
		t.Fatal(again.err)
	}
	if strings.Contains(again.stdout, secret) || !strings.Contains(again.stdout, "AWS_IAM_USER_SECRET_ACCESS_KEY: not shown") ||
		!strings.Contains(again.stdout, "--rotate-key") || !strings.Contains(again.stdout, "unchanged") {
		t.Fatalf("rerun output:\n%s", again.stdout)
	}
}

func secretFrom(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "AWS_IAM_USER_SECRET_ACCESS_KEY="); ok && v != "" {
			return v
		}
	}
	t.Fatalf("no secret in:\n%s", out)
	return ""
}

func TestSetupJSON(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct, "-o", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	for _, k := range []string{"account", "region", "resources", "variables", "secret_available", "dry_run", "notes", "warnings"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q in %s", k, r.stdout)
		}
	}
	vars := doc["variables"].(map[string]any)
	if len(vars) != 5 || vars["AWS_DEFAULT_REGION"] != vars["AWS_REGION"] || doc["secret_available"] != true {
		t.Fatalf("variables %v", vars)
	}
	res := doc["resources"].([]any)[0].(map[string]any)
	for _, k := range []string{"kind", "name", "arn", "status", "managed", "changes"} {
		if _, ok := res[k]; !ok {
			t.Errorf("resource lacks %q: %v", k, res)
		}
	}

	again := runSetupCmd(t, acct, "-o", "json")
	var doc2 setupJSON
	if err := json.Unmarshal([]byte(again.stdout), &doc2); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc2.Variables[names.EnvSecretAccessKey]; ok || doc2.SecretAvailable {
		t.Fatalf("rerun JSON has a secret: %+v", doc2)
	}
}

func TestSetupDotenvAndEnvFile(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	path := filepath.Join(t.TempDir(), "ci.env")
	r := runSetupCmd(t, acct, "--output", "dotenv", "--env-file", path)
	if r.err != nil {
		t.Fatal(r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("dotenv output:\n%s", r.stdout)
	}
	for i, name := range []string{"AWS_IAM_USER_ACCESS_KEY_ID=", "AWS_IAM_USER_SECRET_ACCESS_KEY=", "AWS_IAM_ROLE_ARN=", "AWS_REGION=", "AWS_DEFAULT_REGION="} {
		if !strings.HasPrefix(lines[i], name) {
			t.Errorf("line %d: %q", i, lines[i])
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("env file mode %v", info.Mode().Perm())
	}
	if file, _ := os.ReadFile(path); string(file) != r.stdout {
		t.Fatalf("env file:\n%s\nstdout:\n%s", file, r.stdout)
	}
	if strings.Contains(r.stderr, dotenvOf(t, r.stdout)["AWS_IAM_USER_SECRET_ACCESS_KEY"]) {
		t.Fatal("the secret reached stderr")
	}

	before, _ := os.ReadFile(path)
	again := runSetupCmd(t, acct, "--output", "dotenv", "--env-file", path)
	if again.err != nil {
		t.Fatal(again.err)
	}
	if strings.Contains(again.stdout, "SECRET") || len(strings.Split(strings.TrimSpace(again.stdout), "\n")) != 4 {
		t.Fatalf("rerun dotenv:\n%s", again.stdout)
	}
	if !strings.Contains(again.stderr, "AWS_IAM_USER_SECRET_ACCESS_KEY is not printed") {
		t.Fatalf("no note on stderr:\n%s", again.stderr)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("a rerun overwrote the env file that holds the secret")
	}
}

func TestSetupDryRun(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	r := runSetupCmd(t, acct, "--dry-run")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if m := acct.Mutating(); len(m) != 0 {
		t.Fatalf("mutating calls %v", m)
	}
	if !strings.Contains(r.stdout, "Dry run: nothing was changed") || !strings.Contains(r.stdout, "would create") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
}

func TestSetupRotateKeyWithoutTerminalKeepsOldKey(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	first := runSetupCmd(t, acct, "-o", "dotenv")
	r := runSetupCmd(t, acct, "--rotate-key")
	if r.err != nil {
		t.Fatal(r.err)
	}
	oldID := dotenvOf(t, first.stdout)["AWS_IAM_USER_ACCESS_KEY_ID"]
	if !strings.Contains(r.stderr, "old access key "+oldID+" kept") || !strings.Contains(r.stdout, "aws iam delete-access-key --user-name circleci --access-key-id "+oldID) {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	keys := must(acct.IAM().ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String("circleci")}))
	if len(keys.AccessKeyMetadata) != 2 {
		t.Fatalf("%d keys", len(keys.AccessKeyMetadata))
	}

	// With --yes the old key goes; the user keeps AWS's limit in view.
	yes := runSetupCmd(t, acct, "--rotate-key", "--yes")
	if yes.err == nil || !strings.Contains(yes.err.Error(), "2 access keys") {
		t.Fatalf("rotation with two keys: %v", yes.err)
	}
}

func TestSetupRotateKeyYes(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	runSetupCmd(t, acct)
	r := runSetupCmd(t, acct, "--rotate-key", "--yes", "-o", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var doc setupJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	keys := must(acct.IAM().ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String("circleci")})).AccessKeyMetadata
	if len(keys) != 1 || *keys[0].AccessKeyId != doc.Variables[names.EnvAccessKeyID] || !doc.SecretAvailable {
		t.Fatalf("keys %v, output %+v", keys, doc)
	}
}

func TestSetupFailureStillShowsTheNewSecret(t *testing.T) {
	acct := awsfake.New(awsfake.Config{})
	acct.FailOperation("iam.AttachRolePolicy", acct.AccessDenied("iam:AttachRolePolicy"))
	path := filepath.Join(t.TempDir(), "ci.env")
	r := runSetupCmd(t, acct, "--env-file", path)
	if r.err == nil || !strings.Contains(r.err.Error(), "attaching policy ECRContainerise to role containerise: AccessDenied") {
		t.Fatalf("error: %v", r.err)
	}
	secret := secretFrom(t, r.stdout)
	if file, _ := os.ReadFile(path); !strings.Contains(string(file), secret) {
		t.Fatal("the env file lacks the secret of the key created before the failure")
	}
	acct.ClearFaults()
	again := runSetupCmd(t, acct)
	if again.err != nil || !strings.Contains(again.stdout, "updated") {
		t.Fatalf("rerun: %v\n%s", again.err, again.stdout)
	}
}

func TestRenderSetupTextUnmanaged(t *testing.T) {
	var b bytes.Buffer
	renderSetupText(&b, &provision.Result{
		Account: "123456789012", Region: "eu-west-1",
		Resources: []*resource.Report{{Kind: "role", Name: "containerise", Status: resource.Unmanaged, Changes: []string{"policy ECRContainerise is not attached"}}},
		Variables: provision.Variables{AccessKeyID: "AKIAEXAMPLEEXAMPLE12", RoleARN: "arn:aws:iam::123456789012:role/containerise", Region: "eu-west-1"},
		Notes:     []resource.Note{{Text: "access key AKIAEXAMPLEEXAMPLE12 of user circleci exists"}},
	}, defaultWords)
	out := b.String()
	for _, want := range []string{"unmanaged  differs: policy ECRContainerise is not attached", "no managed-by=containerise tag", "Note: access key"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}

func TestRotateCommandNamesTheSameResources(t *testing.T) {
	def := setupOptions{Options: provision.Options{Repository: names.Repository, Policy: names.Policy, User: names.User, Role: names.Role, Grants: policies.PermissionOptions{RegistryCache: true}}}
	if got := def.rotateCommand(); got != "containerise setup --rotate-key" {
		t.Errorf("defaults: %q", got)
	}
	custom := setupOptions{Options: provision.Options{Repository: "my-app", Policy: names.Policy, User: "ci-bot", Role: names.Role, Grants: policies.PermissionOptions{AllowDescribeImages: true, RegistryCache: true}}}
	if got, want := custom.rotateCommand(), "containerise setup --rotate-key --repository my-app --user ci-bot --allow-skip-existing"; got != want {
		t.Errorf("custom names: %q, want %q", got, want)
	}
}

// Moved from provision: the error of a wait for IAM that ran out says how
// to allow longer.
func TestSetupInvalidPrincipalBoundedSaysWait(t *testing.T) {
	acct := awsfake.New(awsfake.Config{PrincipalDelay: time.Hour})
	r := runSetupCmd(t, acct, "--wait", "1ms")
	if r.err == nil || !strings.Contains(r.message, "creating role containerise") || !strings.Contains(r.message, "--wait") {
		t.Fatalf("error: %v\nmessage: %s", r.err, r.message)
	}
}

// dotenvOf reads dotenv output as dotenv readers do.
func dotenvOf(t *testing.T, text string) map[string]string {
	t.Helper()
	vars, err := godotenv.Unmarshal(text)
	if err != nil {
		t.Fatalf("dotenv output does not parse: %v\n%s", err, text)
	}
	return vars
}

// The dotenv output and the env file read back as written, whatever the
// values hold.
func TestDotenvRoundTrips(t *testing.T) {
	pairs := [][2]string{{"PLAIN", "AKIAEXAMPLE"}, {"SLASHES", "ab/cd+ef=="}, {"QUOTES", `say "hi" and 'bye'`}, {"DOLLAR", "$HOME and ${X}"}, {"SPACE", " lead and trail "}, {"HASH", "a #b"}, {"BACKSLASH", `c:\path\n`}}
	var b bytes.Buffer
	if err := writeDotenv(&b, pairs); err != nil {
		t.Fatal(err)
	}
	got := dotenvOf(t, b.String())
	for _, kv := range pairs {
		if got[kv[0]] != kv[1] {
			t.Errorf("%s: wrote %q, read back %q\n%s", kv[0], kv[1], got[kv[0]], b.String())
		}
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != len(pairs) || !strings.HasPrefix(lines[0], "PLAIN=") {
		t.Errorf("not one line per variable, in order:\n%s", b.String())
	}
}
