package e2e

// Secrets never reach output or files they should not: the CI user's secret
// key, the role session's keys and token, the ECR token and the registry
// password inside it. The counting proxy (proxy_test.go) captures each of
// them from the AWS answers as containerise receives them, so the tests know
// exactly what to look for, at every verbosity and on failure paths too.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// fxLeaks fails when any secret, or the first 16 characters of a long one,
// appears in the run's stdout or stderr.
func fxLeaks(t *testing.T, what string, r result, secrets map[string][]string) {
	t.Helper()
	for kind, values := range secrets {
		for _, v := range values {
			if v == "" {
				continue
			}
			probes := []string{v}
			if len(v) >= 24 {
				probes = append(probes, v[:16])
			}
			for _, probe := range probes {
				for where, text := range map[string]string{"stdout": r.Stdout, "stderr": r.Stderr} {
					if strings.Contains(text, probe) {
						t.Errorf("%s: the %s (%.4s…) appears on %s:\n%s", what, kind, v, where, r)
					}
				}
			}
		}
	}
}

// fxNeed fails unless the proxy captured a secret of each kind, so a leak
// check is never vacuous.
func fxNeed(t *testing.T, secrets map[string][]string, kinds ...string) {
	t.Helper()
	for _, k := range kinds {
		if len(secrets[k]) == 0 {
			t.Fatalf("no %s was captured at the proxy: the check would prove nothing", k)
		}
	}
}

func TestSecretsSetupShowsTheSecretOnlyInItsResult(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		for _, output := range []string{"text", "json", "dotenv"} {
			t.Run(fmt.Sprintf("--output %s verbose=%v", output, verbose), func(t *testing.T) {
				resetAWS(t)
				p := newAWSPath(t)
				args := []string{"setup", "--output", output}
				if verbose {
					args = append(args, "--verbose")
				}
				r := run(t, p.env(), args...)
				if r.Code != 0 {
					t.Fatalf("setup failed:\n%s", r)
				}
				secrets := p.Secrets()
				fxNeed(t, secrets, "user secret key")
				secret := secrets["user secret key"][0]
				if n := strings.Count(r.Stdout, secret); n != 1 {
					t.Errorf("the new secret appears %d times on stdout; want once, in the result:\n%s", n, r.Stdout)
				}
				fxLeaks(t, "setup's stderr", result{Stderr: r.Stderr}, secrets)
				if verbose && !strings.Contains(r.Stderr, "aws: iam.CreateAccessKey") {
					t.Errorf("--verbose logged no AWS call:\n%s", r.Stderr)
				}

				again := run(t, p.env(), args...)
				if again.Code != 0 {
					t.Fatalf("setup rerun failed:\n%s", again)
				}
				fxLeaks(t, "setup rerun", again, secrets)
			})
		}
	}
}

func TestSecretsSetupRotateKey(t *testing.T) {
	resetAWS(t)
	p := newAWSPath(t)
	first := run(t, p.env(), "setup", "--output", "dotenv")
	if first.Code != 0 {
		t.Fatalf("setup failed:\n%s", first)
	}
	old := p.Secrets()
	r := run(t, p.env(), "setup", "--rotate-key", "--yes", "--verbose")
	if r.Code != 0 {
		t.Fatalf("setup --rotate-key --yes failed:\n%s", r)
	}
	all := p.Secrets()["user secret key"]
	if len(all) != 2 {
		t.Fatalf("want 2 keys created (setup, then rotation), captured %d", len(all))
	}
	if n := strings.Count(r.Stdout, all[1]); n != 1 {
		t.Errorf("the rotated key's secret appears %d times on stdout; want once:\n%s", n, r.Stdout)
	}
	fxLeaks(t, "rotation's stderr", result{Stderr: r.Stderr}, map[string][]string{"new secret key": {all[1]}})
	fxLeaks(t, "rotation", r, old)
}

