package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// pushRepo is the blog's repository, setup's and push's default.
const pushRepo = "circleci-ecr-test"

// ciVars are the CircleCI variables setup prints.
type ciVars map[string]string

var ciVarNames = []string{"AWS_IAM_USER_ACCESS_KEY_ID", "AWS_IAM_USER_SECRET_ACCESS_KEY", "AWS_IAM_ROLE_ARN", "AWS_REGION", "AWS_DEFAULT_REGION"}

// env returns the variables as a CI job has them, and hides the admin's
// credentials so that push can only use the CI user's keys.
func (v ciVars) env(extra ...string) []string {
	env := []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN="}
	for _, name := range ciVarNames {
		env = append(env, name+"="+v[name])
	}
	return append(env, extra...)
}

// setupCI runs `containerise setup --output dotenv --allow-skip-existing`
// as an admin would and returns the CircleCI variables it printed.
func setupCI(t *testing.T) ciVars {
	t.Helper()
	r := run(t, nil, "setup", "--output", "dotenv", "--allow-skip-existing")
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	vars := ciVars{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		vars[name] = strings.Trim(value, `"'`)
	}
	for _, name := range ciVarNames {
		if vars[name] == "" {
			t.Fatalf("setup --output dotenv printed no %s:\n%s", name, r.Stdout)
		}
	}
	return vars
}

// nonce makes each test's image and tags its own: the registry keeps what
// earlier tests pushed.
func nonce() string { return fmt.Sprintf("%x", time.Now().UnixNano()) }

// tinyApp is a build context whose image is unique to this run.
func tinyApp(t *testing.T, stamp string) string {
	return writeApp(t, fmt.Sprintf("FROM %s\nCOPY app.txt /app.txt\nRUN echo %s > /stamp\nCMD [\"sh\", \"-c\", \"cat /app.txt /stamp\"]\n", baseImage(), stamp),
		map[string]string{"app.txt": "hello from containerise\n", ".dockerignore": "notes/\n", "notes/big.txt": "not sent\n"})
}

var pushedLine = regexp.MustCompile(`^([^/\s]+)/([^:\s]+):([\w][\w.-]*)@(sha256:[0-9a-f]{64})$`)

// pushedDigests parses push's stdout: exactly one line per tag, in order.
func pushedDigests(t *testing.T, r result, tags ...string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	if len(lines) != len(tags) {
		t.Fatalf("want %d lines on stdout, one per tag:\n%s", len(tags), r)
	}
	digests := map[string]string{}
	for i, line := range lines {
		m := pushedLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("stdout line %q is not <registry>/<repository>:<tag>@sha256:<digest>", line)
		}
		if m[1] != os.Getenv("STACK_REGISTRY_HOST") || m[2] != pushRepo || m[3] != tags[i] {
			t.Errorf("stdout line %q: want %s/%s:%s", line, os.Getenv("STACK_REGISTRY_HOST"), pushRepo, tags[i])
		}
		digests[m[3]] = m[4]
	}
	return digests
}

// checkNoSecrets fails when a secret of vars, or the registry password,
// appears in the output.
func checkNoSecrets(t *testing.T, r result, vars ciVars) {
	t.Helper()
	for _, s := range []string{vars["AWS_IAM_USER_SECRET_ACCESS_KEY"], os.Getenv("STACK_REGISTRY_PASSWORD")} {
		if s != "" && strings.Contains(r.Stdout+r.Stderr, s) {
			t.Errorf("a secret (%.4s…) appears in the output:\n%s", s, r)
		}
	}
}

// checkNoDockerConfig fails when a Docker credentials file appeared.
func checkNoDockerConfig(t *testing.T, dockerConfig string) {
	t.Helper()
	for _, p := range []string{filepath.Join(testHome, ".docker"), filepath.Join(dockerConfig, "config.json")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: push must not log in or write Docker credentials", p)
		}
	}
}

