package commands

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
	"github.com/containerise/containerise/internal/names"
)

// signsIn reports whether the key ID and secret are a working pair.
func (w *ciWorld) signsIn(id, secret string) bool {
	_, err := w.acct.STSAs(id, secret).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	return err == nil && id != "" && secret != ""
}

// secretsKeyLives checks that the secret CircleCI holds is still the
// secret of one of the user's keys: setup never deletes a key whose secret
// CircleCI may hold.
func (w *ciWorld) secretsKeyLives(vars map[string]string) {
	w.t.Helper()
	for _, k := range w.keys() {
		if w.signsIn(k, vars[names.EnvSecretAccessKey]) {
			return
		}
	}
	w.t.Fatalf("the key whose secret CircleCI holds was deleted; keys %v", w.keys())
}

// Half-failed rotations into a CircleCI project: the command fails, says
// what CircleCI holds (read back), deletes no key whose secret CircleCI
// holds, and the same command run again leaves CircleCI with a working
// pair and IAM with one key.
func TestSetupHalfFailedRotationIntoAProjectConverges(t *testing.T) {
	secretPost := circlecitest.Fault{Method: http.MethodPost, Variable: names.EnvSecretAccessKey, Times: -1}
	idPost := circlecitest.Fault{Method: http.MethodPost, Variable: names.EnvAccessKeyID, Times: -1}
	listAfterObserve := circlecitest.Fault{Method: http.MethodGet, Path: "/api/v2/project/gh/acme/app/envvar", After: 1, Times: -1}
	with := func(f circlecitest.Fault, edit func(*circlecitest.Fault)) circlecitest.Fault { edit(&f); return f }
	for _, tc := range []struct {
		name   string
		faults []circlecitest.Fault
		// says is what stdout must say CircleCI holds; {old} and {new}
		// stand for the keys.
		says string
		// heldID is which key CircleCI's ID names afterwards: "old",
		// "new" or "" (unknown).
		heldID string
	}{
		{
			name:   "ID refused after the secret landed",
			faults: []circlecitest.Fault{with(idPost, func(f *circlecitest.Fault) { f.Status = http.StatusForbidden })},
			says:   "holds the ID of old key {old} with the secret of new key {new}: that pair cannot sign in",
			heldID: "old",
		},
		{
			name: "secret applied, its answer lost every time, then the ID refused",
			faults: []circlecitest.Fault{
				with(secretPost, func(f *circlecitest.Fault) { f.DropAfter = true }),
				with(idPost, func(f *circlecitest.Fault) { f.Status = http.StatusBadRequest }),
			},
			says:   "holds the ID of old key {old} with the secret of new key {new}",
			heldID: "old",
		},
		{
			name: "secret applied with a 5xx every time, and the read-back fails",
			faults: []circlecitest.Fault{
				with(secretPost, func(f *circlecitest.Fault) { f.Status, f.Applied = http.StatusBadGateway, true }),
				with(listAfterObserve, func(f *circlecitest.Fault) { f.Status = http.StatusBadGateway }),
			},
			says:   "may hold the secret of new key {new} beside the ID of old key {old}",
			heldID: "old",
		},
		{
			name: "ID applied with its answer lost, and the read-back fails",
			faults: []circlecitest.Fault{
				with(idPost, func(f *circlecitest.Fault) { f.DropAfter = true }),
				with(listAfterObserve, func(f *circlecitest.Fault) { f.Status = http.StatusServiceUnavailable }),
			},
			says: "holds the secret of new key {new} and may hold its ID",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCIWorld(t)
			if r := w.setup("--circleci-project", ciProject); r.err != nil {
				t.Fatal(r.message)
			}
			oldKey := w.keys()[0]
			for _, f := range tc.faults {
				w.ci.Inject(f)
			}
			rotate := []string{"--circleci-project", ciProject, "--rotate-key", "--yes"}
			r := w.setup(rotate...)
			vars := w.ci.ProjectVars(ciProject)
			w.noSecretOrToken(r, vars)
			if r.err == nil {
				t.Fatalf("the half-failed rotation exited 0:\n%s", r.stdout)
			}
			keys := w.keys()
			if len(keys) != 2 || !slices.Contains(keys, oldKey) {
				t.Fatalf("keys %v, want the old key %s and the new one", keys, oldKey)
			}
			newKey := keys[0]
			if newKey == oldKey {
				newKey = keys[1]
			}
			w.secretsKeyLives(vars)
			if !w.signsIn(newKey, vars[names.EnvSecretAccessKey]) {
				t.Fatalf("CircleCI does not hold the new key's secret")
			}
			says := strings.NewReplacer("{old}", oldKey, "{new}", newKey).Replace(tc.says)
			if !strings.Contains(r.stdout, says) {
				t.Errorf("stdout does not say %q:\n%s", says, r.stdout)
			}
			if !strings.Contains(r.stdout, "containerise setup --rotate-key --circleci-project "+ciProject+" --yes") {
				t.Errorf("stdout does not give the command that finishes:\n%s", r.stdout)
			}
			if strings.Contains(r.stdout, "kept in CircleCI") {
				t.Errorf("stdout claims the variables are kept in CircleCI:\n%s", r.stdout)
			}
			shownID := map[string]string{"old": oldKey, "new": newKey, "": "(unknown: see the note below)"}[tc.heldID]
			if !strings.Contains(r.stdout, names.EnvAccessKeyID+"="+shownID) {
				t.Errorf("stdout does not show the key ID CircleCI holds (%s):\n%s", shownID, r.stdout)
			}
			if tc.heldID == "old" && vars[names.EnvAccessKeyID] != oldKey {
				t.Fatalf("CircleCI's key ID is %s, want the old key's", vars[names.EnvAccessKeyID])
			}

			// The same command again, once CircleCI behaves.
			w.ci.ClearFaults()
			again := w.setup(rotate...)
			if again.err != nil {
				t.Fatalf("rerun: %s\n%s", again.message, again.stdout)
			}
			final := w.ci.ProjectVars(ciProject)
			w.ciWorks(final)
			w.noSecretOrToken(again, final)
			if keys := w.keys(); len(keys) != 1 || keys[0] != final[names.EnvAccessKeyID] {
				t.Fatalf("after the rerun: keys %v, CircleCI's key ID %s", keys, final[names.EnvAccessKeyID])
			}
		})
	}
}

