package commands

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
)

const (
	ciToken   = "CCIPAT_test-token-0123456789abcdef0123456789abcdef"
	ciProject = "gh/acme/app"
)

// ciWorld is a fake AWS account and a fake CircleCI with one project and
// one organisation, and setup run against both.
type ciWorld struct {
	t     *testing.T
	acct  *awsfake.Account
	ci    *circlecitest.Server
	token string
}

func newCIWorld(t *testing.T) *ciWorld {
	w := &ciWorld{t: t, acct: awsfake.New(awsfake.Config{}), ci: circlecitest.New(t), token: ciToken}
	w.ci.AddToken(ciToken, "admin")
	w.ci.AddProject(ciProject)
	w.ci.AddOrg("gh/acme")
	return w
}

// setup runs `setup args...` with the CircleCI token in the environment.
func (w *ciWorld) setup(args ...string) setupRun {
	w.t.Helper()
	return execSetup(w.t, setupEnv{acct: w.acct,
		getenv: func(name string) string {
			if name == "CIRCLECI_TOKEN" {
				return w.token
			}
			return ""
		},
		circleCI: func() (resource.CircleCIAPI, error) {
			return circleci.New(circleci.Options{Host: w.ci.URL, Token: w.token, HTTPClient: w.ci.Client(), RetryDelay: 1})
		},
	}, args...)
}

// keys are the user's access key IDs.
func (w *ciWorld) keys() []string {
	out, err := w.acct.IAM().ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(names.User)})
	if err != nil {
		return nil // no user, no keys
	}
	var ids []string
	for _, k := range out.AccessKeyMetadata {
		ids = append(ids, aws.ToString(k.AccessKeyId))
	}
	return ids
}

// ciWorks checks that the variables CircleCI holds let CI assume the role.
func (w *ciWorld) ciWorks(vars map[string]string) {
	w.t.Helper()
	for _, name := range []string{names.EnvAccessKeyID, names.EnvSecretAccessKey, names.EnvRoleARN, names.EnvRegion, names.EnvDefaultRegion} {
		if vars[name] == "" {
			w.t.Fatalf("CircleCI lacks %s: %v", name, keysOf(vars))
		}
	}
	_, err := w.acct.STSAs(vars[names.EnvAccessKeyID], vars[names.EnvSecretAccessKey]).AssumeRole(context.Background(),
		&sts.AssumeRoleInput{RoleArn: aws.String(vars[names.EnvRoleARN]), RoleSessionName: aws.String("ci")})
	if err != nil {
		w.t.Fatalf("CI cannot assume the role with what CircleCI holds: %v", err)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// noSecretOrToken checks that neither the token nor any secret CircleCI
// holds reached an output.
func (w *ciWorld) noSecretOrToken(r setupRun, vars map[string]string) {
	w.t.Helper()
	for _, s := range []string{ciToken, vars[names.EnvSecretAccessKey]} {
		if s != "" && strings.Contains(r.stdout+r.stderr+r.message, s) {
			w.t.Fatalf("a secret reached the output:\n%s\n%s", r.stdout, r.stderr)
		}
	}
	for _, req := range w.ci.Requests() {
		if req.TokenElsewhere {
			w.t.Fatalf("the token travelled outside its header: %s", req)
		}
	}
}

func TestSetupWritesTheVariablesIntoACircleCIProject(t *testing.T) {
	w := newCIWorld(t)
	r := w.setup("--circleci-project", ciProject)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.message, r.stderr)
	}
	vars := w.ci.ProjectVars(ciProject)
	w.ciWorks(vars)
	w.noSecretOrToken(r, vars)
	for _, want := range []string{"written to CircleCI project gh/acme/app, not shown", "kept in CircleCI project gh/acme/app", vars[names.EnvAccessKeyID]} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}

	// A rerun with nothing to change writes nothing, in AWS or CircleCI.
	w.ci.ResetRequests()
	w.acct.ResetCalls()
	again := w.setup("--circleci-project", ciProject)
	if again.err != nil {
		t.Fatal(again.message)
	}
	if writes := w.ci.Writes(); len(writes) != 0 {
		t.Errorf("rerun wrote to CircleCI: %v", writes)
	}
	if m := w.acct.Mutating(); len(m) != 0 {
		t.Errorf("rerun changed AWS: %v", m)
	}

	// The dry run of a new project says what it would write where.
	w.ci.AddProject("gh/acme/other")
	w.ci.ResetRequests()
	dry := w.setup("--circleci-project", "gh/acme/other", "--dry-run")
	if dry.err != nil || len(w.ci.Writes()) != 0 || !strings.Contains(dry.stdout, "project gh/acme/other") || !strings.Contains(dry.stdout, "write AWS_DEFAULT_REGION, AWS_IAM_ROLE_ARN, AWS_REGION") {
		t.Fatalf("dry run: %v\n%s", dry.err, dry.stdout)
	}
}

