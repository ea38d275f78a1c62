package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// contextSizes are the build context sizes, with the size of each random file.
func (b *bench) contextSizes() (sizes []int64, part int64) {
	if b.quick {
		return []int64{16 << 20, 32 << 20, 64 << 20}, 4 << 20
	}
	return []int64{256 << 20, 512 << 20, 1 << 30}, 16 << 20
}

func sizeName(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// writeRandom writes n bytes that no compressor can shrink (ChaCha8 output).
func writeRandom(path string, n int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	_, err = io.CopyN(f, rand.NewChaCha8(key), n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// scenarioContext: containerise push and docker build on contexts of 256 MiB,
// 512 MiB and 1 GiB of random files, with and without a .dockerignore that
// leaves out all but one small file. The Dockerfile copies nothing big, so the
// figures are the cost of reading, filtering and sending the context.
func (b *bench) scenarioContext() error {
	vars, err := b.ciVars()
	if err != nil {
		return err
	}
	sizes, part := b.contextSizes()
	largest := sizes[len(sizes)-1]
	pool := filepath.Join(b.tmp, "random")
	if err := os.MkdirAll(pool, 0o755); err != nil {
		return err
	}
	progress("context: writing %s of random files", sizeName(largest))
	t0 := time.Now()
	nParts := int(largest / part)
	for i := range nParts {
		if err := writeRandom(filepath.Join(pool, fmt.Sprintf("part-%03d.bin", i)), part, uint64(i)); err != nil {
			return err
		}
	}
	progress("context: written in %s", time.Since(t0).Round(time.Millisecond))

	dockerfile := fmt.Sprintf("FROM %s\nLABEL containerise-bench=%s\nCOPY keep.txt /keep.txt\nCMD [\"cat\", \"/keep.txt\"]\n", b.baseImage, b.runID)
	// One folder per size and variant, the random files hard-linked from the pool.
	makeContext := func(size int64, ignore bool) (string, error) {
		name := fmt.Sprintf("ctx-%dM", size>>20)
		if ignore {
			name += "-ignore"
		}
		dir := filepath.Join(b.tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			return "", err
		}
		for i := range int(size / part) {
			file := fmt.Sprintf("part-%03d.bin", i)
			if err := os.Link(filepath.Join(pool, file), filepath.Join(dir, "data", file)); err != nil {
				return "", err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("the one file the image copies\n"), 0o644); err != nil {
			return "", err
		}
		if ignore {
			if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("data/\n"), 0o644); err != nil {
				return "", err
			}
		}
		return dir, nil
	}

	czEnv, err := b.toolEnv(vars, "containerise")
	if err != nil {
		return err
	}
	dockerEnv, err := b.floorEnv()
	if err != nil {
		return err
	}
	rounds := b.runs

	type result struct {
		size       int64
		ignore     bool
		cz, dk, fl *contender
		// czFirst is containerise's first (warm-up) run on the folder: with
		// BuildKit the engine then receives the whole context; later runs
		// send only what changed (the session's shared key).
		czFirst sample
	}
	var results []result
	for _, size := range sizes {
		for _, ignore := range []bool{false, true} {
			dir, err := makeContext(size, ignore)
			if err != nil {
				return err
			}
			tag := fmt.Sprintf("ctx-%d", size>>20)
			if ignore {
				tag += "-ignore"
			}
			var czFirst *sample
			cz := &contender{name: "containerise push", once: func() (sample, error) {
				r := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"push", "--tag", tag, "--context", dir}, Dir: b.tmp, Env: czEnv})
				got := sampleOf(r)
				if czFirst == nil {
					czFirst = &got
				}
				return got, r.Err
			}}
			dk := &contender{name: "docker build", once: func() (sample, error) {
				r := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"build", "-t", "containerise-bench/" + tag + ":" + b.runID, dir}, Dir: b.tmp, Env: dockerEnv})
				return sampleOf(r), r.Err
			}}
			image := b.registryHost + "/circleci-ecr-test:" + tag + "-docker"
			fl := &contender{name: "docker build && push", once: func() (sample, error) {
				build := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"build", "-t", image, dir}, Dir: b.tmp, Env: dockerEnv})
				if build.Err != nil {
					return sample{}, build.Err
				}
				push := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"push", image}, Dir: b.tmp, Env: dockerEnv})
				return sample{wall: build.Wall + push.Wall, rss: max(build.MaxRSSKiB, push.MaxRSSKiB), cpu: build.CPU + push.CPU}, push.Err
			}}
			progress("context: %s, .dockerignore %v: %d rounds", sizeName(size), ignore, rounds)
			if err := alternate(rounds, b.settle, []*contender{cz, dk, fl}); err != nil {
				return err
			}
			results = append(results, result{size, ignore, cz, dk, fl, *czFirst})
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
	}

	// BuildKit asks only for the files the Dockerfile copies, so the runs
	// above send the engine little. To measure the whole context going
	// through the session, a Dockerfile bind-mounts all of it into a RUN
	// step, in a fresh folder each run (the engine keeps what it received of
	// a folder).
	whole, err := b.wholeContextRuns(largest, part, pool, czEnv)
	if err != nil {
		return err
	}

	section(b.out, "3. Build context: "+sizeName(sizes[0])+" to "+sizeName(largest)+" of incompressible files",
		fmt.Sprintf("Files of %s of random (ChaCha8) bytes under data/; with .dockerignore, data/ is left out and", sizeName(part)),
		"the context is the Dockerfile and one small file. The Dockerfile COPYs only that file, so the whole",
		"context is read and sent to the engine, but no big layer is made (vfs storage driver here).",
		"containerise push: the full push with its defaults (BuildKit, whose session serves the context file by file;",
		"AWS; push of the small image, already in the registry after the first run). docker build: the docker CLI",
		"client (DOCKER_BUILDKIT=0), build only; docker build && push: the same plus the push, like for like with",
		"containerise push (logged in beforehand).",
		"Peak RSS: the child's ru_maxrss; CPU: the child's user + system time (the engine's is not counted).",
		fmt.Sprintf("%d alternating rounds per line (order changed each round) after one warm-up round, %s pause before each run.", rounds, b.settle))
	ignored := func(r result) string {
		if r.ignore {
			return "data/"
		}
		return "no"
	}
	fmt.Fprintln(b.out, "  peak RSS (containerise's first run on a folder sends the engine the whole context; later runs")
	fmt.Fprintln(b.out, "  send only what changed, as the engine keeps what it received of that folder)")
	t := newTable("context", ".dockerignore", "containerise push", "first run", "first run's time", "docker build (CLI)")
	for _, r := range results {
		t.add(sizeName(r.size), ignored(r), mib(medianInt(r.cz.rss)), mib(r.czFirst.rss), ms(r.czFirst.wall), mib(medianInt(r.dk.rss)))
	}
	t.write(b.out)
	fmt.Fprintln(b.out, "\n  wall time and the client's CPU time")
	t = newTable("context", ".dockerignore", "containerise push", "docker build", "ratio", "build && push", "ratio", "CPU: containerise", "docker build")
	for _, r := range results {
		t.add(sizeName(r.size), ignored(r), ms(r.cz.walls.median()), ms(r.dk.walls.median()), ratio(r.cz.walls.median(), r.dk.walls.median()),
			ms(r.fl.walls.median()), ratio(r.cz.walls.median(), r.fl.walls.median()), ms(r.cz.cpus.median()), ms(r.dk.cpus.median()))
	}
	t.write(b.out)

	// Flat: the peak RSS at the largest context is within 8 MiB of the smallest.
	fmt.Fprintf(b.out, "\n  the whole %s through the BuildKit session (RUN --mount=type=bind of the context, a fresh folder\n", sizeName(largest))
	fmt.Fprintf(b.out, "  each run, so the engine receives all of it; %d runs)\n", len(whole.walls))
	t = newTable("context", "containerise push", "min-max", "peak RSS", "highest", "CPU")
	t.add(sizeName(largest), ms(whole.walls.median()), ms(whole.walls.min())+" - "+ms(whole.walls.max()),
		mib(medianInt(whole.rss)), mib(slices.Max(whole.rss)), ms(whole.cpus.median()))
	t.write(b.out)

	// Both on the first runs, which send the whole context.
	var peak, small, large int64
	for _, r := range results {
		rss := r.czFirst.rss
		peak = max(peak, rss, medianInt(r.cz.rss))
		if !r.ignore && r.size == sizes[0] {
			small = rss
		}
		if !r.ignore && r.size == largest {
			large = rss
		}
	}
	peak = max(peak, slices.Max(whole.rss))
	under := peak < 64<<10
	flat := large-small <= 8<<10
	fmt.Fprintf(b.out, "\n  target: peak RSS under 64 MiB: highest %s, %s\n", mib(peak), verdict(under))
	fmt.Fprintf(b.out, "  target: flat as the context grows (first runs, %s -> %s within 8 MiB): %s -> %s, %s\n",
		sizeName(sizes[0]), sizeName(largest), mib(small), mib(large), verdict(flat))
	b.target("3 context", "push peak RSS under 64 MiB", "highest "+mib(peak), under)
	b.target("3 context", "RSS flat as the context grows (within 8 MiB)", mib(small)+" -> "+mib(large), flat)
	return nil
}