// TestPushTwoTagsAfterSetup pushes with the classic builder, whose output it
// reads; buildkit_test.go covers BuildKit, the default.
func TestPushTwoTagsAfterSetup(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	app := tinyApp(t, stamp)
	dockerConfig := t.TempDir()
	tags := []string{"v1", "e2e-" + stamp}

	r := runWith(t, runOpts{env: vars.env("DOCKER_CONFIG=" + dockerConfig), dir: app},
		"push", "--builder", "classic", "--tag", tags[0], "--tag", tags[1], "--verbose")
	if r.Code != 0 {
		t.Fatalf("push failed:\n%s", r)
	}
	digests := pushedDigests(t, r, tags...)
	for _, tag := range tags {
		if got := manifestDigest(t, pushRepo, tag); got != digests[tag] {
			t.Errorf("the registry has %s:%s at %q; push printed %q", pushRepo, tag, got, digests[tag])
		}
		if manifestDigest(t, pushRepo, digests[tag]) == "" {
			t.Errorf("the registry has no manifest %s", digests[tag])
		}
	}
	for _, s := range []string{"Step 1/4 : FROM " + baseImage(), "Pushed", "assuming " + vars["AWS_IAM_ROLE_ARN"]} {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.Stderr)
		}
	}
	checkNoSecrets(t, r, vars)
	checkNoDockerConfig(t, dockerConfig)

	// A rerun of the same push succeeds, with the same image.
	again := runWith(t, runOpts{env: vars.env("DOCKER_CONFIG=" + dockerConfig), dir: app}, "push", "--builder", "classic", "--tag", tags[0], "--tag", tags[1])
	if again.Code != 0 {
		t.Fatalf("rerun failed:\n%s", again)
	}
	if d := pushedDigests(t, again, tags...); d[tags[1]] != digests[tags[1]] {
		t.Errorf("rerun pushed %s, first run %s", d[tags[1]], digests[tags[1]])
	}
	checkNoDockerConfig(t, dockerConfig)
}

func TestPushFailingDockerfileLeavesNoTag(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	tag := "fail-" + nonce()
	app := writeApp(t, fmt.Sprintf("FROM %s\nRUN echo before the failure\nRUN false\nCMD [\"sh\"]\n", baseImage()), map[string]string{})

	r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--builder", "classic", "--tag", tag)
	if r.Code != 1 {
		t.Fatalf("want exit 1 for a failing RUN step:\n%s", r)
	}
	if r.Stdout != "" {
		t.Errorf("stdout must stay empty when nothing was pushed:\n%s", r.Stdout)
	}
	for _, s := range []string{"Step 3/4 : RUN false", "returned a non-zero code: 1"} {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("stderr lacks the engine's message %q:\n%s", s, r.Stderr)
		}
	}
	if got := manifestDigest(t, pushRepo, tag); got != "" {
		t.Errorf("the registry has %s:%s (%s) after a failed build", pushRepo, tag, got)
	}
	checkNoSecrets(t, r, vars)
}

func TestPushMissingDockerfileIsUsageError(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	dir := t.TempDir()
	r := runWith(t, runOpts{env: vars.env(), dir: dir}, "push")
	if r.Code != 2 || !strings.Contains(r.Stderr, "Dockerfile") || r.Stdout != "" {
		t.Fatalf("want exit 2 naming the Dockerfile:\n%s", r)
	}
	r = runWith(t, runOpts{env: append(vars.env(), "AWS_IAM_ROLE_ARN=arn:aws:iam::123456789012:user/circleci"), dir: dir}, "push")
	if r.Code != 2 || !strings.Contains(r.Stderr, "AWS_IAM_ROLE_ARN") {
		t.Fatalf("want exit 2 naming AWS_IAM_ROLE_ARN:\n%s", r)
	}
}

func TestPushUnreachableEngine(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	app := tinyApp(t, nonce())
	sock := filepath.Join(t.TempDir(), "no-engine.sock")
	r := runWith(t, runOpts{env: vars.env("DOCKER_HOST=unix://" + sock), dir: app}, "push")
	if r.Code != 1 || !strings.Contains(r.Stderr, "DOCKER_HOST=unix://"+sock) || !strings.Contains(r.Stderr, "setup_remote_docker") {
		t.Fatalf("want exit 1 naming DOCKER_HOST and what to do:\n%s", r)
	}
}

