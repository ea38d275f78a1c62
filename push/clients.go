package push

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/docker/docker/client"
)

// New wires a Pusher to AWS and the engine: STS signs with the CI user's
// static keys (keyless, without them, an empty accessKeyID: the OIDC token
// is the credential and its call is unsigned), ECR with the role's
// temporary credentials; both keep cfg's region, endpoint
// (AWS_ENDPOINT_URL), retries and call log. The caller sets the output
// fields.
func New(cfg aws.Config, accessKeyID, secretAccessKey string, engine *client.Client) *Pusher {
	userCfg := cfg.Copy()
	userCfg.Credentials = credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, "")
	if accessKeyID == "" {
		// Nothing from the environment's credential chain is needed, or sent.
		userCfg.Credentials = aws.AnonymousCredentials{}
	}
	return &Pusher{
		STS: sts.NewFromConfig(userCfg),
		NewECR: func(c aws.Credentials) ecrAPI {
			return ecr.NewFromConfig(RoleConfig(cfg, c))
		},
		Engine: engine,
	}
}
