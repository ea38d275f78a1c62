package awsfake

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// ECR is the ECR fake. Its methods have the shapes of *ecr.Client's.
type ECR struct{ a *Account }

type repo struct {
	name, arn, uri string
	created        time.Time
	tags           []ecrtypes.Tag
	images         []*image

	// Settings.
	scanOnPush bool
	mutability ecrtypes.ImageTagMutability
	filters    []ecrtypes.ImageTagMutabilityExclusionFilter
	encryption ecrtypes.EncryptionConfiguration
	lifecycle  string // the lifecycle policy's text; "" for none
	scanResult ScanResult
}

type image struct {
	digest string
	tags   []string
	pushed time.Time
	size   int64
	scan   *scan // nil: never scanned
}

// RegistryHost is the account's ECR registry host name.
func (a *Account) RegistryHost() string {
	suffix := "amazonaws.com"
	if a.partition == "aws-cn" {
		suffix = "amazonaws.com.cn"
	}
	return fmt.Sprintf("%s.dkr.ecr.%s.%s", a.id, a.region, suffix)
}

// AuthToken is the password GetAuthorizationToken hands out (user "AWS").
func (a *Account) AuthToken() string { return a.id + "-auth-token" }

func (a *Account) repo(name string) (*repo, error) {
	r, ok := a.repos[name]
	if !ok {
		return nil, &ecrtypes.RepositoryNotFoundException{Message: aws.String(fmt.Sprintf(
			"The repository with name '%s' does not exist in the registry with id '%s'", name, a.id))}
	}
	return r, nil
}

func (a *Account) repoByARN(arn string) (*repo, error) {
	for _, r := range a.repos {
		if r.arn == arn {
			return r, nil
		}
	}
	name := arn[strings.LastIndex(arn, "repository/")+len("repository/"):]
	if !strings.Contains(arn, ":repository/") {
		return nil, &ecrtypes.InvalidParameterException{Message: aws.String("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'")}
	}
	return nil, &ecrtypes.RepositoryNotFoundException{Message: aws.String(fmt.Sprintf(
		"The repository with name '%s' does not exist in the registry with id '%s'", name, a.id))}
}

func (a *Account) repoOut(r *repo) ecrtypes.Repository {
	enc := r.encryption
	if enc.KmsKey != nil {
		enc.KmsKey = aws.String(*enc.KmsKey)
	}
	return ecrtypes.Repository{
		RepositoryName: aws.String(r.name), RepositoryArn: aws.String(r.arn), RepositoryUri: aws.String(r.uri),
		RegistryId: aws.String(a.id), CreatedAt: tp(r.created),
		ImageTagMutability: r.mutability, ImageTagMutabilityExclusionFilters: copyFilters(r.filters),
		ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: r.scanOnPush},
		EncryptionConfiguration:    &enc,
	}
}

func copyECRTags(tags []ecrtypes.Tag) []ecrtypes.Tag {
	out := make([]ecrtypes.Tag, 0, len(tags))
	for _, t := range tags {
		out = append(out, ecrtypes.Tag{Key: aws.String(str(t.Key)), Value: aws.String(str(t.Value))})
	}
	return out
}

// AddImage puts an image with the given tags into a repository, as a push
// would. It is not a recorded call. It returns the image's digest.
func (a *Account) AddImage(repository string, tags ...string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repo(repository)
	if err != nil {
		return "", err
	}
	a.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", repository, a.seq)))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	for _, img := range r.images { // a tag moves to the new image
		for _, t := range tags {
			for i := 0; i < len(img.tags); i++ {
				if img.tags[i] == t {
					img.tags = append(img.tags[:i], img.tags[i+1:]...)
					i--
				}
			}
		}
	}
	img := &image{digest: digest, tags: append([]string(nil), tags...), pushed: a.now, size: 1024}
	r.images = append(r.images, img)
	if r.scanOnPush {
		a.startScan(r, img)
	}
	return digest, nil
}

