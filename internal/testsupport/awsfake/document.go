package awsfake

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// The fake reads policy documents with its own small parser, never the
// product's policies package: a test oracle that shared the product's code
// could not catch the product's mistakes in it.

// document is a policy document as IAM reads it: statements with their
// effect, actions and principals. raw keeps the parsed JSON for rewriting.
type document struct {
	statements []statement
	raw        map[string]any
}

type statement struct {
	effect  string
	actions []string
	// Principals by type ("AWS", "Service", "Federated"); "*" for anyone.
	principals map[string][]string
	// conditions: operator -> key -> values.
	conditions map[string]map[string][]string
}

// parseDocument reads a document given as JSON or URL-encoded JSON.
func parseDocument(text string) (document, error) {
	if !strings.HasPrefix(strings.TrimSpace(text), "{") {
		decoded, err := url.QueryUnescape(text)
		if err != nil {
			return document{}, fmt.Errorf("neither JSON nor URL-encoded JSON: %w", err)
		}
		text = decoded
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return document{}, err
	}
	d := document{raw: raw}
	for _, s := range objects(raw["Statement"]) {
		st := statement{principals: map[string][]string{}, conditions: map[string]map[string][]string{}}
		st.effect, _ = s["Effect"].(string)
		st.actions = strs(s["Action"])
		switch p := s["Principal"].(type) {
		case string:
			st.principals["*"] = []string{p}
		case map[string]any:
			for kind, v := range p {
				st.principals[kind] = strs(v)
			}
		}
		if c, ok := s["Condition"].(map[string]any); ok {
			for op, keys := range c {
				m := map[string][]string{}
				if kv, ok := keys.(map[string]any); ok {
					for k, v := range kv {
						m[k] = strs(v)
					}
				}
				st.conditions[op] = m
			}
		}
		d.statements = append(d.statements, st)
	}
	return d, nil
}

// objects reads a statement list: one object or a list of them.
func objects(v any) []map[string]any {
	switch t := v.(type) {
	case map[string]any:
		return []map[string]any{t}
	case []any:
		var out []map[string]any
		for _, e := range t {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// strs reads a string or a list of strings.
func strs(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// replacePrincipal rewrites every AWS principal equal to from as to, and
// reports whether it changed anything.
func (d document) replacePrincipal(from, to string) bool {
	changed := false
	for _, s := range objects(d.raw["Statement"]) {
		p, ok := s["Principal"].(map[string]any)
		if !ok {
			continue
		}
		switch v := p["AWS"].(type) {
		case string:
			if v == from {
				p["AWS"], changed = to, true
			}
		case []any:
			for i, e := range v {
				if e == from {
					v[i], changed = to, true
				}
			}
		}
	}
	return changed
}

// JSON is the document as IAM would hold it.
func (d document) JSON() string {
	b, _ := json.Marshal(d.raw)
	return string(b)
}
