package install

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestMakeReleaseInstallsInABareShell runs `make release` (goreleaser, as
// pinned in tools/go.mod) for linux/amd64 only into a temporary dist, checks
// what it wrote, then runs the emitted install step against it over HTTPS.
// Slow the first time (it builds the release tools): not with -short.
func TestMakeReleaseInstallsInABareShell(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release with goreleaser: run without -short (make test does)")
	}
	const version = "v0.9.0"
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := makeRelease(t, repo, version)

	// Reproducible: a second release of the same commit is byte for byte
	// the same.
	again := makeRelease(t, repo, version)
	first, _ := os.ReadFile(filepath.Join(dist, Checksums(version)))
	second, _ := os.ReadFile(filepath.Join(again, Checksums(version)))
	if len(first) == 0 || string(first) != string(second) {
		t.Errorf("two releases of one commit differ:\n%s\n%s", first, second)
	}

	archive := filepath.Join(dist, Archive(version, "linux", "amd64"))
	sums := filepath.Join(dist, Checksums(version))
	for _, f := range []string{archive, sums} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("make release did not write %s: %v", filepath.Base(f), err)
		}
	}
	check := exec.Command("sha256sum", "-c", filepath.Base(sums))
	check.Dir = dist
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), Archive(version, "linux", "amd64")+": OK") {
		t.Errorf("sha256sum -c %s: %v\n%s", filepath.Base(sums), err, out)
	}
	sbom, err := os.ReadFile(filepath.Join(dist, "containerise_0.9.0_linux_amd64.sbom.cdx.json"))
	if err != nil {
		t.Fatalf("no SBOM for the archive: %v", err)
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name, Version string } `json:"component"`
		} `json:"metadata"`
		Components []struct{ Name string } `json:"components"`
	}
	if err := json.Unmarshal(sbom, &bom); err != nil || bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Version != version || len(bom.Components) == 0 {
		t.Errorf("the SBOM is not a CycloneDX document of %s with its modules: %v\n%.400s", version, err, sbom)
	}

	// The release folder as the download server lays it out: BASE/VERSION/.
	root := t.TempDir()
	if err := os.Symlink(dist, filepath.Join(root, version)); err != nil {
		t.Fatal(err)
	}
	checkInstallStep(t, root, version)
}

// makeRelease runs make release for linux/amd64 only into a new temporary
// dist and returns it.
func makeRelease(t *testing.T, repo, version string) string {
	t.Helper()
	dist := filepath.Join(t.TempDir(), "dist")
	// The repository's own release configuration, narrowed to one target
	// and pointed at the temporary dist.
	raw, err := os.ReadFile(filepath.Join(repo, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["dist"] = dist
	cfg["builds"].([]any)[0].(map[string]any)["targets"] = []string{"linux_amd64"}
	narrowed, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "goreleaser.yaml")
	if err := os.WriteFile(cfgFile, narrowed, 0o644); err != nil {
		t.Fatal(err)
	}
	mk := exec.Command("make", "release", "VERSION="+version, "RELEASE_FLAGS=--config "+cfgFile)
	mk.Dir = repo
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}

	return dist
}
