// Package e2e drives the built containerise binary against real parts: moto
// in server mode (AWS), a Docker engine and a TLS registry at the ECR host
// name, all started by scripts/stack.sh (make test does it). The registry's
// front records every pushed manifest in moto's ECR, so ECR's API sees what
// was pushed, as on AWS. Tests in this package share that stack, so none of
// them runs in parallel.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// binary is the containerise binary built once for the whole package.
var binary string

// stackVars are the variables scripts/stack.sh writes; every test needs them.
// STACK_ECR_FRONT_LOG says the registry records pushes in moto's ECR (a
// stack started by an older stack.sh does not: restart it).
var stackVars = []string{"AWS_ENDPOINT_URL", "DOCKER_HOST", "STACK_MOTO_URL", "STACK_REGISTRY_HOST",
	"STACK_REGISTRY_CA", "STACK_REGISTRY_PASSWORD", "STACK_PYTHON", "STACK_BASE_IMAGE", "STACK_ECR_FRONT_LOG"}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse() // testing.Short needs parsed flags
	var missing []string
	for _, v := range stackVars {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		if testing.Short() {
			fmt.Println("e2e: -short without the stack: end-to-end tests not run")
			return 0
		}
		// A missing stack is a failure, not a skip: run through `make test`.
		fmt.Fprintf(os.Stderr, "e2e: the test stack is not up (missing %s); run `make test`, or `scripts/with-stack.sh go test ./e2e`\n",
			strings.Join(missing, ", "))
		return 1
	}
	// One stack serves every e2e run on this machine, and tests reset moto:
	// runs from several shells must take turns.
	unlock, err := lockStack()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer unlock()
	dir, err := os.MkdirTemp("", "containerise-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "containerise")
	build := exec.Command("go", "build", "-o", binary, "../cmd/containerise")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building containerise:", err)
		return 1
	}
	return m.Run()
}

// lockStack takes an exclusive lock shared by all e2e runs on this machine.
func lockStack() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "containerise-e2e.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the e2e lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("taking the e2e lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// result is what a user sees of one run.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.Code, r.Stdout, r.Stderr)
}

// runOpts change how the binary is run.
type runOpts struct {
	env   []string  // extra NAME=value, overriding the stack's
	dir   string    // working directory
	stdin io.Reader // nil: no terminal, empty input
}

// run runs containerise with the stack's environment (admin credentials for
// moto) plus extra NAME=value pairs.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runWith(t, runOpts{env: env}, args...)
}

func runWith(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	return execute(t, append(cleanEnv(), o.env...), o.dir, o.stdin, nil, binary, args...)
}

// execute runs a program with env as its whole environment, within 5
// minutes, and returns what it printed and its exit code. stdout, when not
// nil, takes the program's standard output instead of the result.
func execute(t *testing.T, env []string, dir string, stdin io.Reader, stdout io.Writer, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir, cmd.Stdin = env, dir, stdin
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s %v: %v", name, args, err)
	}
	return result{Stdout: out.String(), Stderr: stderr.String(), Code: code}
}

// cleanEnv is the test process's environment without CircleCI variables a
// developer may have exported, and with a private HOME so that a Docker
// credentials file written by mistake would be seen.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_IAM_") || strings.HasPrefix(kv, "CIRCLE_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+testHome)
}

// testHome is HOME for every run of the binary in this package.
var testHome = func() string {
	dir, err := os.MkdirTemp("", "containerise-e2e-home-")
	if err != nil {
		panic(err)
	}
	return dir
}()

// resetAWS clears all of moto's state so each test starts from an empty account.
func resetAWS(t *testing.T) {
	t.Helper()
	resp, err := http.Post(os.Getenv("STACK_MOTO_URL")+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("resetting moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resetting moto: HTTP %d", resp.StatusCode)
	}
}

// clients are admin SDK clients against moto, to check what the binary did
// through the real API.
type clients struct {
	IAM *iam.Client
	ECR *ecr.Client
	STS *sts.Client
	Cfg aws.Config
}

func awsClients(t *testing.T) clients {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("loading AWS config for checks: %v", err)
	}
	return clients{IAM: iam.NewFromConfig(cfg), ECR: ecr.NewFromConfig(cfg), STS: sts.NewFromConfig(cfg), Cfg: cfg}
}

// registryClient talks to the stack's registry over TLS with its CA.
func registryClient(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(os.Getenv("STACK_REGISTRY_CA"))
	if err != nil {
		t.Fatalf("reading the registry CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// manifestRequest asks the stack's registry for repo:ref's manifest (a tag
// or a digest) with the registry's credentials. The caller closes the body.
func manifestRequest(t *testing.T, method, repo, ref string) *http.Response {
	t.Helper()
	url := fmt.Sprintf("https://%s/v2/%s/manifests/%s", os.Getenv("STACK_REGISTRY_HOST"), repo, ref)
	req, _ := http.NewRequest(method, url, nil)
	req.SetBasicAuth("AWS", os.Getenv("STACK_REGISTRY_PASSWORD"))
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := registryClient(t).Do(req)
	if err != nil {
		t.Fatalf("asking the registry for %s:%s: %v", repo, ref, err)
	}
	return resp
}

// manifestDigest returns the registry's digest for repo:ref, or "" when the
// registry does not have it.
func manifestDigest(t *testing.T, repo, ref string) string {
	t.Helper()
	resp := manifestRequest(t, http.MethodHead, repo, ref)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("asking the registry for %s:%s: HTTP %d", repo, ref, resp.StatusCode)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// writeApp writes a build context with the given Dockerfile and files.
func writeApp(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["Dockerfile"] = dockerfile
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// baseImage is the local base image every test Dockerfile starts FROM.
func baseImage() string { return os.Getenv("STACK_BASE_IMAGE") }
