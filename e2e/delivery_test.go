package e2e

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// runToFile runs containerise with stdout going to file (such as /dev/full,
// a disk with no room), stderr captured.
func runToFile(t *testing.T, file string, args ...string) result {
	t.Helper()
	out, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("opening %s: %v", file, err)
	}
	defer out.Close()
	return execute(t, cleanEnv(), "", nil, out, binary, args...)
}

// keyWorks reports whether STS accepts the key: the CI user can still
// assume the role with it.
func keyWorks(t *testing.T, vars ciVars) bool {
	t.Helper()
	c := awsClients(t)
	cfg := c.Cfg.Copy()
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: vars["AWS_IAM_USER_ACCESS_KEY_ID"], SecretAccessKey: vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]}, nil
	})
	_, err := sts.NewFromConfig(cfg).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(vars["AWS_IAM_ROLE_ARN"]), RoleSessionName: aws.String("e2e-check")})
	return err == nil
}

// A rotation whose output cannot be written (disk full, closed pipe) must
// not leave CI locked out: it fails, and the old key still works.
func TestDeliveryRotationToAFullDiskKeepsTheOldKey(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	r := runToFile(t, "/dev/full", "setup", "--rotate-key", "--yes", "--output", "dotenv")
	if r.Code == 0 {
		t.Fatalf("a rotation whose secret could not be written exited 0:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "old key "+vars["AWS_IAM_USER_ACCESS_KEY_ID"]+" still works") {
		t.Errorf("stderr does not say the old key still works:\n%s", r.Stderr)
	}
	if keys := userKeys(t); len(keys) != 1 || keys[0] != vars["AWS_IAM_USER_ACCESS_KEY_ID"] {
		t.Fatalf("keys %v: want the old key %s alone (the new one's secret is lost)", keys, vars["AWS_IAM_USER_ACCESS_KEY_ID"])
	}
	if !keyWorks(t, vars) {
		t.Fatal("the old key no longer works")
	}
	// Once the output can be written, the rotation goes through.
	again := run(t, nil, "setup", "--rotate-key", "--yes", "--output", "dotenv")
	if again.Code != 0 {
		t.Fatalf("rotation rerun:\n%s", again)
	}
	if fresh := dotenv(again.Stdout); !keyWorks(t, ciVars(fresh)) || fresh["AWS_IAM_USER_ACCESS_KEY_ID"] == vars["AWS_IAM_USER_ACCESS_KEY_ID"] {
		t.Fatalf("the rotated key does not work:\n%s", again)
	}
}

// A first setup whose secret cannot be written fails, keeps the key, and
// says how to replace it.
func TestDeliveryFirstSetupToAFullDiskSaysHowToRotate(t *testing.T) {
	resetAWS(t)
	r := runToFile(t, "/dev/full", "setup")
	if r.Code == 0 || !strings.Contains(r.Stderr, "containerise setup --rotate-key") {
		t.Fatalf("want a failure saying how to rotate:\n%s", r)
	}
	again := run(t, nil, "setup", "--rotate-key", "--yes", "--output", "dotenv")
	if again.Code != 0 || !keyWorks(t, ciVars(dotenv(again.Stdout))) {
		t.Fatalf("the suggested rotation did not give a working key:\n%s", again)
	}
}
