package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// IAM accepts more shapes of a policy document than setup writes: a
// single statement instead of a list, "Principal": "*", and condition
// values that are JSON booleans or numbers. Documents made by hand (or by
// other tools) use them, and teardown must read those to know which roles
// trust a provider; these readers accept each shape.

// Statements is a document's statements: IAM takes one statement object
// or a list of them. It is written as a list.
type Statements []Statement

// UnmarshalJSON reads one statement object or a list of them.
func (s *Statements) UnmarshalJSON(b []byte) error {
	var one Statement
	if err := json.Unmarshal(b, &one); err == nil {
		*s = Statements{one}
		return nil
	}
	var many []Statement
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("expected a statement or a list of statements: %w", err)
	}
	*s = many
	return nil
}

// UnmarshalJSON reads a principal object, or the string "*", which IAM
// reads as {"AWS": "*"}: anyone.
func (p *Principal) UnmarshalJSON(b []byte) error {
	var text string
	if err := json.Unmarshal(b, &text); err == nil {
		if text != "*" {
			return fmt.Errorf("principal %q: only \"*\" may be written as a string", text)
		}
		*p = Principal{AWS: Values{"*"}}
		return nil
	}
	type plain Principal // without this method
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Principal(v)
	return nil
}

// UnmarshalJSON reads a string or a list of strings; booleans and numbers
// (which IAM takes as condition values) are read as their JSON text.
func (v *Values) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // 12345678901234567890 stays as written
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if list, ok := raw.([]any); ok {
		out := make(Values, 0, len(list))
		for _, e := range list {
			s, err := scalar(e)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		*v = out
		return nil
	}
	s, err := scalar(raw)
	if err != nil {
		return err
	}
	*v = Values{s}
	return nil
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("expected a string, boolean or number, or a list of them, got %T", v)
}
