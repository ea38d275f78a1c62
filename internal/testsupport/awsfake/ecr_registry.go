package awsfake

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// registryConfig is what ECR keeps per registry (account and region)
// rather than per repository.
type registryConfig struct {
	scanType     ecrtypes.ScanType // "" reads as BASIC
	scanRules    []ecrtypes.RegistryScanningRule
	signingRules []ecrtypes.SigningRule // nil: no signing configuration
}

func invalid(format string, args ...any) error {
	return &ecrtypes.InvalidParameterException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func copyScanRules(in []ecrtypes.RegistryScanningRule) []ecrtypes.RegistryScanningRule {
	out := []ecrtypes.RegistryScanningRule{}
	for _, r := range in {
		r.RepositoryFilters = append([]ecrtypes.ScanningRepositoryFilter{}, r.RepositoryFilters...)
		out = append(out, r)
	}
	return out
}

// GetRegistryScanningConfiguration returns the registry's scan type and
// rules; a registry never configured scans BASIC with no rules, as ECR's.
func (f *ECR) GetRegistryScanningConfiguration(ctx context.Context, _ *ecr.GetRegistryScanningConfigurationInput, _ ...func(*ecr.Options)) (*ecr.GetRegistryScanningConfigurationOutput, error) {
	var out *ecr.GetRegistryScanningConfigurationOutput
	err := f.a.call(ctx, "ecr.GetRegistryScanningConfiguration", func() error {
		c := f.a.registry
		t := c.scanType
		if t == "" {
			t = ecrtypes.ScanTypeBasic
		}
		out = &ecr.GetRegistryScanningConfigurationOutput{RegistryId: aws.String(f.a.id),
			ScanningConfiguration: &ecrtypes.RegistryScanningConfiguration{ScanType: t, Rules: copyScanRules(c.scanRules)}}
		return nil
	})
	return out, err
}

// PutRegistryScanningConfiguration replaces the registry's scan type and
// rules, refusing what ECR refuses: more than 2 rules, more than 100
// filters in one, a frequency the scan type does not take (BASIC scans on
// push or manually; ENHANCED on push or continuously).
func (f *ECR) PutRegistryScanningConfiguration(ctx context.Context, in *ecr.PutRegistryScanningConfigurationInput, _ ...func(*ecr.Options)) (*ecr.PutRegistryScanningConfigurationOutput, error) {
	var out *ecr.PutRegistryScanningConfigurationOutput
	err := f.a.call(ctx, "ecr.PutRegistryScanningConfiguration", func() error {
		t := in.ScanType
		if t == "" {
			t = ecrtypes.ScanTypeBasic
		}
		if t != ecrtypes.ScanTypeBasic && t != ecrtypes.ScanTypeEnhanced {
			return invalid("Invalid parameter at 'scanType': %q", t)
		}
		if len(in.Rules) > 2 {
			return invalid("Invalid parameter at 'rules': at most 2 rules, got %d", len(in.Rules))
		}
		for _, r := range in.Rules {
			if len(r.RepositoryFilters) > 100 {
				return invalid("Invalid parameter at 'repositoryFilters': at most 100 filters")
			}
			ok := r.ScanFrequency == ecrtypes.ScanFrequencyScanOnPush ||
				(t == ecrtypes.ScanTypeBasic && r.ScanFrequency == ecrtypes.ScanFrequencyManual) ||
				(t == ecrtypes.ScanTypeEnhanced && r.ScanFrequency == ecrtypes.ScanFrequencyContinuousScan)
			if !ok {
				return invalid("Invalid parameter at 'scanFrequency': %s is not supported with scan type %s", r.ScanFrequency, t)
			}
			for _, fl := range r.RepositoryFilters {
				if str(fl.Filter) == "" || fl.FilterType != ecrtypes.ScanningRepositoryFilterTypeWildcard {
					return invalid("Invalid parameter at 'repositoryFilters': a filter needs a value and type WILDCARD")
				}
			}
		}
		f.a.registry.scanType, f.a.registry.scanRules = t, copyScanRules(in.Rules)
		out = &ecr.PutRegistryScanningConfigurationOutput{RegistryScanningConfiguration: &ecrtypes.RegistryScanningConfiguration{ScanType: t, Rules: copyScanRules(in.Rules)}}
		return nil
	})
	return out, err
}

// RegistryScanning is the registry's scanning configuration as it stands.
func (a *Account) RegistryScanning() ecrtypes.RegistryScanningConfiguration {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.registry.scanType
	if t == "" {
		t = ecrtypes.ScanTypeBasic
	}
	return ecrtypes.RegistryScanningConfiguration{ScanType: t, Rules: copyScanRules(a.registry.scanRules)}
}

func copySigningRules(in []ecrtypes.SigningRule) []ecrtypes.SigningRule {
	out := []ecrtypes.SigningRule{}
	for _, r := range in {
		r.RepositoryFilters = append([]ecrtypes.SigningRepositoryFilter{}, r.RepositoryFilters...)
		out = append(out, r)
	}
	return out
}

func signingNotFound(a *Account) error {
	return &ecrtypes.SigningConfigurationNotFoundException{Message: aws.String(fmt.Sprintf("The signing configuration for registry '%s' does not exist", a.id))}
}

// GetSigningConfiguration returns the registry's signing rules, or
// SigningConfigurationNotFoundException when there are none.
func (f *ECR) GetSigningConfiguration(ctx context.Context, _ *ecr.GetSigningConfigurationInput, _ ...func(*ecr.Options)) (*ecr.GetSigningConfigurationOutput, error) {
	var out *ecr.GetSigningConfigurationOutput
	err := f.a.call(ctx, "ecr.GetSigningConfiguration", func() error {
		if f.a.registry.signingRules == nil {
			return signingNotFound(f.a)
		}
		out = &ecr.GetSigningConfigurationOutput{RegistryId: aws.String(f.a.id),
			SigningConfiguration: &ecrtypes.SigningConfiguration{Rules: copySigningRules(f.a.registry.signingRules)}}
		return nil
	})
	return out, err
}

// PutSigningConfiguration replaces the registry's signing rules, refusing
// what ECR refuses: more than 10 rules, more than 100 filters in one, a
// rule without a signing profile.
func (f *ECR) PutSigningConfiguration(ctx context.Context, in *ecr.PutSigningConfigurationInput, _ ...func(*ecr.Options)) (*ecr.PutSigningConfigurationOutput, error) {
	var out *ecr.PutSigningConfigurationOutput
	err := f.a.call(ctx, "ecr.PutSigningConfiguration", func() error {
		if in.SigningConfiguration == nil {
			return invalid("signingConfiguration is required")
		}
		rules := in.SigningConfiguration.Rules
		if len(rules) > 10 {
			return invalid("Invalid parameter at 'rules': at most 10 rules, got %d", len(rules))
		}
		for _, r := range rules {
			if str(r.SigningProfileArn) == "" || len(r.RepositoryFilters) > 100 {
				return invalid("Invalid parameter at 'rules': a rule needs a signing profile and at most 100 filters")
			}
			for _, fl := range r.RepositoryFilters {
				if str(fl.Filter) == "" || fl.FilterType != ecrtypes.SigningRepositoryFilterTypeWildcardMatch {
					return invalid("Invalid parameter at 'repositoryFilters': a filter needs a value and type WILDCARD_MATCH")
				}
			}
		}
		f.a.registry.signingRules = copySigningRules(rules)
		out = &ecr.PutSigningConfigurationOutput{SigningConfiguration: &ecrtypes.SigningConfiguration{Rules: copySigningRules(rules)}}
		return nil
	})
	return out, err
}

// DeleteSigningConfiguration removes the registry's signing rules.
func (f *ECR) DeleteSigningConfiguration(ctx context.Context, _ *ecr.DeleteSigningConfigurationInput, _ ...func(*ecr.Options)) (*ecr.DeleteSigningConfigurationOutput, error) {
	var out *ecr.DeleteSigningConfigurationOutput
	err := f.a.call(ctx, "ecr.DeleteSigningConfiguration", func() error {
		if f.a.registry.signingRules == nil {
			return signingNotFound(f.a)
		}
		out = &ecr.DeleteSigningConfigurationOutput{RegistryId: aws.String(f.a.id),
			SigningConfiguration: &ecrtypes.SigningConfiguration{Rules: copySigningRules(f.a.registry.signingRules)}}
		f.a.registry.signingRules = nil
		return nil
	})
	return out, err
}

// SigningRules are the registry's signing rules as they stand (nil: no
// signing configuration).
func (a *Account) SigningRules() []ecrtypes.SigningRule {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.registry.signingRules == nil {
		return nil
	}
	return copySigningRules(a.registry.signingRules)
}

// wildcardMatch reports whether a signing or scanning filter covers a
// repository name: '*' stands for any characters.
func wildcardMatch(filter, name string) bool {
	parts := strings.Split(filter, "*")
	if len(parts) == 1 {
		return filter == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	rest := name[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return strings.HasSuffix(rest, parts[len(parts)-1])
}

// DescribeImageSigningStatus returns a COMPLETE signature for each signing
// rule covering the image's repository (a rule with no filter covers every
// repository): the fake signs at once, and signs images pushed before the
// rule too.
func (f *ECR) DescribeImageSigningStatus(ctx context.Context, in *ecr.DescribeImageSigningStatusInput, _ ...func(*ecr.Options)) (*ecr.DescribeImageSigningStatusOutput, error) {
	var out *ecr.DescribeImageSigningStatusOutput
	err := f.a.call(ctx, "ecr.DescribeImageSigningStatus", func() error {
		r, err := f.a.repo(str(in.RepositoryName))
		if err != nil {
			return err
		}
		img, err := f.a.image(r, in.ImageId)
		if err != nil {
			return err
		}
		out = &ecr.DescribeImageSigningStatusOutput{RegistryId: aws.String(f.a.id), RepositoryName: aws.String(r.name), ImageId: imageID(img, in.ImageId),
			SigningStatuses: []ecrtypes.ImageSigningStatus{}}
		for _, rule := range f.a.registry.signingRules {
			covered := len(rule.RepositoryFilters) == 0
			for _, fl := range rule.RepositoryFilters {
				covered = covered || wildcardMatch(str(fl.Filter), r.name)
			}
			if covered {
				out.SigningStatuses = append(out.SigningStatuses, ecrtypes.ImageSigningStatus{SigningProfileArn: rule.SigningProfileArn, Status: ecrtypes.SigningStatusComplete})
			}
		}
		return nil
	})
	return out, err
}