func TestSecretsEnvFileIsPrivate(t *testing.T) {
	resetAWS(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "ci.env")
	// A readable file already there, and a umask that would let anyone read
	// a new file: the result must still be 0600.
	if err := os.WriteFile(path, []byte("STALE=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0)
	r := run(t, nil, "setup", "--env-file", path, "--output", "json")
	syscall.Umask(old)
	if r.Code != 0 {
		t.Fatalf("setup --env-file failed:\n%s", r)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the env file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %o; want 600", path, perm)
	}
	body, _ := os.ReadFile(path)
	vars := fxDotenv(string(body))
	for _, name := range fxVarNames {
		if vars[name] == "" {
			t.Errorf("the env file lacks %s:\n%s", name, body)
		}
	}
	if vars["STALE"] != "" {
		t.Errorf("the env file kept the old content:\n%s", body)
	}
	if !strings.Contains(r.Stdout, vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]) {
		t.Errorf("the result on stdout and the file disagree on the secret")
	}
	fxLeaks(t, "setup --env-file's stderr", result{Stderr: r.Stderr},
		map[string][]string{"user secret key": {vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]}})
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the env file's folder holds %v; want only ci.env (no temporary copy of the secret)", names)
	}

	// A rerun has no new secret: the file stays as it is, still private.
	again := run(t, nil, "setup", "--env-file", path)
	if again.Code != 0 {
		t.Fatalf("rerun failed:\n%s", again)
	}
	if after, _ := os.ReadFile(path); string(after) != string(body) {
		t.Errorf("the rerun changed the env file:\n%s", after)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("after the rerun the env file's mode is %v (%v)", info.Mode().Perm(), err)
	}
}

