package provision

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

const (
	orgID     = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	projectID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

var providerARN = policies.OIDCProviderARN("aws", account, circleci.Issuer(orgID))

func keyless() Options {
	o := defaults()
	o.Auth = AuthOIDC
	o.OIDC = circleci.Selector{OrgID: orgID, ProjectIDs: []string{projectID}}
	return o
}

// checkKeyless checks the account holds what a keyless setup makes: the
// provider (tagged, the org as its client ID, no thumbprint), a role
// trusting exactly the wanted jobs through it, and no user.
func checkKeyless(t *testing.T, a *awsfake.Account, c circleci.Selector) {
	t.Helper()
	ic := a.IAM()
	prov, err := ic.GetOpenIDConnectProvider(bg, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)})
	if err != nil {
		t.Fatalf("provider: %v", err)
	}
	if !managed.IAM(prov.Tags) || strings.Join(prov.ClientIDList, ",") != orgID || len(prov.ThumbprintList) != 0 {
		t.Errorf("provider %+v", prov)
	}
	role, err := ic.GetRole(bg, &iam.GetRoleInput{RoleName: aws.String(names_Role)})
	if err != nil {
		t.Fatalf("role: %v", err)
	}
	if ok, _ := policies.Equivalent(aws.ToString(role.Role.AssumeRolePolicyDocument), circleci.Trust(providerARN, c)); !ok {
		t.Errorf("trust policy %s", aws.ToString(role.Role.AssumeRolePolicyDocument))
	}
	tags := map[string]string{}
	for _, tag := range role.Role.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if tags[circleci.TagOrg] != orgID || tags[managed.TagKey] != managed.TagValue {
		t.Errorf("role tags %v", tags)
	}
	if _, err := ic.GetUser(bg, &iam.GetUserInput{UserName: aws.String(userName)}); !awsx.IsNotFound(err) {
		t.Errorf("a user exists (%v)", err)
	}
}

const (
	names_Role = "containerise"
	userName   = "circleci"
)

func TestKeylessColdSetupThenRerun(t *testing.T) {
	e := newEnv(t, awsfake.Config{PrincipalDelay: 8 * time.Second})
	e.acct.SetLatency(50 * time.Millisecond)
	res := e.run(t, keyless())
	calls, mutating, rounds := len(e.acct.Calls()), len(e.acct.Mutating()), e.acct.Rounds()
	t.Logf("cold keyless setup: %d calls, %d mutating, %d rounds: %s", calls, mutating, rounds, strings.Join(e.acct.Ops(), " "))
	if got := statuses(res); got != "repository=created policy=created oidc-provider=created role=created" {
		t.Fatalf("statuses: %s", got)
	}
	checkKeyless(t, e.acct, keyless().OIDC)
	if !res.Keyless || res.SecretAvailable || res.Variables.AccessKeyID != "" || res.Variables.RoleARN != roleARN {
		t.Fatalf("result %+v", res.Variables)
	}
	var names []string
	for _, kv := range res.Variables.Pairs() {
		names = append(names, kv[0])
	}
	if strings.Join(names, " ") != "AWS_IAM_ROLE_ARN AWS_REGION AWS_DEFAULT_REGION" {
		t.Errorf("variables %v", names)
	}
	for _, op := range e.acct.Mutating() {
		if strings.Contains(op, "User") || strings.Contains(op, "AccessKey") {
			t.Errorf("keyless setup called %s", op)
		}
	}
	// The role waited for the new provider to propagate.
	if !strings.Contains(e.logText(), "waiting for IAM to propagate OIDC provider oidc.circleci.com/org/"+orgID) {
		t.Errorf("no wait for the provider in the log:\n%s", e.logText())
	}

	e.acct.ResetCalls()
	again := e.run(t, keyless())
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("rerun made mutating calls: %v", m)
	}
	t.Logf("keyless rerun: %d calls, %d rounds: %s", len(e.acct.Calls()), e.acct.Rounds(), strings.Join(e.acct.Ops(), " "))
	if got := statuses(again); got != "repository=unchanged policy=unchanged oidc-provider=unchanged role=unchanged" {
		t.Fatalf("statuses: %s", got)
	}
	if len(again.Notes) != 0 || len(again.Warnings) != 0 {
		t.Errorf("rerun notes %q, warnings %q", notes(again), again.Warnings)
	}
}

