// Package circletoken mints tokens shaped like CircleCI's OIDC job tokens,
// for tests: the claims CircleCI sets, signed RS256 with a key made for the
// process and thrown away. No verifier here knows that key, and none needs
// to: STS checks the signature, and neither the fake nor moto does.
package circletoken

import (
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Job describes the job a token stands for.
type Job struct {
	OrgID, ProjectID string
	// Branch, when set, makes a v2 token: its subject names the VCS origin
	// and refs/heads/<Branch>.
	Branch string
	// IssuedAt defaults to now; the token lives one hour from it.
	IssuedAt time.Time
}

// Claims are the token's claims, for a test to change before Sign.
func (j Job) Claims() jwt.MapClaims {
	iat := j.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	sub := "org/" + j.OrgID + "/project/" + j.ProjectID + "/user/6b8a4c3e-2f1d-4e5a-9b7c-0d1e2f3a4b5c"
	c := jwt.MapClaims{
		"iss":                           "https://oidc.circleci.com/org/" + j.OrgID,
		"aud":                           j.OrgID,
		"iat":                           iat.Unix(),
		"exp":                           iat.Add(time.Hour).Unix(),
		"oidc.circleci.com/project-id":  j.ProjectID,
		"oidc.circleci.com/context-ids": []string{},
	}
	if j.Branch != "" {
		origin := "github.com/acme/app"
		ref := "refs/heads/" + j.Branch
		sub += "/vcs-origin/" + origin + "/vcs-ref/" + ref
		c["oidc.circleci.com/vcs-origin"] = origin
		c["oidc.circleci.com/vcs-ref"] = ref
	}
	c["sub"] = sub
	return c
}

// Mint returns the job's token.
func (j Job) Mint() string { return Sign(j.Claims()) }

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
)

// Sign signs claims RS256 with the process's throwaway key.
func Sign(claims jwt.MapClaims) string {
	keyOnce.Do(func() {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}
