// Package install writes the shell step that puts containerise on a CI
// job's PATH. By default it downloads a pinned release archive, checks it
// against the release's checksums file and unpacks it: no Go, no compile,
// no sudo. A commit (or "latest") has no release, so for those the step
// builds from source with `go install` and says so.
//
// The archive and checksums names here must match .goreleaser.yaml, which
// writes the release.
package install

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/containerise/containerise/internal/buildinfo"
	"github.com/containerise/containerise/internal/clierror"
)

const (
	// Module is the command `go install` fetches.
	Module = "github.com/containerise/containerise/cmd/containerise"
	// DefaultReleaseURL holds one folder per release tag.
	DefaultReleaseURL = "https://github.com/containerise/containerise/releases/download"
	// ReleaseImage is a small job image with curl, tar and sha256sum but
	// no Go; SourceImage has Go, for a build from source.
	ReleaseImage = "cimg/base:current"
	SourceImage  = "cimg/go:1.26"
)

// Archive is the name of a release's archive for a platform (Unix
// platforms; Windows gets a .zip).
func Archive(version, goos, goarch string) string {
	return fmt.Sprintf("containerise_%s_%s_%s.tar.gz", strings.TrimPrefix(version, "v"), goos, goarch)
}

// Checksums is the name of a release's checksums file, in the format
// `sha256sum -c` reads.
func Checksums(version string) string {
	return fmt.Sprintf("containerise_%s_checksums.txt", strings.TrimPrefix(version, "v"))
}

// PathFile is how a CI hands PATH to a job's later steps.
type PathFile int

const (
	// BashEnv appends an export line to $BASH_ENV (CircleCI).
	BashEnv PathFile = iota
	// GitHubPath appends the folder to $GITHUB_PATH (GitHub Actions).
	GitHubPath
	// Export exports PATH in the step's own shell, for CIs that run a
	// script's lines in one shell (GitLab CI, Bitbucket Pipelines,
	// Buildkite): the lines after it find containerise. The step is POSIX
	// sh, since those jobs may run it with sh rather than bash.
	Export
)

// Options say what the job installs.
type Options struct {
	// Version is --install-version: "" (this binary's release), a release
	// tag, "latest", or a commit hash.
	Version string
	// ReleaseURL is --release-url, the folder holding one folder per
	// release tag; "" means DefaultReleaseURL.
	ReleaseURL string
	// Binary is the version of the binary writing the config.
	Binary string
}

// Step is a job's install step.
type Step struct {
	Name    string
	Command string
	// Image is the job image the step needs when none is given.
	Image string
	// FromSource says the step compiles with `go install`: the image needs Go.
	FromSource bool
	// Note explains a choice the user did not make explicitly (stderr).
	Note string
}

var commitHash = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// Validate checks the options before anything is written (exit 2).
func (o Options) Validate() error {
	if o.Version != "" && o.Version != "latest" && !buildinfo.IsRelease(o.Version) && !commitHash.MatchString(o.Version) {
		return clierror.Usagef("--install-version %q is invalid: use a release tag such as v1.2.3 or v1.2.3-rc.1, a commit hash of 7-40 lowercase hex digits, or latest", o.Version)
	}
	if o.ReleaseURL != "" {
		u, err := url.Parse(o.ReleaseURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			strings.ContainsAny(o.ReleaseURL, "'\"\\ \t\r\n$`") {
			return clierror.Usagef("--release-url %q is invalid: give an https:// address without query, credentials or quotes, holding one folder per release tag (BASE/v1.2.3/%s)", o.ReleaseURL, Checksums("v1.2.3"))
		}
	}
	return nil
}

// version is what the step installs: --install-version, else this
// binary's own release, else latest (from source).
func (o Options) version() (v, note string) {
	switch {
	case o.Version != "":
		return o.Version, ""
	case buildinfo.IsRelease(o.Binary):
		return o.Binary, ""
	}
	return "latest", fmt.Sprintf("containerise %s is not a release, so the config builds the latest source with go install (unpinned, needs Go in the image); "+
		"give --install-version v1.2.3 to install a checksummed release instead", o.Binary)
}

// StepFor is the install step for a CI that hands PATH on through pf.
func (o Options) StepFor(pf PathFile) Step {
	v, note := o.version()
	if !buildinfo.IsRelease(v) {
		what := "the latest source"
		if v != "latest" {
			what = "commit " + v
		}
		return Step{
			Name: "Install containerise (from source)",
			Command: fmt.Sprintf("# No release for %s: go install builds it, so the image needs Go.\ngo install %s@%s\n",
				what, Module, v),
			Image: SourceImage, FromSource: true, Note: note,
		}
	}
	base := o.ReleaseURL
	if base == "" {
		base = DefaultReleaseURL
	}
	return Step{
		Name:    "Install containerise " + v,
		Command: releaseScript(v, strings.TrimSuffix(base, "/"), pf),
		Image:   ReleaseImage,
	}
}

// releaseScript downloads the archive for the job's platform and the
// checksums file, refuses an archive whose SHA-256 differs, and unpacks the
// binary into a folder of the user's that later steps find on PATH.
//
// The work runs in a subshell that exits on the first failure by itself
// (each fallible line ends in `|| exit 1`), so the step fails the same way
// whether or not the CI's shell has errexit on, and its variables stay in
// the subshell.
func releaseScript(version, base string, pf PathFile) string {
	var header, handOn string
	switch pf {
	case GitHubPath:
		header = "set -eu -o pipefail\n"
		handOn = `echo "$HOME/.local/bin" >> "$GITHUB_PATH"` + "\n\"$HOME/.local/bin/containerise\" --version\n"
	case Export:
		handOn = `export PATH="$HOME/.local/bin:$PATH"` + "\ncontainerise --version\n"
	default:
		header = "set -eu -o pipefail\n"
		handOn = `echo "export PATH=\"$HOME/.local/bin:\$PATH\"" >> "$BASH_ENV"` + "\n\"$HOME/.local/bin/containerise\" --version\n"
	}
	// Every value is a checked constant: version by buildinfo.IsRelease,
	// base by Validate (no quotes), so single quotes hold them.
	return `# A pinned release, checked against its SHA-256 before it runs.
` + header + `(
version='` + version + `'
base='` + base + `'
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) platform=linux_amd64 ;;
  Linux/aarch64 | Linux/arm64) platform=linux_arm64 ;;
  Darwin/x86_64) platform=darwin_amd64 ;;
  Darwin/arm64) platform=darwin_arm64 ;;
  *) echo "containerise has no release for $(uname -s)/$(uname -m)" >&2; exit 1 ;;
esac
archive="containerise_${version#v}_${platform}.tar.gz"
sums="containerise_${version#v}_checksums.txt"
tmp="$(mktemp -d)" || exit 1
curl -fsSL --proto '=https' --retry 3 -o "$tmp/$archive" "$base/$version/$archive" || exit 1
curl -fsSL --proto '=https' --retry 3 -o "$tmp/$sums" "$base/$version/$sums" || exit 1
if command -v sha256sum > /dev/null; then sha256="sha256sum"; else sha256="shasum -a 256"; fi
if ! (cd "$tmp" && awk -v f="$archive" '$2 == f' "$sums" | $sha256 -c -); then
  echo "containerise $version: $archive does not match its SHA-256 in $sums: not installed" >&2
  exit 1
fi
mkdir -p "$HOME/.local/bin" || exit 1
tar -xzf "$tmp/$archive" -C "$HOME/.local/bin" containerise || exit 1
rm -rf "$tmp"
) || exit 1
` + handOn
}
