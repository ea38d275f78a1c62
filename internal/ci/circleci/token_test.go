package circleci

import (
	"strings"
	"testing"
	"time"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
)

func TestReadTokenClaims(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	job := circletoken.Job{OrgID: testOrg, ProjectID: testProject, Branch: "main", IssuedAt: now.Add(-10 * time.Minute)}
	token := job.Mint()
	id, err := ReadToken(EnvOIDCTokenV2, token, now, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	c := id.Claims
	if c.Extra[ClaimOrgID] != testOrg || c.Extra[ClaimProjectID] != testProject || c.Extra[ClaimVCSRef] != "refs/heads/main" || !c.Expires.Equal(now.Add(50*time.Minute)) ||
		strings.Join(c.Audience, ",") != testOrg || !strings.HasPrefix(c.Subject, "org/"+testOrg+"/project/"+testProject+"/user/") {
		t.Errorf("claims %+v", c)
	}
	if s := (Provider{}).Describe(id); strings.Contains(s, token[:20]) || !strings.Contains(s, "CIRCLE_OIDC_TOKEN_V2") || !strings.Contains(s, "ref refs/heads/main") {
		t.Errorf("String() = %q", s)
	}
	// Without a known organisation any CircleCI organisation's token is read.
	if _, err := ReadToken(EnvOIDCToken, token, now, ""); err != nil {
		t.Errorf("no trusted org: %v", err)
	}
	// A minute of clock skew is left to STS.
	if _, err := ReadToken(EnvOIDCToken, token, now.Add(50*time.Minute+30*time.Second), ""); err != nil {
		t.Errorf("within the skew: %v", err)
	}
}

func TestReadTokenRefusals(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	job := circletoken.Job{OrgID: testOrg, ProjectID: testProject, IssuedAt: now.Add(-2 * time.Hour)}
	expired := job.Mint()
	fresh := circletoken.Job{OrgID: testOrg, ProjectID: testProject, IssuedAt: now}
	otherIssuer := fresh.Claims()
	otherIssuer["iss"] = "https://token.actions.githubusercontent.com"
	noExp := fresh.Claims()
	delete(noExp, "exp")
	for _, c := range []struct {
		name, variable, token, trusted string
		want                           []string
	}{
		{"expired", EnvOIDCTokenV2, expired, testOrg, []string{"CIRCLE_OIDC_TOKEN_V2 expired at 2026-03-01T11:00:00Z", "1h0m0s ago", "rerun the job"}},
		{"another org", EnvOIDCTokenV2, fresh.Mint(), "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a",
			[]string{"CIRCLE_OIDC_TOKEN_V2 was issued for CircleCI organization " + testOrg, "the role trusts organization 9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"}},
		{"not a JWT", EnvOIDCToken, "not-a-token-at-all", "", []string{"CIRCLE_OIDC_TOKEN is not a JWT"}},
		{"two parts", EnvOIDCToken, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", "", []string{"CIRCLE_OIDC_TOKEN is not a JWT"}},
		{"garbage JSON", EnvOIDCToken, "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXN0dWZm.c2ln", "", []string{"CIRCLE_OIDC_TOKEN is not a JWT"}},
		{"not CircleCI's", EnvOIDCTokenV2, circletoken.Sign(otherIssuer), "", []string{"was not issued by CircleCI", "token.actions.githubusercontent.com"}},
		{"no expiry", EnvOIDCTokenV2, circletoken.Sign(noExp), "", []string{"has no valid expiry"}},
	} {
		_, err := ReadToken(c.variable, c.token, now, c.trusted)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if clierror.Code(err) != clierror.ExitUsage {
			t.Errorf("%s: exit %d, want 2", c.name, clierror.Code(err))
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", c.name, err, w)
			}
		}
		for _, part := range strings.Split(c.token, ".") {
			if len(part) >= 8 && strings.Contains(err.Error(), part) {
				t.Errorf("%s: the error shows part of the token: %q", c.name, err)
			}
		}
	}
}
