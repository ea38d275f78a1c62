package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

// CircleCI's API cannot be reached from here: these tests run the binary
// against a local HTTPS server that plays CircleCI's documented API v2
// (internal/ci/circleci/circlecitest), trusted through SSL_CERT_FILE as a
// user's CircleCI server installation would be.
const (
	e2eCircleToken   = "CCIPAT_e2e-0123456789abcdef0123456789abcdef"
	e2eCircleProject = "gh/acme/app"
)

type fakeCircleCI struct {
	*circlecitest.Server
	env []string // what setup needs to reach it
}

func startCircleCI(t *testing.T) fakeCircleCI {
	t.Helper()
	s := circlecitest.New(t)
	s.AddToken(e2eCircleToken, "admin")
	s.AddProject(e2eCircleProject)
	cert := filepath.Join(t.TempDir(), "circleci.pem")
	if err := s.WriteCertFile(cert); err != nil {
		t.Fatal(err)
	}
	return fakeCircleCI{Server: s, env: []string{"CIRCLECI_TOKEN=" + e2eCircleToken, "SSL_CERT_FILE=" + cert, "CIRCLECI_HOST=" + s.URL}}
}

// userKeys lists the CI user's access key IDs through the admin API.
func userKeys(t *testing.T) []string {
	t.Helper()
	out, err := awsClients(t).IAM.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(setupNames.user)})
	if err != nil {
		t.Fatalf("listing the user's keys: %v", err)
	}
	var ids []string
	for _, k := range out.AccessKeyMetadata {
		ids = append(ids, aws.ToString(k.AccessKeyId))
	}
	return ids
}

// pushWith pushes a fresh image with the variables CircleCI holds, as a job
// would, and fails the test unless it works.
func pushWith(t *testing.T, held map[string]string) {
	t.Helper()
	stamp := nonce()
	r := runWith(t, runOpts{env: ciVars(held).env(), dir: tinyApp(t, stamp)}, "push", "--tag", "ci-"+stamp)
	if r.Code != 0 {
		t.Fatalf("push with the variables CircleCI holds failed:\n%s", r)
	}
	pushedDigests(t, r, "ci-"+stamp)
}

func TestCircleCISetupWritesPushUsesRotationHandsOver(t *testing.T) {
	resetAWS(t)
	ci := startCircleCI(t)

	r := run(t, ci.env, "setup", "--circleci-project", e2eCircleProject)
	if r.Code != 0 {
		t.Fatalf("setup into CircleCI failed:\n%s", r)
	}
	held := ci.ProjectVars(e2eCircleProject)
	secret := held["AWS_IAM_USER_SECRET_ACCESS_KEY"]
	if secret == "" || strings.Contains(r.Stdout+r.Stderr, secret) || strings.Contains(r.Stdout+r.Stderr, e2eCircleToken) {
		t.Fatalf("the secret must go to CircleCI and nowhere else:\n%s", r)
	}
	if !strings.Contains(r.Stdout, held["AWS_IAM_USER_ACCESS_KEY_ID"]) || !strings.Contains(r.Stdout, "project "+e2eCircleProject) {
		t.Errorf("stdout does not say which key went where:\n%s", r.Stdout)
	}
	pushWith(t, held)

	// Rotation with no human in the loop hands over: CircleCI gets the new
	// key, the old one is deleted, and CI keeps pushing.
	old := held["AWS_IAM_USER_ACCESS_KEY_ID"]
	rot := run(t, ci.env, "setup", "--circleci-project", e2eCircleProject, "--rotate-key", "--yes")
	if rot.Code != 0 {
		t.Fatalf("rotation failed:\n%s", rot)
	}
	held = ci.ProjectVars(e2eCircleProject)
	if keys := userKeys(t); len(keys) != 1 || keys[0] == old || keys[0] != held["AWS_IAM_USER_ACCESS_KEY_ID"] {
		t.Fatalf("after the rotation the user has %v and CircleCI holds %s (old key %s)", keys, held["AWS_IAM_USER_ACCESS_KEY_ID"], old)
	}
	pushWith(t, held)

	// A refused token deletes nothing CI depends on.
	ci.RemoveToken(e2eCircleToken)
	refused := run(t, ci.env, "setup", "--circleci-project", e2eCircleProject, "--rotate-key", "--yes")
	if refused.Code != 1 || !strings.Contains(refused.Stderr, "CIRCLECI_TOKEN") {
		t.Fatalf("a refused token: want exit 1 naming CIRCLECI_TOKEN:\n%s", refused)
	}
	if keys := userKeys(t); len(keys) != 1 || keys[0] != held["AWS_IAM_USER_ACCESS_KEY_ID"] {
		t.Fatalf("a refused token changed the keys: %v", keys)
	}
	pushWith(t, ci.ProjectVars(e2eCircleProject))
}
