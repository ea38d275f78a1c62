// Package awsx holds what every AWS caller of containerise shares: the SDK
// configuration (loaded the way users expect from the AWS CLI, with one
// retryer for throttling and server errors), the call log and counter, the
// classification of AWS errors, paging, the caller's identity, and the one
// bounded wait for IAM's eventual consistency.
package awsx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
)

// DefaultRegion is the blog's region, used when neither the flag nor the SDK
// chain names one.
const DefaultRegion = "us-east-1"

// ResponseTimeout bounds how long one attempt waits for AWS to start answering.
const ResponseTimeout = 30 * time.Second

// Options select the profile and region and where to log calls.
type Options struct {
	Region  string // --region; empty means the SDK chain, then DefaultRegion
	Profile string // --profile; empty means AWS_PROFILE or the default profile
	// Log receives one line per API call (service, operation, time, outcome)
	// when non-nil. Request and response bodies are never logged, so no
	// secret reaches it.
	Log io.Writer
	// ResponseTimeout overrides the default ResponseTimeout when non-zero.
	ResponseTimeout time.Duration
}

func (o Options) responseTimeout() time.Duration {
	if o.ResponseTimeout > 0 {
		return o.ResponseTimeout
	}
	return ResponseTimeout
}

// Load returns an aws.Config with retries suited to unattended CI runs:
// throttling, 5xx and connection errors back off and retry.
func Load(ctx context.Context, opts Options, counter *CallCounter) (aws.Config, error) {
	loadOpts := []func(*config.LoadOptions) error{
		// An endpoint that accepts a request but never answers must not
		// hang an unattended CI job: each attempt gets a deadline for the
		// response, then the retryer tries again or reports it.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = opts.responseTimeout()
		})),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 8
				o.MaxBackoff = 10 * time.Second
			})
		}),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(opts.Profile))
	}
	if opts.Log == nil {
		// Without --verbose the SDK's own warnings (an IMDS fallback, say)
		// would reach stderr unasked; errors still come back as errors.
		loadOpts = append(loadOpts, config.WithLogger(logging.Nop{}))
	} else {
		loadOpts = append(loadOpts,
			config.WithLogger(logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
				line := fmt.Sprintf(format, v...)
				// Final errors are already on the call's own line; keep
				// only the retries, which that line does not show.
				if strings.HasPrefix(line, "request failed with unretryable error") {
					return
				}
				fmt.Fprintf(opts.Log, "aws: %s\n", line)
			})),
			config.WithClientLogMode(aws.LogRetries),
		)
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if counter != nil || opts.Log != nil {
		cfg.APIOptions = append(cfg.APIOptions, callLogger(opts.Log, counter))
	}
	return cfg, nil
}

// CallCounter counts API operations (not retry attempts) so that commands can
// report how many calls, and how many mutating ones, they made.
type CallCounter struct {
	total, mutating atomic.Int64
}

// Total is the number of operations called.
func (c *CallCounter) Total() int64 { return c.total.Load() }

// Mutating is the number of operations that change state.
func (c *CallCounter) Mutating() int64 { return c.mutating.Load() }

func (c *CallCounter) add(op string) {
	c.total.Add(1)
	if IsMutating(op) {
		c.mutating.Add(1)
	}
}

// IsMutating reports whether an operation name changes state in AWS.
func IsMutating(operation string) bool {
	if i := strings.LastIndexByte(operation, '.'); i >= 0 {
		operation = operation[i+1:]
	}
	for _, read := range []string{"Get", "List", "Describe", "BatchGet", "BatchCheck", "AssumeRole"} {
		if strings.HasPrefix(operation, read) {
			return false
		}
	}
	return true
}

func callLogger(log io.Writer, counter *CallCounter) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("containerise/calllog",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				op := strings.ToLower(awsmiddleware.GetServiceID(ctx)) + "." + awsmiddleware.GetOperationName(ctx)
				if counter != nil {
					counter.add(op)
				}
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				if log != nil {
					outcome := "ok"
					if err != nil {
						outcome = ErrorCode(err)
					}
					fmt.Fprintf(log, "aws: %s %s %s\n", op, time.Since(start).Round(time.Millisecond), outcome)
				}
				return out, md, err
			}), middleware.After)
	}
}
