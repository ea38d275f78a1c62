package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/push"
)

func TestPushBuildDefaults(t *testing.T) {
	o, _, err := runPushCmd(t, blogEnv())
	if err != nil {
		t.Fatal(err)
	}
	if o.Builder != push.BuilderAuto || o.Network != "default" || o.NoCache || o.Secrets != nil || o.SSH != nil || o.CacheFrom != nil || o.Platforms != nil {
		t.Errorf("build defaults: builder %q, network %q, no-cache %v, secrets %v, ssh %v, cache-from %v, platforms %v",
			o.Builder, o.Network, o.NoCache, o.Secrets, o.SSH, o.CacheFrom, o.Platforms)
	}
}

func TestPushBuildFlags(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "token.txt")
	if err := os.WriteFile(keyFile, []byte("file-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := blogEnv()
	env["NPM_TOKEN"] = "env-secret"
	env["GITHUB_TOKEN"] = "another"
	env["SSH_AUTH_SOCK"] = "/run/agent.sock"
	o, _, err := runPushCmd(t, env,
		"--builder", "buildkit",
		"--secret", "id=npm,env=NPM_TOKEN", "--secret", "id=key,src="+keyFile, "--secret", "type=env,id=gh,source=GITHUB_TOKEN",
		"--secret", "id=GITHUB_TOKEN",
		"--ssh", "default", "--ssh", "deploy="+sock,
		"--cache-from", "123456789012.dkr.ecr.us-east-1.amazonaws.com/base:latest", "--cache-from", "type=registry,ref=example.com/app:cache",
		"--no-cache", "--network", "none", "--platform", "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	want := []push.Secret{{ID: "npm", Env: "NPM_TOKEN"}, {ID: "key", File: keyFile}, {ID: "gh", Env: "GITHUB_TOKEN"}, {ID: "GITHUB_TOKEN", Env: "GITHUB_TOKEN"}}
	if len(o.Secrets) != len(want) {
		t.Fatalf("secrets %+v, want %+v", o.Secrets, want)
	}
	for i := range want {
		if o.Secrets[i] != want[i] {
			t.Errorf("secret %d: %+v, want %+v", i, o.Secrets[i], want[i])
		}
	}
	if len(o.SSH) != 2 || o.SSH[0].ID != "default" || len(o.SSH[0].Paths) != 0 || o.SSH[1].ID != "deploy" || o.SSH[1].Paths[0] != sock {
		t.Errorf("ssh %+v", o.SSH)
	}
	if strings.Join(o.CacheFrom, " ") != "123456789012.dkr.ecr.us-east-1.amazonaws.com/base:latest example.com/app:cache" {
		t.Errorf("cache-from %v", o.CacheFrom)
	}
	if o.Builder != push.BuilderBuildKit || !o.NoCache || o.Network != "none" || strings.Join(o.Platforms, ",") != "linux/arm64" {
		t.Errorf("options %+v", o)
	}
}

func TestPushBuildFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "unknown builder", args: []string{"--builder", "buildx"}, want: `--builder "buildx": want auto, buildkit, classic, remote or container`},
		{name: "secret without id", args: []string{"--secret", "env=X"}, want: "no id="},
		{name: "secret that is not key=value", args: []string{"--secret", "mysecret"}, want: `"mysecret" is not KEY=VALUE`},
		{name: "secret with an unknown key", args: []string{"--secret", "id=a,path=/x"}, want: `unknown key "path"`},
		{name: "secret of an unknown type", args: []string{"--secret", "id=a,type=vault"}, want: `type "vault"`},
		{name: "secret from an unset variable", args: []string{"--secret", "id=a,env=NOT_SET"}, want: "the variable NOT_SET is not set or empty"},
		{name: "secret from a missing file", args: []string{"--secret", "id=a,src=" + filepath.Join(dir, "nope")}, want: "does not exist"},
		{name: "secret from a folder", args: []string{"--secret", "id=a,src=" + dir}, want: "is a folder"},
		{name: "secret with both sources", env: map[string]string{"X": "1"}, args: []string{"--secret", "id=a,env=X,src=" + dir}, want: "not both"},
		{name: "secret with no source", args: []string{"--secret", "id=nowhere"}, want: "say where its value is"},
		{name: "secret given twice", env: map[string]string{"X": "1"}, args: []string{"--secret", "id=a,env=X", "--secret", "id=a,env=X"}, want: `id "a" is given twice`},
		{name: "secret with the classic builder", env: map[string]string{"X": "1"}, args: []string{"--builder", "classic", "--secret", "id=a,env=X"}, want: "need BuildKit"},
		{name: "ssh without an agent", args: []string{"--ssh", "default"}, want: "SSH_AUTH_SOCK is not set"},
		{name: "ssh with a missing key", args: []string{"--ssh", "deploy=" + filepath.Join(dir, "id_rsa")}, want: "does not exist"},
		{name: "cache-from that is no reference", args: []string{"--cache-from", "UPPER/Case"}, want: "not an image reference"},
		{name: "cache-from of a local folder", args: []string{"--cache-from", "type=local,src=/tmp/cache"}, want: "only registry images"},
		{name: "unknown network", args: []string{"--network", "bridge"}, want: `--network "bridge": want default, host or none`},
		{name: "bad platform", args: []string{"--platform", "linux/amd64,windows/"}, want: `"windows/" is not os/arch`},
		{name: "several platforms with the classic builder", args: []string{"--builder", "classic", "--platform", "linux/amd64,linux/arm64"}, want: "several platforms need BuildKit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := blogEnv()
			for k, v := range tt.env {
				env[k] = v
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
		})
	}
}

// TestPushSecretValueNeverInErrors: a refused --secret names the secret and
// its source, never the value.
func TestPushSecretValueNeverInErrors(t *testing.T) {
	env := blogEnv()
	env["TOKEN"] = "value-that-must-not-show"
	_, _, err := runPushCmd(t, env, "--secret", "id=a,env=TOKEN,src=/nope")
	if err == nil || strings.Contains(err.Error(), "value-that-must-not-show") {
		t.Errorf("error %v", err)
	}
}
