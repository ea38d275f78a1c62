package push

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// RoleCredentials assumes o.RoleARN with the CI user's keys, as Run does,
// retrying for up to o.Wait while IAM does not know a fresh key or role
// yet: for what acts as the role without building (the scan gate).
func (p *Pusher) RoleCredentials(ctx context.Context, o Options) (aws.Credentials, error) {
	return p.assumeRole(ctx, o, time.Now().Add(o.Wait))
}

// RoleConfig is cfg (region, endpoint, retries, call log) signing with the
// role's temporary credentials.
func RoleConfig(cfg aws.Config, c aws.Credentials) aws.Config {
	roleCfg := cfg.Copy()
	roleCfg.Credentials = credentials.StaticCredentialsProvider{Value: c}
	return roleCfg
}
