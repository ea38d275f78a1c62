// Package jobconfig holds what every CI's emitted config shares: the
// install and push command lines, checked and quoted for the job's POSIX
// shell, and YAML written as nodes so that no value can add keys or break
// out of its string.
package jobconfig

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/validate"
)

// The job's image where the CI runs jobs in one and --image is not given:
// a small Debian with curl for a release (no Go), Go to build from source.
const (
	ReleaseImage = "buildpack-deps:bookworm-curl"
	SourceImage  = "golang:1.26"
)

var (
	shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)
	// A tag may name the CI's own variables, ${NAME}, between plain parts.
	varRef  = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)\}`)
	roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
)

// Check validates the options every CI embeds, with the rules the other
// commands use (internal/validate). varPrefixes are the prefixes of the
// CI's own variables a tag may reference as ${NAME} ("GITHUB_"). Errors
// are usage errors.
func Check(o ci.ConfigOptions, varPrefixes ...string) error {
	if err := validate.Repository("--repository", o.Repository); err != nil {
		return err
	}
	for _, t := range o.Tags {
		refs := varRef.FindAllStringSubmatch(t, -1)
		if strings.Contains(varRef.ReplaceAllString(t, ""), "$") {
			return clierror.Usagef("--tag %q is invalid: write the CI's variables in braces, as ${NAME}: e.g. --tag '%s', in single quotes so that your shell leaves it for the job", t, exampleRef(varPrefixes))
		}
		if len(refs) == 0 {
			if err := validate.Tag("--tag", t); err != nil {
				return err
			}
			continue
		}
		for _, m := range refs {
			if !hasAnyPrefix(m[1], varPrefixes) {
				return clierror.Usagef("--tag %q references ${%s}: only the CI's own variables (%s...) may be used, e.g. --tag '%s'", t, m[1], strings.Join(varPrefixes, "..., "), exampleRef(varPrefixes))
			}
		}
		// A reference stands for letters and digits (a SHA, a number).
		if validate.Tag("--tag", varRef.ReplaceAllString(t, "x")) != nil {
			return clierror.Usagef("--tag %q is invalid: outside its ${NAME} references a tag has only letters, digits, '_', '.' and '-', and does not start with '.' or '-' (e.g. --tag 'v1-%s')", t, exampleRef(varPrefixes))
		}
	}
	if o.RoleARN != "" && !roleARN.MatchString(o.RoleARN) {
		return clierror.Usagef("--role-arn %q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", o.RoleARN)
	}
	for _, p := range []struct{ flag, v string }{{"--context", o.Context}, {"--file", o.File}} {
		if p.v == "" {
			continue
		}
		if path.IsAbs(p.v) || strings.HasPrefix(path.Clean(p.v), "..") || !shellSafe.MatchString(p.v) {
			return clierror.Usagef("%s %q must be a plain path inside the repository (letters, digits and ./_-)", p.flag, p.v)
		}
	}
	if err := installOptions(o).Validate(); err != nil {
		return err
	}
	if o.Image != "" {
		if _, err := reference.ParseNormalizedNamed(o.Image); err != nil || !shellSafe.MatchString(o.Image) {
			return clierror.Usagef("--image %q is not a Docker image reference such as golang:1.26", o.Image)
		}
	}
	return nil
}

// commitRefs are each CI's commit variable, for examples in messages.
var commitRefs = map[string]string{
	"GITHUB_": "${GITHUB_SHA}", "CI_": "${CI_COMMIT_SHA}", "BITBUCKET_": "${BITBUCKET_COMMIT}",
	"BUILDKITE_": "${BUILDKITE_COMMIT}", "CIRCLE_": "${CIRCLE_SHA1}",
}

// exampleRef is a reference a tag of the CI whose variables have one of
// prefixes may use.
func exampleRef(prefixes []string) string {
	for _, p := range prefixes {
		if r, ok := commitRefs[p]; ok {
			return r
		}
	}
	if len(prefixes) > 0 {
		return "${" + prefixes[0] + "NAME}"
	}
	return "${NAME}"
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func installOptions(o ci.ConfigOptions) install.Options {
	return install.Options{Version: o.Install, ReleaseURL: o.ReleaseURL, Binary: o.Version}
}

// InstallStep is the job's install step: a pinned, checksummed release
// (this binary's, or o.Install), or `go install` from source for a commit
// or latest. pf is how the CI hands PATH to the job's later steps. Its
// Image is the CI-neutral default image for that kind of step.
func InstallStep(o ci.ConfigOptions, pf install.PathFile) install.Step {
	step := installOptions(o).StepFor(pf)
	step.Image = ReleaseImage
	if step.FromSource {
		step.Image = SourceImage
	}
	return step
}

// ShellQuote quotes one argument for a POSIX shell: inside single quotes
// nothing expands.
func ShellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PushCommand is the job's push command line. defaultTag is used when o
// has no tag (the CI's commit variable, "${GITHUB_SHA}"); dollar is how
// the CI's config writes a '$' that the shell must see ("$" mostly, "$$"
// where the CI interpolates first).
func PushCommand(o ci.ConfigOptions, defaultTag, dollar string) string {
	words := []string{"containerise", "push"}
	if o.Keyless {
		words = append(words, "--auth", "oidc")
	} else {
		words = append(words, "--auth", "keys")
	}
	if o.RoleARN != "" {
		words = append(words, "--role-arn", ShellQuote(o.RoleARN))
	}
	words = append(words, "--repository", ShellQuote(o.Repository))
	tags := o.Tags
	if len(tags) == 0 {
		tags = []string{defaultTag}
	}
	for _, t := range tags {
		if strings.Contains(t, "${") {
			// Checked: only ${NAME} references and plain characters.
			words = append(words, "--tag", `"`+strings.ReplaceAll(t, "$", dollar)+`"`)
		} else {
			words = append(words, "--tag", ShellQuote(t))
		}
	}
	if o.Context != "" && o.Context != "." {
		words = append(words, "--context", ShellQuote(o.Context))
	}
	if o.File != "" {
		words = append(words, "--file", ShellQuote(o.File))
	}
	return strings.Join(words, " ")
}

// Str is a YAML string node: tagged !!str so that the encoder quotes any
// value YAML would otherwise read as another type.
func Str(s string) *yaml.Node {
	n := &yaml.Node{}
	n.SetString(s)
	return n
}

// Block is a string written as a literal block (|), for scripts.
func Block(s string) *yaml.Node {
	n := Str(s)
	n.Style = yaml.LiteralStyle
	return n
}

// Bool is a YAML boolean node.
func Bool(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(b)}
}

// Map is a mapping of alternating key and value nodes.
func Map(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }

// Seq is a sequence.
func Seq(items ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.SequenceNode, Content: items} }

// Comment sets n's head comment and returns n.
func Comment(n *yaml.Node, comment string) *yaml.Node {
	n.HeadComment = comment
	return n
}

// Encode writes root as one YAML document, indented by two.
func Encode(root *yaml.Node, what string) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("writing the %s: %w", what, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing the %s: %w", what, err)
	}
	return buf.Bytes(), nil
}

// Variables are the variables a job needs: the role and region, and the
// CI user's keys unless keyless.
func Variables(keyless bool) []string {
	if keyless {
		return []string{names.EnvRoleARN, names.EnvRegion}
	}
	return []string{names.EnvAccessKeyID, names.EnvSecretAccessKey, names.EnvRoleARN, names.EnvRegion}
}
