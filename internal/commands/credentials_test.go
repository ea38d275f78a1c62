package commands

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminCommandsWithoutCredentials: setup and teardown on a machine with
// no AWS credentials say so, and how to provide them, instead of failing on
// their first API call.
func TestAdminCommandsWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	for name, value := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_REGION": "us-east-1",
	} {
		t.Setenv(name, value)
	}
	for _, args := range [][]string{{"setup"}, {"teardown", "--yes"}} {
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "no AWS credentials found") || !strings.Contains(stderr, "AWS_PROFILE") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 explaining how to provide credentials", args, code, stderr)
		}
		if strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: want one error line, got:\n%s", args, stderr)
		}
	}
}
