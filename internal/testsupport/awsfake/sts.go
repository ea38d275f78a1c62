package awsfake

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
)

// STS is the STS fake. Its methods have the shapes of *sts.Client's. It calls
// as the admin, or as the IAM user owning an access key (Account.STSAs).
type STS struct {
	a             *Account
	keyID, secret string
}

// InvalidClientTokenID is STS's answer to an unknown, inactive or not yet
// propagated access key.
func InvalidClientTokenID() error {
	return &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."}
}

// caller returns the ARN and unique ID of the caller (under the lock).
func (f *STS) caller() (arn, id string, err error) {
	if f.keyID == "" {
		return f.a.AdminARN(), "AIDAADMIN", nil
	}
	for _, u := range f.a.users {
		for _, k := range u.keys {
			if k.id != f.keyID {
				continue
			}
			if k.status != "Active" || f.a.now.Sub(k.created) < f.a.keyDelay {
				return "", "", InvalidClientTokenID()
			}
			if f.secret != "" && f.secret != k.secret {
				return "", "", &smithy.GenericAPIError{Code: "SignatureDoesNotMatch",
					Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
			}
			return u.arn, u.id, nil
		}
	}
	return "", "", InvalidClientTokenID()
}

// GetCallerIdentity returns the caller's account, ARN and unique ID.
func (f *STS) GetCallerIdentity(ctx context.Context, _ *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	var out *sts.GetCallerIdentityOutput
	err := f.a.call(ctx, "sts.GetCallerIdentity", func() error {
		arn, id, err := f.caller()
		if err != nil {
			return err
		}
		out = &sts.GetCallerIdentityOutput{Account: aws.String(f.a.id), Arn: aws.String(arn), UserId: aws.String(id)}
		return nil
	})
	return out, err
}

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// AssumeRole returns temporary credentials for a role whose trust policy
// names the caller.
func (f *STS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	var out *sts.AssumeRoleOutput
	err := f.a.call(ctx, "sts.AssumeRole", func() error {
		callerARN, _, err := f.caller()
		if err != nil {
			return err
		}
		session := str(in.RoleSessionName)
		if !sessionNameRE.MatchString(session) {
			return &smithy.GenericAPIError{Code: "ValidationError", Message: fmt.Sprintf(
				"1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", session)}
		}
		roleARN := str(in.RoleArn)
		denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: fmt.Sprintf(
			"User: %s is not authorized to perform: sts:AssumeRole on resource: %s", callerARN, roleARN)}
		prefix := fmt.Sprintf("arn:%s:iam::%s:role/", f.a.partition, f.a.id)
		if !strings.HasPrefix(roleARN, prefix) {
			return denied
		}
		name := roleARN[strings.LastIndexByte(roleARN, '/')+1:]
		r, ok := f.a.roles[name]
		if !ok || r.arn != roleARN || f.a.now.Sub(r.created) < f.a.roleDelay || !trusts(r.trust, callerARN) {
			return denied
		}
		duration := time.Hour
		if in.DurationSeconds != nil {
			duration = time.Duration(*in.DurationSeconds) * time.Second
		}
		out = &sts.AssumeRoleOutput{
			AssumedRoleUser: &ststypes.AssumedRoleUser{
				Arn:           aws.String(fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", f.a.partition, f.a.id, r.name, session)),
				AssumedRoleId: aws.String(r.id + ":" + session),
			},
			Credentials: &ststypes.Credentials{
				AccessKeyId: aws.String(f.a.newID("ASIA", 16)), SecretAccessKey: aws.String(newSecret()),
				SessionToken: aws.String(f.a.newID("FQoGZXIvYXdzE", 64)), Expiration: tp(f.a.now.Add(duration)),
			},
		}
		return nil
	})
	return out, err
}

// trusts reports whether a trust policy lets principal assume the role.
func trusts(trust, principal string) bool {
	d, err := parseDocument(trust)
	if err != nil {
		return false
	}
	for _, s := range d.statements {
		if s.effect != "Allow" || !slices.Contains(s.actions, "sts:AssumeRole") {
			continue
		}
		for _, p := range s.principals["AWS"] {
			if p == principal || p == "*" {
				return true
			}
		}
	}
	return false
}
