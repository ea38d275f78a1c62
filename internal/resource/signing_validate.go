package resource

import (
	"regexp"

	"github.com/containerise/containerise/internal/clierror"
)

// signingProfileARN is an AWS Signer signing profile's ARN:
// arn:aws:signer:us-east-1:123456789012:/signing-profiles/MyProfile.
var signingProfileARN = regexp.MustCompile(`^arn:aws[a-z-]*:signer:[a-z0-9-]+:[0-9]{12}:/signing-profiles/[A-Za-z0-9_]{2,64}$`)

// validateSigning checks the signing profile asked for.
func (s Spec) validateSigning(l Labels) error {
	if s.SigningProfile == "" || signingProfileARN.MatchString(s.SigningProfile) {
		return nil
	}
	return clierror.Usagef("%s %q is not an AWS Signer signing profile ARN: give one such as arn:aws:signer:us-east-1:123456789012:/signing-profiles/MyProfile (see `aws signer list-signing-profiles`)",
		l.SigningProfile, s.SigningProfile)
}