// A secret write whose answer is lost on every retry, though CircleCI
// stored it, does not stop the rotation: the read-back shows it written,
// and the ID follows.
func TestSetupRotationCarriesOnWhenOnlyTheAnswerWasLost(t *testing.T) {
	for _, f := range []circlecitest.Fault{
		{Method: http.MethodPost, Variable: names.EnvSecretAccessKey, Times: -1, DropAfter: true},
		{Method: http.MethodPost, Variable: names.EnvSecretAccessKey, Times: -1, Status: http.StatusInternalServerError, Applied: true},
	} {
		w := newCIWorld(t)
		if r := w.setup("--circleci-project", ciProject); r.err != nil {
			t.Fatal(r.message)
		}
		oldKey := w.keys()[0]
		w.ci.Inject(f)
		r := w.setup("--circleci-project", ciProject, "--rotate-key", "--yes")
		if r.err != nil {
			t.Fatalf("%s\n%s", r.message, r.stderr)
		}
		vars := w.ci.ProjectVars(ciProject)
		w.ciWorks(vars)
		if keys := w.keys(); len(keys) != 1 || keys[0] == oldKey || keys[0] != vars[names.EnvAccessKeyID] {
			t.Fatalf("keys %v, CircleCI's key ID %s, old key %s", keys, vars[names.EnvAccessKeyID], oldKey)
		}
		if !strings.Contains(r.stderr, "shows "+names.EnvSecretAccessKey+" written") {
			t.Errorf("stderr does not say the lost answer was checked:\n%s", r.stderr)
		}
	}
}

// The same in a context, which shows no value: what each variable's update
// time tells decides.
func TestSetupHalfFailedRotationIntoAContextConverges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults func(ctxID string) []circlecitest.Fault
		says   string
	}{
		{"ID refused after the secret landed", func(id string) []circlecitest.Fault {
			return []circlecitest.Fault{{Method: http.MethodPut, Variable: names.EnvAccessKeyID, Times: -1, Status: http.StatusForbidden}}
		}, "holds the ID of old key {old} with the secret of new key {new}"},
		{"secret applied with its answer lost every time, then the ID refused", func(id string) []circlecitest.Fault {
			return []circlecitest.Fault{
				{Method: http.MethodPut, Variable: names.EnvSecretAccessKey, Times: -1, DropAfter: true},
				{Method: http.MethodPut, Variable: names.EnvAccessKeyID, Times: -1, Status: http.StatusBadRequest},
			}
		}, "holds the ID of old key {old} with the secret of new key {new}"},
		{"both written, the read-back fails", func(id string) []circlecitest.Fault {
			return []circlecitest.Fault{{Method: http.MethodGet, Path: "/api/v2/context/" + id + "/environment-variable", After: 1, Times: -1, Status: http.StatusBadGateway}}
		}, "holds new key {new}: it answered both of its writes, but reading them back did not confirm them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCIWorld(t)
			args := []string{"--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", ciProject}
			if r := w.setup(args...); r.err != nil {
				t.Fatal(r.message)
			}
			ctxID := w.ci.ContextIDs("gh/acme", "aws-push")[0]
			oldKey := w.keys()[0]
			for _, f := range tc.faults(ctxID) {
				w.ci.Inject(f)
			}
			rotate := append(args, "--rotate-key", "--yes")
			r := w.setup(rotate...)
			vars := w.ci.ContextVars(ctxID)
			if r.err == nil {
				t.Fatalf("the half-failed rotation exited 0:\n%s\n%v", r.stdout, w.ci.Requests())
			}
			keys := w.keys()
			if len(keys) != 2 {
				t.Fatalf("keys %v", keys)
			}
			w.secretsKeyLives(vars)
			newKey := keys[0]
			if newKey == oldKey {
				newKey = keys[1]
			}
			if says := strings.NewReplacer("{old}", oldKey, "{new}", newKey).Replace(tc.says); !strings.Contains(r.stdout, says) {
				t.Errorf("stdout does not say %q:\n%s", says, r.stdout)
			}
			w.ci.ClearFaults()
			again := w.setup(rotate...)
			if again.err != nil {
				t.Fatalf("rerun: %s\n%s", again.message, again.stdout)
			}
			final := w.ci.ContextVars(ctxID)
			w.ciWorks(final)
			if keys := w.keys(); len(keys) != 1 || keys[0] != final[names.EnvAccessKeyID] {
				t.Fatalf("after the rerun: keys %v, CircleCI's key ID %s", keys, final[names.EnvAccessKeyID])
			}
		})
	}
}