// wholeContextRuns pushes a Dockerfile that bind-mounts the whole context
// into a RUN step, so BuildKit asks the session for every file: a fresh
// folder of size bytes (hard links into pool) for each run. It fails if a
// run's progress does not show the whole context transferred.
func (b *bench) wholeContextRuns(size, part int64, pool string, env []string) (*contender, error) {
	runs := max(3, b.runs/2)
	c := &contender{name: "containerise push, whole context"}
	dockerfile := fmt.Sprintf("FROM %s\nLABEL containerise-bench=%s\nRUN --mount=type=bind,target=/ctx du -sk /ctx/data > /du.txt\n", b.baseImage, b.runID)
	progress("context: the whole %s through the session, %d runs", sizeName(size), runs)
	for i := range runs {
		dir := filepath.Join(b.tmp, fmt.Sprintf("ctx-whole-%d", i))
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			return nil, err
		}
		for j := range int(size / part) {
			file := fmt.Sprintf("part-%03d.bin", j)
			if err := os.Link(filepath.Join(pool, file), filepath.Join(dir, "data", file)); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			return nil, err
		}
		time.Sleep(b.settle)
		r := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"push", "--no-cache", "--tag", "ctx-whole", "--context", dir}, Dir: b.tmp, Env: env})
		if r.Err != nil {
			return nil, r.Err
		}
		if sent := contextSent(r.Stderr); float64(sent) < 0.99*float64(size) {
			return nil, fmt.Errorf("the push of the whole %s shows %d bytes of context sent:\n%s", sizeName(size), sent, tail(r.Stderr, 30))
		}
		c.walls = append(c.walls, r.Wall)
		c.rss = append(c.rss, r.MaxRSSKiB)
		c.cpus = append(c.cpus, r.CPU)
		progress("  run %d/%d: %s, peak RSS %s", i+1, runs, ms(r.Wall), mib(r.MaxRSSKiB))
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// contextSent reads, from BuildKit's plain progress, how much context the
// engine received ("#5 transferring context: 1.07GB 8.7s done"); 0 if none.
func contextSent(stderr string) int64 {
	var sent int64
	for _, line := range strings.Split(stderr, "\n") {
		_, rest, ok := strings.Cut(line, "transferring context: ")
		if !ok {
			continue
		}
		if n, err := units.FromHumanSize(strings.Fields(rest)[0]); err == nil && n > sent {
			sent = n
		}
	}
	return sent
}
