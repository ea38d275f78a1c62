package resource

import (
	"fmt"
	"sort"
	"strings"

	"github.com/containerise/containerise/policies"
)

// grants flattens a document into one line per effect, principal, action
// and resource, so two documents can be compared line by line.
func grants(d policies.Document) map[string]bool {
	out := map[string]bool{}
	for _, s := range d.Statement {
		var who []string
		if s.Principal != nil {
			for _, p := range s.Principal.AWS {
				who = append(who, p+" ")
			}
			for _, p := range s.Principal.Service {
				who = append(who, p+" ")
			}
			for _, p := range s.Principal.Federated {
				who = append(who, p+" ")
			}
		}
		when := conditionText(s.Condition)
		if len(who) == 0 {
			who = []string{""}
		}
		res := []string(s.Resource)
		if len(res) == 0 {
			res = []string{""}
		}
		verb := "may"
		if s.Effect != "Allow" {
			verb = "may not"
		}
		for _, w := range who {
			for _, a := range s.Action {
				for _, r := range res {
					line := w + verb + " " + a
					if r != "" {
						line += " on " + r
					}
					line += when
					out[line] = true
				}
			}
		}
	}
	return out
}

// conditionText writes a statement's conditions in a stable order: " when
// StringEquals k=v; StringLike k=v1|v2", or "" without any.
func conditionText(c policies.Condition) string {
	if len(c) == 0 {
		return ""
	}
	var parts []string
	for op, keys := range c {
		for k, v := range keys {
			vs := append([]string(nil), v...)
			sort.Strings(vs)
			parts = append(parts, op+" "+k+"="+strings.Join(vs, "|"))
		}
	}
	sort.Strings(parts)
	return " when " + strings.Join(parts, "; ")
}

// differences describes how have (as IAM returns it) differs from want in
// what it grants, in at most a few lines; nil when it grants the same.
// Grants on the resources of skip (repositories said to be added or
// dropped, in a line of their own) are left out.
func differences(have string, want policies.Document, skip ...string) []string {
	d, err := policies.Parse(have)
	if err != nil {
		return []string{"the document cannot be read: " + err.Error()}
	}
	h, w := grants(d), grants(want)
	on := func(line string) bool {
		for _, r := range skip {
			if strings.HasSuffix(line, " on "+r) || strings.Contains(line, " on "+r+" when ") {
				return true
			}
		}
		return false
	}
	var missing, extra []string
	for g := range w {
		if !h[g] && !on(g) {
			missing = append(missing, g)
		}
	}
	for g := range h {
		if !w[g] && !on(g) {
			extra = append(extra, g)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	var out []string
	out = append(out, summarise("lacks: ", missing)...)
	out = append(out, summarise("also grants: ", extra)...)
	return out
}

func summarise(prefix string, lines []string) []string {
	const max = 4
	if len(lines) == 0 {
		return nil
	}
	shown := lines
	if len(lines) > max {
		shown = lines[:max]
	}
	s := prefix + strings.Join(shown, "; ")
	if len(lines) > max {
		s += fmt.Sprintf("; and %d more", len(lines)-max)
	}
	return []string{s}
}
