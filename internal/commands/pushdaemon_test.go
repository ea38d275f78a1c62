package commands

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/push"
)

// writeTLSPair writes a self-signed certificate and its key as PEM files.
func writeTLSPair(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestPushDaemonFlags(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeTLSPair(t, dir)
	o, _, err := runPushCmd(t, blogEnv(), "--builder", "remote", "--buildkit-host", "tcp://buildkitd.internal:1234",
		"--buildkit-ca", cert, "--buildkit-cert", cert, "--buildkit-key", key, "--cache-tag", "cache-main", "--platform", "linux/amd64,linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	want := push.BuildKitOptions{Host: "tcp://buildkitd.internal:1234", HostFrom: "--buildkit-host", CA: cert, Cert: cert, Key: key}
	if o.Builder != push.BuilderRemote || o.BuildKit != want || o.CacheTag != "cache-main" || len(o.Platforms) != 2 {
		t.Errorf("builder %q, buildkit %+v, cache tag %q, platforms %v", o.Builder, o.BuildKit, o.CacheTag, o.Platforms)
	}

	env := blogEnv()
	env["BUILDKIT_HOST"] = "unix:///run/buildkit/buildkitd.sock"
	o, _, err = runPushCmd(t, env, "--builder", "remote")
	if err != nil {
		t.Fatal(err)
	}
	if o.BuildKit.Host != env["BUILDKIT_HOST"] || o.BuildKit.HostFrom != "BUILDKIT_HOST" {
		t.Errorf("BUILDKIT_HOST: %+v", o.BuildKit)
	}

	o, _, err = runPushCmd(t, env, "--builder", "container", "--buildkit-image", "registry.example.com/tools/buildkit:v0.34.2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Builder != push.BuilderContainer || o.BuildKit.Image != "registry.example.com/tools/buildkit:v0.34.2" || o.BuildKit.Host != "" {
		t.Errorf("container: %q %+v", o.Builder, o.BuildKit)
	}
}

// TestPushDaemonFlagsRefused: bad --buildkit-* input exits 2 before any
// call, naming the flag.
func TestPushDaemonFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeTLSPair(t, dir)
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"remote without an address", nil, []string{"--builder", "remote"}, "no daemon address"},
		{"an address without a scheme", nil, []string{"--builder", "remote", "--buildkit-host", "buildkitd:1234"}, "want unix:///PATH or tcp://HOST:PORT"},
		{"an ssh address", nil, []string{"--builder", "remote", "--buildkit-host", "ssh://me@host"}, "want unix:///PATH or tcp://HOST:PORT"},
		{"tcp without a port", nil, []string{"--builder", "remote", "--buildkit-host", "tcp://buildkitd"}, "want tcp://HOST:PORT"},
		{"a relative unix socket", nil, []string{"--builder", "remote", "--buildkit-host", "unix://buildkitd.sock"}, "absolute path"},
		{"a bad BUILDKIT_HOST", map[string]string{"BUILDKIT_HOST": "http://x:1"}, []string{"--builder", "remote"}, "BUILDKIT_HOST"},
		{"TLS over a unix socket", nil, []string{"--builder", "remote", "--buildkit-host", "unix:///b.sock", "--buildkit-ca", cert}, "tcp:// addresses only"},
		{"a missing CA", nil, []string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-ca", filepath.Join(dir, "nope.pem")}, "--buildkit-ca: "},
		{"a CA that is not PEM", nil, []string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-ca", notPEM}, "holds no PEM certificate"},
		{"a cert without its key", nil, []string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-cert", cert}, "--buildkit-cert needs --buildkit-key"},
		{"a key without its cert", nil, []string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-key", key}, "--buildkit-key needs --buildkit-cert"},
		{"a key that does not match", nil, []string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-cert", cert, "--buildkit-key", notPEM}, "are not a PEM certificate and its key"},
		{"a host without remote", nil, []string{"--buildkit-host", "tcp://b:1234"}, "--buildkit-host is for --builder remote"},
		{"an image without container", nil, []string{"--builder", "remote", "--buildkit-host", "tcp://b:1234", "--buildkit-image", "moby/buildkit"}, "--buildkit-image is for --builder container"},
		{"a bad image", nil, []string{"--builder", "container", "--buildkit-image", "Moby/BuildKit"}, "not an image reference"},
		{"a cache tag with the engine", nil, []string{"--cache-tag", "cache"}, "--cache-tag names the registry cache"},
		{"a bad cache tag", nil, []string{"--builder", "container", "--cache-tag", "bad tag"}, "--cache-tag"},
		{"a cache tag that is a tag", nil, []string{"--builder", "container", "--tag", "v1", "--cache-tag", "v1"}, "is also a --tag"},
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
