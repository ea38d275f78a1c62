package commands

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/validate"
)

type circleCIOptions struct {
	repository, context, file, image string
	install                          install.Options
	tags                             []string
	auth                             authFlags
	orgID                            string // keyless: the organization push checks the token against
	// The scan gate, on when failOn is set (push --scan).
	failOn, ignoreFile string
	onlyFixable        bool
	builder            string // "auto" or "container": push's --builder
}

// scanReport is where the job's gate writes its JUnit report, under the
// folder store_test_results uploads.
const (
	testResults = "test-results"
	scanReport  = testResults + "/containerise/scan.xml"
)

func newCircleCIConfigCmd(g *Globals) *cobra.Command {
	o := circleCIOptions{}
	cmd := &cobra.Command{
		Use:   "circleci-config",
		Short: "Print a .circleci/config.yml that installs containerise and pushes",
		Long: `Print a complete .circleci/config.yml: a job with a remote Docker engine
that installs a pinned, checksummed containerise release (no Go) and runs
push. With --auth oidc the job holds no key; with --fail-on it also gates on
ECR's scan and uploads a JUnit report. Every value is checked (exit 2) and
quoted for the job's shell; a tag may use CircleCI's variables, as
'${CIRCLE_SHA1}'.` + guideLine + "ci/circleci.md",
		Example: `  # Keyless, tagged with the commit, gated on HIGH findings
  containerise circleci-config --auth oidc --circleci-org-id <org UUID> --tag '${CIRCLE_SHA1}' --fail-on HIGH > .circleci/config.yml

  # The blog's keys, another repository, two tags
  containerise circleci-config --repository my-app --tag v1 --tag '${CIRCLE_SHA1}'

  # Another release, from your own mirror
  containerise circleci-config --install-version v1.4.0 --release-url https://downloads.example.com/containerise`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			_, circle, err := o.auth.options(false)
			if err != nil {
				return err
			}
			o.orgID = circle.OrgID
			o.install.Binary = g.Version()
			if note := o.install.StepFor(install.BashEnv).Note; note != "" {
				g.Logf("%s", note)
			}
			out, err := circleCIConfig(o, g.Version())
			if err != nil {
				return err
			}
			_, err = g.Out.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repository, "repository", names.Repository, "ECR repository to push to")
	f.StringArrayVar(&o.tags, "tag", []string{"v1"}, "image tag (repeatable); ${CIRCLE_SHA1} and other CircleCI variables expand in the job")
	f.StringVar(&o.context, "context", ".", "build context, relative to the repository root")
	f.StringVar(&o.file, "file", "", "Dockerfile, relative to the repository root (default: Dockerfile in the context)")
	f.StringVar(&o.image, "image", "", "the job's Docker image reference (default: "+install.ReleaseImage+" for a release, "+install.SourceImage+" to build from source)")
	f.StringVar(&o.install.Version, "install-version", "", "containerise release to install, like v1.2.3 or v1.2.3-rc.1; a commit hash or latest builds from source with go install (default: this binary's release)")
	f.StringVar(&o.install.ReleaseURL, "release-url", install.DefaultReleaseURL, "where the job downloads releases from: BASE/v1.2.3/<archive> and its checksums file")
	f.StringVar(&o.failOn, "fail-on", "", "turn the scan gate on: the job fails when ECR's scan finds a finding at or above this severity (CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL), and uploads a JUnit report")
	f.BoolVar(&o.onlyFixable, "only-fixable", false, "with --fail-on: count only findings with a fix available")
	f.StringVar(&o.ignoreFile, "ignore-file", "", "with --fail-on: the gate's ignore file, relative to the repository root")
	f.StringVar(&o.builder, "builder", "auto", "push's builder: auto (the remote engine's own), or container (a BuildKit container on it, which caches a multi-stage Dockerfile's build stages in the registry)")
	o.auth.add(f, false)
	return cmd
}