func TestKeylessTrustFollowsProjectsAndBranches(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, keyless())
	o := keyless()
	o.OIDC.ProjectIDs = append(o.OIDC.ProjectIDs, "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a")
	o.OIDC.Branches = []string{"main"}
	e.acct.ResetCalls()
	res := e.run(t, o)
	if got := statuses(res); got != "repository=unchanged policy=unchanged oidc-provider=unchanged role=updated" {
		t.Fatalf("statuses: %s", got)
	}
	if m := strings.Join(e.acct.Mutating(), " "); m != "iam.UpdateAssumeRolePolicy" {
		t.Errorf("mutating calls %s", m)
	}
	if ch := strings.Join(report(res, resource.KindRole).Changes, "; "); !strings.Contains(ch, "trust policy rewritten") {
		t.Errorf("role changes %q", ch)
	}
	checkKeyless(t, e.acct, o.OIDC)

	o.OIDC = circleci.Selector{OrgID: orgID, AnyProject: true}
	e.run(t, o)
	checkKeyless(t, e.acct, o.OIDC)
}

// keys then keyless: the role's trust is rewritten; the user and its key
// go only once a person confirms, after the rewrite.
func TestSwitchFromKeysToKeyless(t *testing.T) {
	for _, confirmed := range []bool{false, true} {
		t.Run(map[bool]string{false: "unconfirmed", true: "confirmed"}[confirmed], func(t *testing.T) {
			e := newEnv(t, awsfake.Config{})
			keys := e.run(t, defaults())
			e.acct.ResetCalls()
			s, err := e.p.Prepare(bg, keyless())
			if err != nil {
				t.Fatal(err)
			}
			if qs := s.Questions(); len(qs) != 1 || !strings.Contains(qs[0], "delete access key "+keys.Variables.AccessKeyID+" of user circleci, then delete user circleci") {
				t.Fatalf("questions %q", qs)
			}
			if got := statuses(s.Planned()); got != "repository=unchanged policy=unchanged oidc-provider=would-create role=would-update user=would-delete" {
				t.Fatalf("planned: %s", got)
			}
			res, err := s.Apply(bg, confirmed)
			if err != nil {
				t.Fatalf("apply: %v\n%s", err, e.logText())
			}
			role := report(res, resource.KindRole)
			if ch := strings.Join(role.Changes, "; "); !strings.Contains(ch, "trust switched to OIDC provider") || !strings.Contains(ch, "it trusted user circleci") {
				t.Errorf("role changes %q", ch)
			}
			user := report(res, resource.KindUser)
			ops := e.acct.Ops()
			if !confirmed {
				if user.Status != resource.Kept || !nextIn(res, hint.Confirm) {
					t.Errorf("user %+v, notes %q", user, notes(res))
				}
				if countOp(ops, "iam.DeleteUser")+countOp(ops, "iam.DeleteAccessKey") != 0 {
					t.Errorf("deleted without confirmation: %v", ops)
				}
				// A confirmed rerun finishes the switch.
				e.acct.ResetCalls()
				o := keyless()
				o.Confirmed = true
				res = e.run(t, o)
				ops = e.acct.Ops()
				user = report(res, resource.KindUser)
			}
			if user.Status != resource.Deleted {
				t.Errorf("user status %s", user.Status)
			}
			if i, j := index(ops, "iam.DeleteAccessKey"), index(ops, "iam.DeleteUser"); i < 0 || j < i {
				t.Errorf("the key must go before the user: %v", ops)
			}
			if i, j := index(ops, "iam.UpdateAssumeRolePolicy"), index(ops, "iam.DeleteAccessKey"); confirmed && (i < 0 || j < i) {
				t.Errorf("the trust must be rewritten before the key goes: %v", ops)
			}
			checkKeyless(t, e.acct, keyless().OIDC)

			e.acct.ResetCalls()
			again := e.run(t, keyless())
			if m := e.acct.Mutating(); len(m) != 0 || report(again, resource.KindUser) != nil {
				t.Errorf("rerun after the switch: mutating %v, statuses %s", m, statuses(again))
			}
		})
	}
}

