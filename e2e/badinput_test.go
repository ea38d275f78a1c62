package e2e

// Bad input across setup, push and teardown, each run through the counting
// proxy (proxy_test.go) so that the AWS calls it makes are seen, not
// assumed. Invalid input exits 2 before any AWS call; a failure (a build
// that fails, a base image that does not exist) exits 1 with no mutating
// call. Either way: one "Error: " line naming what is wrong, no stack trace.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badInput is one bad invocation.
type badInput struct {
	name string
	args []string
	env  []string // added to the command's environment (later values win)
	// dir returns the working directory (nil: a valid build context, so
	// that only the named thing is wrong).
	dir   func(t *testing.T) string
	code  int      // 2 invalid input, 1 failure
	names []string // the error line names each (case-insensitive)
	// reads allows non-mutating AWS calls for an exit 2 (default: none).
	reads bool
	// prepare readies the account first; after checks it afterwards.
	prepare, after func(t *testing.T)
}

// fxWellFormedCI are CI variables of the right shape, for push cases that
// must fail on validation alone (no setup behind them).
var fxWellFormedCI = map[string]string{
	"AWS_IAM_USER_ACCESS_KEY_ID":     "AKIAIOSFODNN7EXAMPLE",
	"AWS_IAM_USER_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"AWS_IAM_ROLE_ARN":               "arn:aws:iam::123456789012:role/containerise",
	"AWS_REGION":                     "us-east-1",
}

