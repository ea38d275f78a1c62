package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerise/containerise/internal/testsupport/buildlog"
)

// slowStep is the early RUN of the cold-engine image: 4 s of work and a
// 16 MiB layer, as in the measurement.
const slowStep = "RUN sleep 4 && head -c 16777216 /dev/urandom > /data.bin"

// coldContext writes a context whose image has the slow early step, then a
// last layer from the file stamp. It returns the folder and a function that
// changes the last layer.
func (b *bench) coldContext(name string) (string, func(int) error, error) {
	dir := filepath.Join(b.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	dockerfile := fmt.Sprintf("FROM %s\n%s\nCOPY stamp /stamp\nLABEL containerise-bench=%s\nCMD [\"cat\", \"/stamp\"]\n", b.baseImage, slowStep, b.runID)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", nil, err
	}
	n := 0
	stamp := func(int) error {
		n++
		return os.WriteFile(filepath.Join(dir, "stamp"), fmt.Appendf(nil, "%s %s %d %d\n", b.runID, name, n, time.Now().UnixNano()), 0o644)
	}
	return dir, stamp, stamp(0)
}

// wipeEngine makes the engine cold, as a fresh CI engine is: every
// container, image and build cache removed, then the stack's base image
// loaded back from the copy saved at the start (the same image ID, as the
// stack imports it once).
func (b *bench) wipeEngine(baseTar string) error {
	docker := func(args ...string) (run, error) {
		return mustRun(b.ctx, cmdSpec{Name: "docker", Args: args})
	}
	if r, err := docker("container", "ls", "-aq"); err != nil {
		return err
	} else if ids := strings.Fields(r.Stdout); len(ids) > 0 {
		if _, err := docker(append([]string{"container", "rm", "-f"}, ids...)...); err != nil {
			return err
		}
	}
	if r, err := docker("image", "ls", "-aq"); err != nil {
		return err
	} else if ids := uniq(strings.Fields(r.Stdout)); len(ids) > 0 {
		// Parents go with their children; what is gone by then is no error.
		_ = execute(b.ctx, cmdSpec{Name: "docker", Args: append([]string{"image", "rm", "-f"}, ids...)})
	}
	if r, err := docker("image", "ls", "-aq"); err != nil {
		return err
	} else if left := strings.Fields(r.Stdout); len(left) > 0 {
		return fmt.Errorf("wiping the engine: %d images left", len(left))
	}
	if _, err := docker("builder", "prune", "-af"); err != nil {
		return err
	}
	_, err := docker("image", "load", "-q", "-i", baseTar)
	return err
}

