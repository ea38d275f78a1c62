package bkdaemon

import (
	"context"
	"fmt"

	bkclient "github.com/moby/buildkit/client"
)

// Remote is a BuildKit daemon the user runs (buildkitd on a host or in
// Kubernetes), reached at Addr: unix:///path or tcp://host:port, the latter
// with TLS when any of CA, Cert and Key is set (mutual TLS with Cert and
// Key). Addr and the files are checked by the caller before any call.
type Remote struct {
	Addr string
	// From says where Addr came from (--buildkit-host or BUILDKIT_HOST).
	From string
	// CA verifies the daemon's certificate (default: the system's CAs);
	// Cert and Key are this client's.
	CA, Cert, Key string
}

func (r *Remote) String() string {
	return fmt.Sprintf("the BuildKit daemon at %s (%s)", r.Addr, r.From)
}

// Connect dials the daemon and asks for its workers: a daemon that is not
// there fails here, before anything else is asked of anyone.
func (r *Remote) Connect(ctx context.Context) (*Conn, error) {
	var opts []bkclient.ClientOpt
	if r.CA != "" || r.Cert != "" || r.Key != "" {
		if r.CA != "" {
			opts = append(opts, bkclient.WithServerConfig("", r.CA))
		} else {
			opts = append(opts, bkclient.WithServerConfigSystem(""))
		}
		if r.Cert != "" {
			opts = append(opts, bkclient.WithCredentials(r.Cert, r.Key))
		}
	}
	c, err := bkclient.New(ctx, r.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %v", r, err)
	}
	conn, err := connect(ctx, c, readyWait)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach %s: %s; check that buildkitd runs there and listens on that address (and, over tcp, that --buildkit-ca, --buildkit-cert and --buildkit-key match its TLS)", r, reason(err))
	}
	return conn, nil
}
