package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/policies"
)

// The names setup and teardown use by default (the blog's).
const (
	tdRepository = "circleci-ecr-test"
	tdPolicy     = "ECRContainerise"
	tdRole       = "containerise"
	tdUser       = "circleci"
)

// provision makes what setup makes, through `containerise setup`. A
// repository that already exists is kept as it is, as setup does.
func provision(t *testing.T, c clients) {
	t.Helper()
	if r := run(t, nil, "setup"); r.Code != 0 {
		t.Fatalf("containerise setup failed:\n%s", r)
	}
}

func accountID(t *testing.T, c clients) string {
	t.Helper()
	id, err := c.STS.GetCallerIdentity(context.Background(), nil)
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	return aws.ToString(id.Account)
}

// putImage records an image in the repository through the ECR API, as a push
// would; moto refuses to delete a repository holding one unless forced.
func putImage(t *testing.T, c clients, repository, tag string) {
	t.Helper()
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},` +
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2,"digest":"sha256:` + strings.Repeat(tag[len(tag)-1:], 64) + `"}]}`
	if _, err := c.ECR.PutImage(context.Background(), &ecr.PutImageInput{
		RepositoryName: aws.String(repository), ImageManifest: aws.String(manifest), ImageTag: aws.String(tag)}); err != nil {
		t.Fatalf("putting image %s:%s: %v", repository, tag, err)
	}
}

// present reports, through the API, which resources exist.
type present struct{ repository, policy, role, user bool }

func lookup(t *testing.T, c clients) present {
	t.Helper()
	ctx := context.Background()
	found := func(what string, err error) bool {
		var noEntity *iamtypes.NoSuchEntityException
		var noRepo *ecrtypes.RepositoryNotFoundException
		switch {
		case err == nil:
			return true
		case errors.As(err, &noEntity), errors.As(err, &noRepo):
			return false
		default:
			t.Fatalf("looking up %s: %v", what, err)
			return false
		}
	}
	_, repoErr := c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{tdRepository}})
	_, policyErr := c.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policies.PolicyARN("aws", accountID(t, c), tdPolicy))})
	_, roleErr := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(tdRole)})
	_, userErr := c.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(tdUser)})
	return present{
		repository: found("the repository", repoErr),
		policy:     found("the policy", policyErr),
		role:       found("the role", roleErr),
		user:       found("the user", userErr),
	}
}

// mutatingCalls lists the mutating operations a --verbose run logged
// ("aws: iam.DeleteRole 12ms ok").
func mutatingCalls(stderr string) []string {
	var ops []string
	for _, line := range strings.Split(stderr, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "aws:" && strings.Contains(f[1], ".") && awsx.IsMutating(f[1]) {
			ops = append(ops, f[1])
		}
	}
	return ops
}

func TestTeardownAfterSetupLeavesNothing(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	provision(t, c)
	putImage(t, c, tdRepository, "v1")
	putImage(t, c, tdRepository, "v2")
	if got := lookup(t, c); got != (present{true, true, true, true}) {
		t.Fatalf("after setup: %+v", got)
	}

	r := run(t, nil, "teardown", "--yes", "--verbose")
	if r.Code != 0 {
		t.Fatalf("teardown --yes:\n%s", r)
	}
	for _, want := range []string{
		"delete repository circleci-ecr-test and its 2 images",
		// A repository is named with its region, where the stack's moto serves it.
		"repository us-east-1/circleci-ecr-test: deleted, with its 2 images\n",
		"policy ECRContainerise: deleted\n",
		"role containerise: deleted\n",
		"user circleci: deleted\n",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r)
		}
	}
	if got := lookup(t, c); got != (present{}) {
		t.Errorf("after teardown, still present: %+v", got)
	}
	// The user's key went with it.
	if _, err := c.IAM.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(tdUser)}); err == nil {
		t.Error("the user's access keys can still be listed")
	}
	// 18 reads: 16 of the resources, the policy's document for the
	// repositories it grants (issue 24), and the registry scanning
	// configuration for setup's rule, read once the repository is found
	// (issue 22); then 6 deletions.
	if !strings.Contains(r.Stderr, "aws: 24 calls, 6 mutating") {
		t.Errorf("a full teardown should make 18 reads and 6 deletions:\n%s", r.Stderr)
	}

	r = run(t, nil, "teardown", "--verbose")
	if r.Code != 0 {
		t.Fatalf("rerun:\n%s", r)
	}
	if n := strings.Count(r.Stdout, ": already gone\n"); n != 4 || !strings.Contains(r.Stdout, "Nothing to delete.") {
		t.Errorf("rerun should find all four gone and nothing to delete:\n%s", r)
	}
	// The sixth read looks for an OIDC provider a cut-off keyless teardown
	// released (its role is gone, so only the provider's tag finds it).
	if !strings.Contains(r.Stderr, "aws: 6 calls, 0 mutating") || !strings.Contains(r.Stderr, "iam.ListOpenIDConnectProviders") {
		t.Errorf("a rerun should make 6 reads and no change:\n%s", r.Stderr)
	}
}

