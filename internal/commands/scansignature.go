package commands

import (
	"fmt"
	"io"
	"strings"

	"github.com/containerise/containerise/internal/scan"
)

// scanSignatureJSON is an image's managed signing status in scan's JSON.
type scanSignatureJSON struct {
	Signed   bool     `json:"signed"`
	Profiles []string `json:"profiles"` // the profiles that signed it
	Problems []string `json:"problems"` // why other profiles did not
}

// renderSignature writes the signing line of a result that has one.
func renderSignature(w io.Writer, r *scan.Result) {
	sig := r.Signature
	if sig == nil {
		return
	}
	if sig.Signed {
		fmt.Fprintf(w, "signed by %s\n", strings.Join(sig.Profiles, ", "))
		return
	}
	fmt.Fprintln(w, "NOT SIGNED"+problems(sig))
}

func problems(sig *scan.Signature) string {
	if sig == nil || len(sig.Problems) == 0 {
		return ""
	}
	return " (" + strings.Join(sig.Problems, "; ") + ")"
}

// unsignedText is the gate's failure for an image without a signature.
func unsignedText(ref string, sig *scan.Signature) string {
	why := "no signing rule of the registry covers its repository, or the image was pushed before one did"
	if sig != nil && len(sig.Problems) > 0 {
		why = strings.TrimPrefix(problems(sig), " ")
	}
	return fmt.Sprintf("%s is not signed, and --require-signature asks for a signature: %s; set up signing with containerise setup --signing-profile ARN, then push again", ref, why)
}
