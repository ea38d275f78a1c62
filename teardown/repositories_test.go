package teardown

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/provision"
)

// setUpRepositories runs setup for one role over repositories of region.
func (w *world) setUpRepositories(region string, repos ...string) {
	w.t.Helper()
	o := provision.Options{Repository: repos[0], Repositories: repos, Policy: DefaultPolicy, User: DefaultUser, Role: DefaultRole, Region: region}
	p := &provision.Provisioner{IAM: w.a.IAM(), ECR: w.a.ECR(), STS: w.a.STS()}
	if _, err := p.Run(context.Background(), o); err != nil {
		w.t.Fatalf("setup: %v", err)
	}
}

func (w *world) repositoryExists(name string) bool {
	w.t.Helper()
	_, err := w.a.ECR().DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
	if err != nil && !awsx.IsNotFound(err) {
		w.t.Fatal(err)
	}
	return err == nil
}

func repositoryLabels(p *Plan) []string {
	var out []string
	for _, r := range p.Resources {
		if r.Kind == resource.KindRepository {
			out = append(out, r.Label())
		}
	}
	return out
}

var bare = Options{Policy: DefaultPolicy, Role: DefaultRole, User: DefaultUser}

func TestBareTeardownFindsTheSetFromThePolicy(t *testing.T) {
	w := newWorld(t)
	w.setUpRepositories(w.a.Region(), "my-app", "my-api")
	p, err := w.run(bare)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if got, want := repositoryLabels(p), []string{"us-east-1/my-api", "us-east-1/my-app"}; !slices.Equal(got, want) {
		t.Errorf("planned repositories %v, want %v (what the policy grants)", got, want)
	}
	for _, name := range []string{"my-app", "my-api", DefaultRepository} {
		if w.repositoryExists(name) {
			t.Errorf("repository %s left behind", name)
		}
	}
	w.wantExists(allGone)
}

func TestBareTeardownReachesRepositoriesInTheirRegions(t *testing.T) {
	w := newWorld(t)
	w.setUpRepositories("eu-west-1", "my-app")
	var asked []string
	w.td.Region = "us-east-1"
	w.td.ECRIn = func(region string) resource.ECR {
		asked = append(asked, region)
		return w.a.ECR() // the fake's ECR has no regions
	}
	p, err := w.run(bare)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if got := repositoryLabels(p); !slices.Equal(got, []string{"eu-west-1/my-app"}) {
		t.Errorf("planned repositories %v, want eu-west-1/my-app", got)
	}
	if len(asked) == 0 || slices.ContainsFunc(asked, func(r string) bool { return r != "eu-west-1" }) {
		t.Errorf("ECR clients asked for %v, want eu-west-1's only", asked)
	}
	if w.repositoryExists("my-app") {
		t.Error("my-app left behind")
	}
}

func TestNamedRepositoryThePolicyDoesNotGrantIsRefused(t *testing.T) {
	w := newWorld(t)
	w.setUpRepositories(w.a.Region(), "my-app")
	w.a.ResetCalls()
	o := bare
	o.Repositories = []string{"my-app", "someone-elses"}
	_, err := w.run(o)
	var ng *NotGranted
	if !errors.As(err, &ng) || clierror.Code(err) != clierror.ExitUsage {
		t.Fatalf("teardown naming a repository the policy does not grant: %v, want NotGranted with exit 2", err)
	}
	if !slices.Equal(ng.Repositories, []string{"us-east-1/someone-elses"}) || !slices.Equal(ng.Granted, []string{"us-east-1/my-app"}) {
		t.Errorf("refusal %+v", ng)
	}
	if m := w.a.Mutating(); len(m) != 0 {
		t.Errorf("refused teardown made writes: %v", m)
	}
	o.IncludeUnmanaged = true
	p, err := w.td.Plan(context.Background(), o)
	if err != nil {
		t.Fatalf("with unmanaged included: %v", err)
	}
	if got := repositoryLabels(p); !slices.Equal(got, []string{"us-east-1/my-app", "us-east-1/someone-elses"}) {
		t.Errorf("planned %v", got)
	}
}
