package circleci

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
)

// TestProviderToken: through the seam, push gets the job's token from
// CIRCLE_OIDC_TOKEN_V2 (else CIRCLE_OIDC_TOKEN), checked for the trusted
// organisation, with the claims that explain a refusal; a job without one
// is no error unless a token is required.
func TestProviderToken(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v2 := circletoken.Job{OrgID: testOrg, ProjectID: testProject, Branch: "main", IssuedAt: now}.Mint()
	v1 := circletoken.Job{OrgID: testOrg, ProjectID: testProject, IssuedAt: now}.Mint()
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	var p ci.Provider = Provider{}

	tok, err := p.Token(context.Background(), ci.Job{Getenv: env(map[string]string{EnvOIDCTokenV2: v2, EnvOIDCToken: v1}), Now: now, Trusted: strings.ToUpper(testOrg)})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Raw != v2 || tok.Source != EnvOIDCTokenV2 || tok.Claims.Issuer != Issuer(testOrg) || tok.Claims.Extra["vcs-ref"] != "refs/heads/main" ||
		tok.Claims.Job != "project "+testProject+", ref refs/heads/main" {
		t.Errorf("token from %s: %+v", tok.Source, tok.Claims)
	}
	tok, err = p.Token(context.Background(), ci.Job{Getenv: env(map[string]string{EnvOIDCToken: " " + v1 + "\n"}), Now: now})
	if err != nil || tok.Raw != v1 || tok.Source != EnvOIDCToken {
		t.Errorf("V1 fallback: %+v, %v", tok, err)
	}
	if tok, err := p.Token(context.Background(), ci.Job{Getenv: env(nil), Now: now}); tok != nil || err != nil {
		t.Errorf("no token, none required: %+v, %v", tok, err)
	}
	_, err = p.Token(context.Background(), ci.Job{Getenv: env(nil), Now: now, Required: true})
	var u *clierror.UsageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "neither CIRCLE_OIDC_TOKEN_V2 nor CIRCLE_OIDC_TOKEN is set") {
		t.Errorf("required, missing: %v", err)
	}
	other := "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"
	_, err = p.Token(context.Background(), ci.Job{Getenv: env(map[string]string{EnvOIDCTokenV2: v2}), Now: now, Trusted: other})
	if err == nil || !strings.Contains(err.Error(), "the role trusts organization "+other) || strings.Contains(err.Error(), v2[:20]) {
		t.Errorf("another organisation: %v", err)
	}
}

func TestProviderFacts(t *testing.T) {
	var p ci.Provider = Provider{}
	getenv := func(k string) string {
		return map[string]string{"CIRCLECI": "true", "CIRCLE_PROJECT_REPONAME": "app", "CIRCLE_BUILD_NUM": "42"}[k]
	}
	if p.Name() != "circleci" || p.Title() != "CircleCI" || !p.Detect(getenv) || p.Detect(func(string) string { return "" }) {
		t.Errorf("name %q, title %q, detect %v", p.Name(), p.Title(), p.Detect(getenv))
	}
	if s := p.SessionName(getenv, time.Unix(0, 0)); s != "circleci-app-42" {
		t.Errorf("session name %q", s)
	}
	if v := strings.Join(p.Variables(true), ","); v != "AWS_IAM_ROLE_ARN,AWS_REGION" {
		t.Errorf("keyless variables %s", v)
	}
}

// TestProviderConfig: the seam writes what circleci-config writes, at
// .circleci/config.yml: the commit as the default tag, the organisation in
// lower case, and never an embedded role.
func TestProviderConfig(t *testing.T) {
	base := ci.ConfigOptions{Keyless: true, Trusted: strings.ToUpper(testOrg), Repository: "app", Context: ".", Version: "v1.2.3"}
	c, err := Provider{}.Config(base)
	if err != nil {
		t.Fatal(err)
	}
	want, err := WriteConfig(JobOptions{ConfigOptions: ci.ConfigOptions{Keyless: true, Trusted: testOrg, Repository: "app", Context: ".", Version: "v1.2.3",
		Tags: []string{"${CIRCLE_SHA1}"}}, Builder: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != ".circleci/config.yml" || string(c.Body) != string(want) ||
		!strings.Contains(string(c.Body), `--auth oidc --circleci-org-id `+testOrg+` --repository app --tag "${CIRCLE_SHA1}"`) {
		t.Errorf("%s:\n%s", c.Path, c.Body)
	}
	for _, bad := range []ci.ConfigOptions{
		{RoleARN: "arn:aws:iam::123456789012:role/x", Repository: "app", Context: "."},
		{Trusted: testOrg, Repository: "app", Context: "."}, // an organisation without keyless
		{Keyless: true, Trusted: "nope", Repository: "app", Context: "."},
		{Repository: "app", Context: "a<<b"},
		{Repository: "app", Context: ".", Tags: []string{"${HOME}"}},
	} {
		var u *clierror.UsageError
		if _, err := (Provider{}).Config(bad); !errors.As(err, &u) {
			t.Errorf("%+v: %v, want a usage error", bad, err)
		}
	}
}
