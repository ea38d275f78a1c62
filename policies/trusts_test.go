package policies

import (
	"net/url"
	"testing"
)

const testProvider = "arn:aws:iam::123456789012:oidc-provider/oidc.circleci.com/org/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

// Every shape IAM accepts for a trust policy is read, and says whether the
// provider is trusted.
func TestTrustsProviderReadsIAMsGrammar(t *testing.T) {
	for _, c := range []struct {
		name               string
		doc                string
		trusts, unreadable bool
	}{
		{"statement as a list", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + testProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, true, false},
		{"statement as one object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"` + testProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity"}}`, true, false},
		{"federated principal and action as lists", `{"Statement":{"Effect":"Allow","Principal":{"Federated":["arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com","` + testProvider + `"]},"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"]}}`, true, false},
		{"boolean and number condition values", `{"Statement":{"Effect":"Allow","Principal":{"Federated":"` + testProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"aws:MultiFactorAuthAge":[3600, 7200]},"Null":{"x:y":false}}}}`, true, false},
		{"principal * testing the provider's claims", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.circleci.com/org/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0:aud":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"}}}}`, true, false},
		{"principal * without the provider's claims", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}`, false, false},
		{"another provider", `{"Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false, false},
		{"a deny naming it", `{"Statement":[{"Effect":"Deny","Principal":{"Federated":"` + testProvider + `"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, false, false},
		{"a user", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/circleci"},"Action":"sts:AssumeRole"}]}`, false, false},
		{"unreadable, naming the ARN", `{"Statement":[{"Effect":"Allow","Principal":{"Federated":"` + testProvider + `"},"Action":{"odd":1}}]}`, true, true},
		{"unreadable, not naming it", `{"Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/other"},"Action":{"odd":1}}]}`, false, true},
		{"not JSON, naming the ARN", `Statement: ` + testProvider, true, true},
	} {
		for _, form := range []string{"plain", "URL-encoded"} {
			doc := c.doc
			if form == "URL-encoded" {
				doc = url.QueryEscape(doc)
			}
			trusts, readable := TrustsProvider(doc, testProvider)
			if trusts != c.trusts || readable == c.unreadable {
				t.Errorf("%s (%s): trusts %v, readable %v; want %v, %v", c.name, form, trusts, readable, c.trusts, !c.unreadable)
			}
		}
	}
}

// A single statement, "*" and non-string condition values parse into the
// same document as their long forms.
func TestParseReadsShortForms(t *testing.T) {
	short := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"Bool":{"aws:SecureTransport":true},"NumericEquals":{"x:n":12345678901234567890}}}}`
	long := Document{Version: Version, Statement: []Statement{{Effect: "Allow", Principal: &Principal{AWS: Values{"*"}}, Action: Values{"sts:AssumeRole"},
		Condition: Condition{"Bool": {"aws:SecureTransport": {"true"}}, "NumericEquals": {"x:n": {"12345678901234567890"}}}}}}
	if same, err := Equivalent(short, long); err != nil || !same {
		t.Errorf("short forms: equivalent %v, %v", same, err)
	}
	if _, err := Parse(`{"Statement":{"Principal":"someone"}}`); err == nil {
		t.Error("a principal string other than * was read")
	}
}
