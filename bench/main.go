// Command bench measures containerise side by side with its peers on one
// machine, in one run: the project's peer script doing the blog post's steps
// (boto3 + docker-py, peer/blogflow.py), the docker CLI and
// the AWS CLI, against the local stack (moto, a Docker engine, a TLS
// registry at the ECR host name) that scripts/with-stack.sh starts.
//
// It prints medians of alternating runs and their ratios, with each target
// beside its figure as met or missed. It never fails on a time: it exits
// non-zero only when a command it measures fails or the stack is missing.
//
// Knobs (environment): BENCH_RUNS (runs per figure), BENCH_QUICK=1 (small
// contexts and few runs, for a fast check), BENCH_ONLY (comma list of
// startup,push,context,setup,scale,cold,builders,multistage), BENCH_KEEP=1 (keep the
// temp folder).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type bench struct {
	ctx  context.Context
	out  io.Writer
	repo string // repository root
	bin  string // the containerise binary
	peer string // peer/blogflow.py: the blog post's steps, boto3 + docker-py

	env              []string // the stack's environment, as exported by with-stack.sh
	motoURL          string
	registryHost     string
	registryPassword string
	python           string
	awsCLI           string
	baseImage        string

	quick  bool
	runs   int
	settle time.Duration // pause before each run that uses the engine (see alternate)
	tmp    string
	runID  string // labels every image this run builds, for clean-up

	setupVars map[string]string // CI variables of the default-named setup, when current
	targets   []targetRow
}

type targetRow struct{ scenario, target, figure, verdict string }

func (b *bench) target(scenario, target, figure string, ok bool) {
	b.targets = append(b.targets, targetRow{scenario, target, figure, verdict(ok)})
}

func main() {
	repo := flag.String("repo", ".", "repository root (bin/containerise is looked up there)")
	bin := flag.String("bin", "", "containerise binary (default: <repo>/bin/containerise)")
	proxy := flag.Duration("latency-proxy", 0, "only run the latency proxy in front of $STACK_MOTO_URL with this latency, print its URL, and serve until interrupted (for profiling by hand)")
	flag.Parse()
	if *proxy > 0 {
		if err := serveLatencyProxy(os.Getenv("STACK_MOTO_URL"), *proxy); err != nil {
			fmt.Fprintln(os.Stderr, "bench: error:", err)
			os.Exit(1)
		}
		return
	}
	if err := mainErr(*repo, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench: error:", err)
		os.Exit(1)
	}
}

func mainErr(repoArg, binArg string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	repo, err := filepath.Abs(repoArg)
	if err != nil {
		return err
	}
	b := &bench{ctx: ctx, out: os.Stdout, repo: repo, env: os.Environ()}
	if err := b.configure(binArg); err != nil {
		return err
	}
	only := map[string]bool{}
	for _, s := range strings.Split(os.Getenv("BENCH_ONLY"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			only[s] = true
		}
	}
	want := func(name string) bool { return len(only) == 0 || only[name] }

	// One stack serves every e2e test run and this bench on the machine, and
	// both reset moto: take the same lock the e2e tests take, so that neither
	// breaks the other and no test load skews the figures.
	unlock, err := lockStack()
	if err != nil {
		return err
	}
	defer unlock()

	b.tmp, err = os.MkdirTemp("", "containerise-bench-")
	if err != nil {
		return err
	}
	b.runID = filepath.Base(b.tmp)
	defer b.cleanup()

	if err := b.header(); err != nil {
		return err
	}
	start := time.Now()
	scenarios := []struct {
		name string
		fn   func() error
	}{
		{"push", b.scenarioPush},
		{"setup", b.scenarioSetupLatency},
		{"context", b.scenarioContext},
		{"startup", b.scenarioStartup},
		{"scale", b.scenarioScale},
		{"cold", b.scenarioCold},
		{"builders", b.scenarioBuilders},
		{"multistage", b.scenarioMultiStage},
	}
	for _, s := range scenarios {
		if !want(s.name) {
			continue
		}
		t := time.Now()
		progress("scenario %s", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("scenario %s: %w", s.name, err)
		}
		progress("scenario %s done in %s", s.name, time.Since(t).Round(time.Second))
	}
	b.summary(time.Since(start))
	return nil
}

