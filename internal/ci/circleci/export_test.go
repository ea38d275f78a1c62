package circleci

import (
	"context"
	"time"
)

// SetSleep replaces the wait between attempts, so tests can record the waits
// asked for instead of waiting.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }
