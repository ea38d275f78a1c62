// Package managed marks what containerise creates, so that teardown deletes
// only its own resources and setup repairs only what it owns. There are two
// proofs: the managed-by tag, on every kind that takes tags, and a Mark (a
// recognisable start of a name or description that setup writes) on kinds
// AWS gives no tags: ECR lifecycle rules today; registry scanning rules,
// pull-through cache rules and signing configurations next. Teardown passes
// either proof to the plan's decision as "managed".
package managed

import (
	"strings"

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

// Mark proves ownership of a kind that takes no tags: setup starts the
// name or description it writes with the mark, and only what starts so is
// changed or deleted.
type Mark string

// Described is the mark at the start of the descriptions setup writes:
// "containerise: keep the 10 most recently pushed images".
const Described Mark = "containerise: "

// On marks text as setup's.
func (m Mark) On(text string) string { return string(m) + text }

// Made reports whether text carries the mark, so setup made what it
// names or describes.
func (m Mark) Made(text string) bool { return strings.HasPrefix(text, string(m)) }
