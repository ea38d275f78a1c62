package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// stepTools are the only programs the release step may use: what a small
// CI image such as cimg/base has. No Go.
var stepTools = []string{"bash", "sh", "uname", "mktemp", "curl", "awk", "sha256sum", "mkdir", "tar", "gzip", "rm"}

// bareShell is a job's shell with a minimal PATH (links to stepTools
// only), its own HOME and the files a CI hands PATH on through.
type bareShell struct {
	home, bashEnv, githubPath string
	env                       []string
}

func newBareShell(t *testing.T, caFile string) *bareShell {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range stepTools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("the test needs %s on this machine: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	s := &bareShell{home: filepath.Join(dir, "home"), bashEnv: filepath.Join(dir, "bash_env"), githubPath: filepath.Join(dir, "github_path")}
	for _, f := range []string{s.bashEnv, s.githubPath} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(s.home, 0o755); err != nil {
		t.Fatal(err)
	}
	// curl trusts the test server through CURL_CA_BUNDLE, the variable curl
	// itself reads: the step runs as it would in CI.
	s.env = []string{"PATH=" + bin, "HOME=" + s.home, "BASH_ENV=" + s.bashEnv, "GITHUB_PATH=" + s.githubPath, "CURL_CA_BUNDLE=" + caFile}
	return s
}

// run runs script as one CI step: a fresh non-interactive bash, which
// reads $BASH_ENV first, as CircleCI's steps do.
func (s *bareShell) run(t *testing.T, script string) (string, error) {
	t.Helper()
	return s.runWith(t, "bash", script)
}

// runWith runs script with the named shell (sh: a POSIX shell, dash on
// Debian, as a GitLab or Bitbucket job may use).
func (s *bareShell) runWith(t *testing.T, shell, script string) (string, error) {
	t.Helper()
	sh, err := exec.LookPath(shell)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = s.env
	cmd.Dir = s.home
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// serve serves dir over HTTPS on a local test server; it returns the base
// URL and a file holding the server's certificate.
func serve(t *testing.T, dir string) (base, caFile string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}

// fakeRelease writes a release folder as goreleaser lays it out
// (BASE/VERSION/archive and checksums) holding a containerise built with
// the release's version stamp; release_test.go checks goreleaser's own.
func fakeRelease(t *testing.T, version string) (root string) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the release step is exercised on linux/amd64, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root = t.TempDir()
	exe, err := stampedBinary(version)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	zw := gzip.NewWriter(&archive)
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		body []byte
	}{{"README.md", []byte("# containerise\n")}, {"containerise", exe}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, version)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := Archive(version, "linux", "amd64")
	sums := fmt.Sprintf("%x  %s\n%x  %s\n", sha256.Sum256([]byte("other")), Archive(version, "linux", "arm64"), sha256.Sum256(archive.Bytes()), name)
	if err := os.WriteFile(filepath.Join(dir, name), archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Checksums(version)), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

var built = map[string][]byte{}

// stampedBinary builds containerise as a release would stamp it, once per
// version.
func stampedBinary(version string) ([]byte, error) {
	if exe, ok := built[version]; ok {
		return exe, nil
	}
	dir, err := os.MkdirTemp("", "containerise-install-test")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "containerise")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+version+" -X main.commit=0123abc -X main.date=2026-12-01T10:00:00Z",
		"-o", bin, "github.com/containerise/containerise/cmd/containerise")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building containerise: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err == nil {
		built[version] = exe
	}
	return exe, err
}

