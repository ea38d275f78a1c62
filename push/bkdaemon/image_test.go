package bkdaemon

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDefaultImageIsTheClientsRelease: the container builder's default
// image is the BuildKit release whose client push links (go.mod).
func TestDefaultImageIsTheClientsRelease(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/moby/buildkit (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no github.com/moby/buildkit")
	}
	if want := "moby/buildkit:" + string(m[1]); DefaultImage != want || !strings.HasPrefix(DefaultImage, "moby/buildkit:v") {
		t.Errorf("DefaultImage %s, want %s", DefaultImage, want)
	}
}
