package resource

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"golang.org/x/sync/errgroup"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// Repository is the ECR repository CI pushes to.
type Repository struct {
	Name string
	// Region is where it is; empty: the run's region (Env.Region).
	Region string

	report Report
	// Observed.
	exists, managed bool
	arn             string
	images          int
	described       *ecrtypes.Repository // as DescribeRepositories returned it
	tags            []ecrtypes.Tag
	// observed is closed once Observe is done: a kind whose reading
	// depends on the repository's (the signing rule, recorded in its tags)
	// waits for it.
	observed     chan struct{}
	observedOnce sync.Once
	// listed is closed once DescribeRepositories answered (Observe still
	// reads tags and images): a kind that only needs to know whether the
	// repository is there (the registry scanning rule) waits for it
	// alone, so that its read runs alongside the repository's others.
	listed     chan struct{}
	listedOnce sync.Once
	isListed   bool

	// settings, when registered, add the repository's settings to its
	// creation; created is the step that creates it.
	settings creationSettings
	created  *Step
}

// creationSettings are what a repository is created with besides its name
// and tags (see RepositorySettings).
type creationSettings interface {
	apply(in *ecr.CreateRepositoryInput)
}

// NewRepository is the repository called name, in the run's region.
func NewRepository(name string) *Repository { return NewRepositoryIn("", name) }

// NewRepositoryIn is the repository called name in region (empty: the
// run's region); its report names the region.
func NewRepositoryIn(region, name string) *Repository {
	return &Repository{Name: name, Region: region, report: Report{Kind: KindRepository, Name: name, Region: region}, observed: make(chan struct{}), listed: make(chan struct{})}
}

// ecr is the ECR client of the repository's region.
func (r *Repository) ecr(env *Env) ECR { return env.ecrIn(r.Region) }

// region is the repository's region.
func (r *Repository) region(env *Env) string {
	if r.Region != "" {
		return r.Region
	}
	return env.Region
}

// read waits until the repository was observed (or ctx ends).
func (r *Repository) read(ctx context.Context) error {
	select {
	case <-r.observed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// markListed records, once, whether DescribeRepositories listed the
// repository.
func (r *Repository) markListed(listed bool) {
	r.listedOnce.Do(func() {
		r.isListed = listed
		close(r.listed)
	})
}

// wasListed waits until DescribeRepositories answered (or ctx ends) and
// reports whether it listed the repository.
func (r *Repository) wasListed(ctx context.Context) (bool, error) {
	select {
	case <-r.listed:
		return r.isListed, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// tag is the value of one of the repository's tags, as found.
func (r *Repository) tag(key string) string {
	for _, t := range r.tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// Reports is the repository's one report.
func (r *Repository) Reports() []*Report { return []*Report{&r.report} }

// ScansOnPush reports whether the repository, as found, scans images on
// push (false when it does not exist yet).
func (r *Repository) ScansOnPush() bool {
	return r.described != nil && r.described.ImageScanningConfiguration != nil && r.described.ImageScanningConfiguration.ScanOnPush
}

// ARN is the repository's ARN, as found or as it will be.
func (r *Repository) ARN() string { return r.report.ARN }

// Observe reads the repository and its tags; for a teardown, also how many
// images it holds.
func (r *Repository) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	defer r.observedOnce.Do(func() { close(r.observed) })
	defer r.markListed(false)
	doing := func(what string) string { return what + " ECR repository " + r.Name }
	out, err := r.ecr(env).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{r.Name}})
	if awsx.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fail(KindRepository, r.Name, doing("reading"), "ecr:DescribeRepositories", err)
	}
	var arn string
	var described *ecrtypes.Repository
	for i, repo := range out.Repositories {
		if aws.ToString(repo.RepositoryName) == r.Name {
			arn, described = aws.ToString(repo.RepositoryArn), &out.Repositories[i]
		}
	}
	if arn == "" {
		return nil
	}
	r.markListed(true)
	var tagged bool
	var tags []ecrtypes.Tag
	var images int
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		tagged, tags, err = repositoryManaged(gctx, r.ecr(env), arn)
		return fail(KindRepository, r.Name, "reading the tags of ECR repository "+r.Name, "ecr:ListTagsForResource", err)
	})
	if purpose == ForTeardown {
		g.Go(func() error {
			p := ecr.NewDescribeImagesPaginator(r.ecr(env), &ecr.DescribeImagesInput{RepositoryName: aws.String(r.Name)})
			err := awsx.Pages(gctx, p.HasMorePages, p.NextPage, func(page *ecr.DescribeImagesOutput) { images += len(page.ImageDetails) })
			return fail(KindRepository, r.Name, doing("listing the images of"), "ecr:DescribeImages", err)
		})
	}
	if err := g.Wait(); err != nil {
		if awsx.IsNotFound(err) { // deleted while we looked: it is gone
			return nil
		}
		return err
	}
	r.exists, r.managed, r.arn, r.images, r.described, r.tags = true, tagged, arn, images, described, tags
	return nil
}

