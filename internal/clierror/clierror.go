// Package clierror maps errors to the exit codes users and CI scripts rely on:
// 0 success, 1 a failure while working, 2 bad usage or invalid input.
package clierror

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerise/containerise/internal/hint"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	// ExitCancelled follows the shell convention for SIGINT (128+2).
	ExitCancelled = 130
)

// UsageError marks an error caused by the invocation itself (a bad flag, an
// invalid name, a missing variable): it is reported before any API call.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Explain words the wrapped error's ways forward, as hint.Message does.
func (e *UsageError) Explain(words hint.Words) string { return hint.Message(e.Err, words) }

// Usagef builds a UsageError. Messages name the flag or variable and the rule.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// AsUsage wraps err as a usage error (nil stays nil).
func AsUsage(err error) error {
	if err == nil {
		return nil
	}
	var u *UsageError
	if errors.As(err, &u) {
		return err
	}
	return &UsageError{Err: err}
}

// Code returns the process exit code for err.
func Code(err error) int {
	var u *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitCancelled
	default:
		return ExitFailure
	}
}
