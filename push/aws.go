package push

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/docker/docker/api/types/registry"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
)

// stsAPI is the part of *sts.Client a push uses.
type stsAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error)
}

// ecrAPI is the part of *ecr.Client a push uses.
type ecrAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
}

// iamWaits maps the error codes that mean "IAM does not know this yet" to
// what we wait for, per call.
var (
	stsWaits = map[string]string{
		"InvalidClientTokenId": "IAM to accept the new access key",
		"AccessDenied":         "IAM to let the user assume the role",
	}
	ecrWaits = map[string]string{
		"AccessDeniedException":       "IAM to grant the role its ECR policy",
		"UnrecognizedClientException": "AWS to accept the role's new session",
	}
)

// byCode waits while the error's code is in waits.
func byCode(waits map[string]string) awsx.Pending {
	return func(err error) (string, bool) {
		what, ok := waits[awsx.ErrorCode(err)]
		return what, ok
	}
}

// trustRetries bounds how often a web-identity AccessDenied is retried. IAM
// takes a few seconds to apply a new trust (1+2+4+5 s of default pauses
// cover it); a refusal that outlasts that is the trust itself saying no (a
// role set up for keys, another project or branch), and --wait must not be
// spent on it.
const trustRetries = 4

// webIdentityWaits: right after a keyless setup, STS may not know the new
// OIDC provider yet (InvalidIdentityToken "No OpenIDConnect provider
// found"), nor the role's new trust (AccessDenied, for a few retries). Any
// other InvalidIdentityToken is the token's own fault and final. job names
// the CI whose job it is.
func webIdentityWaits(job string) awsx.Pending {
	denied := 0
	return func(err error) (string, bool) {
		switch {
		case awsx.ErrorCode(err) == "AccessDenied":
			denied++
			return "IAM to let the " + job + " job assume the role", denied <= trustRetries
		case awsx.ErrorCode(err) == "InvalidIdentityToken" && strings.Contains(awsx.Describe(err), "No OpenIDConnect provider found"):
			return "IAM to know the new OIDC provider", true
		}
		return "", false
	}
}

// retryIAM calls call until it succeeds, fails with an error pending does
// not recognise, or the deadline passes, saying on stderr what it waits for.
func (p *Pusher) retryIAM(ctx context.Context, deadline time.Time, pending awsx.Pending, call func() error) error {
	w := awsx.Waiter{Bound: time.Until(deadline), First: time.Second, Max: 5 * time.Second, Pause: p.Backoff}
	err := w.Retry(ctx, pending, func(a awsx.Attempt) {
		p.logf("waiting for %s (%s); retrying in %s, for up to %s more", a.Awaited, awsx.ErrorCode(a.Err),
			a.Pause.Round(time.Millisecond), a.Left.Round(time.Second))
	}, call)
	var still *awsx.StillPending
	if errors.As(err, &still) {
		return still.Err
	}
	return err
}

// assumeRole returns the role's temporary credentials, assumed with the CI
// user's keys or, keyless, with the job's OIDC token.
func (p *Pusher) assumeRole(ctx context.Context, o Options, deadline time.Time) (aws.Credentials, error) {
	if o.WebIdentity != nil {
		return p.assumeRoleWithWebIdentity(ctx, o, deadline)
	}
	p.logf("assuming %s as session %s", o.RoleARN, o.SessionName)
	start := time.Now()
	var out *sts.AssumeRoleOutput
	err := p.retryIAM(ctx, deadline, byCode(stsWaits), func() error {
		var err error
		out, err = p.STS.AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn:         aws.String(o.RoleARN),
			RoleSessionName: aws.String(o.SessionName),
		})
		return err
	})
	if err != nil {
		return aws.Credentials{}, assumeRoleError(err, o, time.Since(start))
	}
	return p.roleCredentials(o, out.Credentials, out.AssumedRoleUser, "sts.AssumeRole")
}

// roleCredentials turns STS's answer into the credentials ECR signs with.
func (p *Pusher) roleCredentials(o Options, c *ststypes.Credentials, u *ststypes.AssumedRoleUser, op string) (aws.Credentials, error) {
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil {
		return aws.Credentials{}, fmt.Errorf("assuming %s: STS returned no credentials", o.RoleARN)
	}
	creds := aws.Credentials{
		AccessKeyID:     aws.ToString(c.AccessKeyId),
		SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken:    aws.ToString(c.SessionToken),
		Source:          "containerise push: " + op,
	}
	if c.Expiration != nil {
		creds.CanExpire, creds.Expires = true, *c.Expiration
	}
	if u != nil {
		p.debugf("sts: assumed %s", aws.ToString(u.Arn))
	}
	return creds, nil
}

// assumeRoleWithWebIdentity exchanges the job's OIDC token for the role's
// credentials. The call is unsigned: the token is the credential, and it
// goes to STS only.
func (p *Pusher) assumeRoleWithWebIdentity(ctx context.Context, o Options, deadline time.Time) (aws.Credentials, error) {
	id := o.WebIdentity
	p.logf("assuming %s as session %s with %s", o.RoleARN, o.SessionName, id)
	p.debugf("oidc: token issued by %s for %s, expires %s", id.Claims.Issuer, id.Claims.Subject, id.Claims.Expires.UTC().Format(time.RFC3339))
	start := time.Now()
	var out *sts.AssumeRoleWithWebIdentityOutput
	err := p.retryIAM(ctx, deadline, webIdentityWaits(id.CI.Title()), func() error {
		var err error
		out, err = p.STS.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn:          aws.String(o.RoleARN),
			RoleSessionName:  aws.String(o.SessionName),
			WebIdentityToken: aws.String(id.Raw),
		})
		return err
	})
	if err != nil {
		return aws.Credentials{}, webIdentityError(err, o, time.Since(start))
	}
	return p.roleCredentials(o, out.Credentials, out.AssumedRoleUser, "sts.AssumeRoleWithWebIdentity")
}

