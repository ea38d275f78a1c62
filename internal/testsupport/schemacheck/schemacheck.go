// Package schemacheck judges an emitted CI config with that CI's own
// validator: actionlint for GitHub Actions workflows, and the published
// JSON schemas of GitLab CI, Bitbucket Pipelines and Buildkite (copies in
// testdata, each with its source in testdata/README.md) through
// github.com/santhosh-tekuri/jsonschema/v6.
package schemacheck

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rhysd/actionlint"

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

// The schemas in testdata.
const (
	GitLabSchema    = "gitlab-ci.schema.json"
	BitbucketSchema = "bitbucket-pipelines.schema.json"
	BuildkiteSchema = "buildkite-pipeline.schema.json"
)

// Schema is the path of one of the schemas in testdata.
func Schema(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", name)
}

// CheckWith fails the test when body does not conform to the named schema
// in testdata.
func CheckWith(t testing.TB, schema string, body []byte) {
	t.Helper()
	Check(t, Schema(schema), body)
}

// Workflow returns actionlint's findings on a GitHub Actions workflow.
func Workflow(t testing.TB, path string, body []byte) []*actionlint.Error {
	t.Helper()
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(path, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

// CheckWorkflow fails the test for each of actionlint's findings.
func CheckWorkflow(t testing.TB, path string, body []byte) {
	t.Helper()
	for _, e := range Workflow(t, path, body) {
		t.Errorf("actionlint: %s", e.Error())
	}
}