// configure reads the stack's environment and finds the binaries.
func (b *bench) configure(binArg string) error {
	b.quick = os.Getenv("BENCH_QUICK") == "1"
	b.runs = 6 // a multiple of 2 and 3: each contender takes each place equally often
	b.settle = time.Second
	if b.quick {
		b.runs = 3
		b.settle = 200 * time.Millisecond
	}
	if v := os.Getenv("BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("BENCH_RUNS=%q: want a whole number of at least 1", v)
		}
		b.runs = n
	}
	b.bin = binArg
	if b.bin == "" {
		b.bin = filepath.Join(b.repo, "bin", "containerise")
	}
	if _, err := os.Stat(b.bin); err != nil {
		return fmt.Errorf("no containerise binary at %s (run make build)", b.bin)
	}
	b.peer = filepath.Join(b.repo, "peer", "blogflow.py")
	if _, err := os.Stat(b.peer); err != nil {
		return fmt.Errorf("the peer script: %w (run bench from the repository root, or pass -repo)", err)
	}
	need := map[string]*string{
		"STACK_MOTO_URL":          &b.motoURL,
		"STACK_REGISTRY_HOST":     &b.registryHost,
		"STACK_REGISTRY_PASSWORD": &b.registryPassword,
		"STACK_PYTHON":            &b.python,
		"STACK_AWS_CLI":           &b.awsCLI,
		"STACK_BASE_IMAGE":        &b.baseImage,
	}
	var missing []string
	for name, dst := range need {
		*dst = os.Getenv(name)
		if *dst == "" {
			missing = append(missing, name)
		}
	}
	for _, name := range []string{"AWS_ENDPOINT_URL", "DOCKER_HOST"} {
		if os.Getenv(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the stack's environment is missing %s: run through scripts/with-stack.sh (make bench)",
			strings.Join(missing, ", "))
	}
	return nil
}

// header names the machine and the method.
func (b *bench) header() error {
	engine := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"}})
	if engine.Err != nil {
		return fmt.Errorf("the Docker engine does not answer: %w", engine.Err)
	}
	client := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"version", "--format", "{{.Client.Version}}"}})
	driver := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"info", "--format", "{{.Driver}}"}})
	moto := execute(b.ctx, cmdSpec{Name: b.python, Args: []string{"-c", "import moto, boto3, docker; print(moto.__version__, boto3.__version__, docker.__version__)"}})
	if moto.Err != nil {
		return fmt.Errorf("the stack's python: %w", moto.Err)
	}
	versions := strings.Fields(moto.Stdout)
	for len(versions) < 3 {
		versions = append(versions, "?")
	}
	cz := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"--version"}})
	if err := b.resetMoto(); err != nil {
		return err
	}
	w := b.out
	fmt.Fprintln(w, "containerise bench")
	fmt.Fprintf(w, "  date          %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  machine       %s, %d cores (nproc), %s, %s\n", cpuModel(), runtime.NumCPU(), kernel(), memTotal())
	fmt.Fprintf(w, "  containerise  %s (%s)\n", strings.TrimSpace(cz.Stdout), b.bin)
	fmt.Fprintf(w, "  engine        Docker %s, %s storage driver; docker CLI %s\n", strings.TrimSpace(engine.Stdout),
		strings.TrimSpace(driver.Stdout), strings.TrimSpace(client.Stdout))
	fmt.Fprintf(w, "  moto          %s at %s (boto3 %s, docker-py %s for the peer script)\n", versions[0], b.motoURL, versions[1], versions[2])
	fmt.Fprintf(w, "  registry      https://%s (Distribution, TLS, basic auth)\n", b.registryHost)
	mode := "full"
	if b.quick {
		mode = "quick (BENCH_QUICK=1: small contexts, few runs)"
	}
	fmt.Fprintf(w, "  mode          %s; %d runs per figure unless said (BENCH_RUNS)\n", mode, b.runs)
	fmt.Fprintln(w, "  method        wall time from fork to exit of each command, as a user sees it. The")
	fmt.Fprintln(w, "                commands compared run ALTERNATING, one run each per round, the order")
	fmt.Fprintln(w, "                changing from round to round (A,B,C B,C,A C,A,B C,B,A A,C,B B,A,C: each")
	fmt.Fprintln(w, "                in each place, and after each other, equally often), after one unrecorded")
	fmt.Fprintln(w, "                warm-up round.")
	fmt.Fprintln(w, "                Figures are medians (with min - max), ratios are ratios of medians, peak")
	fmt.Fprintln(w, "                RSS is the child's ru_maxrss. Targets are printed beside the figures as")
	fmt.Fprintln(w, "                met/missed; nothing here fails on a time.")
	return nil
}

