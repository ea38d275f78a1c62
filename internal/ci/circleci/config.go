package circleci

import (
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"

	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/jobconfig"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/install"
	"github.com/containerise/containerise/internal/validate"
)

// ConfigPath is where the emitted config goes in the repository.
const ConfigPath = ".circleci/config.yml"

// JobOptions are what CircleCI's config embeds: what every CI's config
// does, and the parts only circleci-config offers (the release it
// downloads, the scan gate, push's builder).
type JobOptions struct {
	// ConfigOptions: Trusted is the organisation ID push checks the token
	// against (keyless); RoleARN is never embedded.
	ci.ConfigOptions
	// ReleaseURL holds one folder per release tag ("" means
	// install.DefaultReleaseURL).
	ReleaseURL string
	// FailOn turns the scan gate on: the severity threshold, already
	// checked ("HIGH"); OnlyFixable and IgnoreFile are passed on to it.
	FailOn      string
	OnlyFixable bool
	IgnoreFile  string
	// RequireSignature passes --require-signature to the gate.
	RequireSignature bool
	// Builder is push's --builder: "auto" or "container".
	Builder string
}

// The job's scan gate writes its JUnit report under the folder
// store_test_results uploads.
const (
	testResults = "test-results"
	// ScanReport is where the gate's report goes.
	ScanReport = testResults + "/containerise/scan.xml"
)

