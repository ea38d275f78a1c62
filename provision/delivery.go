package provision

import (
	"fmt"

	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/resource"
)

// heldAfterFailure says truthfully what CircleCI holds after a run that
// wrote some of a new key's variables and then failed (see
// internal/resource/rotation.go), and which key ID it holds ("" when
// unknown). It returns "" when nothing of the new key was written.
// newKey is the key this run made, oldKey the one it replaces ("" for a
// first key).
func (s *Setup) heldAfterFailure(newKey, oldKey string) (text, heldID string) {
	secret, id, attempted := s.ci.KeyDelivery()
	if !attempted {
		return "", oldKey
	}
	where := "CircleCI " + s.ci.Reports()[0].Name
	before := "no key"
	if oldKey != "" {
		before = "old key " + oldKey
	}
	switch {
	case secret == resource.NotWritten:
		return fmt.Sprintf("%s still holds %s: nothing of new key %s reached it, so that key was deleted again", where, before, newKey), oldKey
	case id == resource.Written:
		text := fmt.Sprintf("%s holds new key %s: it answered both of its writes, but reading them back did not confirm them", where, newKey)
		if oldKey != "" {
			text += fmt.Sprintf("; old key %s stays: once CI works with the new key, delete it (%s), or rerun the rotation",
				oldKey, resource.DeleteKeyCommand(s.o.User, oldKey))
		}
		return text, newKey
	case id == resource.MaybeWritten:
		return fmt.Sprintf("%s holds the secret of new key %s and may hold its ID (the write's answer was lost, and so was the read-back); "+
			"both keys stay until a rerun of the rotation finishes", where, newKey), ""
	case secret == resource.Written && oldKey != "":
		return fmt.Sprintf("%s holds the ID of old key %s with the secret of new key %s: that pair cannot sign in, so CI jobs fail until a rerun of the rotation finishes; "+
			"both keys stay", where, oldKey, newKey), oldKey
	case secret == resource.Written:
		return fmt.Sprintf("%s holds the secret of new key %s but not its ID, so CI jobs cannot sign in until a rerun of the rotation finishes; the key stays", where, newKey), ""
	default: // the secret may have been written
		return fmt.Sprintf("%s may hold the secret of new key %s beside the ID of %s (the write's answer was lost, and so was the read-back): "+
			"CI jobs may fail to sign in until a rerun of the rotation finishes; no key was deleted", where, newKey, before), oldKey
	}
}

// noteHeld adds what CircleCI holds after a failure to the result.
func (s *Setup) noteHeld(text, heldID string) {
	res := s.res
	res.CircleCIHolds = text
	res.Variables.AccessKeyID = heldID
	res.Notes = append(res.Notes, resource.Note{Text: text, Next: hint.RotateKey})
}
