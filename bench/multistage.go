package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerise/containerise/internal/testsupport/buildlog"
)

// depsStep is the dependency step of the multi-stage image: slow, rarely
// changed, and in a build stage, so not in the final image.
const depsStep = "RUN echo fetching dependencies && sleep 4 && head -c 16777216 /dev/urandom > /deps.bin"

// multiStageContext writes a multi-stage context (dependencies, then a
// compile of the source, then a final stage with the artifact only) whose
// base comes from the registry, where a standalone daemon reaches it. The
// returned function changes the source only.
func (b *bench) multiStageContext(name, base string) (string, func(int) error, error) {
	dir := filepath.Join(b.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	df := fmt.Sprintf(`FROM %[1]s AS deps
%[2]s
FROM %[1]s AS build
COPY --from=deps /deps.bin /deps.bin
COPY src.txt /src.txt
RUN echo compiling && cat /src.txt > /app.txt
FROM %[1]s
COPY --from=build /app.txt /app.txt
LABEL containerise-bench=%[3]s
CMD ["cat", "/app.txt"]
`, base, depsStep, b.runID)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return "", nil, err
	}
	n := 0
	change := func(int) error {
		n++
		return os.WriteFile(filepath.Join(dir, "src.txt"), fmt.Appendf(nil, "%s %s %d %d\n", b.runID, name, n, time.Now().UnixNano()), 0o644)
	}
	return dir, change, change(0)
}

// benchDaemon is a buildkitd the bench starts afresh before each run of
// the remote builder: empty state, a cold builder.
type benchDaemon struct {
	bin, ctl, dir string
	addr          string
	cmd           *exec.Cmd
	done          chan struct{}
}

