package teardown

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the plan for people: one line per resource, then its
// steps.
func (p *Plan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Teardown plan (account %s):\n", p.Account)
	for _, r := range p.Resources {
		fmt.Fprintf(w, "  %s %s: %s\n", r.Kind, r.Name, r.planText())
		for _, s := range r.Steps {
			fmt.Fprintf(w, "      - %s\n", s.Action)
		}
	}
}

func (r *Resource) planText() string {
	var text string
	switch r.State {
	case StateGone:
		return "already gone"
	case StateUnmanaged:
		text = "left alone: " + r.Reason
	case StateBlocked:
		text = "blocked: " + r.Reason
	case StateDelete:
		text = "delete"
		if r.Managed != nil && !*r.Managed {
			text += " (not managed by containerise; included by --include-unmanaged)"
		}
	}
	if r.Images != nil && r.State != StateDelete {
		text += fmt.Sprintf(" [holds %s]", images(*r.Images))
	}
	return text
}

// WriteResults writes one line per resource with what Apply did, after a
// blank line that separates them from the plan.
func (p *Plan) WriteResults(w io.Writer) {
	fmt.Fprintln(w)
	for _, r := range p.Resources {
		fmt.Fprintf(w, "%s %s: %s\n", r.Kind, r.Name, r.resultText())
	}
}

func (r *Resource) resultText() string {
	switch r.Outcome {
	case OutcomeDeleted:
		if r.Images != nil && *r.Images > 0 {
			return "deleted, with its " + images(*r.Images)
		}
		return "deleted"
	case OutcomeGone:
		return "already gone"
	case OutcomeLeftAlone:
		return "left alone (not managed by containerise; --include-unmanaged deletes it)"
	case OutcomeFailed:
		// The error names the resource already; the line does too.
		return "failed: " + strings.TrimPrefix(r.Error, string(r.Kind)+" "+r.Name+": ")
	default:
		return "not changed"
	}
}
