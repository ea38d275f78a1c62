package resource

import (
	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
)

// Error is a failed call on a resource: what was being done, the call, and
// why (the SDK's error, still reachable with errors.As). Hint says what to
// do next in words with no flag in them; the command's package fills it in
// when the resource itself has nothing better to say. Next is a way forward
// the command layer words.
type Error struct {
	Kind, Name string // the resource: "role", "containerise"
	Doing      string // "creating role containerise"
	Call       string // "iam:CreateRole"
	Err        error
	Hint       string
	Next       hint.Next
}

func (e *Error) Error() string { return e.Explain(nil) }

// Explain is the message with the way forward worded by words.
func (e *Error) Explain(words hint.Words) string {
	msg := e.Doing + ": " + awsx.Describe(e.Err)
	if h := hint.Append(e.Hint, e.Next, words); h != "" {
		msg += " (" + h + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// fail wraps the error of a call made for a resource; nil stays nil, and an
// *Error stays as it is.
func fail(kind, name, doing, call string, err error) error {
	if err == nil {
		return nil
	}
	if already, ok := err.(*Error); ok {
		return already
	}
	return &Error{Kind: kind, Name: name, Doing: doing, Call: call, Err: err}
}
