package commands

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/push"
)

const (
	testKeyID  = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRole   = "arn:aws:iam::123456789012:role/circleci-ecr"
)

// runPushCmd parses a push command line with the given environment and
// returns the options push would have run with.
func runPushCmd(t *testing.T, env map[string]string, args ...string) (push.Options, *Globals, error) {
	t.Helper()
	var out, errw bytes.Buffer
	g := &Globals{In: strings.NewReader(""), Out: &out, Err: &errw}
	root := NewRoot("test", g)
	for _, c := range root.Commands() {
		if c.Name() == "push" {
			root.RemoveCommand(c)
		}
	}
	var got push.Options
	ran := false
	getenv := func(k string) string { return env[k] }
	root.AddCommand(newPushCmdWith(g, getenv, func(_ context.Context, o push.Options) error {
		ran = true
		got = o
		return nil
	}))
	root.SetArgs(append([]string{"push"}, args...))
	err := root.ExecuteContext(context.Background())
	if err == nil && !ran {
		t.Fatal("push did not run")
	}
	if strings.Contains(out.String()+errw.String(), testSecret) {
		t.Errorf("the secret key was printed")
	}
	return got, g, err
}

func blogEnv() map[string]string {
	return map[string]string{
		"AWS_IAM_USER_ACCESS_KEY_ID":     testKeyID,
		"AWS_IAM_USER_SECRET_ACCESS_KEY": testSecret,
		"AWS_IAM_ROLE_ARN":               testRole,
		"AWS_REGION":                     "eu-west-2",
	}
}

func TestPushDefaults(t *testing.T) {
	o, g, err := runPushCmd(t, blogEnv())
	if err != nil {
		t.Fatal(err)
	}
	if o.AccessKeyID != testKeyID || o.SecretAccessKey != testSecret || o.RoleARN != testRole {
		t.Errorf("credentials not taken from the environment: %+v", o)
	}
	if g.Region != "eu-west-2" {
		t.Errorf("region %q, want AWS_REGION's", g.Region)
	}
	if o.Repository != "circleci-ecr-test" || strings.Join(o.Tags, ",") != "v1" || o.Context != "." || o.Dockerfile != "" {
		t.Errorf("defaults: %+v", o)
	}
	if o.Wait != time.Minute || o.SkipExisting || o.BuildArgs != nil || o.Labels != nil || o.Target != "" {
		t.Errorf("defaults: %+v", o)
	}
	if !strings.HasPrefix(o.SessionName, "containerise-") {
		t.Errorf("session name %q", o.SessionName)
	}
}

func TestPushFlags(t *testing.T) {
	env := blogEnv()
	env["CIRCLE_PROJECT_REPONAME"], env["CIRCLE_BUILD_NUM"] = "app", "77"
	env["FROM_ENV"] = "yes"
	o, g, err := runPushCmd(t, env,
		"--role-arn", "arn:aws:iam::123456789012:role/other", "--region", "us-west-2",
		"--repository", "team/api", "-t", "v2", "--tag", "latest", "--tag", "v2",
		"--context", "app", "-f", "app/Dockerfile.prod", "--target", "runtime",
		"--build-arg", "A=1", "--build-arg", "B=x=y", "--build-arg", "FROM_ENV", "--build-arg", "UNSET",
		"--label", "team=core", "--skip-existing", "--wait", "5s")
	if err != nil {
		t.Fatal(err)
	}
	if o.RoleARN != "arn:aws:iam::123456789012:role/other" || g.Region != "us-west-2" {
		t.Errorf("flags do not override the environment: %+v, region %s", o, g.Region)
	}
	if o.Repository != "team/api" || strings.Join(o.Tags, ",") != "v2,latest" || o.Context != "app" ||
		o.Dockerfile != "app/Dockerfile.prod" || o.Target != "runtime" || !o.SkipExisting || o.Wait != 5*time.Second {
		t.Errorf("options: %+v", o)
	}
	if *o.BuildArgs["A"] != "1" || *o.BuildArgs["B"] != "x=y" || *o.BuildArgs["FROM_ENV"] != "yes" || o.BuildArgs["UNSET"] != nil {
		t.Errorf("build args: %v", o.BuildArgs)
	}
	if _, ok := o.BuildArgs["UNSET"]; !ok {
		t.Error("an unset --build-arg KEY must still be sent (with no value)")
	}
	if o.Labels["team"] != "core" {
		t.Errorf("labels: %v", o.Labels)
	}
	if o.SessionName != "circleci-app-77" {
		t.Errorf("session name %q", o.SessionName)
	}
}

func TestPushRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string // changes to blogEnv; "" deletes
		args []string
		want string
	}{
		{name: "no key ID", env: map[string]string{"AWS_IAM_USER_ACCESS_KEY_ID": ""}, want: "AWS_IAM_USER_ACCESS_KEY_ID is not set"},
		{name: "malformed key ID", env: map[string]string{"AWS_IAM_USER_ACCESS_KEY_ID": "akia-lower"}, want: `AWS_IAM_USER_ACCESS_KEY_ID "akia-lower" is invalid`},
		{name: "no secret", env: map[string]string{"AWS_IAM_USER_SECRET_ACCESS_KEY": ""}, want: "AWS_IAM_USER_SECRET_ACCESS_KEY is not set"},
		{name: "secret with a line break", env: map[string]string{"AWS_IAM_USER_SECRET_ACCESS_KEY": testSecret + "\n"}, want: "AWS_IAM_USER_SECRET_ACCESS_KEY contains blanks"},
		{name: "no role", env: map[string]string{"AWS_IAM_ROLE_ARN": ""}, want: "AWS_IAM_ROLE_ARN is not set"},
		{name: "user ARN for a role", env: map[string]string{"AWS_IAM_ROLE_ARN": "arn:aws:iam::123456789012:user/circleci"}, want: "AWS_IAM_ROLE_ARN \"arn:aws:iam::123456789012:user/circleci\" is invalid"},
		{name: "bad --role-arn", args: []string{"--role-arn", "circleci-ecr"}, want: `--role-arn "circleci-ecr" is invalid`},
		{name: "no region", env: map[string]string{"AWS_REGION": ""}, want: "AWS_REGION is not set"},
		{name: "bad region", env: map[string]string{"AWS_REGION": "Europe"}, want: `AWS_REGION "Europe" is invalid`},
		{name: "bad --region", args: []string{"--region", "mars-1"}, want: `--region "mars-1" is invalid`},
		{name: "bad repository", args: []string{"--repository", "Bad_Repo"}, want: `--repository "Bad_Repo" is invalid`},
		{name: "bad tag", args: []string{"--tag", "-v1"}, want: `--tag "-v1" is invalid`},
		{name: "empty tag", args: []string{"--tag", ""}, want: "--tag is empty"},
		{name: "bad build arg", args: []string{"--build-arg", "=x"}, want: `--build-arg "=x"`},
		{name: "bad label", args: []string{"--label", "=x"}, want: `--label "=x"`},
		{name: "negative wait", args: []string{"--wait", "-1s"}, want: "--wait -1s is negative"},
		{name: "stray argument", args: []string{"."}, want: `unexpected argument "."`},
		{name: "unknown flag", args: []string{"--password", "x"}, want: "unknown flag: --password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := blogEnv()
			for k, v := range tt.env {
				if v == "" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			_, _, err := runPushCmd(t, env, tt.args...)
			if err == nil {
				t.Fatal("accepted")
			}
			if clierror.Code(err) != clierror.ExitUsage {
				t.Errorf("exit %d, want 2 (%v)", clierror.Code(err), err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Error("the error shows the secret key")
			}
		})
	}
}

func TestPushHelp(t *testing.T) {
	var out bytes.Buffer
	g := &Globals{In: strings.NewReader(""), Out: &out, Err: &out}
	root := NewRoot("test", g)
	root.SetArgs([]string{"push", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	// The explanations (cache, builders, secrets) are in docs/push.md;
	// the help names the variables, every flag and examples.
	for _, s := range []string{"Examples:", "containerise push --tag", "AWS_IAM_USER_SECRET_ACCESS_KEY", "AWS_IAM_ROLE_ARN", "--skip-existing", "--build-arg", "--wait duration",
		"--builder string", "--secret stringArray", "--ssh stringArray", "--cache-from stringArray", "--no-cache", "--network string", "--platform string",
		"id=ID,env=VAR", "docs/push.md"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("push --help lacks %q", s)
		}
	}
}

// Moved from push: a build input push refuses is worded with its flag.
func TestPushBadBuildInputsNameTheirFlag(t *testing.T) {
	for _, c := range []struct {
		err  *push.InputError
		want string
	}{
		{&push.InputError{Input: push.InputContext, Value: "does-not-exist", Missing: true}, `--context "does-not-exist": no such folder`},
		{&push.InputError{Input: push.InputContext, Value: "app.txt", Problem: "is not a folder"}, `--context "app.txt" is not a folder`},
		{&push.InputError{Input: push.InputContextDockerfile, Value: "/x/empty/Dockerfile", Missing: true}, "Dockerfile in --context"},
		{&push.InputError{Input: push.InputDockerfile, Value: "Dockerfile.prod", Missing: true}, "--file: Dockerfile.prod does not exist"},
		{&push.InputError{Input: push.InputDockerfile, Value: ".", Problem: "is a folder, not a Dockerfile"}, `--file "." is a folder`},
	} {
		err := flagged(clierror.AsUsage(c.err))
		if clierror.Code(err) != clierror.ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v worded %q (exit %d), want %q", c.err, err, clierror.Code(err), c.want)
		}
	}
}
