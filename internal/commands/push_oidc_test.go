package commands

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
	"github.com/containerise/containerise/push"
)

const (
	testOrg     = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	testProject = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

// pushWith runs the push command line with env and returns the options,
// what it printed on stderr, and its error; the token must not appear.
func pushWith(t *testing.T, env map[string]string, args ...string) (push.Options, string, error) {
	t.Helper()
	got, g, err := runPushCmd(t, env, args...)
	printed := g.Out.(*bytes.Buffer).String() + g.Err.(*bytes.Buffer).String()
	for _, name := range []string{circleci.EnvOIDCTokenV2, circleci.EnvOIDCToken} {
		for _, part := range strings.Split(env[name], ".") {
			if len(part) > 8 && (strings.Contains(printed, part) || err != nil && strings.Contains(err.Error(), part)) {
				t.Errorf("part of %s was printed", name)
			}
		}
	}
	return got, g.Err.(*bytes.Buffer).String(), err
}

func keylessEnv(extra map[string]string) map[string]string {
	env := map[string]string{"AWS_IAM_ROLE_ARN": testRole, "AWS_REGION": "eu-west-2"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func TestPushTakesTheOIDCToken(t *testing.T) {
	v1 := circletoken.Job{OrgID: testOrg, ProjectID: testProject}.Mint()
	v2 := circletoken.Job{OrgID: testOrg, ProjectID: testProject, Branch: "main"}.Mint()

	o, stderr, err := pushWith(t, keylessEnv(map[string]string{circleci.EnvOIDCTokenV2: v2, circleci.EnvOIDCToken: v1}))
	if err != nil {
		t.Fatal(err)
	}
	if o.WebIdentity == nil || o.WebIdentity.Raw != v2 || o.WebIdentity.Source != circleci.EnvOIDCTokenV2 || o.AccessKeyID != "" || o.RoleARN != testRole {
		t.Fatalf("options %+v", o)
	}
	if stderr != "" {
		t.Errorf("stderr without keys: %q", stderr)
	}

	o, _, err = pushWith(t, keylessEnv(map[string]string{circleci.EnvOIDCToken: v1}))
	if err != nil || o.WebIdentity == nil || o.WebIdentity.Source != circleci.EnvOIDCToken {
		t.Fatalf("v1 token alone: %+v, %v", o, err)
	}

	// Both a token and the keys: CircleCI puts a token in every job, so the
	// keys, set on purpose, win and push says so...
	both := blogEnv()
	both[circleci.EnvOIDCTokenV2] = v2
	o, stderr, err = pushWith(t, both)
	if err != nil || o.WebIdentity != nil || o.AccessKeyID != testKeyID {
		t.Fatalf("both: %+v, %v", o, err)
	}
	if !strings.Contains(stderr, "using the keys, the role was set up for them") {
		t.Errorf("stderr does not say which credential: %q", stderr)
	}
	// ...as with --auth keys...
	o, stderr, err = pushWith(t, both, "--auth", "keys")
	if err != nil || o.WebIdentity != nil || o.AccessKeyID != testKeyID {
		t.Fatalf("--auth keys: %+v, %v", o, err)
	}
	if !strings.Contains(stderr, "using the keys, as --auth keys asks") {
		t.Errorf("stderr does not say which credential: %q", stderr)
	}
	// ...unless --auth oidc.
	o, stderr, err = pushWith(t, both, "--auth", "oidc")
	if err != nil || o.WebIdentity == nil || o.AccessKeyID != "" || o.SecretAccessKey != "" {
		t.Fatalf("--auth oidc: %+v, %v", o, err)
	}
	if !strings.Contains(stderr, "using the OIDC token, as --auth oidc asks") {
		t.Errorf("stderr does not say which credential: %q", stderr)
	}
	// Half the keys and a token: the keys were meant, and the missing one is named.
	half := keylessEnv(map[string]string{circleci.EnvOIDCTokenV2: v2, "AWS_IAM_USER_ACCESS_KEY_ID": testKeyID})
	if _, _, err = pushWith(t, half); err == nil || !strings.Contains(err.Error(), "AWS_IAM_USER_SECRET_ACCESS_KEY") {
		t.Errorf("a key ID without its secret beside a token: %v", err)
	}
	// The keys alone still work as they did, and say nothing more.
	o, stderr, err = pushWith(t, blogEnv())
	if err != nil || o.WebIdentity != nil || stderr != "" {
		t.Fatalf("keys alone: %+v, %q, %v", o, stderr, err)
	}
	// The organization is checked when given.
	if _, _, err = pushWith(t, keylessEnv(map[string]string{circleci.EnvOIDCTokenV2: v2}), "--circleci-org-id", strings.ToUpper(testOrg)); err != nil {
		t.Errorf("the same organization in capitals: %v", err)
	}
}

func TestPushRefusesABadTokenBeforeAnyCall(t *testing.T) {
	expired := circletoken.Job{OrgID: testOrg, ProjectID: testProject, IssuedAt: time.Now().Add(-3 * time.Hour)}.Mint()
	fresh := circletoken.Job{OrgID: testOrg, ProjectID: testProject}.Mint()
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"expired", keylessEnv(map[string]string{circleci.EnvOIDCTokenV2: expired}), nil, "CIRCLE_OIDC_TOKEN_V2 expired at"},
		{"not a JWT", keylessEnv(map[string]string{circleci.EnvOIDCToken: "abc.def"}), nil, "CIRCLE_OIDC_TOKEN is not a JWT"},
		{"another org", keylessEnv(map[string]string{circleci.EnvOIDCTokenV2: fresh}), []string{"--circleci-org-id", "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"},
			"the role trusts organization 9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"},
		{"bad org flag", keylessEnv(map[string]string{circleci.EnvOIDCTokenV2: fresh}), []string{"--circleci-org-id", "acme"}, "--circleci-org-id \"acme\" is invalid"},
		{"--auth oidc without a token", blogEnv(), []string{"--auth", "oidc"}, "neither CIRCLE_OIDC_TOKEN_V2 nor CIRCLE_OIDC_TOKEN is set"},
		{"--auth saml", blogEnv(), []string{"--auth", "saml"}, "--auth \"saml\" is invalid"},
		{"no role", map[string]string{circleci.EnvOIDCTokenV2: fresh, "AWS_REGION": "eu-west-2"}, nil, "AWS_IAM_ROLE_ARN is not set"},
		{"nothing at all", map[string]string{"AWS_IAM_ROLE_ARN": testRole}, nil, "AWS_IAM_USER_ACCESS_KEY_ID is not set"},
	} {
		_, _, err := pushWith(t, c.env, c.args...)
		if err == nil || clierror.Code(err) != clierror.ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (exit %d), want exit 2 with %q", c.name, err, clierror.Code(err), c.want)
		}
	}
}