// badInputs lists the invalid invocations (exit 2).
func badInputs() []badInput {
	long := func(n int) string { return strings.Repeat("a", n) }
	emptyDir := func(t *testing.T) string { return t.TempDir() }
	fileAsDir := func(t *testing.T) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+baseImage()+"\n"), 0o644)
		return dir
	}
	ci := func(name, value string) []string { return []string{name + "=" + value} }
	return []badInput{
		// setup: names against ECR's and IAM's rules
		{name: "setup repository with capitals", args: []string{"setup", "--repository", "MyApp"}, code: 2, names: []string{"--repository"}},
		{name: "setup repository of one character", args: []string{"setup", "--repository", "a"}, code: 2, names: []string{"--repository"}},
		{name: "setup repository of 257 characters", args: []string{"setup", "--repository", long(257)}, code: 2, names: []string{"--repository"}},
		{name: "setup repository with an empty path part", args: []string{"setup", "--repository", "team//app"}, code: 2, names: []string{"--repository"}},
		{name: "setup repository starting with a dash", args: []string{"setup", "--repository", "-app"}, code: 2, names: []string{"--repository"}},
		{name: "setup repository ending with a separator", args: []string{"setup", "--repository", "app_"}, code: 2, names: []string{"--repository"}},
		{name: "setup empty repository", args: []string{"setup", "--repository", ""}, code: 2, names: []string{"--repository"}},
		{name: "setup user with a space", args: []string{"setup", "--user", "ci bot"}, code: 2, names: []string{"--user"}},
		{name: "setup user of 65 characters", args: []string{"setup", "--user", long(65)}, code: 2, names: []string{"--user"}},
		{name: "setup empty user", args: []string{"setup", "--user", ""}, code: 2, names: []string{"--user"}},
		{name: "setup role with a slash", args: []string{"setup", "--role", "ci/push"}, code: 2, names: []string{"--role"}},
		{name: "setup role of 65 characters", args: []string{"setup", "--role", long(65)}, code: 2, names: []string{"--role"}},
		{name: "setup role with non-ASCII letters", args: []string{"setup", "--role", "rôle"}, code: 2, names: []string{"--role"}},
		{name: "setup policy with a star", args: []string{"setup", "--policy", "push*"}, code: 2, names: []string{"--policy"}},
		{name: "setup policy of 129 characters", args: []string{"setup", "--policy", long(129)}, code: 2, names: []string{"--policy"}},
		// setup: other flags and the region
		{name: "setup unknown output format", args: []string{"setup", "--output", "yaml"}, code: 2, names: []string{"--output"}},
		{name: "setup malformed --region", args: []string{"setup", "--region", "moon-1"}, code: 2, names: []string{"--region"}},
		{name: "setup upper-case --region", args: []string{"setup", "--region", "US-EAST-1"}, code: 2, names: []string{"--region"}},
		{name: "setup malformed AWS_REGION", args: []string{"setup"}, env: []string{"AWS_REGION=nowhere", "AWS_DEFAULT_REGION=nowhere"}, code: 2, names: []string{"AWS_REGION"}},
		{name: "setup zero --wait", args: []string{"setup", "--wait", "0s"}, code: 2, names: []string{"--wait"}},
		{name: "setup --wait that is not a duration", args: []string{"setup", "--wait", "soon"}, code: 2, names: []string{"--wait"}},
		{name: "setup --env-file in a missing folder", args: []string{"setup", "--env-file", "/nonexistent-containerise/ci.env"}, code: 2, names: []string{"--env-file"}},
		{name: "setup --env-file that is a folder", args: []string{"setup", "--env-file", os.TempDir()}, code: 2, names: []string{"--env-file"}},
		{name: "setup --env-file with --dry-run", args: []string{"setup", "--dry-run", "--env-file", filepath.Join(os.TempDir(), "x.env")}, code: 2, names: []string{"--env-file"}},
		{name: "setup unknown flag", args: []string{"setup", "--repo", "x"}, code: 2, names: []string{"--repo"}},
		{name: "setup positional argument", args: []string{"setup", "circleci"}, code: 2, names: []string{"circleci"}},
		{name: "unknown command", args: []string{"deploy"}, code: 2, names: []string{"deploy"}},

		// push: the CI variables
		{name: "push without any CI variable", args: []string{"push"}, env: []string{"AWS_IAM_USER_ACCESS_KEY_ID=", "AWS_IAM_USER_SECRET_ACCESS_KEY=", "AWS_IAM_ROLE_ARN="}, code: 2, names: []string{"AWS_IAM_USER_ACCESS_KEY_ID"}},
		{name: "push malformed access key ID", args: []string{"push"}, env: ci("AWS_IAM_USER_ACCESS_KEY_ID", "not-a-key"), code: 2, names: []string{"AWS_IAM_USER_ACCESS_KEY_ID"}},
		{name: "push without the secret", args: []string{"push"}, env: ci("AWS_IAM_USER_SECRET_ACCESS_KEY", ""), code: 2, names: []string{"AWS_IAM_USER_SECRET_ACCESS_KEY"}},
		{name: "push secret with a line break", args: []string{"push"}, env: ci("AWS_IAM_USER_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG\nbPxRfiCYEXAMPLEKEY"), code: 2, names: []string{"AWS_IAM_USER_SECRET_ACCESS_KEY"}},
		{name: "push without the role ARN", args: []string{"push"}, env: ci("AWS_IAM_ROLE_ARN", ""), code: 2, names: []string{"AWS_IAM_ROLE_ARN"}},
		{name: "push role ARN that is a user ARN", args: []string{"push"}, env: ci("AWS_IAM_ROLE_ARN", "arn:aws:iam::123456789012:user/circleci"), code: 2, names: []string{"AWS_IAM_ROLE_ARN"}},
		{name: "push role ARN with a short account", args: []string{"push"}, env: ci("AWS_IAM_ROLE_ARN", "arn:aws:iam::12345:role/containerise"), code: 2, names: []string{"AWS_IAM_ROLE_ARN"}},
		{name: "push role ARN of another service", args: []string{"push"}, env: ci("AWS_IAM_ROLE_ARN", "arn:aws:s3:::containerise"), code: 2, names: []string{"AWS_IAM_ROLE_ARN"}},
		{name: "push --role-arn that is no ARN", args: []string{"push", "--role-arn", "containerise"}, code: 2, names: []string{"--role-arn"}},
		{name: "push without AWS_REGION", args: []string{"push"}, env: []string{"AWS_REGION=", "AWS_DEFAULT_REGION="}, code: 2, names: []string{"AWS_REGION"}},
		{name: "push malformed AWS_REGION", args: []string{"push"}, env: ci("AWS_REGION", "us_east_1"), code: 2, names: []string{"AWS_REGION"}},
		{name: "push malformed --region", args: []string{"push", "--region", "eu-west"}, code: 2, names: []string{"--region"}},
		// push: tags, repository, build inputs
		{name: "push tag starting with a dash", args: []string{"push", "--tag", "-v1"}, code: 2, names: []string{"--tag"}},
		{name: "push empty tag", args: []string{"push", "--tag", ""}, code: 2, names: []string{"--tag"}},
		{name: "push tag with a colon", args: []string{"push", "--tag", "v1:latest"}, code: 2, names: []string{"--tag"}},
		{name: "push tag of 129 characters", args: []string{"push", "--tag", long(129)}, code: 2, names: []string{"--tag"}},
		{name: "push repository with capitals", args: []string{"push", "--repository", "Team/App"}, code: 2, names: []string{"--repository"}},
		{name: "push missing context folder", args: []string{"push", "--context", "/nonexistent-containerise-context"}, code: 2, names: []string{"/nonexistent-containerise-context"}},
		{name: "push context without a Dockerfile", args: []string{"push"}, dir: emptyDir, code: 2, names: []string{"Dockerfile"}},
		{name: "push missing --file", args: []string{"push", "--file", "Dockerfile.prod"}, code: 2, names: []string{"Dockerfile.prod"}},
		{name: "push --file that is a folder", args: []string{"push", "--file", "."}, dir: fileAsDir, code: 2, names: []string{"--file"}},
		{name: "push --build-arg without a key", args: []string{"push", "--build-arg", "=1.0"}, code: 2, names: []string{"--build-arg"}},
		{name: "push --label without a key", args: []string{"push", "--label", "=team"}, code: 2, names: []string{"--label"}},
		{name: "push negative --wait", args: []string{"push", "--wait", "-5s"}, code: 2, names: []string{"--wait"}},
		{name: "push unknown flag", args: []string{"push", "--tags", "v1"}, code: 2, names: []string{"--tags"}},

		// teardown
		{name: "teardown without --yes and no terminal", args: []string{"teardown"}, code: 2, names: []string{"--yes"}, reads: true,
			// Something to delete, or there is nothing to confirm.
			prepare: func(t *testing.T) { fxSetup(t, nil) },
			after: func(t *testing.T) {
				fxCheckComplete(t, fxEndState(t, awsClients(t).Cfg.Region))
				resetAWS(t)
			}},
		{name: "teardown repository with a space", args: []string{"teardown", "--yes", "--repository", "my app"}, code: 2, names: []string{"--repository"}},
		{name: "teardown empty user", args: []string{"teardown", "--yes", "--user", ""}, code: 2, names: []string{"--user"}},
		{name: "teardown role of 65 characters", args: []string{"teardown", "--yes", "--role", long(65)}, code: 2, names: []string{"--role"}},
		{name: "teardown policy with a colon", args: []string{"teardown", "--yes", "--policy", "a:b"}, code: 2, names: []string{"--policy"}},
		{name: "teardown unknown output format", args: []string{"teardown", "--yes", "--output", "dotenv"}, code: 2, names: []string{"--output"}},
		{name: "teardown malformed --region", args: []string{"teardown", "--yes", "--region", "us-east"}, code: 2, names: []string{"--region"}},
		{name: "teardown unknown flag", args: []string{"teardown", "--force"}, code: 2, names: []string{"--force"}},
	}
}