// Rotation with no human in the loop: the new key is written and read back
// before the old one is deleted; when CircleCI refuses at any point, the old
// key stays, the new one is deleted again, and CircleCI keeps what it had.
func TestSetupRotatesTheKeyThroughCircleCI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault *circlecitest.Fault
	}{
		{name: "hand-over"},
		{name: "secret write refused", fault: &circlecitest.Fault{Method: http.MethodPost, Variable: names.EnvSecretAccessKey, Times: -1, Status: http.StatusForbidden}},
		{name: "secret write never answered", fault: &circlecitest.Fault{Method: http.MethodPost, Variable: names.EnvSecretAccessKey, Times: -1, Drop: true}},
		{name: "read-back fails", fault: &circlecitest.Fault{Method: http.MethodGet, Path: "/api/v2/project/gh/acme/app/envvar", After: 1, Times: -1, Status: http.StatusBadGateway}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCIWorld(t)
			if r := w.setup("--circleci-project", ciProject); r.err != nil {
				t.Fatal(r.message)
			}
			before := w.ci.ProjectVars(ciProject)
			oldKey := before[names.EnvAccessKeyID]
			if tc.fault != nil {
				w.ci.Inject(*tc.fault)
			}
			r := w.setup("--circleci-project", ciProject, "--rotate-key", "--yes")
			now := w.ci.ProjectVars(ciProject)
			w.noSecretOrToken(r, now)
			keys := w.keys()
			if tc.fault == nil {
				if r.err != nil {
					t.Fatal(r.message)
				}
				if len(keys) != 1 || keys[0] == oldKey || now[names.EnvAccessKeyID] != keys[0] {
					t.Fatalf("keys %v, CircleCI holds %s (old %s)", keys, now[names.EnvAccessKeyID], oldKey)
				}
				w.ciWorks(now)
				return
			}
			if r.err == nil {
				t.Fatal("the failed rotation exited 0")
			}
			if tc.name == "read-back fails" {
				// Written, but not seen written: both keys stay, either
				// works, and setup says how to finish.
				if len(keys) != 2 || !strings.Contains(r.stdout, "aws iam delete-access-key --user-name circleci --access-key-id "+oldKey) {
					t.Fatalf("keys %v; stdout:\n%s", keys, r.stdout)
				}
				w.ciWorks(now)
				return
			}
			if len(keys) != 1 || keys[0] != oldKey {
				t.Fatalf("keys %v after a failed rotation; want the old key %s alone", keys, oldKey)
			}
			if now[names.EnvSecretAccessKey] != before[names.EnvSecretAccessKey] || now[names.EnvAccessKeyID] != oldKey {
				t.Fatalf("CircleCI lost what it had")
			}
			w.ciWorks(now)
			if !strings.Contains(r.message, "CircleCI project gh/acme/app") {
				t.Errorf("the error does not name the project: %s", r.message)
			}
			// Once CircleCI answers again, the rotation completes.
			w.ci.ClearFaults()
			if again := w.setup("--circleci-project", ciProject, "--rotate-key", "--yes"); again.err != nil {
				t.Fatal(again.message)
			}
			if keys := w.keys(); len(keys) != 1 || keys[0] == oldKey {
				t.Fatalf("keys %v after the rerun", keys)
			}
			w.ciWorks(w.ci.ProjectVars(ciProject))
		})
	}
}

// A first setup whose write to CircleCI fails leaves no key whose secret
// nobody holds, so a rerun converges.
func TestSetupFirstWriteToCircleCIFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		prep  func(w *ciWorld)
		wants string
	}{
		{"token refused", func(w *ciWorld) { w.ci.RemoveToken(ciToken) }, "CIRCLECI_TOKEN"},
		{"unknown project", func(w *ciWorld) {}, "check the project slug"},
		{"read-only token", func(w *ciWorld) { w.ci.ForbidWrites(ciToken, ciProject) }, "admin rights"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCIWorld(t)
			project := ciProject
			if tc.name == "unknown project" {
				project = "gh/acme/nope"
			}
			tc.prep(w)
			r := w.setup("--circleci-project", project)
			if r.err == nil || !strings.Contains(r.message, tc.wants) {
				t.Fatalf("error %q, want it to mention %q", r.message, tc.wants)
			}
			if keys := w.keys(); len(keys) != 0 {
				t.Fatalf("keys %v left whose secret CircleCI does not hold", keys)
			}
			w.noSecretOrToken(r, nil)
			if tc.name == "token refused" {
				w.ci.AddToken(ciToken, "admin")
			}
			if tc.name == "read-only token" {
				w.token = "CCIPAT_admin-token-with-the-rights-0123456789"
				w.ci.AddToken(w.token, "admin")
			}
			if tc.name == "unknown project" {
				w.ci.AddProject(project)
			}
			again := w.setup("--circleci-project", project)
			if again.err != nil {
				t.Fatal(again.message)
			}
			w.ciWorks(w.ci.ProjectVars(project))
		})
	}
}

