package policies

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// matchGolden compares got with testdata/file, byte for byte, and returns
// the file; -update rewrites it first. A change to a document's wording or
// shape then shows in review as a change to its golden file.
func matchGolden(t *testing.T, file, got string) string {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policies -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", file, got, want)
	}
	return string(want)
}

func TestUserTrustGolden(t *testing.T) {
	doc := Trust("arn:aws:iam::123456789012:user/circleci")
	want := matchGolden(t, "trust-user.json", doc.JSON()+"\n")
	if same, err := Equivalent(want, doc); !same || err != nil {
		t.Errorf("trust-user: the golden file is not equivalent to the document (%v)", err)
	}
}