func index(ops []string, op string) int {
	for i, o := range ops {
		if o == op {
			return i
		}
	}
	return -1
}

// keyless then keys: the role trusts the user again; the provider stays.
func TestSwitchFromKeylessToKeys(t *testing.T) {
	e := newEnv(t, awsfake.Config{PrincipalDelay: 5 * time.Second})
	e.run(t, keyless())
	e.acct.ResetCalls()
	res := e.run(t, defaults())
	if got := statuses(res); got != "repository=unchanged policy=unchanged user=created access-key=created role=updated" {
		t.Fatalf("statuses: %s", got)
	}
	if ch := strings.Join(report(res, resource.KindRole).Changes, "; "); !strings.Contains(ch, "trust switched to user circleci (it trusted OIDC provider oidc.circleci.com/org/"+orgID+")") {
		t.Errorf("role changes %q", ch)
	}
	checkConverged(t, e.acct, 1)
	for _, op := range e.acct.Mutating() {
		if strings.Contains(op, "OpenIDConnect") {
			t.Errorf("keys mode touched the provider: %s", op)
		}
	}
	if _, err := e.acct.IAM().GetOpenIDConnectProvider(bg, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)}); err != nil {
		t.Errorf("the provider is gone: %v", err)
	}
	// And back: the user goes once confirmed.
	o := keyless()
	o.Confirmed = true
	back := e.run(t, o)
	if got := statuses(back); got != "repository=unchanged policy=unchanged oidc-provider=unchanged role=updated user=deleted" {
		t.Fatalf("statuses: %s", got)
	}
	checkKeyless(t, e.acct, o.OIDC)
}

// A provider someone else made for the URL is used as it is; its client
// IDs are added to only with confirmation.
func TestHandMadeProvider(t *testing.T) {
	for _, c := range []struct {
		name      string
		clientIDs []string
		confirmed bool
		want      string
	}{
		{"with the org as client ID", []string{orgID}, false, "unchanged"},
		{"without it, unconfirmed", []string{"sts.amazonaws.com"}, false, "lacks"},
		{"without it, confirmed", []string{"sts.amazonaws.com"}, true, "added, as confirmed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, awsfake.Config{})
			must(e.acct.IAM().CreateOpenIDConnectProvider(bg, &iam.CreateOpenIDConnectProviderInput{
				Url: aws.String(circleci.Issuer(orgID)), ClientIDList: c.clientIDs, ThumbprintList: []string{strings.Repeat("a", 40)}}))
			e.acct.ResetCalls()
			o := keyless()
			o.Confirmed = c.confirmed
			res := e.run(t, o)
			prov := report(res, resource.KindOIDCProvider)
			if prov.Status != resource.Unmanaged || prov.Managed {
				t.Errorf("provider %+v", prov)
			}
			if c.want != "unchanged" && !strings.Contains(strings.Join(prov.Changes, ";"), c.want) {
				t.Errorf("changes %q, want %q", prov.Changes, c.want)
			}
			got := must(e.acct.IAM().GetOpenIDConnectProvider(bg, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)}))
			has := strings.Contains(strings.Join(got.ClientIDList, ","), orgID)
			if has != (c.want != "lacks") || managed.IAM(got.Tags) || len(got.ThumbprintList) != 1 {
				t.Errorf("provider after setup: %+v", got)
			}
			if c.want == "lacks" && !nextIn(res, hint.Confirm) {
				t.Errorf("no note saying how to add the client ID: %q", notes(res))
			}
			for _, op := range e.acct.Mutating() {
				if op == "iam.CreateOpenIDConnectProvider" || op == "iam.TagOpenIDConnectProvider" {
					t.Errorf("setup called %s on a hand-made provider", op)
				}
			}
		})
	}
}

