package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
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

	czEnv := b.ciEnv(vars, "DOCKER_CONFIG="+filepath.Join(b.tmp, "docker-config-containerise"))
	dockerEnv := withEnv(b.env, []string{"DOCKER_CONFIG=" + filepath.Join(b.tmp, "docker-config-floor"), "DOCKER_BUILDKIT=0"})
	for _, d := range []string{"docker-config-containerise", "docker-config-floor"} {
		if err := os.MkdirAll(filepath.Join(b.tmp, d), 0o700); err != nil {
			return err
		}
	}
	// Half the runs of the other scenarios (big contexts are slow), and even,
	// so each of the two takes each place equally often.
	rounds := max(2, (b.runs/2+1)&^1)

	type result struct {
		size   int64
		ignore bool
		cz, dk *contender
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
			cz := &contender{name: "containerise push", once: func() (time.Duration, int64, time.Duration, error) {
				r := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"push", "--tag", tag, "--context", dir}, Dir: b.tmp, Env: czEnv})
				return r.Wall, r.MaxRSSKiB, 0, r.Err
			}}
			dk := &contender{name: "docker build", once: func() (time.Duration, int64, time.Duration, error) {
				r := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"build", "-t", "containerise-bench/" + tag + ":" + b.runID, dir}, Dir: b.tmp, Env: dockerEnv})
				return r.Wall, r.MaxRSSKiB, 0, r.Err
			}}
			progress("context: %s, .dockerignore %v: %d rounds", sizeName(size), ignore, rounds)
			if err := alternate(rounds, pushSettle, []*contender{cz, dk}); err != nil {
				return err
			}
			results = append(results, result{size, ignore, cz, dk})
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
	}

	section(b.out, "3. Build context: "+sizeName(sizes[0])+" to "+sizeName(largest)+" of incompressible files",
		fmt.Sprintf("Files of %s of random (ChaCha8) bytes under data/; with .dockerignore, data/ is left out and", sizeName(part)),
		"the context is the Dockerfile and one small file. The Dockerfile COPYs only that file, so the whole",
		"context is read and sent to the engine, but no big layer is made (vfs storage driver here).",
		"containerise push: the full push (AWS, build, push of the small image, which is already in the registry",
		"after the first run). docker build: the docker CLI client (DOCKER_BUILDKIT=0), build only.",
		fmt.Sprintf("Peak RSS: the child's ru_maxrss. %d alternating rounds per line after one warm-up round.", rounds))
	t := newTable("context", ".dockerignore", "containerise RSS", "docker CLI RSS", "containerise", "docker build", "ratio")
	var czRSS []int64
	for _, r := range results {
		ign := "no"
		if r.ignore {
			ign = "data/"
		}
		rss := medianInt(r.cz.rss)
		czRSS = append(czRSS, rss)
		t.add(sizeName(r.size), ign, mib(rss), mib(medianInt(r.dk.rss)),
			ms(r.cz.walls.median()), ms(r.dk.walls.median()), ratio(r.cz.walls.median(), r.dk.walls.median()))
	}
	t.write(b.out)

	// Flat: the peak RSS at the largest context is within 8 MiB of the smallest.
	var peak, small, large int64
	for _, r := range results {
		rss := medianInt(r.cz.rss)
		peak = max(peak, rss)
		if !r.ignore && r.size == sizes[0] {
			small = rss
		}
		if !r.ignore && r.size == largest {
			large = rss
		}
	}
	under := peak < 64<<10
	flat := large-small <= 8<<10
	fmt.Fprintf(b.out, "\n  target: peak RSS under 64 MiB: highest %s, %s\n", mib(peak), verdict(under))
	fmt.Fprintf(b.out, "  target: flat as the context grows (%s -> %s within 8 MiB): %s -> %s, %s\n",
		sizeName(sizes[0]), sizeName(largest), mib(small), mib(large), verdict(flat))
	b.target("3 context", "push peak RSS under 64 MiB", "highest "+mib(peak), under)
	b.target("3 context", "RSS flat as the context grows (within 8 MiB)", mib(small)+" -> "+mib(large), flat)
	return nil
}
