package commands

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// storedTestResults returns the paths of the job's store_test_results steps.
func (c circleConfig) storedTestResults() []string {
	var paths []string
	for _, step := range c.Jobs["containerise"].Steps {
		var s struct {
			Store *struct{ Path string } `yaml:"store_test_results"`
		}
		if step.Kind == yaml.MappingNode && step.Decode(&s) == nil && s.Store != nil {
			paths = append(paths, s.Store.Path)
		}
	}
	return paths
}

// TestCircleCIConfigScanGate: with --fail-on the job's push gates on the
// scan, writes a JUnit report inside the folder that store_test_results
// uploads; without it, neither.
func TestCircleCIConfigScanGate(t *testing.T) {
	cfg, out := circleCIConfigOf(t, "--fail-on", "high", "--only-fixable", "--ignore-file", "ci/scan ignore", "--require-signature")
	argv := shellArgv(t, cfg.runCommands(t)["Build and push to ECR"])
	want := []string{"push", "--auth", "keys", "--repository", "circleci-ecr-test", "--tag", "v1", "--scan", "--fail-on", "HIGH", "--only-fixable",
		"--ignore-file", "ci/scan ignore", "--require-signature", "--junit", "test-results/containerise/scan.xml"}
	if !reflect.DeepEqual(argv, want) {
		t.Errorf("the job runs containerise with %q, want %q", argv, want)
	}
	stored := cfg.storedTestResults()
	if len(stored) != 1 || !strings.HasPrefix(argv[len(argv)-1], stored[0]+"/") {
		t.Errorf("store_test_results %q does not upload the report %s:\n%s", stored, argv[len(argv)-1], out)
	}
	steps := cfg.Jobs["containerise"].Steps
	if last := steps[len(steps)-1]; last.Kind != yaml.MappingNode || last.Content[0].Value != "store_test_results" {
		t.Errorf("store_test_results is not the step after the push:\n%s", out)
	}

	plain, out := circleCIConfigOf(t)
	if len(plain.storedTestResults()) != 0 || strings.Contains(out, "--scan") {
		t.Errorf("without --fail-on, no gate and no report:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fail-on", "severe"}, `--fail-on "severe"`},
		{[]string{"--only-fixable"}, "add --fail-on HIGH"},
		{[]string{"--fail-on", "HIGH", "--ignore-file", "/etc/ignores"}, "--ignore-file"},
		{[]string{"--fail-on", "HIGH", "--ignore-file", "x\n- run: id"}, "--ignore-file"},
	} {
		out, errOut, code := runCLI(t, append([]string{"circleci-config"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 naming %s", tc.args, code, errOut, tc.want)
		}
	}
}
