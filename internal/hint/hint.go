// Package hint names the ways forward that domain packages suggest but
// cannot word: only the command layer knows the flags and commands that take
// them, so errors and notes carry a Next, and the command layer renders it.
package hint

import "strings"

// Next is a way forward a message suggests.
type Next int

// Ways forward.
const (
	None Next = iota
	// WaitLonger: allow longer for IAM to catch up (setup and push --wait).
	WaitLonger
	// AdminCredentials: run the command with an administrator's credentials
	// (another profile).
	AdminCredentials
	// RotateKey: run setup again with key rotation, naming the same
	// resources.
	RotateKey
	// IncludeUnmanaged: also delete resources containerise did not create.
	IncludeUnmanaged
	// AllowSkipExisting: rerun setup granting what push's skip of existing
	// tags needs, or push without it.
	AllowSkipExisting
	// CircleCIToken: give setup a CircleCI API token.
	CircleCIToken
	// CreateContext: let setup create the CircleCI context.
	CreateContext
	// Confirm: run the command again, confirming the changes that take away
	// or change what someone else may use.
	Confirm
	// RecreateRepository: a setting ECR fixes at creation (encryption)
	// needs a new repository, or teardown and setup again.
	RecreateRepository
	// AllowScan: rerun setup granting what the scan gate needs.
	AllowScan
)

// Words says a way forward in the command layer's words ("" for None).
type Words func(Next) string

// Explainer is an error whose message can name its way forward in the
// command layer's words. Its Error method words none.
type Explainer interface {
	Explain(Words) string
}

// Message is err's message with every way forward worded by words: an
// Explainer explains itself, the parts of a joined error are explained one
// per line, anything else is its Error.
func Message(err error, words Words) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(Explainer); ok {
		return e.Explain(words)
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range j.Unwrap() {
			if e != nil {
				parts = append(parts, Message(e, words))
			}
		}
		return strings.Join(parts, "\n")
	}
	return err.Error()
}

// Append adds the worded way forward to a hint: "rerun setup" becomes
// "rerun setup, or allow longer with --wait".
func Append(text string, next Next, words Words) string {
	if next == None || words == nil {
		return text
	}
	phrase := words(next)
	switch {
	case phrase == "":
		return text
	case text == "":
		return phrase
	default:
		return text + ", " + phrase
	}
}
