// Package managed marks what containerise creates, so that teardown deletes
// only its own resources and setup repairs only what it owns.
package managed

import (
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// The tag every created resource carries.
const (
	TagKey   = "managed-by"
	TagValue = "containerise"
)

// IAMTags returns the tag for IAM create calls.
func IAMTags() []iamtypes.Tag {
	return []iamtypes.Tag{{Key: ptr(TagKey), Value: ptr(TagValue)}}
}

// ECRTags returns the tag for ECR create calls.
func ECRTags() []ecrtypes.Tag {
	return []ecrtypes.Tag{{Key: ptr(TagKey), Value: ptr(TagValue)}}
}

// IAM reports whether IAM tags carry the mark.
func IAM(tags []iamtypes.Tag) bool {
	for _, t := range tags {
		if t.Key != nil && t.Value != nil && *t.Key == TagKey && *t.Value == TagValue {
			return true
		}
	}
	return false
}

// ECR reports whether ECR tags carry the mark.
func ECR(tags []ecrtypes.Tag) bool {
	for _, t := range tags {
		if t.Key != nil && t.Value != nil && *t.Key == TagKey && *t.Value == TagValue {
			return true
		}
	}
	return false
}

func ptr(s string) *string { return &s }
