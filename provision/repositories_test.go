package provision

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

// granted are the repositories the policy's default version grants.
func granted(t *testing.T, a *awsfake.Account) []string {
	t.Helper()
	ic := a.IAM()
	pol, err := ic.GetPolicy(bg, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	v := must(ic.GetPolicyVersion(bg, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: pol.Policy.DefaultVersionId}))
	doc, err := policies.Parse(aws.ToString(v.PolicyVersion.Document))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range doc.Repositories() {
		out = append(out, r.String())
	}
	return out
}

func repos(region string, names ...string) Options {
	o := defaults()
	o.Region, o.Repository, o.Repositories = region, names[0], names
	return o
}

func TestOneRoleForSeveralRepositories(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	o := repos("us-east-1", "api", "web")
	on := true
	o.Settings = resource.Settings{ScanOnPush: &on}
	res := e.run(t, o)
	if got := statuses(res); got != "repository=created repository=created policy=created user=created access-key=created role=created settings=created settings=created" {
		t.Fatalf("statuses: %s", got)
	}
	for _, name := range []string{"api", "web"} {
		d, err := e.acct.ECR().DescribeRepositories(bg, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
		if err != nil || !d.Repositories[0].ImageScanningConfiguration.ScanOnPush {
			t.Errorf("repository %s: %+v %v (want it, scanning on push)", name, d, err)
		}
	}
	if got, want := granted(t, e.acct), []string{"us-east-1/api", "us-east-1/web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("policy grants %v, want %v", got, want)
	}
	for _, r := range res.Resources {
		if r.Kind == resource.KindRepository && r.Label() != "us-east-1/"+r.Name {
			t.Errorf("repository shown as %q, want region/name", r.Label())
		}
	}

	e.acct.ResetCalls()
	again := e.run(t, o)
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Fatalf("rerun with the same set made writes: %v", m)
	}
	if strings.Contains(statuses(again), "would") || strings.Contains(statuses(again), "updated") {
		t.Errorf("rerun statuses: %s", statuses(again))
	}
	// The same set in another order is the same set.
	e.acct.ResetCalls()
	e.run(t, repos("us-east-1", "web", "api"))
	if m := e.acct.Mutating(); len(m) != 0 {
		t.Errorf("the same set in another order made writes: %v", m)
	}
}

func TestDroppingARepositoryNeedsConfirmation(t *testing.T) {
	cases := []struct {
		name        string
		first, then Options
		dropped     string
		nameBoth    []string
	}{
		{"another repository", repos("us-east-1", "my-app"), repos("us-east-1", "other"), "us-east-1/my-app", []string{"my-app"}},
		{"one of two", repos("us-east-1", "my-app", "other"), repos("us-east-1", "other"), "us-east-1/my-app", []string{"my-app"}},
		{"the same name in another region", repos("eu-west-1", "my-app"), repos("us-east-1", "my-app"), "eu-west-1/my-app", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, awsfake.Config{})
			e.run(t, c.first)
			before := granted(t, e.acct)
			e.acct.ResetCalls()

			var asked []string
			o := c.then
			o.Confirm = func(qs []string) (bool, error) { asked = qs; return false, nil }
			_, err := e.p.Run(bg, o)
			var refused *DropRefused
			if !errors.As(err, &refused) || clierror.Code(err) != clierror.ExitUsage {
				t.Fatalf("setup dropping %s: %v (exit %d), want a refusal with exit 2", c.dropped, err, clierror.Code(err))
			}
			if !strings.Contains(err.Error(), "would stop granting push to "+c.dropped) {
				t.Errorf("refusal does not name %s: %v", c.dropped, err)
			}
			if len(asked) == 0 || !strings.Contains(asked[0], "stop granting push to "+c.dropped) {
				t.Errorf("questions %q do not name %s", asked, c.dropped)
			}
			if !reflect.DeepEqual(refused.SameRegion(), c.nameBoth) {
				t.Errorf("repositories this setup could name too: %v, want %v", refused.SameRegion(), c.nameBoth)
			}
			if m := e.acct.Mutating(); len(m) != 0 {
				t.Errorf("refused setup made writes: %v", m)
			}
			if got := granted(t, e.acct); !reflect.DeepEqual(got, before) {
				t.Errorf("policy grants %v after a refusal, want %v as before", got, before)
			}

			// A dry run shows the drop and refuses nothing.
			dry := c.then
			dry.DryRun = true
			res, err := e.p.Run(bg, dry)
			if err != nil {
				t.Fatal(err)
			}
			pol := report(res, resource.KindPolicy)
			if !strings.Contains(strings.Join(pol.Changes, "; "), "stops granting push to "+c.dropped) {
				t.Errorf("dry run's policy changes %q do not name %s", pol.Changes, c.dropped)
			}
			// One line per repository, not one per action and ARN.
			if changes := strings.Join(pol.Changes, "; "); strings.Contains(changes, "arn:aws:ecr") {
				t.Errorf("policy changes list ARNs: %s", changes)
			}

			// Confirmed, it is done.
			yes := c.then
			yes.Confirmed = true
			e.run(t, yes)
			for _, g := range granted(t, e.acct) {
				if g == c.dropped {
					t.Errorf("still grants %s after a confirmed setup", c.dropped)
				}
			}
		})
	}
}

func TestAddingARepositoryAsksNothing(t *testing.T) {
	e := newEnv(t, awsfake.Config{})
	e.run(t, repos("us-east-1", "my-app"))
	o := repos("us-east-1", "my-app", "other")
	o.Confirm = func(qs []string) (bool, error) {
		t.Errorf("asked %q for a setup that drops nothing", qs)
		return false, nil
	}
	e.run(t, o)
	if got, want := granted(t, e.acct), []string{"us-east-1/my-app", "us-east-1/other"}; !reflect.DeepEqual(got, want) {
		t.Errorf("policy grants %v, want %v", got, want)
	}
}
