// Package buildinfo says which containerise is running: the version, commit
// and date a release build stamps in, or what the Go toolchain recorded for
// a binary built with `go install` or `go build`.
package buildinfo

import (
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
)

// Info describes one binary.
type Info struct {
	// Version is a release tag (v1.2.3), a module version (a tag or a
	// pseudo-version), a `git describe` of a local build, or "dev".
	Version string
	Commit  string // the source commit, when known
	Date    string // the commit's date (RFC 3339), when known
	// Module is set when the facts come from the Go toolchain's build
	// information rather than a release build's stamps.
	Module string
}

// Read combines what the release build stamped in (empty or "dev" when it
// did not) with the toolchain's build information, which `go install
// module@version` fills with the module version.
func Read(version, commit, date string) Info {
	if version != "" && version != "dev" {
		return Info{Version: version, Commit: commit, Date: date}
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "dev"}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, Module: bi.Main.Path}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "dev"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.Date = s.Value
		}
	}
	return info
}

var (
	// releaseTag is vMAJOR.MINOR.PATCH with an optional semver pre-release.
	releaseTag = regexp.MustCompile(`^v(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)
	// describe is `git describe` past a tag or with local changes
	// (v1.2.3-4-gabcdef1, v1.2.3-dirty), and
	// pseudo is a Go pseudo-version (v0.0.0-20260101000000-abcdef123456,
	// v1.2.4-0.20260101000000-abcdef123456): builds between releases.
	describe = regexp.MustCompile(`-[0-9]+-g[0-9a-f]{7,40}(?:-dirty)?$|-dirty$`)
	pseudo   = regexp.MustCompile(`[-.][0-9]{14}-[0-9a-f]{12}$`)
)

// IsRelease says whether v names a release (v1.2.3 or v1.2.3-rc.1) rather
// than a build between releases.
func IsRelease(v string) bool {
	return releaseTag.MatchString(v) && !describe.MatchString(v) && !pseudo.MatchString(v)
}

// Release is the release this binary is, or "" for a build between
// releases.
func (i Info) Release() string {
	if IsRelease(i.Version) {
		return i.Version
	}
	return ""
}

// String is the --version line.
func (i Info) String() string {
	var facts []string
	switch {
	case i.Module != "" && i.Version != "dev":
		facts = append(facts, "module "+i.Module+"@"+i.Version)
	case i.Module != "":
		facts = append(facts, "built from a checkout of "+i.Module)
	}
	if i.Commit != "" {
		facts = append(facts, "commit "+i.Commit)
	}
	if i.Date != "" {
		facts = append(facts, "built "+i.Date)
	}
	if len(facts) == 0 {
		return "containerise " + i.Version
	}
	return fmt.Sprintf("containerise %s (%s)", i.Version, strings.Join(facts, ", "))
}
