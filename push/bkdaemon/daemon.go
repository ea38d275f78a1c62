// Package bkdaemon reaches a standalone BuildKit daemon for push: one the
// user runs (Remote, a shared BuildKit service) or one push runs as a
// container on the job's Docker engine (Container). Both hand out a
// BuildKit client; the build code never knows which kind it got, as with
// buildx's drivers.
package bkdaemon

import (
	"context"
	"errors"
	"time"

	"github.com/containerd/platforms"
	bkclient "github.com/moby/buildkit/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Daemon is a BuildKit daemon push can build on.
type Daemon interface {
	// Connect reaches the daemon (starting it first if it is push's own)
	// and returns a client that answered.
	Connect(ctx context.Context) (*Conn, error)
	// String names the daemon for messages: which builder, where, and
	// where its address came from.
	String() string
}

// Conn is a client of a daemon that answered, with what it said about
// itself.
type Conn struct {
	*bkclient.Client
	// Platforms are those the daemon's workers run natively (or through
	// emulation it has).
	Platforms []string
}

// readyWait bounds the wait for a daemon to answer its first call.
const readyWait = 20 * time.Second

// connect asks the daemon for its workers, which proves it answers, and
// keeps their platforms.
func connect(ctx context.Context, c *bkclient.Client, wait time.Duration) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	workers, err := c.ListWorkers(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	if len(workers) == 0 {
		c.Close()
		return nil, errors.New("it has no worker to build with")
	}
	conn := &Conn{Client: c}
	seen := map[string]bool{}
	for _, w := range workers {
		for _, p := range w.Platforms {
			s := platforms.Format(platforms.Normalize(p))
			if !seen[s] {
				seen[s] = true
				conn.Platforms = append(conn.Platforms, s)
			}
		}
	}
	return conn, nil
}

// Unreachable says whether err means the daemon could not be reached or
// went away (rather than refused a request).
func Unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if s, ok := status.FromError(err); ok {
		return s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded
	}
	return false
}

// reason is err's message without gRPC's code prefix.
func reason(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}