func TestBadInput(t *testing.T) {
	resetAWS(t)
	p := newAWSPath(t)
	validApp, _ := fxApp(t, 64, "")
	cases := badInputs()
	if len(cases) < 30 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := validApp
			if tc.dir != nil {
				dir = tc.dir(t)
			}
			env := p.env("DOCKER_CONFIG=" + t.TempDir())
			if tc.args[0] == "push" {
				// A CI job's environment: the variables, no admin keys.
				env = fxCIEnv(fxWellFormedCI, env...)
			}
			env = append(env, tc.env...)
			if tc.prepare != nil {
				tc.prepare(t)
			}
			p.reset()
			r := runWith(t, runOpts{env: env, dir: dir}, tc.args...)
			fxCheckBad(t, p, tc, r)
			if tc.after != nil {
				tc.after(t)
			}
			t.Logf("exit %d: %s", r.Code, fxFirstErrorLine(r))
		})
	}
	t.Logf("%d bad inputs tried", len(cases))
}

// fxCheckBad checks one bad run: its exit code, its one error line, and the
// AWS calls it made.
func fxCheckBad(t *testing.T, p *awsPath, tc badInput, r result) {
	t.Helper()
	if r.Code != tc.code {
		t.Errorf("want exit %d, got:\n%s", tc.code, r)
	}
	fxErrorLine(t, r, tc.names...)
	if m := p.Mutating(); len(m) > 0 {
		t.Errorf("made mutating AWS calls: %v", m)
	}
	if tc.code == 2 && !tc.reads {
		if calls := p.Names(); len(calls) > 0 {
			t.Errorf("invalid input, yet AWS was called: %v", calls)
		}
	}
	if tc.code == 2 && strings.Contains(r.Stdout, "Usage:") {
		t.Errorf("the whole usage text was printed on stdout:\n%s", r.Stdout)
	}
}

// TestBadInputBuildFailures are inputs that pass validation and fail at the
// engine: exit 1 with the engine's message, no tag, no mutating AWS call.
func TestBadInputBuildFailures(t *testing.T) {
	resetAWS(t)
	vars := fxSetup(t, nil)
	p := newAWSPath(t)
	stamp := fmt.Sprintf("%x", os.Getpid())
	for _, tc := range []struct {
		name, dockerfile string
		names            []string
	}{
		{"a RUN step that fails", fmt.Sprintf("FROM %s\nRUN echo building %s && exit 3\n", baseImage(), stamp), []string{"3"}},
		{"a base image that does not exist", "FROM local/containerise-no-such-base:" + stamp + "\nCMD [\"true\"]\n", []string{"local/containerise-no-such-base"}},
		{"a Dockerfile that does not parse", "FROM " + baseImage() + "\nNOSUCHINSTRUCTION now\n", []string{"nosuchinstruction"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeApp(t, tc.dockerfile, map[string]string{})
			tag := "bad-" + stamp
			p.reset()
			r := fxPush(t, vars, p.env(), dir, tag)
			fxCheckBad(t, p, badInput{code: 1, names: tc.names}, r)
			t.Logf("exit %d: %s", r.Code, fxFirstErrorLine(r))
			if d := manifestDigest(t, fxRepo, tag); d != "" {
				t.Errorf("the failed push left tag %s (%s)", tag, d)
			}
			if strings.Contains(r.Stdout, "@sha256:") {
				t.Errorf("the failed push printed a digest:\n%s", r.Stdout)
			}
		})
	}
}
