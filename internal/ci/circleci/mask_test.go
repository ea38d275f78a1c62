package circleci_test

import (
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci"
)

func TestCompareMasked(t *testing.T) {
	cases := []struct {
		value, shown string
		want         circleci.MaskVerdict
	}{
		{secret, "xxxxEKEY", circleci.MaskMatches},
		{secret, "xxxxEKEZ", circleci.MaskDiffers},
		{secret, "xxxx", circleci.MaskDiffers},     // CircleCI holds a short value
		{secret, "EKEY", circleci.MaskDiffers},     // not a mask at all
		{secret, "****EKEY", circleci.MaskDiffers}, // another format: never assume a match
		{"AKIAIOSFODNN7EXAMPLE", "xxxxMPLE", circleci.MaskMatches},
		{"12345", "xxxx2345", circleci.MaskMatches},     // five characters: the shortest checkable
		{"us-east-1", "xxxxst-1", circleci.MaskMatches}, // evidence only:
		{"us-west-1", "xxxxst-1", circleci.MaskMatches}, // both regions show the same
		{"abcd", "xxxx", circleci.MaskUnverifiable},
		{"abcd", "xxxxabcd", circleci.MaskUnverifiable},
		{"abc", "xxxx", circleci.MaskUnverifiable},
		{"abc", "xxxxabc", circleci.MaskUnverifiable},
		{"", "xxxx", circleci.MaskUnverifiable},
		{"abc", "xxxxwxyz", circleci.MaskDiffers},         // CircleCI holds a longer value
		{"héllo-wörld", "xxxxörld", circleci.MaskMatches}, // characters, not bytes
	}
	for _, c := range cases {
		if got := circleci.CompareMasked(c.value, c.shown); got != c.want {
			t.Errorf("CompareMasked(%q, %q) = %s, want %s", c.value, c.shown, got, c.want)
		}
	}
}

// The fake masks as the documentation says, and the comparison agrees with
// it for every length around the boundary.
func TestCompareMaskedAgainstTheFake(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"", "a", "ab", "abc", "abcd", "abcde", "abcdef", secret} {
		shown, err := f.client.SetProjectEnvVar(ctx(t), project, "V", v)
		if err != nil {
			t.Fatal(err)
		}
		want := circleci.MaskMatches
		if len(v) <= 4 {
			want = circleci.MaskUnverifiable
		}
		if got := circleci.CompareMasked(v, shown.MaskedValue); got != want {
			t.Errorf("value of %d characters shown as %q: %s, want %s", len(v), shown.MaskedValue, got, want)
		}
		if got := circleci.CompareMasked(v+"!", shown.MaskedValue); got != circleci.MaskDiffers && len(v) >= 4 {
			t.Errorf("another value compares %s with %q", got, shown.MaskedValue)
		}
	}
}
