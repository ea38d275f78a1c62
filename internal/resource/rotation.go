package resource

// A key rotation into CircleCI, and how a half-failed one converges.
//
// CircleCI holds the key in two variables: its ID (I) and its secret (S).
// A job signs in with the key I names, so "CircleCI uses key K" means I
// names K; S alone decides nothing. Setup writes S, then I, and reads both
// back. After any failed write it reads back before deciding anything: a
// project shows each value's last four characters, a context only when
// each variable was last updated.
//
// Old key O (still active), new key N (made by this run):
//
//	S not landed (refused, or read back as another value) -> N deleted
//	    (CircleCI cannot hold its secret); O still works.
//	S landed, its answer lost -> carry on and write I.
//	S landed or unknown, I not landed -> both kept, never N deleted while
//	    S may hold its secret; the error says CircleCI pairs O's ID with
//	    N's secret (or may), and that a rerun finishes.
//	I landed, read-back failed -> both kept; I names N.
//
// A rerun of --rotate-key that finds two keys keeps the one I names and
// deletes the other first: no job can sign in with a key I does not name,
// and AWS allows two keys. Its secret is unknown to this run, so it cannot
// be re-sent; instead a fresh key is made, S and I written and read back,
// and the key I named is retired as in any rotation. CircleCI then holds a
// matching pair, IAM one key. When it cannot be told which key I names
// (both or neither match, or a context's times do not tell), setup refuses
// and says why.

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/names"
)

// Delivery is what is known of one write of a new key's variable.
type Delivery int

const (
	// NotWritten: not attempted, or CircleCI provably does not hold it.
	NotWritten Delivery = iota
	// Written: CircleCI answered the write, or shows it written.
	Written
	// MaybeWritten: the write's answer was lost and the read-back could
	// not tell: CircleCI may hold it.
	MaybeWritten
)

// clockSkew is how far CircleCI's and AWS's clocks may disagree when
// a context variable's update time is compared with a key's creation.
const clockSkew = time.Minute

// KeyDelivery says what CircleCI holds of the key this run made: its
// secret and its ID; attempted is false when no key write began.
func (c *CircleCIVariables) KeyDelivery() (secret, id Delivery, attempted bool) {
	return c.secretState, c.idState, c.keyAttempted
}

// landed tells, after a write of name failed with err, whether CircleCI
// holds value all the same (its answer was lost). A refusal is believed:
// CircleCI answered that it did nothing. Otherwise read back: a project's
// last four characters must match; a context's variable must be new, or
// updated since it was last read (prev, when it existed). known is false
// when the read-back failed too.
func (c *CircleCIVariables) landed(ctx context.Context, name, value string, prev time.Time, existed bool, err error) (held, known bool) {
	kind, ok := circleci.KindOf(err)
	if !ok {
		return false, true // refused before any request (an invalid name)
	}
	switch kind {
	case circleci.KindUnauthorized, circleci.KindForbidden, circleci.KindNotFound, circleci.KindRejected, circleci.KindRateLimited:
		return false, true
	}
	if rerr := c.readVariables(ctx); rerr != nil {
		return false, false
	}
	shown, ok := c.shown[name]
	if !ok {
		return false, true
	}
	if c.Target.Project != "" {
		return circleci.CompareMasked(value, shown) != circleci.MaskDiffers, true
	}
	return !existed || c.updated[name].After(prev), true
}

// NamedKey tells which of the user's keys CircleCI's key ID variable
// names, from what CircleCI shows; "" and the reason when it cannot be
// told. keys are sorted oldest first.
func (c *CircleCIVariables) NamedKey(keys []iamtypes.AccessKeyMetadata) (string, string) {
	idName, secretName := names.EnvAccessKeyID, names.EnvSecretAccessKey
	shown, ok := c.shown[idName]
	if !ok {
		return "", fmt.Sprintf("CircleCI %s holds no %s", c.report.Name, idName)
	}
	if c.Target.Project != "" {
		var match []string
		for _, k := range keys {
			if id := aws.ToString(k.AccessKeyId); circleci.CompareMasked(id, shown) == circleci.MaskMatches {
				match = append(match, id)
			}
		}
		switch len(match) {
		case 1:
			return match[0], ""
		case 0:
			return "", fmt.Sprintf("CircleCI %s's %s (shown as %s) names none of them", c.report.Name, idName, shown)
		default:
			return "", fmt.Sprintf("CircleCI %s's %s (shown as %s) could name any of them", c.report.Name, idName, shown)
		}
	}
	// A context shows no value, only when each variable was last updated
	// (by CircleCI's clock). Setup writes a key's ID only after the key is
	// made and its secret written: an ID updated before the secret's last
	// update, or well before the newest key was made, cannot name the
	// newest key; otherwise it does. (Misjudged only if a setup stopped
	// between making a key and writing its secret, within a minute of an
	// earlier setup's writes.)
	if len(keys) != 2 {
		return "", fmt.Sprintf("CircleCI shows no value of a context's variables, and the user has %d keys", len(keys))
	}
	older, newest := aws.ToString(keys[0].AccessKeyId), keys[1]
	idAt, secretAt := c.updated[idName], c.updated[secretName]
	_, hasSecret := c.shown[secretName]
	switch {
	case hasSecret && idAt.Before(secretAt):
		return older, ""
	case newest.CreateDate == nil:
		return "", fmt.Sprintf("CircleCI shows no value of context variables, and AWS gives no creation time for key %s", aws.ToString(newest.AccessKeyId))
	case idAt.Before(newest.CreateDate.Add(-clockSkew)):
		return older, ""
	}
	return aws.ToString(newest.AccessKeyId), ""
}
