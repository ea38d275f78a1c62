package awsfake

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// ECR's rule for tag mutability exclusion filters.
var exclusionFilterRE = regexp.MustCompile(`^[0-9a-zA-Z._*-]{1,128}$`)

// checkMutability applies ECR's rules: the *_WITH_EXCLUSION settings take 1
// to 5 wildcard filters, the others none.
func checkMutability(m ecrtypes.ImageTagMutability, filters []ecrtypes.ImageTagMutabilityExclusionFilter) error {
	invalid := func(format string, args ...any) error {
		return &ecrtypes.InvalidParameterException{Message: aws.String("Invalid parameter at 'imageTagMutability': " + fmt.Sprintf(format, args...))}
	}
	switch m {
	case ecrtypes.ImageTagMutabilityMutable, ecrtypes.ImageTagMutabilityImmutable:
		if len(filters) > 0 {
			return invalid("exclusion filters need %s_WITH_EXCLUSION", m)
		}
		return nil
	case ecrtypes.ImageTagMutabilityMutableWithExclusion, ecrtypes.ImageTagMutabilityImmutableWithExclusion:
		if len(filters) == 0 || len(filters) > 5 {
			return invalid("%s takes 1 to 5 exclusion filters, got %d", m, len(filters))
		}
		for _, f := range filters {
			if f.FilterType != ecrtypes.ImageTagMutabilityExclusionFilterTypeWildcard || !exclusionFilterRE.MatchString(str(f.Filter)) {
				return invalid("exclusion filter %q (%s) must be a WILDCARD matching %s", str(f.Filter), f.FilterType, exclusionFilterRE)
			}
		}
		return nil
	}
	return invalid("unknown value %q", m)
}

func copyFilters(in []ecrtypes.ImageTagMutabilityExclusionFilter) []ecrtypes.ImageTagMutabilityExclusionFilter {
	var out []ecrtypes.ImageTagMutabilityExclusionFilter
	for _, f := range in {
		out = append(out, ecrtypes.ImageTagMutabilityExclusionFilter{Filter: aws.String(str(f.Filter)), FilterType: f.FilterType})
	}
	return out
}

// PutImageScanningConfiguration turns scanning on push on or off.
func (f *ECR) PutImageScanningConfiguration(ctx context.Context, in *ecr.PutImageScanningConfigurationInput, _ ...func(*ecr.Options)) (*ecr.PutImageScanningConfigurationOutput, error) {
	var out *ecr.PutImageScanningConfigurationOutput
	err := f.a.call(ctx, "ecr.PutImageScanningConfiguration", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		if in.ImageScanningConfiguration == nil {
			return &ecrtypes.InvalidParameterException{Message: aws.String("imageScanningConfiguration is required")}
		}
		r.scanOnPush = in.ImageScanningConfiguration.ScanOnPush
		out = &ecr.PutImageScanningConfigurationOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name),
			ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: r.scanOnPush}}
		return nil
	})
	return out, err
}

// PutImageTagMutability sets whether tags can be overwritten, with ECR's
// exclusion filters.
func (f *ECR) PutImageTagMutability(ctx context.Context, in *ecr.PutImageTagMutabilityInput, _ ...func(*ecr.Options)) (*ecr.PutImageTagMutabilityOutput, error) {
	var out *ecr.PutImageTagMutabilityOutput
	err := f.a.call(ctx, "ecr.PutImageTagMutability", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		if err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters); err != nil {
			return err
		}
		r.mutability, r.filters = in.ImageTagMutability, copyFilters(in.ImageTagMutabilityExclusionFilters)
		out = &ecr.PutImageTagMutabilityOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name),
			ImageTagMutability: r.mutability, ImageTagMutabilityExclusionFilters: copyFilters(r.filters)}
		return nil
	})
	return out, err
}

func lifecycleNotFound(a *Account, name string) error {
	return &ecrtypes.LifecyclePolicyNotFoundException{Message: aws.String(fmt.Sprintf(
		"Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", name, a.id))}
}

// GetLifecyclePolicy returns the repository's lifecycle policy.
func (f *ECR) GetLifecyclePolicy(ctx context.Context, in *ecr.GetLifecyclePolicyInput, _ ...func(*ecr.Options)) (*ecr.GetLifecyclePolicyOutput, error) {
	var out *ecr.GetLifecyclePolicyOutput
	err := f.a.call(ctx, "ecr.GetLifecyclePolicy", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		if r.lifecycle == "" {
			return lifecycleNotFound(f.a, r.name)
		}
		out = &ecr.GetLifecyclePolicyOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name),
			LifecyclePolicyText: aws.String(r.lifecycle), LastEvaluatedAt: tp(f.a.now)}
		return nil
	})
	return out, err
}

// PutLifecyclePolicy replaces the repository's lifecycle policy. Like ECR,
// it refuses a document without rules.
func (f *ECR) PutLifecyclePolicy(ctx context.Context, in *ecr.PutLifecyclePolicyInput, _ ...func(*ecr.Options)) (*ecr.PutLifecyclePolicyOutput, error) {
	var out *ecr.PutLifecyclePolicyOutput
	err := f.a.call(ctx, "ecr.PutLifecyclePolicy", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		var doc struct {
			Rules []json.RawMessage `json:"rules"`
		}
		if err := json.Unmarshal([]byte(str(in.LifecyclePolicyText)), &doc); err != nil || len(doc.Rules) == 0 {
			return &ecrtypes.InvalidParameterException{Message: aws.String("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'")}
		}
		r.lifecycle = str(in.LifecyclePolicyText)
		out = &ecr.PutLifecyclePolicyOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name), LifecyclePolicyText: aws.String(r.lifecycle)}
		return nil
	})
	return out, err
}

// DeleteLifecyclePolicy removes the repository's lifecycle policy.
func (f *ECR) DeleteLifecyclePolicy(ctx context.Context, in *ecr.DeleteLifecyclePolicyInput, _ ...func(*ecr.Options)) (*ecr.DeleteLifecyclePolicyOutput, error) {
	var out *ecr.DeleteLifecyclePolicyOutput
	err := f.a.call(ctx, "ecr.DeleteLifecyclePolicy", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		if r.lifecycle == "" {
			return lifecycleNotFound(f.a, r.name)
		}
		out = &ecr.DeleteLifecyclePolicyOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name), LifecyclePolicyText: aws.String(r.lifecycle)}
		r.lifecycle = ""
		return nil
	})
	return out, err
}
