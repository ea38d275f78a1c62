package awsx

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

var notYet = &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "not yet"}

// fakeClock is a clock that moves only when slept on.
type fakeClock struct{ now time.Time }

func (c *fakeClock) waiter(bound time.Duration) Waiter {
	return Waiter{Bound: bound, First: 500 * time.Millisecond, Max: 4 * time.Second,
		Now: func() time.Time { return c.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			c.now = c.now.Add(d)
			return ctx.Err()
		}}
}

func pendingWhile(err error) Pending {
	return func(e error) (string, bool) { return "the key", errors.Is(e, err) }
}

func TestWaiterWaitsOutWhatIsPendingWithinItsBound(t *testing.T) {
	clock := &fakeClock{}
	calls := 0
	var pauses []time.Duration
	err := clock.waiter(time.Minute).Retry(context.Background(), pendingWhile(notYet), func(a Attempt) { pauses = append(pauses, a.Pause) }, func() error {
		if calls++; clock.now.Sub(time.Time{}) < 20*time.Second {
			return notYet
		}
		return nil
	})
	if err != nil || calls < 2 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	if pauses[0] != 500*time.Millisecond || pauses[len(pauses)-1] > 4*time.Second {
		t.Errorf("pauses %v: want doubling from 500ms, at most 4s", pauses)
	}
}

func TestWaiterGivesUpAtItsBoundAndSaysWhy(t *testing.T) {
	clock := &fakeClock{}
	err := clock.waiter(10*time.Second).Retry(context.Background(), pendingWhile(notYet), nil, func() error { return notYet })
	var still *StillPending
	if !errors.As(err, &still) || !errors.Is(err, notYet) || still.Waited != 10*time.Second {
		t.Fatalf("err %v", err)
	}
	if clock.now.Sub(time.Time{}) > 10*time.Second {
		t.Errorf("waited %s, past the bound", clock.now.Sub(time.Time{}))
	}
}

func TestWaiterStopsAtOtherErrorsAndCancellation(t *testing.T) {
	other := errors.New("AccessDenied for good")
	calls := 0
	err := (&fakeClock{}).waiter(time.Minute).Retry(context.Background(), pendingWhile(notYet), nil, func() error { calls++; return other })
	if err != other || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := Waiter{Bound: time.Hour, First: time.Hour}
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := w.Retry(ctx, pendingWhile(notYet), nil, func() error { return notYet }); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}
	if err := (Waiter{}).Retry(context.Background(), pendingWhile(notYet), nil, func() error { return notYet }); err != notYet {
		t.Fatalf("no bound means one attempt: %v", err)
	}
}

type fakeCaller struct {
	calls int
	arn   string
}

func (f *fakeCaller) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	f.calls++
	return &sts.GetCallerIdentityOutput{Account: aws.String("123456789012"), Arn: aws.String(f.arn)}, nil
}

func TestCallerAsksOnceAndTakesThePartitionFromTheARN(t *testing.T) {
	f := &fakeCaller{arn: "arn:aws-cn:iam::123456789012:user/admin"}
	c := &Caller{STS: f}
	for range 3 {
		id, err := c.Identity(context.Background())
		if err != nil || id.Partition != "aws-cn" || id.Account != "123456789012" {
			t.Fatalf("identity %+v, %v", id, err)
		}
	}
	if f.calls != 1 {
		t.Errorf("%d calls, want 1", f.calls)
	}
	if _, err := (&Caller{STS: &fakeCaller{arn: "not-an-arn"}}).Identity(context.Background()); err == nil {
		t.Error("a caller ARN that does not parse was accepted")
	}
}

func TestPagesReadsEveryPage(t *testing.T) {
	pages := [][]int{{1, 2}, {3}, {4, 5}}
	i := 0
	var got []int
	err := Pages(context.Background(), func() bool { return i < len(pages) },
		func(context.Context, ...func(*struct{})) ([]int, error) { i++; return pages[i-1], nil },
		func(p []int) { got = append(got, p...) })
	if err != nil || len(got) != 5 {
		t.Fatalf("%v, %v", got, err)
	}
}
