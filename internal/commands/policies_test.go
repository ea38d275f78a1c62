package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolateAWS hides the developer's own AWS settings from the SDK chain and
// returns the path of an empty shared config file the test may fill.
func isolateAWS(t *testing.T) (configFile string) {
	t.Helper()
	dir := t.TempDir()
	configFile = filepath.Join(dir, "config")
	for _, kv := range [][2]string{
		{"AWS_CONFIG_FILE", configFile},
		{"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials")},
		{"AWS_REGION", ""}, {"AWS_DEFAULT_REGION", ""}, {"AWS_PROFILE", ""},
		{"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", ""}, {"AWS_SESSION_TOKEN", ""},
		{"AWS_EC2_METADATA_DISABLED", "true"},
	} {
		t.Setenv(kv[0], kv[1])
	}
	return configFile
}

// policiesRegion runs `policies --document permissions` and returns the
// region of the repository ARN it prints.
func policiesRegion(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"policies", "--account", "123456789012", "--document", "permissions"}, args...)...)
	if code != 0 {
		t.Fatalf("policies %v: exit %d\n%s", args, code, errOut)
	}
	const prefix = "arn:aws:ecr:"
	i := strings.Index(out, prefix)
	if i < 0 {
		t.Fatalf("no repository ARN in:\n%s", out)
	}
	region, _, _ := strings.Cut(out[i+len(prefix):], ":")
	return region
}

// The ARNs must name the region setup would create the repository in, and
// no credentials are needed to print them (none are set here).
func TestPoliciesUsesSetupsRegionChain(t *testing.T) {
	config := isolateAWS(t)
	if got := policiesRegion(t); got != "us-east-1" {
		t.Errorf("no region anywhere: ARN region %q, want us-east-1", got)
	}

	if err := os.WriteFile(config, []byte("[default]\nregion = ap-south-1\n\n[profile ci]\nregion = ca-central-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := policiesRegion(t); got != "ap-south-1" {
		t.Errorf("default profile's region: ARN region %q, want ap-south-1", got)
	}
	if got := policiesRegion(t, "--profile", "ci"); got != "ca-central-1" {
		t.Errorf("--profile ci: ARN region %q, want ca-central-1", got)
	}
	t.Setenv("AWS_PROFILE", "ci")
	if got := policiesRegion(t); got != "ca-central-1" {
		t.Errorf("AWS_PROFILE=ci: ARN region %q, want ca-central-1", got)
	}

	t.Setenv("AWS_DEFAULT_REGION", "eu-central-1")
	if got := policiesRegion(t); got != "eu-central-1" {
		t.Errorf("AWS_DEFAULT_REGION over the profile: ARN region %q, want eu-central-1", got)
	}
	t.Setenv("AWS_REGION", "eu-west-2")
	if got := policiesRegion(t); got != "eu-west-2" {
		t.Errorf("AWS_REGION: ARN region %q, want eu-west-2", got)
	}
	if got := policiesRegion(t, "--region", "us-west-2"); got != "us-west-2" {
		t.Errorf("--region over AWS_REGION: ARN region %q, want us-west-2", got)
	}
}

func TestPoliciesRefusesABadRegionFromTheEnvironment(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_REGION", "Europe")
	_, errOut, code := runCLI(t, "policies", "--account", "123456789012")
	if code != 2 || !strings.Contains(errOut, "AWS_REGION") {
		t.Errorf("exit %d, want 2 naming AWS_REGION:\n%s", code, errOut)
	}
}