func TestTeardownLeavesUnmanagedRepositoryUnlessIncluded(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	// Made by hand, as in the blog, before setup: no managed-by tag.
	if _, err := c.ECR.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String(tdRepository)}); err != nil {
		t.Fatal(err)
	}
	putImage(t, c, tdRepository, "v1")
	provision(t, c)

	r := run(t, nil, "teardown", "--yes")
	if r.Code != 0 {
		t.Fatalf("teardown --yes:\n%s", r)
	}
	if !strings.Contains(r.Stdout, "repository us-east-1/circleci-ecr-test: left alone (not managed by containerise") ||
		!strings.Contains(r.Stdout, "[holds 1 image]") {
		t.Errorf("stdout does not report the repository left alone with its image:\n%s", r)
	}
	if got := lookup(t, c); got != (present{repository: true}) {
		t.Fatalf("after a plain teardown: %+v, want only the hand-made repository", got)
	}
	images, err := c.ECR.DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String(tdRepository)})
	if err != nil || len(images.ImageDetails) != 1 {
		t.Errorf("the hand-made repository lost its image: %v %v", images, err)
	}

	r = run(t, nil, "teardown", "--yes", "--include-unmanaged")
	if r.Code != 0 || !strings.Contains(r.Stdout, "repository us-east-1/circleci-ecr-test: deleted, with its 1 image") {
		t.Fatalf("teardown --include-unmanaged:\n%s", r)
	}
	if got := lookup(t, c); got != (present{}) {
		t.Errorf("after --include-unmanaged: %+v", got)
	}
}

func TestTeardownWithoutTerminalNeedsYes(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	provision(t, c)

	// stdin is /dev/null: not a terminal.
	r := run(t, nil, "teardown", "--verbose")
	if r.Code != 2 {
		t.Fatalf("want exit 2 without --yes:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "nothing was deleted") || !strings.Contains(r.Stderr, "--yes") {
		t.Errorf("stderr does not say nothing was deleted and to pass --yes:\n%s", r)
	}
	if m := mutatingCalls(r.Stderr); len(m) != 0 {
		t.Errorf("mutating calls without --yes: %v", m)
	}
	if got := lookup(t, c); got != (present{true, true, true, true}) {
		t.Errorf("something was deleted: %+v", got)
	}
}

func TestTeardownDryRunChangesNothing(t *testing.T) {
	resetAWS(t)
	c := awsClients(t)
	provision(t, c)
	putImage(t, c, tdRepository, "v1")

	r := run(t, nil, "teardown", "--dry-run", "--verbose")
	if r.Code != 0 {
		t.Fatalf("teardown --dry-run:\n%s", r)
	}
	for _, want := range []string{"delete repository circleci-ecr-test and its 1 image", "detach policy ECRContainerise from role containerise",
		"delete access key", "Dry run: nothing was deleted"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r)
		}
	}
	if m := mutatingCalls(r.Stderr); len(m) != 0 {
		t.Errorf("dry run made mutating calls: %v", m)
	}
	if got := lookup(t, c); got != (present{true, true, true, true}) {
		t.Errorf("dry run deleted something: %+v", got)
	}
	keys, err := c.IAM.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(tdUser)})
	if err != nil || len(keys.AccessKeyMetadata) != 1 {
		t.Errorf("the user's key after a dry run: %v %v", keys, err)
	}
}

func TestTeardownRefusesBadInputBeforeAnyCall(t *testing.T) {
	// No reset needed: nothing may be called. The endpoint is unreachable, so
	// a call would fail with exit 1, not 2.
	r := run(t, []string{"AWS_ENDPOINT_URL=http://127.0.0.1:9"}, "teardown", "--yes", "--repository", "Not_Valid")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--repository") {
		t.Fatalf("want exit 2 naming --repository:\n%s", r)
	}
}