var (
	// circleRef is a reference to one of CircleCI's own variables, which
	// the job's shell expands inside double quotes.
	circleRef = regexp.MustCompile(`\$\{CIRCLE_[A-Z0-9_]+\}`)
	// shellSafe values need no quoting in a POSIX shell argument.
	shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@+-]+$`)
)

func (o JobOptions) install() install.Options {
	return install.Options{Version: o.Install, ReleaseURL: o.ReleaseURL, Binary: o.Version}
}

// InstallNote explains an install choice the user did not make (a
// development build installs latest from source), for stderr; "" when none.
func (o JobOptions) InstallNote() string { return o.install().StepFor(install.BashEnv).Note }

// Validate checks every value before it is put into the YAML document and
// the job's shell command (usage errors, naming circleci-config's flags).
func (o JobOptions) Validate() error {
	if err := validate.Repository("--repository", o.Repository); err != nil {
		return err
	}
	for _, tag := range o.Tags {
		if err := checkTag(tag); err != nil {
			return err
		}
	}
	if err := CheckPath("--context", o.Context); err != nil {
		return err
	}
	if o.Builder != "auto" && o.Builder != "container" {
		return clierror.Usagef("--builder %q: want auto or container", o.Builder)
	}
	if o.File != "" {
		if err := CheckPath("--file", o.File); err != nil {
			return err
		}
	}
	if _, err := reference.ParseNormalizedNamed(o.Image); o.Image != "" && err != nil {
		return clierror.Usagef("--image %q is invalid (%v): use a Docker image reference such as cimg/base:current or registry.example.com/team/base@sha256:<digest>", o.Image, err)
	}
	if o.FailOn == "" && (o.OnlyFixable || o.IgnoreFile != "" || o.RequireSignature) {
		return clierror.Usagef("--only-fixable, --ignore-file and --require-signature need the gate: add --fail-on HIGH (or another severity)")
	}
	if o.IgnoreFile != "" {
		if err := CheckPath("--ignore-file", o.IgnoreFile); err != nil {
			return err
		}
	}
	return o.install().Validate()
}

// checkTag accepts a Docker tag in which ${CIRCLE_...} references may
// stand for any part; the references expand in the job.
func checkTag(tag string) error {
	if rest := circleRef.ReplaceAllString(tag, ""); strings.Contains(rest, "$") {
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

// CheckPath refuses what cannot be a path relative to the repository
// root, and what CircleCI itself would rewrite.
func CheckPath(flag, p string) error {
	if err := jobconfig.RelativePath(flag, p); err != nil {
		return err
	}
	if strings.Contains(p, "<<") {
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
// double-quoted so that they expand: checkTag allowed nothing else in it
// that is special inside double quotes.
func quoteTag(tag string) string {
	if circleRef.MatchString(tag) {
		return `"` + tag + `"`
	}
	return shellQuote(tag)
}

// pushCommand is the job's push command line, one quoted word per argument.
func pushCommand(o JobOptions) string {
	words := []string{"containerise", "push"}
	// The auth mode is always explicit: CircleCI gives every job an OIDC
	// token, and a keys job must not drift to it.
	if o.Keyless {
		words = append(words, "--auth", "oidc")
		if o.Trusted != "" {
			words = append(words, "--circleci-org-id", o.Trusted)
		}
	} else {
		words = append(words, "--auth", "keys")
	}
	words = append(words, "--repository", shellQuote(o.Repository))
	for _, tag := range o.Tags {
		words = append(words, "--tag", quoteTag(tag))
	}
	if o.Context != "." {
		words = append(words, "--context", shellQuote(o.Context))
	}
	if o.File != "" {
		words = append(words, "--file", shellQuote(o.File))
	}
	if o.FailOn != "" {
		words = append(words, "--scan", "--fail-on", o.FailOn)
		if o.OnlyFixable {
			words = append(words, "--only-fixable")
		}
		if o.IgnoreFile != "" {
			words = append(words, "--ignore-file", shellQuote(o.IgnoreFile))
		}
		if o.RequireSignature {
			words = append(words, "--require-signature")
		}
		words = append(words, "--junit", ScanReport)
	}
	if o.Builder == "container" {
		words = append(words, "--builder", "container")
	}
	return strings.Join(words, " ")
}

// WriteConfig builds the configuration of options Validate passed as a
// YAML document, so that no value can add keys or break out of its string.
func WriteConfig(o JobOptions) ([]byte, error) {
	s, m, y, c := jobconfig.Str, jobconfig.Map, jobconfig.Seq, jobconfig.Comment
	step := o.install().StepFor(install.BashEnv)
	image := o.Image
	if image == "" {
		image = step.Image
	}
	job := m(
		s("docker"), y(m(s("image"), s(image))),
		s("steps"), y(
			s("checkout"),
			c(s("setup_remote_docker"),
				"A remote engine: containerise reads DOCKER_HOST, DOCKER_TLS_VERIFY\nand DOCKER_CERT_PATH, which this step sets."),
			m(s("run"), m(
				s("name"), s(step.Name),
				s("command"), jobconfig.Block(step.Command),
			)),
			m(s("run"), m(
				s("name"), s("Build and push to ECR"),
				s("command"), jobconfig.Block(pushCommand(o)+"\n"),
			)),
		),
	)
	if o.FailOn != "" {
		steps := job.Content[3]
		steps.Content = append(steps.Content, c(
			m(s("store_test_results"), m(s("path"), s(testResults))),
			"The scan gate's JUnit report: its findings in the job's Tests tab."))
	}
	header := "Generated by 'containerise circleci-config'.\n" +
		"Set AWS_IAM_USER_ACCESS_KEY_ID, AWS_IAM_USER_SECRET_ACCESS_KEY,\n" +
		"AWS_IAM_ROLE_ARN and AWS_REGION (printed by 'containerise setup') in the\n" +
		"project's environment variables or in a context."
	if o.Keyless {
		header = "Generated by 'containerise circleci-config --auth oidc'.\n" +
			"Keyless: set only AWS_IAM_ROLE_ARN and AWS_REGION (printed by\n" +
			"'containerise setup --auth oidc') in the project's environment variables\n" +
			"or in a context; no access key. CircleCI gives the job its OIDC token\n" +
			"(" + EnvOIDCTokenV2 + "), which push exchanges for the role's credentials."
	}
	root := m(
		c(s("version"), header),
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: "2.1"},
		c(s("jobs"), "\n"), m(s("containerise"), job),
		c(s("workflows"), "\n"), m(s("containerise"), m(s("jobs"), y(s("containerise")))),
	)
	return jobconfig.Encode(root, "CircleCI configuration")
}
