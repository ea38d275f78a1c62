// Package schemacheck validates an emitted YAML config against a CI's
// published JSON schema (kept in the caller's testdata with its source),
// with github.com/santhosh-tekuri/jsonschema/v6.
package schemacheck

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// Errors returns the schema's verdict on the YAML document body: nil when
// it conforms.
func Errors(t testing.TB, schemaFile string, body []byte) error {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("reading %s: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	const loc = "file:///schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaFile, err)
	}
	var v any
	if err := yaml.Unmarshal(body, &v); err != nil {
		t.Fatalf("the config is not YAML: %v\n%s", err, body)
	}
	// Through JSON, so that the instance has the types the validator
	// knows (maps keyed by strings, json.Number).
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("the config does not map to JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}

// Check fails the test when body does not conform to the schema.
func Check(t testing.TB, schemaFile string, body []byte) {
	t.Helper()
	if err := Errors(t, schemaFile, body); err != nil {
		t.Errorf("the config fails %s:\n%v\n---\n%s", schemaFile, err, body)
	}
}