var (
	// circleRef is a reference to one of CircleCI's own variables, which
	// the job's shell expands inside double quotes.
	circleRef = regexp.MustCompile(`\$\{CIRCLE_[A-Z0-9_]+\}`)
	// shellSafe values need no quoting in a POSIX shell argument.
	shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@+-]+$`)
)

// validate checks every value before it is put into the YAML document and
// the job's shell command.
func (o circleCIOptions) validate() error {
	if err := validate.Repository("--repository", o.repository); err != nil {
		return err
	}
	for _, tag := range o.tags {
		if err := checkCircleTag(tag); err != nil {
			return err
		}
	}
	if err := checkRelativePath("--context", o.context); err != nil {
		return err
	}
	if o.builder != "auto" && o.builder != "container" {
		return clierror.Usagef("--builder %q: want auto or container", o.builder)
	}
	if o.file != "" {
		if err := checkRelativePath("--file", o.file); err != nil {
			return err
		}
	}
	if _, err := reference.ParseNormalizedNamed(o.image); o.image != "" && err != nil {
		return clierror.Usagef("--image %q is invalid (%v): use a Docker image reference such as cimg/base:current or registry.example.com/team/base@sha256:<digest>", o.image, err)
	}
	if o.failOn != "" {
		if _, err := failOn(o.failOn); err != nil {
			return err
		}
	} else if o.onlyFixable || o.ignoreFile != "" {
		return clierror.Usagef("--only-fixable and --ignore-file need the gate: add --fail-on HIGH (or another severity)")
	}
	if o.ignoreFile != "" {
		if err := checkRelativePath("--ignore-file", o.ignoreFile); err != nil {
			return err
		}
	}
	return o.install.Validate()
}

// checkCircleTag accepts a Docker tag in which ${CIRCLE_...} references may
// stand for any part; the references expand in the job.
func checkCircleTag(tag string) error {
	rest := circleRef.ReplaceAllString(tag, "")
	if strings.Contains(rest, "$") {
		return clierror.Usagef("--tag %q is invalid: a tag may use CircleCI's own variables only, in braces, as ${CIRCLE_NAME}: e.g. --tag '${CIRCLE_SHA1}' or --tag 'build-${CIRCLE_BUILD_NUM}', in single quotes so that your shell leaves them for the job", tag)
	}
	if !circleRef.MatchString(tag) {
		return validate.Tag("--tag", tag)
	}
	// A reference stands for letters and digits (a SHA, a build number).
	if validate.Tag("--tag", circleRef.ReplaceAllString(tag, "x")) != nil {
		return clierror.Usagef("--tag %q is invalid: outside its ${CIRCLE_...} references a tag has only letters, digits, '_', '.' and '-', and does not start with '.' or '-' (e.g. --tag 'v1-${CIRCLE_SHA1}')", tag)
	}
	return nil
}

// checkRelativePath refuses what cannot be a path relative to the
// repository root, and what CircleCI itself would rewrite.
func checkRelativePath(flag, p string) error {
	switch {
	case p == "":
		return clierror.Usagef("%s is empty: give a path relative to the repository root, such as . or app/Dockerfile", flag)
	case !utf8.ValidString(p):
		return clierror.Usagef("%s %q is invalid: it is not valid UTF-8", flag, p)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return clierror.Usagef("%s %q is invalid: a path here may not contain control characters such as a newline", flag, p)
	case path.IsAbs(p) || strings.HasPrefix(p, "~"):
		return clierror.Usagef("%s %q is invalid: the job checks the repository out in its own folder, so give a path relative to the repository root", flag, p)
	case strings.Contains(p, "<<"):
		return clierror.Usagef("%s %q is invalid: CircleCI would replace '<< ... >>' with a pipeline parameter; rename the path", flag, p)
	}
	return nil
}

// shellQuote quotes one argument for the job's POSIX shell: inside single
// quotes nothing expands.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quoteTag quotes a checked --tag. One holding ${CIRCLE_...} references is
// double-quoted so that they expand: checkCircleTag allowed nothing else in
// it that is special inside double quotes.
func quoteTag(tag string) string {
	if circleRef.MatchString(tag) {
		return `"` + tag + `"`
	}
	return shellQuote(tag)
}

// pushCommand is the job's push command line, one quoted word per argument.
func pushCommand(o circleCIOptions) string {
	words := []string{"containerise", "push"}
	// The auth mode is always explicit: CircleCI gives every job an OIDC
	// token, and a keys job must not drift to it.
	if o.auth.keyless() {
		words = append(words, "--auth", "oidc")
		if o.orgID != "" {
			words = append(words, "--circleci-org-id", o.orgID)
		}
	} else {
		words = append(words, "--auth", "keys")
	}
	words = append(words, "--repository", shellQuote(o.repository))
	for _, tag := range o.tags {
		words = append(words, "--tag", quoteTag(tag))
	}
	if o.context != "." {
		words = append(words, "--context", shellQuote(o.context))
	}
	if o.file != "" {
		words = append(words, "--file", shellQuote(o.file))
	}
	if o.failOn != "" {
		threshold, _ := failOn(o.failOn)
		words = append(words, "--scan", "--fail-on", string(threshold))
		if o.onlyFixable {
			words = append(words, "--only-fixable")
		}
		if o.ignoreFile != "" {
			words = append(words, "--ignore-file", shellQuote(o.ignoreFile))
		}
		words = append(words, "--junit", scanReport)
	}
	if o.builder == "container" {
		words = append(words, "--builder", "container")
	}
	return strings.Join(words, " ")
}

// YAML node builders. Strings carry the !!str tag so that the encoder
// quotes any value YAML would otherwise read as another type.
func yStr(s string) *yaml.Node {
	n := &yaml.Node{}
	n.SetString(s)
	return n
}

func yMap(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }

func ySeq(items ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.SequenceNode, Content: items} }

// withComment sets n's head comment; "\n" alone gives a blank line.
func withComment(n *yaml.Node, comment string) *yaml.Node {
	n.HeadComment = comment
	return n
}

// circleCIConfig builds the configuration as a YAML document, so that no
// value can add keys or break out of its string.
func circleCIConfig(o circleCIOptions, version string) ([]byte, error) {
	pushLine := yStr(pushCommand(o) + "\n")
	pushLine.Style = yaml.LiteralStyle
	o.install.Binary = version
	step := o.install.StepFor(install.BashEnv)
	installLine := yStr(step.Command)
	installLine.Style = yaml.LiteralStyle
	if o.image == "" {
		o.image = step.Image
	}

	job := yMap(
		yStr("docker"), ySeq(yMap(yStr("image"), yStr(o.image))),
		yStr("steps"), ySeq(
			yStr("checkout"),
			withComment(yStr("setup_remote_docker"),
				"A remote engine: containerise reads DOCKER_HOST, DOCKER_TLS_VERIFY\nand DOCKER_CERT_PATH, which this step sets."),
			yMap(yStr("run"), yMap(
				yStr("name"), yStr(step.Name),
				yStr("command"), installLine,
			)),
			yMap(yStr("run"), yMap(
				yStr("name"), yStr("Build and push to ECR"),
				yStr("command"), pushLine,
			)),
		),
	)
	if o.failOn != "" {
		steps := job.Content[3]
		steps.Content = append(steps.Content, withComment(
			yMap(yStr("store_test_results"), yMap(yStr("path"), yStr(testResults))),
			"The scan gate's JUnit report: its findings in the job's Tests tab."))
	}
	header := "Generated by 'containerise circleci-config'.\n" +
		"Set AWS_IAM_USER_ACCESS_KEY_ID, AWS_IAM_USER_SECRET_ACCESS_KEY,\n" +
		"AWS_IAM_ROLE_ARN and AWS_REGION (printed by 'containerise setup') in the\n" +
		"project's environment variables or in a context."
	if o.auth.keyless() {
		header = "Generated by 'containerise circleci-config --auth oidc'.\n" +
			"Keyless: set only AWS_IAM_ROLE_ARN and AWS_REGION (printed by\n" +
			"'containerise setup --auth oidc') in the project's environment variables\n" +
			"or in a context; no access key. CircleCI gives the job its OIDC token\n" +
			"(CIRCLE_OIDC_TOKEN_V2), which push exchanges for the role's credentials."
	}
	root := yMap(
		withComment(yStr("version"), header),
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: "2.1"},
		withComment(yStr("jobs"), "\n"), yMap(yStr("containerise"), job),
		withComment(yStr("workflows"), "\n"), yMap(yStr("containerise"), yMap(yStr("jobs"), ySeq(yStr("containerise")))),
	)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("writing the CircleCI configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing the CircleCI configuration: %w", err)
	}
	return buf.Bytes(), nil
}