// With two keys and a key ID that names neither, a rotation cannot tell
// which key CI uses: it refuses before any change, and says why.
func TestSetupRotationWithTwoKeysCircleCINamesNeither(t *testing.T) {
	w := newCIWorld(t)
	if r := w.setup("--circleci-project", ciProject); r.err != nil {
		t.Fatal(r.message)
	}
	if _, err := w.acct.IAM().CreateAccessKey(context.Background(), iamCreateKey(names.User)); err != nil {
		t.Fatal(err)
	}
	w.ci.SetProjectVar(ciProject, names.EnvAccessKeyID, "AKIAHANDWRITTENZZZZ9")
	w.ci.ResetRequests()
	w.acct.ResetCalls()
	r := w.setup("--circleci-project", ciProject, "--rotate-key", "--yes")
	if r.err == nil || !strings.Contains(r.message, "names none of them") {
		t.Fatalf("error %q", r.message)
	}
	if m := w.acct.Mutating(); len(m) != 0 || len(w.ci.Writes()) != 0 {
		t.Fatalf("changes made: %v %v", m, w.ci.Writes())
	}
}

// The plan of a rotation that finds two keys says which one goes first.
func TestSetupRotationDryRunShowsTheUnusedKeyGoesFirst(t *testing.T) {
	w := newCIWorld(t)
	if r := w.setup("--circleci-project", ciProject); r.err != nil {
		t.Fatal(r.message)
	}
	out, err := w.acct.IAM().CreateAccessKey(context.Background(), iamCreateKey(names.User))
	if err != nil {
		t.Fatal(err)
	}
	spare := aws.ToString(out.AccessKey.AccessKeyId)
	dry := w.setup("--circleci-project", ciProject, "--rotate-key", "--dry-run")
	if dry.err != nil || !strings.Contains(dry.stdout, "first deletes "+spare+", which CI's key ID does not name") {
		t.Fatalf("%v\n%s", dry.message, dry.stdout)
	}
	if keys := w.keys(); len(keys) != 2 {
		t.Fatalf("the dry run changed the keys: %v", keys)
	}
}

func iamCreateKey(user string) *iam.CreateAccessKeyInput {
	return &iam.CreateAccessKeyInput{UserName: aws.String(user)}
}

// The same in a context: the secret's update time shows it landed.
func TestSetupRotationIntoAContextCarriesOnWhenOnlyTheAnswerWasLost(t *testing.T) {
	w := newCIWorld(t)
	args := []string{"--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", ciProject}
	if r := w.setup(args...); r.err != nil {
		t.Fatal(r.message)
	}
	ctxID := w.ci.ContextIDs("gh/acme", "aws-push")[0]
	oldKey := w.keys()[0]
	w.ci.Inject(circlecitest.Fault{Method: http.MethodPut, Variable: names.EnvSecretAccessKey, Times: -1, DropAfter: true})
	r := w.setup(append(args, "--rotate-key", "--yes")...)
	if r.err != nil {
		t.Fatalf("%s\n%s", r.message, r.stderr)
	}
	vars := w.ci.ContextVars(ctxID)
	w.ciWorks(vars)
	if keys := w.keys(); len(keys) != 1 || keys[0] == oldKey || keys[0] != vars[names.EnvAccessKeyID] {
		t.Fatalf("keys %v, CircleCI's key ID %s, old key %s", keys, vars[names.EnvAccessKeyID], oldKey)
	}
}
