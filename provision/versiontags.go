package provision

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/awscfg"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// The policy's version tags say which version setup last made the default
// and the digest (policies.Document.Digest) of the document it wrote there.
// IAM policy versions are immutable and their IDs never reused, so while
// the policy's default version is still the tagged one and the tagged
// digest is the wanted document's, the default document is known to be the
// wanted one: a rerun need not read it (iam:GetPolicyVersion, a third level
// of calls). Anything else (no tags, a hand-made policy, another default
// version set by hand, a changed wanted document, tags edited) falls back
// to reading and comparing the document.
//
// Both tags are written by one call (CreatePolicy's Tags, or TagPolicy), so
// they always name a version together with that version's own digest. Only
// someone writing a matching pair by hand, naming a version that holds
// another document, could mislead setup; that is no accident.
//
// IAM tag rules: keys of at most 128 characters, values of at most 256, of
// letters, digits, white space and _.:/=+-@. "v12" and 64 hex digits fit.
const (
	tagDefaultVersion = "containerise/default-version"
	tagDocumentSHA256 = "containerise/document-sha256"
)

// versionTags are the tags recording that version holds doc.
func versionTags(version string, doc policies.Document) []iamtypes.Tag {
	return []iamtypes.Tag{
		{Key: aws.String(tagDefaultVersion), Value: aws.String(version)},
		{Key: aws.String(tagDocumentSHA256), Value: aws.String(doc.Digest())},
	}
}

// knownCurrent reports whether the tags of pol (as GetPolicy returns it)
// show that its default version holds want. Only managed policies count:
// setup never tags a policy it does not manage.
func knownCurrent(pol *iamtypes.Policy, want policies.Document) bool {
	def := aws.ToString(pol.DefaultVersionId)
	if def == "" || !managed.IAM(pol.Tags) {
		return false
	}
	var version, digest string
	for _, t := range pol.Tags {
		switch aws.ToString(t.Key) {
		case tagDefaultVersion:
			version = aws.ToString(t.Value)
		case tagDocumentSHA256:
			digest = aws.ToString(t.Value)
		}
	}
	return version == def && digest == want.Digest()
}

// tagVersion tags the policy: its version holds the wanted document. The
// tags only spare a later rerun a read, so failing to write them fails
// nothing: the next setup reads the document, finds it right, and tags it.
func (a *applier) tagVersion(ctx context.Context, version string) {
	if version == "" {
		return
	}
	name := a.o.Policy
	a.p.logf("tagging IAM policy %s: its default version %s holds setup's document", name, version)
	_, err := a.p.IAM.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(a.pl.policyARN), Tags: versionTags(version, a.pl.perms)})
	if err != nil {
		a.p.logf("warning: could not tag IAM policy %s with its default version (%s); the policy is right, and the next setup reads its document instead, then tags it",
			name, awscfg.Describe(err))
	}
}