func assumeRoleError(err error, o Options, waited time.Duration) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := &Error{Err: err, Doing: "assuming " + o.RoleARN}
	switch awsx.ErrorCode(err) {
	case "InvalidClientTokenId":
		e.Why = "AWS does not know the access key in AWS_IAM_USER_ACCESS_KEY_ID: it is mistyped, deleted or deactivated, or too new"
		e.Hint, e.Next = "rerun setup to issue a fresh key", hint.WaitLonger
	case "SignatureDoesNotMatch":
		e.Why = "AWS_IAM_USER_SECRET_ACCESS_KEY does not belong to AWS_IAM_USER_ACCESS_KEY_ID"
		e.Hint = "copy both again from setup's output"
	case "AccessDenied":
		e.Why = "the user may not assume this role: its trust policy must name the CI user, or IAM has not caught up yet"
		e.Hint, e.Next = "rerun setup", hint.WaitLonger
	default:
		return e
	}
	if waited >= time.Second {
		e.After = fmt.Sprintf("still refused after %s", waited.Round(time.Second))
	}
	return e
}

// Error is a failed push step: what was done, AWS's error, why that
// happens, and what to do next; Next is a way forward the command words.
type Error = awsx.Failure

// registryAuth is what the engine needs to push to the ECR registry.
type registryAuth struct {
	Host     string // <account>.dkr.ecr.<region>.amazonaws.com
	Username string
	Password string
	// Encoded is the X-Registry-Auth value.
	Encoded string
}

func (r registryAuth) ref(repository, tag string) string {
	return r.Host + "/" + repository + ":" + tag
}

// registryLogin gets an ECR authorization token with the role's credentials.
// The registry host comes from proxyEndpoint, as in the blog.
func (p *Pusher) registryLogin(ctx context.Context, client ecrAPI, deadline time.Time) (registryAuth, error) {
	var out *ecr.GetAuthorizationTokenOutput
	err := p.retryIAM(ctx, deadline, byCode(ecrWaits), func() error {
		var err error
		out, err = client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
		return err
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return registryAuth{}, err
		}
		msg := fmt.Sprintf("getting an ECR authorization token: %s", awsx.Describe(err))
		if awsx.ErrorCode(err) == "AccessDeniedException" {
			msg += " (the role's policy must allow ecr:GetAuthorizationToken on \"*\": rerun setup)"
		}
		return registryAuth{}, errors.New(msg)
	}
	if len(out.AuthorizationData) == 0 {
		return registryAuth{}, errors.New("getting an ECR authorization token: ECR returned no authorization data")
	}
	data := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(data.AuthorizationToken))
	if err != nil {
		return registryAuth{}, errors.New("getting an ECR authorization token: the token is not base64")
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || password == "" {
		return registryAuth{}, errors.New("getting an ECR authorization token: the token is not user:password")
	}
	host := aws.ToString(data.ProxyEndpoint)
	if _, rest, found := strings.Cut(host, "://"); found {
		host = rest
	}
	host = strings.TrimRight(host, "/")
	if host == "" {
		return registryAuth{}, errors.New("getting an ECR authorization token: ECR returned no proxy endpoint")
	}
	encoded, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: user, Password: password, ServerAddress: host})
	if err != nil {
		return registryAuth{}, fmt.Errorf("encoding the registry credentials: %w", err)
	}
	if data.ExpiresAt != nil {
		p.logf("got an ECR token for %s, valid until %s", host, data.ExpiresAt.UTC().Format(time.RFC3339))
	} else {
		p.logf("got an ECR token for %s", host)
	}
	return registryAuth{Host: host, Username: user, Password: password, Encoded: encoded}, nil
}

// existingTags returns the digests of the tags that already exist in the
// repository. It asks per tag, since ECR fails a whole DescribeImages call
// when one of the listed images is missing.
func (p *Pusher) existingTags(ctx context.Context, client ecrAPI, repository string, tags []string) (map[string]string, error) {
	found := map[string]string{}
	for _, tag := range tags {
		out, err := client.DescribeImages(ctx, &ecr.DescribeImagesInput{
			RepositoryName: aws.String(repository),
			ImageIds:       []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
		})
		var notFound *ecrtypes.ImageNotFoundException
		var noRepo *ecrtypes.RepositoryNotFoundException
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			return nil, err
		case errors.As(err, &notFound):
			continue
		case errors.As(err, &noRepo):
			return nil, fmt.Errorf("checking for existing tags: repository %s does not exist: %s (run setup first)", repository, awsx.Describe(err))
		case awsx.IsAccessDenied(err):
			return nil, &Error{Doing: "checking for existing tags", Err: err,
				Why: "skipping the tags that exist needs ecr:DescribeImages, which the role's policy grants only when setup was asked to", Next: hint.AllowSkipExisting}
		default:
			return nil, fmt.Errorf("checking for existing tags: %s", awsx.Describe(err))
		}
		for _, d := range out.ImageDetails {
			if digest := aws.ToString(d.ImageDigest); digest != "" {
				found[tag] = digest
				break
			}
		}
	}
	return found, nil
}
