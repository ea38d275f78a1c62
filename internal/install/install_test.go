package install

import (
	"strings"
	"testing"
)

func TestStepChoosesReleaseOrSource(t *testing.T) {
	for _, tc := range []struct {
		opts       Options
		fromSource bool
		image      string
		has        string
		note       bool
	}{
		{Options{Binary: "v1.2.3"}, false, ReleaseImage, "version='v1.2.3'", false},
		{Options{Binary: "v1.2.3", Version: "v1.4.0-rc.1"}, false, ReleaseImage, "version='v1.4.0-rc.1'", false},
		{Options{Binary: "v1.2.3", ReleaseURL: "https://example.com/r/"}, false, ReleaseImage, "base='https://example.com/r'", false},
		{Options{Binary: "v1.2.3", Version: "9f2c1a7"}, true, SourceImage, "go install " + Module + "@9f2c1a7\n", false},
		{Options{Binary: "v1.2.3", Version: "latest"}, true, SourceImage, "go install " + Module + "@latest\n", false},
		{Options{Binary: "dev"}, true, SourceImage, "go install " + Module + "@latest\n", true},
		{Options{Binary: "v1.2.3-4-gabcdef1"}, true, SourceImage, "go install " + Module + "@latest\n", true},
	} {
		s := tc.opts.StepFor(BashEnv)
		if s.FromSource != tc.fromSource || s.Image != tc.image || !strings.Contains(s.Command, tc.has) || (s.Note != "") != tc.note {
			t.Errorf("%+v: got %+v, want from source %v on %s with %q", tc.opts, s, tc.fromSource, tc.image, tc.has)
		}
		if !tc.fromSource && !strings.Contains(s.Command, DefaultReleaseURL) && tc.opts.ReleaseURL == "" {
			t.Errorf("%+v: the step does not download from %s", tc.opts, DefaultReleaseURL)
		}
	}
}

func TestValidateRefusesWhatCouldBreakTheStep(t *testing.T) {
	for _, o := range []Options{
		{Version: "v1.2"}, {Version: "main"}, {Version: "v1.2.3+meta"}, {Version: "v1.2.3'; id; '"}, {Version: "v1.2.3-4-gabcdef1"},
		{ReleaseURL: "http://example.com"}, {ReleaseURL: "https://example.com/a'b"}, {ReleaseURL: "https://example.com/$(id)"},
		{ReleaseURL: "https://u:p@example.com"}, {ReleaseURL: "https://example.com/?a=b"}, {ReleaseURL: "ftp://example.com"},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
	for _, o := range []Options{{}, {Version: "v1.2.3", ReleaseURL: DefaultReleaseURL}, {Version: "latest"}, {Version: "abcdef0"}, {ReleaseURL: "https://127.0.0.1:8443/r"}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