func (b *bench) summary(total time.Duration) {
	section(b.out, "Targets", fmt.Sprintf("bench wall time %s", total.Round(time.Second)))
	t := newTable("scenario", "target", "figure", "result").leftAlign(1, 2, 3)
	for _, r := range b.targets {
		t.add(r.scenario, r.target, r.figure, r.verdict)
	}
	t.write(b.out)
}

// cleanup removes the containers and images this run built, the temp
// folder, and moto's state.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	removeLabelled(ctx, "containerise-bench="+b.runID)
	if os.Getenv("BENCH_KEEP") == "1" {
		progress("kept %s (BENCH_KEEP=1)", b.tmp)
	} else if err := os.RemoveAll(b.tmp); err != nil {
		progress("warning: removing %s: %v", b.tmp, err)
	}
	if err := b.resetMotoCtx(ctx); err != nil {
		progress("warning: %v", err)
	}
}

// removeLabelled removes the containers and images that carry label. A
// classic build that fails keeps its intermediate containers, and those hold
// the intermediate images: containers first (they inherit the image's
// labels), then images until none is left.
func removeLabelled(ctx context.Context, label string) {
	containers := strings.Fields(execute(ctx, cmdSpec{Name: "docker", Args: []string{"container", "ls", "-a", "-q", "--filter", "label=" + label}}).Stdout)
	if len(containers) > 0 {
		progress("removing %d containers left by builds of this run", len(containers))
		if r := execute(ctx, cmdSpec{Name: "docker", Args: append([]string{"container", "rm", "-f"}, containers...)}); r.Err != nil {
			progress("warning: %v", r.Err)
		}
	}
	// Top-level images first (removing them prunes their untagged parents),
	// then whatever intermediate image is left.
	for _, all := range []bool{false, true} {
		args := []string{"image", "ls", "-q", "--filter", "label=" + label}
		if all {
			args = append(args, "-a")
		}
		images := uniq(strings.Fields(execute(ctx, cmdSpec{Name: "docker", Args: args}).Stdout))
		if len(images) == 0 {
			continue
		}
		progress("removing %d images built by this run", len(images))
		if r := execute(ctx, cmdSpec{Name: "docker", Args: append([]string{"image", "rm", "-f"}, images...)}); r.Err != nil {
			progress("warning: %v", r.Err)
		}
	}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// lockStack takes the exclusive lock that the e2e tests take on the shared stack.
func lockStack() (func(), error) {
	path := filepath.Join(os.TempDir(), "containerise-e2e.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the stack lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		progress("waiting for the stack lock %s (an e2e run holds it)", path)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("taking the stack lock: %w", err)
		}
	}
	return func() { f.Close() }, nil
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	out, err := exec.Command("uname", "-sr").Output()
	if err != nil {
		return runtime.GOOS
	}
	return strings.TrimSpace(string(out))
}

func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "? memory"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return fmt.Sprintf("%.0f GiB memory", float64(kb)/(1<<20))
		}
	}
	return "? memory"
}
