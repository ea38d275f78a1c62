package idtoken_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/containerise/containerise/internal/ci/idtoken"
	"github.com/containerise/containerise/internal/testsupport/circletoken"
)

func TestCheck(t *testing.T) {
	now := time.Now()
	mint := func(c jwt.MapClaims) string { return circletoken.Sign(c) }
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "https://issuer.example.com", "sub": "s", "aud": []string{"other", "sts.amazonaws.com"}, "exp": now.Add(time.Minute).Unix()}
	}
	tok, err := idtoken.Parse(mint(base()), "TOKEN_VAR")
	if err != nil {
		t.Fatal(err)
	}
	if err := idtoken.Check(tok, "https://issuer.example.com/", "sts.amazonaws.com", now); err != nil {
		t.Errorf("a token with the audience among several: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(jwt.MapClaims)
		want   string
	}{
		"wrong issuer":   {func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" }, "issued by"},
		"wrong audience": {func(c jwt.MapClaims) { c["aud"] = "other" }, "audience"},
		"no expiry":      {func(c jwt.MapClaims) { delete(c, "exp") }, "no expiry"},
		"expired":        {func(c jwt.MapClaims) { c["exp"] = now.Add(-idtoken.ClockSkew - time.Second).Unix() }, "expired"},
	} {
		c := base()
		tc.change(c)
		raw := mint(c)
		tok, err := idtoken.Parse(raw, "TOKEN_VAR")
		if err != nil {
			t.Fatal(err)
		}
		err = idtoken.Check(tok, "https://issuer.example.com", "sts.amazonaws.com", now)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "TOKEN_VAR") || strings.Contains(err.Error(), raw) {
			t.Errorf("%s: %v; want an error saying %q and naming the source, without the token", name, err, tc.want)
		}
	}
	if _, err := idtoken.Parse("secret-but-not-a-jwt", "TOKEN_VAR"); err == nil || strings.Contains(err.Error(), "secret-but") {
		t.Errorf("not a JWT: %v", err)
	}
}

func TestSessionName(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct{ prefix, repo, run, want string }{
		{"github", "acme/app", "123-1", "github-acme-app-123-1"},
		{"gitlab", "", "77", "gitlab-77"},
		{"bitbucket", "acme/app", "", "bitbucket-acme-app-1700000000"},
		{"buildkite", "acme/ä pp", "9", "buildkite-acme-pp-9"},
	} {
		if got := idtoken.SessionName(tc.prefix, tc.repo, tc.run, now); got != tc.want {
			t.Errorf("SessionName(%q, %q, %q) = %q, want %q", tc.prefix, tc.repo, tc.run, got, tc.want)
		}
	}
	long := idtoken.SessionName("github", strings.Repeat("r", 80), strings.Repeat("9", 40), now)
	if len(long) > idtoken.MaxSessionName || !strings.HasPrefix(long, "github-rrr") {
		t.Errorf("long name %q (%d)", long, len(long))
	}
}
