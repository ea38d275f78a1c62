package scan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/containerise/containerise/internal/awsx"
)

// SigningECR is the call that reads an image's ECR managed signing status
// (*ecr.Client has it); the gate's client is asked for it only when a
// signature is required.
type SigningECR interface {
	DescribeImageSigningStatus(context.Context, *ecr.DescribeImageSigningStatusInput, ...func(*ecr.Options)) (*ecr.DescribeImageSigningStatusOutput, error)
}

var _ SigningECR = (*ecr.Client)(nil)

// Signature is an image's managed signing status: one status per signing
// profile of the registry's rules that cover its repository.
type Signature struct {
	// Signed: a signature of at least one profile is COMPLETE.
	Signed bool
	// Profiles are the profiles whose signature is COMPLETE.
	Profiles []string
	// Problems say why the others are not: "PROFILE: FAILED (reason)".
	Problems []string
}

// errSigning is a signature still IN_PROGRESS.
var errSigning = errors.New("the image's signing is in progress")

// signatures reads the signing status of every result's image, waiting,
// within the gate's bound, while signing is in progress.
func (g *Gate) signatures(ctx context.Context, repository string, results []*Result) error {
	api, ok := g.ECR.(SigningECR)
	if !ok {
		return errors.New("the scan gate's ECR client cannot read signing status")
	}
	for _, r := range results {
		id := &ecrtypes.ImageIdentifier{ImageDigest: aws.String(r.Digest)}
		if r.Digest == "" && len(r.Tags) > 0 {
			id = &ecrtypes.ImageIdentifier{ImageTag: aws.String(r.Tags[0])}
		}
		w := g.Wait
		if w.First <= 0 {
			w.First = 5 * time.Second
		}
		var sig *Signature
		err := w.Retry(ctx, func(err error) (string, bool) { return "the signing of " + r.Ref(), errors.Is(err, errSigning) }, func(a awsx.Attempt) {
			g.logf("waiting for ECR to sign %s; checking again in %s, for up to %s more", r.Ref(), a.Pause.Round(time.Second), a.Left.Round(time.Second))
		}, func() error {
			out, err := api.DescribeImageSigningStatus(ctx, &ecr.DescribeImageSigningStatusInput{RepositoryName: aws.String(repository), ImageId: id})
			if err != nil {
				e := &Error{Doing: "reading the signing status of " + r.Ref(), Err: err}
				if awsx.IsAccessDenied(err) {
					e.Hint = "the role needs ecr:DescribeImageSigningStatus on the repository, which setup grants with a signing profile"
				}
				return e
			}
			sig = &Signature{}
			pending := false
			for _, st := range out.SigningStatuses {
				profile := aws.ToString(st.SigningProfileArn)
				switch st.Status {
				case ecrtypes.SigningStatusComplete:
					sig.Signed = true
					sig.Profiles = append(sig.Profiles, profile)
				case ecrtypes.SigningStatusInProgress:
					pending = true
					sig.Problems = append(sig.Problems, profile+": IN_PROGRESS")
				default:
					sig.Problems = append(sig.Problems, fmt.Sprintf("%s: %s (%s: %s)", profile, st.Status, aws.ToString(st.FailureCode), aws.ToString(st.FailureReason)))
				}
			}
			if pending && !sig.Signed {
				return errSigning
			}
			return nil
		})
		var still *awsx.StillPending
		switch {
		case errors.As(err, &still), errors.Is(err, errSigning):
		case err != nil:
			return err
		}
		if sig == nil {
			sig = &Signature{}
		}
		r.Signature = sig
	}
	return nil
}
