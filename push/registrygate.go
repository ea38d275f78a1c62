package push

import (
	"context"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/moby/buildkit/session/auth"
	"google.golang.org/grpc"
)

// registryGate is the BuildKit session's credential provider: the engine's
// BuildKit asks it for credentials whenever a registry challenges it (a FROM
// image, a cache source). It answers with the ECR token for the ECR registry
// only, anonymously for every other host, and never writes anything down.
//
// The build may start before ECR has answered: then a request for the
// role's ECR registry waits for the token (or for the AWS half to fail),
// while requests for other registries are answered at once. The ECR host is
// <account>.dkr.ecr.<region>.<suffix>, so the role's account tells which
// requests to hold before ECR names the exact host.
type registryGate struct {
	auth.UnimplementedAuthServer

	// ecrPrefix is "<account>.dkr.ecr.", empty when the role ARN does not
	// parse (then nothing waits).
	ecrPrefix string
	debugf    func(format string, args ...any)

	once  sync.Once
	ready chan struct{}
	reg   registryAuth
	ok    bool
}

func newRegistryGate(roleARN string, debugf func(string, ...any)) *registryGate {
	g := &registryGate{ready: make(chan struct{}), debugf: debugf}
	if a, err := arn.Parse(roleARN); err == nil && a.AccountID != "" {
		g.ecrPrefix = a.AccountID + ".dkr.ecr."
	}
	return g
}

// open hands the gate the ECR credentials; close lets waiting requests go
// without them (the AWS half failed). Only the first call counts.
func (g *registryGate) open(reg registryAuth) {
	g.once.Do(func() { g.reg, g.ok = reg, true; close(g.ready) })
}

func (g *registryGate) close() {
	g.once.Do(func() { close(g.ready) })
}

// Register attaches the gate to a session.
func (g *registryGate) Register(server *grpc.Server) {
	auth.RegisterAuthServer(server, g)
}

// Credentials answers the engine. An empty answer means anonymous access.
func (g *registryGate) Credentials(ctx context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	host := req.GetHost()
	select {
	case <-g.ready:
	default:
		if g.ecrPrefix == "" || !strings.HasPrefix(host, g.ecrPrefix) {
			g.logf("session: the engine asked for credentials for %s: none (not the ECR registry)", host)
			return &auth.CredentialsResponse{}, nil
		}
		g.logf("session: the engine asked for credentials for %s: waiting for the ECR token", host)
		select {
		case <-g.ready:
		case <-ctx.Done():
			return &auth.CredentialsResponse{}, nil
		}
	}
	if !g.ok || host != g.reg.Host {
		g.logf("session: the engine asked for credentials for %s: none", host)
		return &auth.CredentialsResponse{}, nil
	}
	g.logf("session: the engine asked for credentials for %s: the ECR token", host)
	return &auth.CredentialsResponse{Username: g.reg.Username, Secret: g.reg.Password}, nil
}

func (g *registryGate) logf(format string, args ...any) {
	if g.debugf != nil {
		g.debugf(format, args...)
	}
}