// scenarioCold: the CI case on a cold engine. Each run meets an engine
// wiped clean, with only the last layer of the image changed since the
// previous run of the same contender, which pushed to its own tag.
func (b *bench) scenarioCold() error {
	vars, err := b.ciVars()
	if err != nil {
		return err
	}
	baseTar := filepath.Join(b.tmp, "base-image.tar")
	// The stack's BuildKit image (--builder container) comes back with the
	// base image, so that a wipe leaves the stack as it was.
	keep := []string{b.baseImage}
	if bk := os.Getenv("STACK_BUILDKIT_IMAGE"); bk != "" && execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"image", "inspect", bk}}).Err == nil {
		keep = append(keep, bk)
	}
	if _, err := mustRun(b.ctx, cmdSpec{Name: "docker", Args: append([]string{"image", "save", "-o", baseTar}, keep...)}); err != nil {
		return err
	}
	// Whatever happens, the engine keeps its base image.
	defer func() {
		if r := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"image", "inspect", b.baseImage}}); r.Err != nil {
			execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"image", "load", "-q", "-i", baseTar}})
		}
	}()
	dir, stamp, err := b.coldContext("cold-context")
	if err != nil {
		return err
	}
	before := func(round int) error {
		if err := stamp(round); err != nil {
			return err
		}
		if err := b.wipeEngine(baseTar); err != nil {
			return err
		}
		time.Sleep(b.settle)
		return nil
	}
	czEnv, err := b.toolEnv(vars, "cold-containerise")
	if err != nil {
		return err
	}
	peerEnv, err := b.toolEnv(vars, "cold-peer")
	if err != nil {
		return err
	}
	floorEnv, err := b.floorEnv()
	if err != nil {
		return err
	}
	floorImage := b.registryHost + "/circleci-ecr-test:cold-floor"
	// Cache hits are counted in the recorded rounds only.
	hits, round := 0, -1
	var misses []string // what containerise said about its cache in the rounds that missed
	czBefore := func(r int) error { round = r; return before(r) }
	cz := &contender{name: "containerise push", before: czBefore, once: func() (sample, error) {
		r := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"push", "--tag", "cold-containerise"}, Dir: dir, Env: czEnv})
		if r.Err != nil {
			return sample{}, r.Err
		}
		if !strings.Contains(r.Stdout, "/circleci-ecr-test:cold-containerise@sha256:") {
			return sample{}, fmt.Errorf("no pushed digest on stdout:\n%s", tail(r.Stdout, 10))
		}
		switch {
		case round < 0:
		case buildlog.StepCached(r.Stderr, slowStep):
			hits++
		default:
			var said []string
			for _, l := range strings.Split(r.Stderr, "\n") {
				if strings.HasPrefix(l, "cache: ") || strings.HasPrefix(l, "warning: ") || strings.Contains(l, "importing cache") {
					said = append(said, l)
				}
			}
			misses = append(misses, fmt.Sprintf("round %d: %s", round+1, strings.Join(said, " | ")))
		}
		return sampleOf(r), nil
	}}
	peer := &contender{name: "blog flow (peer)", before: before, once: func() (sample, error) {
		r := execute(b.ctx, cmdSpec{Name: b.python, Args: []string{b.peer, "--tag", "cold-peer"}, Dir: dir, Env: peerEnv})
		if r.Err != nil {
			return sample{}, r.Err
		}
		if !strings.Contains(r.Stdout, "/circleci-ecr-test:cold-peer@sha256:") {
			return sample{}, fmt.Errorf("no pushed digest on stdout:\n%s", tail(r.Stdout, 10))
		}
		return sampleOf(r), nil
	}}
	floor := &contender{name: "docker build && push", before: before, once: func() (sample, error) {
		build := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"build", "-t", floorImage, "."}, Dir: dir, Env: floorEnv})
		if build.Err != nil {
			return sample{}, build.Err
		}
		push := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"push", floorImage}, Dir: dir, Env: floorEnv})
		if push.Err != nil {
			return sample{}, push.Err
		}
		return sample{wall: build.Wall + push.Wall, rss: max(build.MaxRSSKiB, push.MaxRSSKiB), cpu: build.CPU + push.CPU}, nil
	}}
	cs := []*contender{cz, peer, floor}
	progress("cold: %d rounds of 3 contenders, the engine wiped before every run", b.runs)
	if err := alternate(b.runs, b.settle, cs); err != nil {
		return err
	}
	hitsRecorded := hits

	section(b.out, "6. Cold engine: only the last layer changed, the engine wiped before every run",
		"image: FROM "+b.baseImage+" + `"+slowStep+"` + COPY of a 1-line file that",
		"changes before every run; each contender pushes to its own tag of circleci-ecr-test.",
		"Before every run, outside the timed region: every container, image and the build cache removed from the",
		"engine, the base image loaded back (same ID): a fresh CI engine, as CircleCI's setup_remote_docker gives.",
		"containerise push: defaults (BuildKit, registry cache: pull of its tag's previous image, then the build).",
		"blog flow (peer): peer/blogflow.py, the blog's steps with boto3 + docker-py (classic builder, no cache source).",
		"docker build && push: the docker CLI's classic builder (DOCKER_BUILDKIT=0), no cache source, logged in beforehand.",
		fmt.Sprintf("%d alternating rounds after one warm-up round (which gives each contender its first image).", b.runs))
	t := newTable("contender", "median", "min-max", "vs peer", "vs floor", "CPU", "peak RSS")
	for _, c := range cs {
		t.add(c.name, ms(c.walls.median()), ms(c.walls.min())+" - "+ms(c.walls.max()),
			ratio(c.walls.median(), peer.walls.median()), ratio(c.walls.median(), floor.walls.median()),
			ms(c.cpus.median()), mib(medianInt(c.rss)))
	}
	t.write(b.out)
	r := float64(cz.walls.median()) / float64(peer.walls.median())
	fmt.Fprintf(b.out, "  containerise reused the slow step from the registry in %d of %d recorded runs (steady: every run)\n", hitsRecorded, b.runs)
	for _, m := range misses {
		fmt.Fprintf(b.out, "    missed in %s\n", m)
	}
	fmt.Fprintf(b.out, "  target: at most 0.3 of the blog flow's time: %.2f, %s\n", r, verdict(r <= 0.3))
	b.target("6 cold engine", "<= 0.3x the blog flow's time", fmt.Sprintf("%.2fx", r), r <= 0.3)
	b.target("6 cold engine", "cache holds every run", fmt.Sprintf("%d of %d", hitsRecorded, b.runs), hitsRecorded == b.runs)
	return nil
}

