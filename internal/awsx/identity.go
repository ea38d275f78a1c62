package awsx

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Identity is the account and partition the credentials act in.
type Identity struct {
	Account   string
	Partition string // "aws", "aws-cn", "aws-us-gov"
	ARN       string // the caller's own ARN
}

// CallerAPI is the part of *sts.Client that names the caller.
type CallerAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Caller asks STS once who the credentials belong to, however many
// goroutines need to know: the first to ask makes the call, the others wait
// for its answer.
type Caller struct {
	STS CallerAPI

	done chan struct{}
	id   Identity
	err  error
	mu   sync.Mutex
}

// Identity returns the caller's identity, asking STS on first use.
func (c *Caller) Identity(ctx context.Context) (Identity, error) {
	c.mu.Lock()
	if c.done == nil {
		c.done = make(chan struct{})
		c.mu.Unlock()
		c.id, c.err = c.ask(ctx)
		close(c.done)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-c.done:
		return c.id, c.err
	case <-ctx.Done():
		return Identity{}, ctx.Err()
	}
}

func (c *Caller) ask(ctx context.Context) (Identity, error) {
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, err
	}
	caller := aws.ToString(out.Arn)
	a, err := arn.Parse(caller)
	if err != nil {
		return Identity{}, fmt.Errorf("sts:GetCallerIdentity returned %q, which is not an ARN", caller)
	}
	return Identity{Account: aws.ToString(out.Account), Partition: a.Partition, ARN: caller}, nil
}