func (d *benchDaemon) restart() error {
	d.stop()
	if err := os.RemoveAll(d.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	d.addr = "unix://" + filepath.Join(d.dir, "buildkitd.sock")
	log, err := os.Create(filepath.Join(d.dir, "buildkitd.log"))
	if err != nil {
		return err
	}
	d.cmd = exec.Command(d.bin, "--root", filepath.Join(d.dir, "root"), "--addr", d.addr,
		"--oci-worker-snapshotter=native", "--containerd-worker=false", "--oci-worker-net=host")
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting buildkitd: %w", err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		log.Close()
		close(done)
	}(d.cmd, d.done)
	deadline := time.Now().Add(60 * time.Second)
	for exec.Command(d.ctl, "--addr", d.addr, "debug", "workers").Run() != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("buildkitd did not answer within 60s (log %s)", filepath.Join(d.dir, "buildkitd.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (d *benchDaemon) stop() {
	if d.cmd == nil {
		return
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
	d.cmd = nil
}

// scenarioMultiStage: the case. A cold builder, a multi-stage
// Dockerfile, only the source changed: the engine path (the engine wiped),
// the remote builder (a fresh daemon with empty state), the container
// builder (its container removed with the rest of the engine) and the
// blog's script (the engine wiped). BENCH_ONLY=multistage runs it alone.
func (b *bench) scenarioMultiStage() error {
	bkd, ctl, bkImage, baseRef := os.Getenv("STACK_BUILDKITD"), os.Getenv("STACK_BUILDCTL"), os.Getenv("STACK_BUILDKIT_IMAGE"), os.Getenv("STACK_BASE_REF")
	if bkd == "" || ctl == "" || bkImage == "" || baseRef == "" {
		return fmt.Errorf("the stack exports no STACK_BUILDKITD, STACK_BUILDCTL, STACK_BUILDKIT_IMAGE or STACK_BASE_REF: restart it with this checkout's scripts/stack.sh")
	}
	vars, err := b.ciVars()
	if err != nil {
		return err
	}
	// What a wiped engine gets back: the base image under both names (so
	// the blog's script, which cannot authenticate a base pull, finds it)
	// and the BuildKit image (which CI would pull once per engine).
	if _, err := mustRun(b.ctx, cmdSpec{Name: "docker", Args: []string{"tag", b.baseImage, baseRef}}); err != nil {
		return err
	}
	keepTar := filepath.Join(b.tmp, "multistage-keep.tar")
	if _, err := mustRun(b.ctx, cmdSpec{Name: "docker", Args: []string{"image", "save", "-o", keepTar, b.baseImage, baseRef, bkImage}}); err != nil {
		return err
	}
	defer func() {
		if r := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"image", "inspect", b.baseImage, bkImage}}); r.Err != nil {
			execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"image", "load", "-q", "-i", keepTar}})
		}
	}()
	daemon := &benchDaemon{bin: bkd, ctl: ctl, dir: filepath.Join(b.tmp, "buildkitd")}
	defer daemon.stop()

	type entry struct {
		name, tag string
		args      []string // push's, nil for the blog's script
		fresh     func() error
		hits      int
	}
	wipe := func() error { return b.wipeEngine(keepTar) }
	entries := []*entry{
		{name: "containerise push (engine)", tag: "ms-engine", args: []string{}, fresh: wipe},
		{name: "containerise push --builder remote", tag: "ms-remote", fresh: daemon.restart},
		{name: "containerise push --builder container", tag: "ms-container", args: []string{"--builder", "container", "--buildkit-image", bkImage, "--cache-tag", "ms-container-cache"}, fresh: wipe},
		{name: "blog flow (peer)", tag: "ms-peer", fresh: wipe},
	}
	var cs []*contender
	round := -1
	for _, e := range entries {
		dir, change, err := b.multiStageContext("multistage-"+e.tag, baseRef)
		if err != nil {
			return err
		}
		env, err := b.toolEnv(vars, "multistage-"+e.tag)
		if err != nil {
			return err
		}
		cs = append(cs, &contender{name: e.name,
			before: func(r int) error {
				round = r
				if err := change(r); err != nil {
					return err
				}
				if err := e.fresh(); err != nil {
					return err
				}
				time.Sleep(b.settle)
				return nil
			},
			once: func() (sample, error) {
				spec := cmdSpec{Name: b.python, Args: []string{b.peer, "--tag", e.tag}, Dir: dir, Env: env}
				if e.name != "blog flow (peer)" {
					args := append([]string{"push", "--tag", e.tag}, e.args...)
					if e.tag == "ms-remote" {
						args = append(args, "--builder", "remote", "--buildkit-host", daemon.addr, "--cache-tag", "ms-remote-cache")
					}
					spec = cmdSpec{Name: b.bin, Args: args, Dir: dir, Env: env}
				}
				r := execute(b.ctx, spec)
				if r.Err != nil {
					return sample{}, r.Err
				}
				if !strings.Contains(r.Stdout, "/circleci-ecr-test:"+e.tag+"@sha256:") {
					return sample{}, fmt.Errorf("no pushed digest on stdout:\n%s", tail(r.Stdout, 10))
				}
				if round >= 0 && buildlog.StepCached(r.Stderr, "RUN echo fetching dependencies") {
					e.hits++
				}
				return sampleOf(r), nil
			}})
	}
	progress("multistage: %d rounds of %d contenders, a cold builder before every run", b.runs, len(cs))
	if err := alternate(b.runs, b.settle, cs); err != nil {
		return err
	}
	peer := cs[len(cs)-1]
	section(b.out, "8. Cold builder, multi-stage Dockerfile, only the source changed",
		"image: a deps stage (`"+depsStep+"`), a build stage that copies the deps and compiles the source,",
		"and a final stage with the artifact only; FROM "+baseRef+" (a standalone daemon sees no engine images).",
		"Before every run, outside the timed region, the source changes and the builder is made cold: the engine",
		"wiped (base and BuildKit images loaded back) for the engine path, the container builder and the blog flow;",
		"a fresh buildkitd with empty state for the remote builder. Each pushes to its own tag (and cache tag).",
		"engine: containerise push's defaults (the engine's BuildKit, the tag's previous image pulled as cache).",
		"remote, container: registry cache in max mode at their own cache tag; container includes starting it.",
		fmt.Sprintf("%d alternating rounds after one warm-up round.", b.runs))
	t := newTable("contender", "median", "min-max", "vs peer", "deps step cached", "CPU", "peak RSS")
	for i, c := range cs {
		hits := "-"
		if entries[i].name != "blog flow (peer)" {
			hits = fmt.Sprintf("%d of %d", entries[i].hits, b.runs)
		}
		t.add(c.name, ms(c.walls.median()), ms(c.walls.min())+" - "+ms(c.walls.max()),
			ratio(c.walls.median(), peer.walls.median()), hits, ms(c.cpus.median()), mib(medianInt(c.rss)))
	}
	t.write(b.out)
	for i, c := range cs[1:3] {
		r := float64(c.walls.median()) / float64(peer.walls.median())
		fmt.Fprintf(b.out, "  target: %s at most 0.3 of the blog flow's time (aim 0.15): %.2f, %s\n", c.name, r, verdict(r <= 0.3))
		b.target("8 multi-stage, cold", entries[i+1].name+" <= 0.3x blog flow", fmt.Sprintf("%.2fx", r), r <= 0.3)
		b.target("8 multi-stage, cold", entries[i+1].name+": deps step cached every run", fmt.Sprintf("%d of %d", entries[i+1].hits, b.runs), entries[i+1].hits == b.runs)
	}
	return nil
}
