package commands

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errw bytes.Buffer
	code = execute(context.Background(), "v1.2.3", args, strings.NewReader(""), &out, &errw)
	return out.String(), errw.String(), code
}

func TestCircleCIConfigIsValidYAMLThatRunsPush(t *testing.T) {
	out, _, code := runCLI(t, "circleci-config", "--repository", "my-app", "--tag", "v1", "--tag", "${CIRCLE_SHA1}", "--context", "app dir")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var cfg struct {
		Version string `yaml:"version"`
		Jobs    map[string]struct {
			Steps []any `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	if cfg.Version != "2.1" || len(cfg.Jobs["containerise"].Steps) != 4 {
		t.Errorf("unexpected config:\n%s", out)
	}
	for _, want := range []string{
		"setup_remote_docker",
		"go install github.com/containerise/containerise/cmd/containerise@v1.2.3",
		`containerise push --repository my-app --tag v1 --tag "${CIRCLE_SHA1}" --context 'app dir'`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %q:\n%s", want, out)
		}
	}
}

func TestCircleCIConfigRefusesBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"circleci-config", "--repository", "Bad_Name"},
		{"circleci-config", "--tag", "no:colons"},
		{"circleci-config", "extra"},
	} {
		if _, _, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