func TestKeylessInputRefusedBeforeAnyCall(t *testing.T) {
	for name, change := range map[string]func(*Options){
		"no org":            func(o *Options) { o.OIDC.OrgID = "" },
		"org slug":          func(o *Options) { o.OIDC.OrgID = "gh/acme" },
		"no project":        func(o *Options) { o.OIDC.ProjectIDs = nil },
		"project not UUID":  func(o *Options) { o.OIDC.ProjectIDs = []string{"app"} },
		"projects and any":  func(o *Options) { o.OIDC.AnyProject = true },
		"bad branch":        func(o *Options) { o.OIDC.Branches = []string{"a..b"} },
		"rotate key":        func(o *Options) { o.RotateKey = true },
		"unknown auth mode": func(o *Options) { o.Auth = "saml" },
	} {
		e := newEnv(t, awsfake.Config{})
		o := keyless()
		change(&o)
		_, err := e.p.Run(bg, o)
		if err == nil || clierror.Code(err) != clierror.ExitUsage {
			t.Errorf("%s: error %v, want a usage error", name, err)
		}
		if n := len(e.acct.Calls()); n != 0 {
			t.Errorf("%s: %d calls before refusing", name, n)
		}
	}
}

func TestKeylessDryRunMakesNoMutatingCall(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, defaults())
	e.acct.ResetCalls()
	o := keyless()
	o.DryRun, o.Confirmed = true, true
	res := e.run(t, o)
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("mutating calls: %v", m)
	}
	if got := statuses(res); got != "repository=unchanged policy=unchanged oidc-provider=would-create role=would-update user=would-delete" {
		t.Fatalf("statuses: %s", got)
	}
}

// Any one mutating call of a keyless setup, or of a switch from keys,
// failing (or its answer lost) leaves an account the rerun converges.
func TestKeylessFailureAtEachStepThenRerunConverges(t *testing.T) {
	for _, sc := range []struct {
		fromKeys bool
		op       string
	}{
		{false, "iam.CreateOpenIDConnectProvider"}, {false, "iam.CreateRole"}, {false, "iam.AttachRolePolicy"},
		{true, "iam.CreateOpenIDConnectProvider"}, {true, "iam.UpdateAssumeRolePolicy"}, {true, "iam.TagRole"},
		{true, "iam.DeleteAccessKey"}, {true, "iam.DeleteUser"},
	} {
		for _, applied := range []bool{false, true} {
			t.Run(fmt.Sprintf("from keys=%v/%s/lost=%v", sc.fromKeys, sc.op, applied), func(t *testing.T) {
				e := newEnv(t, awsfake.Config{})
				if sc.fromKeys {
					e.run(t, defaults())
				}
				e.acct.Inject(awsfake.Fault{Op: sc.op, Times: 1, Applied: applied, Err: awsfake.ServerError()})
				o := keyless()
				o.Confirmed = true
				_, err := e.p.Run(bg, o)
				if err == nil && sc.op != "iam.TagRole" {
					t.Fatal("no error from the failing run")
				}
				if err != nil && (!strings.Contains(err.Error(), "ServiceUnavailable") || !strings.Contains(err.Error(), "rerun setup")) {
					t.Fatalf("error does not say what to do: %v", err)
				}
				if sc.fromKeys && (sc.op == "iam.CreateOpenIDConnectProvider" || sc.op == "iam.UpdateAssumeRolePolicy") && !applied {
					// The trust was not switched: the user must still be there.
					if _, err := e.acct.IAM().GetUser(bg, &iam.GetUserInput{UserName: aws.String(userName)}); err != nil {
						t.Fatalf("the user went although the trust was not switched: %v", err)
					}
				}
				e.acct.ClearFaults()
				e.run(t, o)
				checkKeyless(t, e.acct, o.OIDC)
				e.acct.ResetCalls()
				e.run(t, o)
				if m := e.acct.Mutating(); len(m) != 0 {
					t.Fatalf("third run made mutating calls: %v", m)
				}
			})
		}
	}
}
