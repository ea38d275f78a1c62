package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/testsupport/circletoken"
)

// TestJourneySetupPushTeardown is the README's story in one run: an admin
// sets up, CI pushes with only the printed variables, the admin tears it all
// down, and a second teardown finds nothing left to do.
func TestJourneySetupPushTeardown(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	vars := setupCI(t)

	stamp := nonce()
	tags := []string{"v1", "journey-" + stamp[len(stamp)-8:]}
	r := runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp)}, "push", "--repository", pushRepo, "--tag", tags[0], "--tag", tags[1])
	if r.Code != 0 {
		t.Fatalf("push:\n%s", r)
	}
	for tag, digest := range pushedDigests(t, r, tags...) {
		if got := manifestDigest(t, pushRepo, tag); got != digest {
			t.Errorf("registry has %s:%s at %q, push printed %s", pushRepo, tag, got, digest)
		}
	}

	r = run(t, nil, "teardown", "--yes")
	if r.Code != 0 {
		t.Fatalf("teardown --yes:\n%s", r)
	}
	if got := lookup(t, c); got != (present{}) {
		t.Fatalf("after teardown, still present: %+v", got)
	}

	r = run(t, nil, "teardown", "--yes")
	if r.Code != 0 {
		t.Fatalf("second teardown should succeed with nothing to do:\n%s", r)
	}
}

// TestKeysJobWithAmbientTokenPushesWithTheKeys runs the push line that
// circleci-config emits for a keys setup in a job that, like every CircleCI
// job today, also carries an OIDC token: push must use the keys the role
// trusts, at once.
func TestKeysJobWithAmbientTokenPushesWithTheKeys(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	tag := "ambient-" + stamp[len(stamp)-8:]

	r := run(t, nil, "circleci-config", "--repository", pushRepo, "--tag", tag)
	if r.Code != 0 {
		t.Fatalf("circleci-config:\n%s", r)
	}
	var line string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "containerise push ") {
			line = l
		}
	}
	if !strings.Contains(line, "--auth keys") {
		t.Fatalf("the keys job's push line does not say --auth keys: %q", line)
	}
	token := circletoken.Job{OrgID: e2eOrg, ProjectID: e2eProject, Branch: "main"}.Mint()
	env := append(cleanEnv(), vars.env()...)
	env = append(env, "CIRCLE_OIDC_TOKEN_V2="+token, "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"))
	r = execute(t, env, tinyApp(t, stamp), nil, nil, "sh", "-c", line)
	if r.Code != 0 {
		t.Fatalf("the emitted push line:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "using the keys") || strings.Contains(r.Stderr, "waiting for") {
		t.Errorf("push did not go straight to the keys:\n%s", r.Stderr)
	}
	pushedDigests(t, r, tag)
}
