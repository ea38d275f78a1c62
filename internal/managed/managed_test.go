package managed

import "testing"

// A kind without tags is setup's only when its text starts with the mark.
func TestMarkProvesOwnership(t *testing.T) {
	if got := Described.On("keep the 10 most recently pushed images"); !Described.Made(got) {
		t.Errorf("%q: not recognised as setup's", got)
	}
	for _, text := range []string{"", "keep the 10 most recently pushed images", "Containerise: x", " containerise: x"} {
		if Described.Made(text) {
			t.Errorf("%q: taken for setup's", text)
		}
	}
}