// scenarioBuilders: BuildKit against the classic builder, both through
// containerise push with its defaults, on the same warm build: the engine
// keeps its cache, and only the last layer changes.
func (b *bench) scenarioBuilders() error {
	vars, err := b.ciVars()
	if err != nil {
		return err
	}
	env, err := b.toolEnv(vars, "builders")
	if err != nil {
		return err
	}
	var cs []*contender
	for _, builder := range []string{"buildkit", "classic"} {
		dir, stamp, err := b.coldContext("builders-" + builder)
		if err != nil {
			return err
		}
		tag := "warm-" + builder
		cs = append(cs, &contender{name: "containerise push --builder " + builder, before: stamp, once: func() (sample, error) {
			r := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"push", "--builder", builder, "--tag", tag}, Dir: dir, Env: env})
			if r.Err != nil {
				return sample{}, r.Err
			}
			if !strings.Contains(r.Stdout, ":"+tag+"@sha256:") {
				return sample{}, fmt.Errorf("no pushed digest on stdout:\n%s", tail(r.Stdout, 10))
			}
			got := sampleOf(r)
			got.phases = pushPhases(r)
			return got, nil
		}})
	}
	progress("builders: %d rounds of 2 contenders, warm engine", b.runs)
	if err := alternate(b.runs, b.settle, cs); err != nil {
		return err
	}
	bk, classic := cs[0], cs[1]
	section(b.out, "7. BuildKit against the classic builder: the same warm build",
		"image: as in 6 (the slow step, then a last layer that changes before every run); each builder pushes",
		"to its own tag. The engine stays warm: it has the tag's previous image, which serves as the cache source",
		"as it is (nothing pulled, the build runs while AWS answers), so the figures are each builder's own overhead.",
		fmt.Sprintf("%d alternating rounds after one warm-up round, %s pause before each run.", b.runs, b.settle))
	t := newTable("builder", "median", "min-max", "vs classic", "start-up", "build (AWS alongside)", "push")
	for _, c := range cs {
		phase := func(i int) string {
			if c.phases[i].max() == 0 {
				return "-"
			}
			return ms(c.phases[i].median())
		}
		t.add(c.name, ms(c.walls.median()), ms(c.walls.min())+" - "+ms(c.walls.max()),
			ratio(c.walls.median(), classic.walls.median()), phase(0), phase(1), phase(2))
	}
	t.write(b.out)
	d := pairedDiff(bk, classic)
	fmt.Fprintf(b.out, "  BuildKit minus classic, round by round: median %s (range %s .. %s)\n", signedMs(d.median()), signedMs(d.min()), signedMs(d.max()))
	ok := bk.walls.median() <= classic.walls.median() || d.min() <= 0
	fmt.Fprintf(b.out, "  target: BuildKit, the default, no slower than the classic builder: %s\n", verdict(ok))
	b.target("7 builders, warm", "BuildKit no slower than classic", ratio(bk.walls.median(), classic.walls.median()), ok)
	return nil
}
