package e2e

import (
	"testing"
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