// TestPushWrongRegistryPassword pushes to a real registry that refuses the
// password ECR's API hands out. moto ties the password and the registry host
// to the account (<account>-auth-token at <account>.dkr.ecr...), and the
// stack's registry accepts its account's password, so the test serves a
// second account: the CI user assumes a role in account 111122223333 (moto
// hands out that account's token and host), and a registry the test starts
// for that host (127.0.0.2:443, its own certificate and /etc/hosts line)
// holds another password in its htpasswd, as a registry whose credentials
// were rotated would. The push must exit non-zero with the registry's refusal.
// moto checks the assumption as AWS does: the role exists in that account,
// trusts the user and lets it get an ECR token, and the user's own policy
// lets it assume the role.
func TestPushWrongRegistryPassword(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	const otherAccount = "111122223333"
	host := otherAccount + ".dkr.ecr." + vars["AWS_REGION"] + ".amazonaws.com"
	hostsReady := startRefusingRegistry(t, host, "127.0.0.2")

	app := tinyApp(t, nonce())
	role := crossAccountRole(t, otherAccount, setupAccount(t, awsClients(t)))
	time.Sleep(time.Until(hostsReady)) // resolvers cache /etc/hosts for a few seconds
	r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--role-arn", role, "--tag", "refused")
	if r.Code != 1 {
		t.Fatalf("want exit 1 when the registry refuses the password:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "unauthorized: authentication required") || !strings.Contains(r.Stderr, host) {
		t.Errorf("stderr lacks the registry's refusal for %s:\n%s", host, r.Stderr)
	}
	if r.Stdout != "" {
		t.Errorf("stdout must stay empty:\n%s", r.Stdout)
	}
	checkNoSecrets(t, r, vars)
	if strings.Contains(r.Stdout+r.Stderr, otherAccount+"-auth-token") {
		t.Error("the registry password appears in the output")
	}
}

// startRefusingRegistry runs Debian's docker-registry for host on addr:443
// with TLS and an htpasswd that does not hold ECR's password for it; the
// engine trusts its certificate through /etc/docker/certs.d and finds it
// through a line in /etc/hosts. Everything is undone when the test ends. It
// returns when the new hosts line can be relied on.
func startRefusingRegistry(t *testing.T, host, addr string) time.Time {
	t.Helper()
	for _, tool := range []string{"docker-registry", "openssl", "htpasswd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: scripts/stack.sh up installs it", tool)
		}
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	sh(t, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "1",
		"-subj", "/CN="+host, "-addext", "subjectAltName=DNS:"+host, "-keyout", key, "-out", cert)
	htpasswd := sh(t, "htpasswd", "-Bbn", "AWS", "a-rotated-password")
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(htpasswd), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s:443
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: containerise-e2e-refusing
    path: %s
`, filepath.Join(dir, "data"), addr, cert, key, filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	// The engine's trust for this host.
	certDir := filepath.Join("/etc/docker/certs.d", host)
	if _, err := os.Stat(certDir); err == nil {
		t.Fatalf("%s exists already; not touching it", certDir)
	}
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(certDir) })
	pem, _ := os.ReadFile(cert)
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), pem, 0o644); err != nil {
		t.Fatal(err)
	}

	// The registry itself.
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr+":443", time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("the refusing registry did not start:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Its name, with a marked line removed at the end (written in place:
	// /etc/hosts is often a bind mount).
	line := addr + " " + host + " # containerise-e2e-push"
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/hosts", append(hosts, []byte(line+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		now, err := os.ReadFile("/etc/hosts")
		if err != nil {
			t.Error(err)
			return
		}
		var keep []string
		for _, l := range strings.SplitAfter(string(now), "\n") {
			if strings.TrimSpace(l) != line {
				keep = append(keep, l)
			}
		}
		if err := os.WriteFile("/etc/hosts", []byte(strings.Join(keep, "")), 0o644); err != nil {
			t.Error(err)
		}
	})

	// Check the refusal from here, so a failure below is push's, not the setup's.
	client := registryClientFor(t, cert)
	// Dial the address itself: this process's resolver may still hold an
	// older /etc/hosts.
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr+":443")
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+host+"/v2/", nil)
	req.SetBasicAuth("AWS", "111122223333-auth-token")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("asking the refusing registry: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the refusing registry answered HTTP %d to ECR's password; want 401", resp.StatusCode)
	}
	return time.Now().Add(6 * time.Second)
}

// sh runs a tool and returns its stdout, failing the test on error.
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// peerScript is the project's own boto3 + docker-py script doing the blog
// post's steps (see its docstring); bench measures the same file.
var peerScript = filepath.Join("..", "peer", "blogflow.py")

// blogFlowEnv is the whole environment of a CI job that pushes with the
// variables setup printed: those, exactly as printed, and only what a job
// needs to reach the stack's stand-ins for AWS and the engine.
func blogFlowEnv(vars ciVars) []string {
	var env []string
	for name, value := range vars {
		env = append(env, name+"="+value)
	}
	return append(env,
		// moto stands in for AWS; a real job reaches AWS's own endpoints
		// without it.
		"AWS_ENDPOINT_URL="+os.Getenv("AWS_ENDPOINT_URL"),
		// The stack's engine; in CircleCI, setup_remote_docker sets it.
		"DOCKER_HOST="+os.Getenv("DOCKER_HOST"),
		// Every job has one; docker-py looks up credential helpers on it.
		"PATH="+os.Getenv("PATH"),
	)
}

// runInEnv runs a program with env as its entire environment.
func runInEnv(t *testing.T, env []string, dir, name string, args ...string) result {
	t.Helper()
	return execute(t, env, dir, nil, nil, name, args...)
}

// TestPushBlogFlowStaysInterchangeable runs the blog post's flow (the
// project's peer script: STS with the user's keys, an ECR token, a docker-py
// build and push) and then containerise push, each with nothing in its
// environment but the variables setup printed and the way to the stack:
// both must push the folder.
func TestPushBlogFlowStaysInterchangeable(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	env := blogFlowEnv(vars)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if _, printed := vars[name]; strings.HasPrefix(name, "AWS_") && !printed && name != "AWS_ENDPOINT_URL" {
			t.Fatalf("the job's environment has %s, which setup did not print", name)
		}
	}
	script, err := filepath.Abs(peerScript)
	if err != nil {
		t.Fatal(err)
	}
	app := tinyApp(t, nonce())

	// The blog's flow builds the working directory.
	peer := runInEnv(t, env, app, os.Getenv("STACK_PYTHON"), script)
	if peer.Code != 0 {
		t.Fatalf("the blog's flow failed with the variables setup printed:\n%s", peer)
	}
	d := pushedDigests(t, peer, "v1")
	if got := manifestDigest(t, pushRepo, "v1"); got != d["v1"] {
		t.Fatalf("the registry has %s:v1 at %q; the blog's flow printed %q", pushRepo, got, d["v1"])
	}
	checkNoSecrets(t, peer, vars)

	r := runInEnv(t, env, app, binary, "push")
	if r.Code != 0 {
		t.Fatalf("containerise push with the same variables failed:\n%s", r)
	}
	d = pushedDigests(t, r, "v1")
	if got := manifestDigest(t, pushRepo, "v1"); got != d["v1"] {
		t.Errorf("the registry has %s:v1 at %q; push printed %q", pushRepo, got, d["v1"])
	}

	// The peer fails loudly, as bench relies on: a failing RUN is an error
	// in the build stream, and nothing is pushed.
	broken := writeApp(t, fmt.Sprintf("FROM %s\nRUN exit 3\n", baseImage()), map[string]string{})
	bad := runInEnv(t, env, t.TempDir(), os.Getenv("STACK_PYTHON"), script, "--tag", "broken", broken)
	if bad.Code != 1 || bad.Stdout != "" || !strings.Contains(bad.Stderr, "building") {
		t.Errorf("the blog's flow on a failing build: want exit 1, nothing on stdout and the build's error:\n%s", bad)
	}
	if got := manifestDigest(t, pushRepo, "broken"); got != "" {
		t.Errorf("a failed build was pushed as %s:broken (%s)", pushRepo, got)
	}
}

// registryClientFor talks TLS to a registry whose certificate is caFile.
func registryClientFor(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestPushSkipExisting checks --skip-existing against the tags ECR reports:
// the stack's registry front records each push in moto's ECR, as ECR's own
// registry does.
func TestPushSkipExisting(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	app := tinyApp(t, stamp)
	kept, fresh := "kept-"+stamp, "fresh-"+stamp

	first := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--tag", kept)
	if first.Code != 0 {
		t.Fatalf("first push failed:\n%s", first)
	}
	digest := pushedDigests(t, first, kept)[kept]
	if got := ecrDigest(t, pushRepo, kept); got != digest {
		t.Fatalf("ECR's API has %s:%s at %q; push printed %s", pushRepo, kept, got, digest)
	}

	r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--skip-existing", "--tag", kept, "--tag", fresh)
	if r.Code != 0 {
		t.Fatalf("push --skip-existing failed:\n%s", r)
	}
	d := pushedDigests(t, r, kept, fresh)
	if d[kept] != digest {
		t.Errorf("the skipped tag's line has %s; ECR has %s", d[kept], digest)
	}
	if !strings.Contains(r.Stderr, ":"+kept+": exists, skipped") {
		t.Errorf("stderr does not say the tag was skipped:\n%s", r.Stderr)
	}
	if got := manifestDigest(t, pushRepo, fresh); got != d[fresh] {
		t.Errorf("the registry has %s:%s at %q; push printed %q", pushRepo, fresh, got, d[fresh])
	}

	only := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--skip-existing", "--tag", kept)
	if only.Code != 0 {
		t.Fatalf("push --skip-existing of an existing tag failed:\n%s", only)
	}
	pushedDigests(t, only, kept)
	if strings.Contains(only.Stderr, "building ") || strings.Contains(only.Stderr, "pushing ") {
		t.Errorf("built or pushed although the only tag exists:\n%s", only.Stderr)
	}
}

// ecrDigest is the digest ECR's API reports for repo:tag, "" when it has
// no such image.
func ecrDigest(t *testing.T, repo, tag string) string {
	t.Helper()
	out, err := awsClients(t).ECR.DescribeImages(context.Background(), &ecr.DescribeImagesInput{
		RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}}})
	var notFound *ecrtypes.ImageNotFoundException
	if errors.As(err, &notFound) {
		return ""
	}
	if err != nil || len(out.ImageDetails) != 1 {
		t.Fatalf("describing %s:%s through ECR's API: %v", repo, tag, err)
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest)
}

// TestPushDockerfileOutsideTheContext: `--file` may point outside the
// context, as with `docker build -f`; the real engine builds it.
func TestPushDockerfileOutsideTheContext(t *testing.T) {
	resetAWS(t)
	vars := setupCI(t)
	stamp := nonce()
	app := writeApp(t, "FROM scratch\n", map[string]string{"app.txt": "hello\n"})
	dockerfile := filepath.Join(t.TempDir(), "app.Dockerfile")
	body := fmt.Sprintf("FROM %s\nCOPY app.txt /app.txt\nRUN echo %s > /stamp\n", baseImage(), stamp)
	if err := os.WriteFile(dockerfile, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "outside-" + stamp[len(stamp)-8:]
	r := runWith(t, runOpts{env: vars.env(), dir: app}, "push", "--repository", pushRepo, "--tag", tag, "--file", dockerfile)
	if r.Code != 0 {
		t.Fatalf("push with a Dockerfile outside the context:\n%s", r)
	}
	digest := pushedDigests(t, r, tag)[tag]
	if got := manifestDigest(t, pushRepo, tag); got != digest {
		t.Errorf("registry has %s:%s at %q, push printed %s", pushRepo, tag, got, digest)
	}
}

// crossAccountRole makes role containerise in account other, trusting setup's
// CI user of account home and allowed an ECR token, and lets that user
// assume it, as an admin of both accounts would; it returns the role's ARN.
func crossAccountRole(t *testing.T, other, home string) string {
	t.Helper()
	ctx := context.Background()
	c := awsClients(t)
	inOther := iam.NewFromConfig(c.Cfg, func(o *iam.Options) {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("x-moto-account-id", other))
	})
	user := "arn:aws:iam::" + home + ":user/" + setupNames.user
	role := "arn:aws:iam::" + other + ":role/" + setupNames.role
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + user + `"},"Action":"sts:AssumeRole"}]}`
	if _, err := inOther.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(setupNames.role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatalf("creating %s: %v", role, err)
	}
	token := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`
	if _, err := inOther.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(setupNames.role), PolicyName: aws.String("ecr-token"), PolicyDocument: aws.String(token)}); err != nil {
		t.Fatalf("granting %s an ECR token: %v", role, err)
	}
	assume := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + role + `"}]}`
	if _, err := c.IAM.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(setupNames.user), PolicyName: aws.String("cross-account"), PolicyDocument: aws.String(assume)}); err != nil {
		t.Fatalf("letting %s assume %s: %v", user, role, err)
	}
	return role
}
