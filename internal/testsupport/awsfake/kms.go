package awsfake

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the KMS fake: keys made with AddKMSKey, found by DescribeKey.
type KMS struct{ a *Account }

type kmsKey struct {
	id, arn string
	aliases []string // "alias/name"
}

// KMS returns the KMS fake, called by the admin.
func (a *Account) KMS() *KMS { return &KMS{a: a} }

// AddKMSKey makes a key with the given aliases ("alias/ecr") and returns
// its ARN. It is not a recorded call.
func (a *Account) AddKMSKey(aliases ...string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	id := fmt.Sprintf("0000abcd-0000-4000-8000-%012d", a.seq)
	k := &kmsKey{id: id, arn: fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", a.partition, a.region, a.id, id), aliases: aliases}
	a.kmsKeys = append(a.kmsKeys, k)
	return k.arn
}

// DescribeKey finds a key by ID, key ARN, alias name or alias ARN.
func (f *KMS) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	var out *kms.DescribeKeyOutput
	err := f.a.call(ctx, "kms.DescribeKey", func() error {
		want := str(in.KeyId)
		aliasARN := fmt.Sprintf("arn:%s:kms:%s:%s:", f.a.partition, f.a.region, f.a.id)
		for _, k := range f.a.kmsKeys {
			match := want == k.id || want == k.arn
			for _, al := range k.aliases {
				match = match || want == al || want == aliasARN+al
			}
			if match {
				out = &kms.DescribeKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{KeyId: aws.String(k.id), Arn: aws.String(k.arn), Enabled: true}}
				return nil
			}
		}
		what := "Key '" + want + "'"
		if strings.HasPrefix(want, "alias/") || strings.Contains(want, ":alias/") {
			what = "Alias " + want
		}
		return &kmstypes.NotFoundException{Message: aws.String(what + " is not found.")}
	})
	return out, err
}
