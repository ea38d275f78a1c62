package circleci

import "strings"

// MaskVerdict is what a masked value tells about a value.
type MaskVerdict int

const (
	// MaskDiffers: the shown value cannot be the mask of this value.
	MaskDiffers MaskVerdict = iota
	// MaskMatches: the last four characters agree. That is evidence, not
	// proof: values that differ only before their last four characters
	// look the same (us-east-1 and us-west-1 both show "xxxxst-1"). For a
	// 40-character secret a false match is a one-in-millions accident;
	// for short, structured values it is likely.
	MaskMatches
	// MaskUnverifiable: the value has four characters or fewer, so the
	// mask shows none of it (or all of it; either way the shown value
	// is consistent with it, and nothing is proven).
	MaskUnverifiable
)

func (v MaskVerdict) String() string {
	switch v {
	case MaskMatches:
		return "matches"
	case MaskUnverifiable:
		return "unverifiable"
	default:
		return "differs"
	}
}

// maskPrefix is what CircleCI puts in front of a project variable's last
// four characters when it shows the variable.
const maskPrefix = "xxxx"

// CompareMasked compares a value with what CircleCI shows of a project
// variable: "xxxx" followed by the value's last four characters. For values
// of four characters or fewer the documentation is thin (its v1.1 example
// shows a three-character value as "xxxx" alone), so this function takes
// "xxxx" or "xxxx" plus the whole value there as MaskUnverifiable, and
// anything else as MaskDiffers. Characters are counted as code points.
func CompareMasked(value, shown string) MaskVerdict {
	tail, ok := strings.CutPrefix(shown, maskPrefix)
	if !ok {
		return MaskDiffers
	}
	r := []rune(value)
	if len(r) <= 4 {
		if tail == "" || tail == value {
			return MaskUnverifiable
		}
		return MaskDiffers
	}
	if tail == string(r[len(r)-4:]) {
		return MaskMatches
	}
	return MaskDiffers
}