// CreateRepository creates a repository with tags.
func (f *ECR) CreateRepository(ctx context.Context, in *ecr.CreateRepositoryInput, _ ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error) {
	var out *ecr.CreateRepositoryOutput
	err := f.a.call(ctx, "ecr.CreateRepository", func() error {
		name := str(in.RepositoryName)
		if len(name) < 2 || len(name) > 256 || strings.ToLower(name) != name {
			return &ecrtypes.InvalidParameterException{Message: aws.String(fmt.Sprintf("Invalid parameter at 'repositoryName' failed to satisfy constraint: '%s'", name))}
		}
		if _, ok := f.a.repos[name]; ok {
			return &ecrtypes.RepositoryAlreadyExistsException{Message: aws.String(fmt.Sprintf(
				"The repository with name '%s' already exists in the registry with id '%s'", name, f.a.id))}
		}
		r := &repo{
			name: name, created: f.a.now, tags: copyECRTags(in.Tags),
			arn:        fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", f.a.partition, f.a.region, f.a.id, name),
			uri:        f.a.RegistryHost() + "/" + name,
			mutability: ecrtypes.ImageTagMutabilityMutable,
			encryption: ecrtypes.EncryptionConfiguration{EncryptionType: ecrtypes.EncryptionTypeAes256},
		}
		if in.ImageScanningConfiguration != nil {
			r.scanOnPush = in.ImageScanningConfiguration.ScanOnPush
		}
		if in.ImageTagMutability != "" || len(in.ImageTagMutabilityExclusionFilters) > 0 {
			if err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters); err != nil {
				return err
			}
			r.mutability, r.filters = in.ImageTagMutability, copyFilters(in.ImageTagMutabilityExclusionFilters)
		}
		if e := in.EncryptionConfiguration; e != nil {
			if e.EncryptionType == ecrtypes.EncryptionTypeKms && str(e.KmsKey) == "" {
				return &ecrtypes.InvalidParameterException{Message: aws.String("Invalid parameter at 'encryptionConfiguration': the default AWS managed key is not modelled by the fake; give kmsKey")}
			}
			r.encryption = ecrtypes.EncryptionConfiguration{EncryptionType: e.EncryptionType, KmsKey: e.KmsKey}
		}
		f.a.repos[name] = r
		ro := f.a.repoOut(r)
		out = &ecr.CreateRepositoryOutput{Repository: &ro}
		return nil
	})
	return out, err
}

// DescribeRepositories describes the named repositories (all when none is
// named); a missing one fails the call with RepositoryNotFound.
func (f *ECR) DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, _ ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error) {
	var out *ecr.DescribeRepositoriesOutput
	err := f.a.call(ctx, "ecr.DescribeRepositories", func() error {
		out = &ecr.DescribeRepositoriesOutput{}
		var names []string
		if in != nil {
			names = in.RepositoryNames
		}
		if len(names) == 0 {
			for name := range f.a.repos {
				names = append(names, name)
			}
			sort.Strings(names)
		}
		for _, name := range names {
			r, err := f.a.repo(name)
			if err != nil {
				out = nil
				return err
			}
			out.Repositories = append(out.Repositories, f.a.repoOut(r))
		}
		return nil
	})
	return out, err
}

// ListTagsForResource lists a repository's tags by ARN.
func (f *ECR) ListTagsForResource(ctx context.Context, in *ecr.ListTagsForResourceInput, _ ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error) {
	var out *ecr.ListTagsForResourceOutput
	err := f.a.call(ctx, "ecr.ListTagsForResource", func() error {
		r, err := f.a.repoByARN(str(in.ResourceArn))
		if err != nil {
			return err
		}
		out = &ecr.ListTagsForResourceOutput{Tags: copyECRTags(r.tags)}
		return nil
	})
	return out, err
}

// TagResource adds or replaces tags on a repository.
func (f *ECR) TagResource(ctx context.Context, in *ecr.TagResourceInput, _ ...func(*ecr.Options)) (*ecr.TagResourceOutput, error) {
	err := f.a.call(ctx, "ecr.TagResource", func() error {
		r, err := f.a.repoByARN(str(in.ResourceArn))
		if err != nil {
			return err
		}
		for _, t := range in.Tags {
			replaced := false
			for i := range r.tags {
				if *r.tags[i].Key == str(t.Key) {
					r.tags[i].Value = aws.String(str(t.Value))
					replaced = true
				}
			}
			if !replaced {
				r.tags = append(r.tags, ecrtypes.Tag{Key: aws.String(str(t.Key)), Value: aws.String(str(t.Value))})
			}
		}
		return nil
	})
	return &ecr.TagResourceOutput{}, err
}

func tagMatches(img *image, status ecrtypes.TagStatus) bool {
	switch status {
	case ecrtypes.TagStatusTagged:
		return len(img.tags) > 0
	case ecrtypes.TagStatusUntagged:
		return len(img.tags) == 0
	default:
		return true
	}
}

