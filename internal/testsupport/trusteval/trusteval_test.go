package trusteval_test

import (
	"testing"

	"github.com/containerise/containerise/internal/testsupport/trusteval"
)

const provider = "arn:aws:iam::123456789012:oidc-provider/ci.example.com/org/o1"

// The evaluator tells admissions from refusals on a hand-written trust,
// including the parts that make trust policies go wrong: '*' crossing '/',
// the escaped '$', a key of another provider, a missing claim.
func TestEvaluatorJudgesAHandWrittenTrust(t *testing.T) {
	trust := `{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Effect": "Allow",
	    "Principal": {"Federated": "` + provider + `"},
	    "Action": "sts:AssumeRoleWithWebIdentity",
	    "Condition": {
	      "StringEquals": {"ci.example.com/org/o1:aud": "o1"},
	      "StringLike": {"ci.example.com/org/o1:sub": ["p/*/ref/main", "p/x/ref/a${$}b"]}
	    }
	  }]
	}`
	tok := func(name, sub, aud string, want bool) trusteval.Token {
		c := map[string]any{"sub": sub}
		if aud != "" {
			c["aud"] = aud
		}
		return trusteval.Token{Name: name, Provider: provider, Claims: c, Want: want}
	}
	other := tok("another provider", "p/x/ref/main", "o1", false)
	other.Provider = "arn:aws:iam::123456789012:oidc-provider/ci.example.com/org/o2"
	trusteval.Check(t, trust, []trusteval.Token{
		tok("match", "p/x/ref/main", "o1", true),
		tok("star crosses slash", "p/x/y/ref/main", "o1", true),
		tok("suffix", "p/x/ref/main-evil", "o1", false),
		tok("wrong audience", "p/x/ref/main", "o2", false),
		tok("no audience", "p/x/ref/main", "", false),
		tok("literal dollar", "p/x/ref/a$b", "o1", true),
		tok("dollar is not a wildcard", "p/x/ref/a$c", "o1", false),
		other,
	})
}