func TestSecretsPushNeverShowsCredentials(t *testing.T) {
	resetAWS(t)
	vars := fxSetup(t, nil)
	userSecret := map[string][]string{"user secret key": {vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]}}
	p := newAWSPath(t)

	// push in a fresh HOME, so that a credentials file in the default place
	// can only have been written by this run.
	pushIn := func(t *testing.T, dockerConfig string, dir string, args ...string) (result, string) {
		t.Helper()
		home := t.TempDir()
		env := fxCIEnv(vars, p.env("HOME="+home, "DOCKER_CONFIG="+dockerConfig)...)
		return runWith(t, runOpts{env: env, dir: dir}, args...), home
	}
	checkNoCredentialsFile := func(t *testing.T, home, dockerConfig string) {
		t.Helper()
		paths := []string{filepath.Join(home, ".docker", "config.json")}
		if dockerConfig != "" {
			paths = append(paths, filepath.Join(dockerConfig, "config.json"))
		}
		for _, path := range paths {
			if _, err := os.Stat(path); err == nil {
				body, _ := os.ReadFile(path)
				t.Errorf("push wrote Docker credentials to %s:\n%s", path, body)
			}
		}
	}
	checkAll := func(t *testing.T, what string, r result) {
		t.Helper()
		fxLeaks(t, what, r, userSecret)
		fxLeaks(t, what, r, p.Secrets())
	}

	for _, verbose := range []bool{false, true} {
		for _, withConfig := range []bool{false, true} {
			t.Run(fmt.Sprintf("verbose=%v DOCKER_CONFIG set=%v", verbose, withConfig), func(t *testing.T) {
				p.reset()
				before := len(p.Secrets()["session token"])
				dockerConfig := ""
				if withConfig {
					dockerConfig = t.TempDir()
				}
				app, stamp := fxApp(t, 1<<10, "")
				args := []string{"push", "--tag", "secrets-" + stamp}
				if verbose {
					args = append(args, "--verbose")
				}
				r, home := pushIn(t, dockerConfig, app, args...)
				if r.Code != 0 {
					t.Fatalf("push failed:\n%s", r)
				}
				secrets := p.Secrets()
				fxNeed(t, secrets, "session secret key", "session token", "ECR token", "registry password")
				if len(secrets["session token"]) == before {
					t.Fatalf("this push's session token was not captured")
				}
				if secrets["registry password"][0] != os.Getenv("STACK_REGISTRY_PASSWORD") {
					t.Errorf("captured registry password differs from the stack's")
				}
				checkAll(t, "push", r)
				checkNoCredentialsFile(t, home, dockerConfig)
				if verbose && !strings.Contains(r.Stderr, "aws: sts.AssumeRole") {
					t.Errorf("--verbose logged no AWS call:\n%s", r.Stderr)
				}
			})
		}
	}

	// Failure paths, verbose: errors and retries are where credentials slip.
	app, stamp := fxApp(t, 1<<10, "")
	for _, tc := range []struct {
		name  string
		fault awsFaultFunc
		dir   string
		code  int
	}{
		{"every 2nd AWS call throttled", everyNth(2, fThrottle), app, 0},
		{"AssumeRole refused", func(c awsCall) awsFault {
			if c.Operation == "AssumeRole" {
				return fRefuse
			}
			return fPass
		}, app, 1},
		{"GetAuthorizationToken refused", func(c awsCall) awsFault {
			if c.Operation == "GetAuthorizationToken" {
				return fRefuse
			}
			return fPass
		}, app, 1},
		{"the build fails", nil, writeApp(t, "FROM "+baseImage()+"\nRUN exit 7\n", map[string]string{}), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.reset()
			p.setFault(tc.fault)
			// --wait 2s: push waits up to a minute for IAM to know a fresh
			// role, and a refusal looks the same.
			r, home := pushIn(t, "", tc.dir, "push", "--verbose", "--wait", "2s", "--tag", "secrets-fail-"+stamp)
			t.Logf("exit %d: %s", r.Code, fxFirstErrorLine(r))
			if r.Code != tc.code {
				t.Errorf("want exit %d:\n%s", tc.code, r)
			}
			checkAll(t, tc.name, r)
			checkNoCredentialsFile(t, home, "")
		})
	}

	// The registry refusing the credentials: the engine's error passes
	// through containerise and must not carry the password.
	t.Run("the registry refuses the credentials", func(t *testing.T) {
		resetAWS(t)
		rp := newRegistryPath(t)
		west := fxSetup(t, nil, "--region", rp.Region)
		rp.setFault(func(method, path string) regFault { return regDenied })
		p.reset()
		home := t.TempDir()
		env := fxCIEnv(west, p.env("HOME="+home, "DOCKER_CONFIG=")...)
		r := runWith(t, runOpts{env: env, dir: app}, "push", "--verbose", "--tag", "secrets-denied-"+stamp)
		if r.Code != 1 || !strings.Contains(fxFirstErrorLine(r), "denied") {
			t.Errorf("want exit 1 with the registry's refusal:\n%s", r)
		}
		t.Logf("%s", fxFirstErrorLine(r))
		fxLeaks(t, "refused push", r, map[string][]string{"user secret key": {west["AWS_IAM_USER_SECRET_ACCESS_KEY"]}})
		fxLeaks(t, "refused push", r, p.Secrets())
		checkNoCredentialsFile(t, home, "")
	})
}

func TestSecretsTeardownVerbose(t *testing.T) {
	resetAWS(t)
	p := newAWSPath(t)
	r := run(t, p.env(), "setup", "--output", "dotenv")
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	secrets := p.Secrets()
	fxNeed(t, secrets, "user secret key")
	td := run(t, p.env(), "teardown", "--yes", "--verbose")
	if td.Code != 0 {
		t.Fatalf("teardown failed:\n%s", td)
	}
	fxLeaks(t, "teardown --verbose", td, secrets)
	iamc, _ := fxClients(t, awsClients(t).Cfg.Region)
	if _, err := iamc.GetUser(context.Background(), &iam.GetUserInput{UserName: aws.String(fxUser)}); !fxNotFound(err) {
		t.Errorf("the user survived teardown (%v)", err)
	}
}