func TestSetupWritesIntoACircleCIContext(t *testing.T) {
	w := newCIWorld(t)
	if r := w.setup("--circleci-context", "aws-push", "--circleci-org", "gh/acme"); r.err == nil || !strings.Contains(r.message, "--create-context") {
		t.Fatalf("a missing context: %v", r.message)
	}
	if keys := w.keys(); len(keys) != 0 {
		t.Fatalf("a key was made for a context that is not there: %v", keys)
	}
	r := w.setup("--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", ciProject)
	if r.err != nil {
		t.Fatal(r.message)
	}
	ids := w.ci.ContextIDs("gh/acme", "aws-push")
	if len(ids) != 1 {
		t.Fatalf("contexts %v", ids)
	}
	vars := w.ci.ContextVars(ids[0])
	w.ciWorks(vars)
	w.noSecretOrToken(r, vars)
	w.ci.ResetRequests()
	if again := w.setup("--circleci-context", "aws-push", "--circleci-org", "gh/acme", "--create-context", "--context-project", ciProject); again.err != nil || len(w.ci.Writes()) != 0 {
		t.Fatalf("rerun: %v, writes %v", again.message, w.ci.Writes())
	}
	// By ID, the same.
	if again := w.setup("--circleci-context-id", ids[0]); again.err != nil || len(w.ci.Writes()) != 0 {
		t.Fatalf("by ID: %v, writes %v", again.message, w.ci.Writes())
	}
}

func TestSetupCircleCIInputRefusedBeforeAnyCall(t *testing.T) {
	for _, args := range [][]string{
		{"--circleci-project", "acme/app"},
		{"--circleci-project", ciProject, "--circleci-context", "x"},
		{"--circleci-context", "x"},
		{"--circleci-context", "x", "--circleci-org", "acme"},
		{"--circleci-context-id", "not-a-uuid"},
		{"--circleci-project", ciProject, "--env-file", "ci.env"},
		{"--circleci-project", ciProject, "--circleci-host", "http://circleci.example"},
		{"--create-context"},
	} {
		w := newCIWorld(t)
		r := w.setup(args...)
		if r.err == nil || r.built || len(w.ci.Requests()) != 0 || len(w.acct.Calls()) != 0 {
			t.Errorf("%v: error %v, calls made %v", args, r.err, r.built)
		}
	}
}

// Keyless mode writes the role and region only, and removes the key
// variables an earlier setup wrote, once confirmed: CI may still use them.
func TestSetupKeylessIntoCircleCIRemovesTheKeyVariablesOnceConfirmed(t *testing.T) {
	w := newCIWorld(t)
	if r := w.setup("--circleci-project", ciProject); r.err != nil {
		t.Fatal(r.message)
	}
	keyless := append([]string{"--circleci-project", ciProject}, keylessArgs...)
	unconfirmed := w.setup(keyless...)
	vars := w.ci.ProjectVars(ciProject)
	if unconfirmed.err != nil || vars[names.EnvAccessKeyID] == "" || vars[names.EnvSecretAccessKey] == "" {
		t.Fatalf("without confirmation the key variables must stay: %v %v", unconfirmed.message, keysOf(vars))
	}
	if !strings.Contains(unconfirmed.stdout, "kept AWS_IAM_USER_ACCESS_KEY_ID, AWS_IAM_USER_SECRET_ACCESS_KEY (not confirmed)") {
		t.Errorf("stdout does not say the key variables were kept:\n%s", unconfirmed.stdout)
	}
	confirmed := w.setup(append(keyless, "--yes")...)
	vars = w.ci.ProjectVars(ciProject)
	if confirmed.err != nil {
		t.Fatal(confirmed.message)
	}
	if _, ok := vars[names.EnvAccessKeyID]; ok {
		t.Errorf("the key ID stayed in CircleCI: %v", keysOf(vars))
	}
	if _, ok := vars[names.EnvSecretAccessKey]; ok {
		t.Errorf("the secret stayed in CircleCI: %v", keysOf(vars))
	}
	if vars[names.EnvRoleARN] == "" || vars[names.EnvRegion] == "" || vars[names.EnvDefaultRegion] == "" {
		t.Errorf("keyless CircleCI lacks the role or region: %v", keysOf(vars))
	}
	w.ci.ResetRequests()
	if again := w.setup(append(keyless, "--yes")...); again.err != nil || len(w.ci.Writes()) != 0 {
		t.Fatalf("keyless rerun: %v, writes %v", again.message, w.ci.Writes())
	}
}
