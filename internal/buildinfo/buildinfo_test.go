package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestReleaseStampsWin(t *testing.T) {
	got := Read("v1.2.3", "0123abc", "2026-12-01T10:00:00Z")
	if want := "containerise v1.2.3 (commit 0123abc, built 2026-12-01T10:00:00Z)"; got.String() != want {
		t.Errorf("--version %q, want %q", got, want)
	}
	if got.Release() != "v1.2.3" {
		t.Errorf("release %q, want v1.2.3", got.Release())
	}
}

// A `go install module@v1.2.3` binary has no stamps: the toolchain's module
// version says which release it is.
func TestGoInstallReportsTheModuleVersion(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/containerise/containerise", Version: "v1.2.3"}}
	got := fromBuildInfo(bi)
	if want := "containerise v1.2.3 (module github.com/containerise/containerise@v1.2.3)"; got.String() != want {
		t.Errorf("--version %q, want %q", got, want)
	}
	if got.Release() != "v1.2.3" {
		t.Errorf("release %q, want v1.2.3", got.Release())
	}

	// A build from a checkout: no module version, but the commit.
	bi = &debug.BuildInfo{Main: debug.Module{Path: "github.com/containerise/containerise", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}}}
	got = fromBuildInfo(bi)
	if got.Version != "dev" || got.Commit != "abcdef" || got.Release() != "" {
		t.Errorf("a checkout build reads as %+v", got)
	}
}

func TestIsRelease(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3": true, "v0.0.1": true, "v1.2.3-rc.1": true,
		"dev": false, "98be098": false, "v1.2": false,
		"v1.2.3-4-gabcdef1":                         false, // git describe past a tag
		"v1.2.3-4-gabcdef1-dirty":                   false,
		"v0.0.0-20261201100000-abcdef123456":        false, // pseudo-versions
		"v1.2.4-0.20261201100000-abcdef123456":      false,
		"v1.2.4-rc.1.0.20261201100000-abcdef123456": false,
		"v1.2.3-dirty":                              false,
	} {
		if got := IsRelease(v); got != want {
			t.Errorf("IsRelease(%q) = %v, want %v", v, got, want)
		}
	}
}
