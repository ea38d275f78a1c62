package commands

import (
	"reflect"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/clierror"
)

// TestCircleCIConfigBuilderContainer: --builder container reaches the
// job's push line; the default leaves push's own default; other values
// are refused before anything is printed.
func TestCircleCIConfigBuilderContainer(t *testing.T) {
	cfg, _ := circleCIConfigOf(t, "--builder", "container")
	push := cfg.runCommands(t)["Build and push to ECR"]
	if got, want := shellArgv(t, push), []string{"push", "--auth", "keys", "--repository", "circleci-ecr-test", "--tag", "v1", "--builder", "container"}; !reflect.DeepEqual(got, want) {
		t.Errorf("the job runs containerise with %q, want %q", got, want)
	}
	cfg, _ = circleCIConfigOf(t)
	if push := cfg.runCommands(t)["Build and push to ECR"]; strings.Contains(push, "--builder") {
		t.Errorf("the default config names a builder: %q", push)
	}
	for _, bad := range []string{"remote", "classic", ""} {
		var out, errw strings.Builder
		g := &Globals{In: strings.NewReader(""), Out: &out, Err: &errw}
		root := NewRoot("test", g)
		root.SetArgs([]string{"circleci-config", "--builder", bad})
		err := root.Execute()
		if clierror.Code(err) != clierror.ExitUsage || out.Len() > 0 {
			t.Errorf("--builder %q: error %v, output %q", bad, err, out.String())
		}
	}
}
