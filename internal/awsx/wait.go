package awsx

import (
	"context"
	"fmt"
	"time"
)

// Waiter waits out IAM's eventual consistency: a user created seconds ago
// refused as a role's principal, a fresh access key or role unknown to STS,
// a DeleteConflict for a detachment IAM has not caught up with. It retries
// one call, with backoff, while the call fails in a way the caller names as
// "not yet", for at most Bound; every wait is cancellable. Throttling and
// server errors are not its business: the SDK's retryer handles those.
type Waiter struct {
	// Bound is how long to keep trying; zero means a single attempt.
	Bound time.Duration
	// First is the first pause; pauses double up to Max.
	First, Max time.Duration
	// Pause, when set, gives the pause before retry n (from 1) instead.
	Pause func(n int) time.Duration
	// Now and Sleep stand in for the clock in tests; nil means real time.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Attempt describes a refused attempt, for the caller to say what it waits
// for.
type Attempt struct {
	N       int           // the attempt that was refused, from 1
	Err     error         // its error
	Awaited string        // what is awaited, as Pending named it
	Pause   time.Duration // the pause before the next attempt
	Left    time.Duration // how much of the bound is left
}

// Pending says whether err means "not yet" and, if so, what is awaited.
type Pending func(err error) (awaited string, ok bool)

// StillPending is the error of a call that was still refused as "not yet"
// when the bound ran out. It unwraps to the last refusal.
type StillPending struct {
	Err     error
	Awaited string
	Waited  time.Duration
}

func (e *StillPending) Error() string {
	return fmt.Sprintf("%s (still waiting for %s after %s)", Describe(e.Err), e.Awaited, e.Waited.Round(time.Second))
}

func (e *StillPending) Unwrap() error { return e.Err }

func (w Waiter) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w Waiter) sleep(ctx context.Context, d time.Duration) error {
	if w.Sleep != nil {
		return w.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry calls call until it succeeds, fails in a way pending does not
// recognise (that error is returned as it is), the context ends, or the
// bound runs out (a *StillPending is returned). Before each pause it tells
// say, when not nil.
func (w Waiter) Retry(ctx context.Context, pending Pending, say func(Attempt), call func() error) error {
	start := w.now()
	pause := max(w.First, time.Millisecond)
	for n := 1; ; n++ {
		err := call()
		if err == nil {
			return nil
		}
		awaited, ok := pending(err)
		if !ok || ctx.Err() != nil {
			return err
		}
		left := w.Bound - w.now().Sub(start)
		if left <= 0 {
			if w.Bound <= 0 {
				return err
			}
			return &StillPending{Err: err, Awaited: awaited, Waited: w.Bound}
		}
		if w.Pause != nil {
			pause = w.Pause(n)
		}
		d := min(pause, left)
		if say != nil {
			say(Attempt{N: n, Err: err, Awaited: awaited, Pause: d, Left: left})
		}
		if err := w.sleep(ctx, d); err != nil {
			return err
		}
		if w.Max > 0 {
			pause = min(2*pause, w.Max)
		} else {
			pause *= 2
		}
	}
}
