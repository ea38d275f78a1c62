package e2e

import (
	"strings"
	"testing"
)

// The stack's moto runs in its auth mode (scripts/moto_strict.py): it checks
// signatures, identity policies and trusts as AWS does, so what AWS refuses
// fails here too. These are the refusals a user meets first.

// TestStrictStackRefusesBadCredentials: a wrong secret, or a role that does
// not exist, fails push with exit 1 and says which credential is wrong.
func TestStrictStackRefusesBadCredentials(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()

	wrong := ciVars{}
	for k, v := range vars {
		wrong[k] = v
	}
	secret := []byte(vars["AWS_IAM_USER_SECRET_ACCESS_KEY"])
	secret[0] ^= 1 // same shape, another key
	wrong["AWS_IAM_USER_SECRET_ACCESS_KEY"] = string(secret)
	r := runWith(t, runOpts{env: wrong.env(), dir: tinyApp(t, stamp)}, "push", "--tag", "wrong-secret", "--wait", "2s")
	if r.Code != 1 || !strings.Contains(r.Stderr, "AWS_IAM_USER_SECRET_ACCESS_KEY") || !strings.Contains(r.Stderr, "SignatureDoesNotMatch") {
		t.Errorf("push with a wrong secret key:\n%s", r)
	}
	if strings.Contains(r.Stdout+r.Stderr, string(secret)) || strings.Contains(r.Stdout+r.Stderr, vars["AWS_IAM_USER_SECRET_ACCESS_KEY"]) {
		t.Error("a secret was printed")
	}

	noRole := ciVars{}
	for k, v := range vars {
		noRole[k] = v
	}
	noRole["AWS_IAM_ROLE_ARN"] = strings.TrimSuffix(vars["AWS_IAM_ROLE_ARN"], setupNames.role) + "no-such-role"
	r = runWith(t, runOpts{env: noRole.env(), dir: tinyApp(t, stamp)}, "push", "--tag", "no-role", "--wait", "2s")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no-such-role") || !strings.Contains(r.Stderr, "AccessDenied") {
		t.Errorf("push assuming a role that does not exist:\n%s", r)
	}
}

// TestStrictStackRefusesUngrantedCalls: the role may do what setup granted
// and nothing more: a push to a repository setup never made fails, and so do
// the scan gate and --skip-existing until setup grants them.
func TestStrictStackRefusesUngrantedCalls(t *testing.T) {
	resetAWS(t)
	r := run(t, nil, "setup", "--output", "dotenv")
	if r.Code != 0 {
		t.Fatalf("setup:\n%s", r)
	}
	vars := ciVars(dotenv(r.Stdout))
	stamp := nonce()
	tag := "strict-" + stamp[len(stamp)-8:]

	r = runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp)}, "push", "--repository", "never-made", "--tag", tag)
	if r.Code != 1 || strings.Contains(r.Stdout, "sha256:") || !strings.Contains(r.Stderr, "never-made") {
		t.Errorf("push to a repository that does not exist:\n%s", r)
	}

	r = runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp)}, "push", "--tag", tag)
	if r.Code != 0 {
		t.Fatalf("push with the default policy:\n%s", r)
	}
	pushedDigests(t, r, tag)

	r = run(t, vars.env(), "scan", "--tag", tag, "--fail-on", "HIGH", "--wait", "2s")
	if r.Code != 1 || !strings.Contains(r.Stderr, "AccessDenied") || !strings.Contains(r.Stderr, "--allow-scan") {
		t.Errorf("scan without the scan permissions:\n%s", r)
	}
	r = runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp)}, "push", "--tag", tag, "--skip-existing", "--wait", "2s")
	if r.Code != 1 || !strings.Contains(r.Stderr, "AccessDenied") || !strings.Contains(r.Stderr, "--allow-skip-existing") {
		t.Errorf("push --skip-existing without its permission:\n%s", r)
	}

	// Granted, the same calls work.
	if r = run(t, nil, "setup", "--allow-scan", "--allow-skip-existing", "--yes"); r.Code != 0 {
		t.Fatalf("setup --allow-scan --allow-skip-existing:\n%s", r)
	}
	r = runWith(t, runOpts{env: vars.env(), dir: tinyApp(t, stamp)}, "push", "--tag", tag, "--skip-existing")
	if r.Code != 0 || !strings.Contains(r.Stderr, tag) {
		t.Errorf("push --skip-existing once granted:\n%s", r)
	}
	scanFindings(t, pushRepo, tag, map[string]int{"LOW": 1})
	r = run(t, vars.env(), "scan", "--tag", tag, "--fail-on", "HIGH")
	if r.Code != 0 {
		t.Errorf("scan once granted:\n%s", r)
	}
}