func repositoryManaged(ctx context.Context, api ECR, arn string) (bool, []ecrtypes.Tag, error) {
	tags, err := api.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		return false, nil, err
	}
	return managed.ECR(tags.Tags), tags.Tags, nil
}

// Reconcile creates the repository when it is missing.
func (r *Repository) Reconcile(p *Plan) {
	rep := &r.report
	rep.ARN = r.arn
	if rep.ARN == "" {
		rep.ARN = policies.RepositoryARN(p.Identity.Partition, r.region(p.Env), p.Identity.Account, r.Name)
	}
	rep.Managed, rep.Status = true, Unchanged
	switch {
	case !r.exists:
		rep.Status = WouldCreate
		r.created = p.Add(rep, &Step{Action: "create repository " + r.Name, Call: "ecr:CreateRepository", Do: func(ctx context.Context) error {
			return r.create(ctx, p.Env)
		}})
	case !r.managed:
		rep.Status, rep.Managed = Unmanaged, false
	}
}

func (r *Repository) create(ctx context.Context, env *Env) error {
	rep := &r.report
	env.logf("creating ECR repository %s", r.Name)
	in := &ecr.CreateRepositoryInput{RepositoryName: aws.String(r.Name), Tags: managed.ECRTags()}
	if r.settings != nil {
		r.settings.apply(in)
	}
	out, err := r.ecr(env).CreateRepository(ctx, in)
	if awsx.IsAlreadyExists(err) {
		// Created meanwhile, by another setup or by hand: use it.
		d, err := r.ecr(env).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{r.Name}})
		if err == nil && len(d.Repositories) == 0 {
			err = fmt.Errorf("ECR does not list it")
		}
		if err != nil {
			return fail(KindRepository, r.Name, "reading ECR repository "+r.Name+" (it was created meanwhile)", "ecr:DescribeRepositories", err)
		}
		rep.ARN, r.described = aws.ToString(d.Repositories[0].RepositoryArn), &d.Repositories[0]
		tagged, _, err := repositoryManaged(ctx, r.ecr(env), rep.ARN)
		if err != nil {
			return fail(KindRepository, r.Name, "reading the tags of ECR repository "+r.Name, "ecr:ListTagsForResource", err)
		}
		rep.Status, rep.Managed = Exists, tagged
		if !tagged {
			rep.Status = Unmanaged
		}
		return nil
	}
	if err != nil {
		return fail(KindRepository, r.Name, "creating ECR repository "+r.Name, "ecr:CreateRepository", err)
	}
	rep.Status, rep.ARN = Created, aws.ToString(out.Repository.RepositoryArn)
	return nil
}

// Delete removes the repository and its images in one call.
func (r *Repository) Delete(p *Plan) {
	rep := &r.report
	rep.ARN = r.arn
	if !p.decide(rep, r.exists, r.managed, "") {
		if r.exists {
			rep.Images = aws.Int(r.images)
		}
		return
	}
	rep.Images = aws.Int(r.images)
	action := "delete repository " + r.Name + " (it holds no images)"
	if r.images > 0 {
		action = fmt.Sprintf("delete repository %s and its %s", r.Name, Images(r.images))
	}
	p.Add(rep, &Step{Action: action, Call: "ecr:DeleteRepository", Do: func(ctx context.Context) error {
		_, err := r.ecr(p.Env).DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(r.Name), Force: true})
		return err
	}})
}

// Images counts images in words: "no images", "1 image", "3 images".
func Images(n int) string {
	switch n {
	case 0:
		return "no images"
	case 1:
		return "1 image"
	default:
		return fmt.Sprintf("%d images", n)
	}
}