// ListImages lists image IDs, one per tag (untagged images by digest only),
// optionally filtered by tag status.
func (f *ECR) ListImages(ctx context.Context, in *ecr.ListImagesInput, _ ...func(*ecr.Options)) (*ecr.ListImagesOutput, error) {
	var out *ecr.ListImagesOutput
	err := f.a.call(ctx, "ecr.ListImages", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		var status ecrtypes.TagStatus
		if in.Filter != nil {
			status = in.Filter.TagStatus
		}
		out = &ecr.ListImagesOutput{ImageIds: []ecrtypes.ImageIdentifier{}}
		for _, img := range r.images {
			if !tagMatches(img, status) {
				continue
			}
			if len(img.tags) == 0 {
				out.ImageIds = append(out.ImageIds, ecrtypes.ImageIdentifier{ImageDigest: aws.String(img.digest)})
			}
			for _, t := range img.tags {
				out.ImageIds = append(out.ImageIds, ecrtypes.ImageIdentifier{ImageDigest: aws.String(img.digest), ImageTag: aws.String(t)})
			}
		}
		return nil
	})
	return out, err
}

// DescribeImages describes images, all or those named by tag or digest
// (a missing one fails the call with ImageNotFound), optionally filtered by
// tag status.
func (f *ECR) DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	var out *ecr.DescribeImagesOutput
	err := f.a.call(ctx, "ecr.DescribeImages", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		var status ecrtypes.TagStatus
		if in.Filter != nil {
			status = in.Filter.TagStatus
		}
		detail := func(img *image) ecrtypes.ImageDetail {
			return ecrtypes.ImageDetail{
				ImageDigest: aws.String(img.digest), ImageTags: append([]string(nil), img.tags...),
				ImagePushedAt: tp(img.pushed), ImageSizeInBytes: aws.Int64(img.size),
				RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name),
				ImageManifestMediaType: aws.String("application/vnd.docker.distribution.manifest.v2+json"),
			}
		}
		out = &ecr.DescribeImagesOutput{ImageDetails: []ecrtypes.ImageDetail{}}
		if len(in.ImageIds) == 0 {
			for _, img := range r.images {
				if tagMatches(img, status) {
					out.ImageDetails = append(out.ImageDetails, detail(img))
				}
			}
			return nil
		}
		for _, id := range in.ImageIds {
			var found *image
			for _, img := range r.images {
				if id.ImageDigest != nil && *id.ImageDigest != img.digest {
					continue
				}
				if id.ImageTag != nil && !slices.Contains(img.tags, *id.ImageTag) {
					continue
				}
				found = img
				break
			}
			if found == nil {
				out = nil
				return &ecrtypes.ImageNotFoundException{Message: aws.String(fmt.Sprintf(
					"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
					str(id.ImageDigest), str(id.ImageTag), r.name, f.a.id))}
			}
			out.ImageDetails = append(out.ImageDetails, detail(found))
		}
		return nil
	})
	return out, err
}

// DeleteRepository deletes a repository, refusing one with images unless Force.
func (f *ECR) DeleteRepository(ctx context.Context, in *ecr.DeleteRepositoryInput, _ ...func(*ecr.Options)) (*ecr.DeleteRepositoryOutput, error) {
	var out *ecr.DeleteRepositoryOutput
	err := f.a.call(ctx, "ecr.DeleteRepository", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		if len(r.images) > 0 && !in.Force {
			return &ecrtypes.RepositoryNotEmptyException{Message: aws.String(fmt.Sprintf(
				"The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", r.name, f.a.id))}
		}
		delete(f.a.repos, r.name)
		ro := f.a.repoOut(r)
		out = &ecr.DeleteRepositoryOutput{Repository: &ro}
		return nil
	})
	return out, err
}

// GetAuthorizationToken returns base64("AWS:<token>") for the account's
// registry, valid for 12 hours.
func (f *ECR) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	var out *ecr.GetAuthorizationTokenOutput
	err := f.a.call(ctx, "ecr.GetAuthorizationToken", func() error {
		token := base64.StdEncoding.EncodeToString([]byte("AWS:" + f.a.AuthToken()))
		out = &ecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{
			AuthorizationToken: aws.String(token),
			ProxyEndpoint:      aws.String("https://" + f.a.RegistryHost()),
			ExpiresAt:          tp(f.a.now.Add(12 * time.Hour)),
		}}}
		return nil
	})
	return out, err
}