// checkInstallStep runs the CircleCI form of the step against the release
// under root, then containerise --version in a later step; with one byte of
// the archive changed, the step must fail and install nothing.
func checkInstallStep(t *testing.T, root, version string) {
	t.Helper()
	base, ca := serve(t, root)
	step := Options{Version: version, ReleaseURL: base}.StepFor(BashEnv)
	if step.FromSource || step.Image != ReleaseImage {
		t.Fatalf("a release installs from source or on %s: %+v", step.Image, step)
	}

	sh := newBareShell(t, ca)
	if _, err := sh.run(t, "go version"); err == nil {
		t.Fatal("the bare shell has Go: the test would not show the step needs none")
	}
	start := time.Now()
	out, err := sh.run(t, step.Command)
	if err != nil {
		t.Fatalf("the install step failed: %v\n%s", err, out)
	}
	t.Logf("the install step took %s (a figure, not a check)", time.Since(start).Round(time.Millisecond))
	later, err := sh.run(t, "containerise --version")
	if err != nil || !strings.HasPrefix(later, "containerise "+version+" (commit ") {
		t.Fatalf("a later step's containerise --version: %v\n%s", err, later)
	}

	// One byte changed: refused, nothing installed.
	archive := filepath.Join(root, version, Archive(version, "linux", "amd64"))
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(archive, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sh = newBareShell(t, ca)
	out, err = sh.run(t, step.Command)
	if err == nil || !strings.Contains(out, "does not match its SHA-256") {
		t.Fatalf("the step accepted a changed archive: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(sh.home, ".local", "bin", "containerise")); !os.IsNotExist(err) {
		t.Errorf("a changed archive was unpacked anyway: %v", err)
	}
	if env, _ := os.ReadFile(sh.bashEnv); len(env) > 0 {
		t.Errorf("a failed step still changed PATH: %s", env)
	}
}

func TestReleaseStepInstallsAndVerifies(t *testing.T) {
	checkInstallStep(t, fakeRelease(t, "v0.9.1"), "v0.9.1")
}

// The GitHub Actions form hands the folder on through $GITHUB_PATH.
func TestReleaseStepGitHubPath(t *testing.T) {
	root := fakeRelease(t, "v0.9.1")
	base, ca := serve(t, root)
	sh := newBareShell(t, ca)
	out, err := sh.run(t, Options{Version: "v0.9.1", ReleaseURL: base}.StepFor(GitHubPath).Command)
	if err != nil {
		t.Fatalf("the install step failed: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(sh.githubPath)
	if want := filepath.Join(sh.home, ".local", "bin") + "\n"; string(got) != want {
		t.Errorf("$GITHUB_PATH holds %q, want %q", got, want)
	}
	if env, _ := os.ReadFile(sh.bashEnv); len(env) > 0 {
		t.Errorf("the GitHub form wrote $BASH_ENV: %s", env)
	}
}

// A release missing from the server fails the step with curl's error.
func TestReleaseStepFailsOnMissingRelease(t *testing.T) {
	root := fakeRelease(t, "v0.9.1")
	base, ca := serve(t, root)
	sh := newBareShell(t, ca)
	out, err := sh.run(t, Options{Version: "v0.9.2", ReleaseURL: base}.StepFor(BashEnv).Command)
	if err == nil || !strings.Contains(out, "404") {
		t.Errorf("installing a release that does not exist: %v\n%s", err, out)
	}
}

// The form for CIs that run a script's lines in one shell (GitLab,
// Bitbucket, Buildkite) works in a POSIX sh without errexit: the next line
// finds containerise; with a changed archive the script stops at the step.
func TestReleaseStepExportsInTheSameShell(t *testing.T) {
	root := fakeRelease(t, "v0.9.1")
	base, ca := serve(t, root)
	step := Options{Version: "v0.9.1", ReleaseURL: base}.StepFor(Export)
	sh := newBareShell(t, ca)
	out, err := sh.runWith(t, "sh", step.Command+"containerise --version\n")
	if err != nil || strings.Count(out, "containerise v0.9.1 (commit ") != 2 {
		t.Fatalf("the install step and the line after it: %v\n%s", err, out)
	}
	for _, f := range []string{sh.bashEnv, sh.githubPath} {
		if b, _ := os.ReadFile(f); len(b) > 0 {
			t.Errorf("the same-shell form wrote %s: %s", f, b)
		}
	}

	archive := filepath.Join(root, "v0.9.1", Archive("v0.9.1", "linux", "amd64"))
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x01
	if err := os.WriteFile(archive, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sh = newBareShell(t, ca)
	out, err = sh.runWith(t, "sh", step.Command+"echo the next line ran\n")
	if err == nil || !strings.Contains(out, "does not match its SHA-256") || strings.Contains(out, "the next line ran") {
		t.Fatalf("a changed archive did not stop the script: %v\n%s", err, out)
	}
}
