package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// contender is one way of doing the same job, run once per round.
type contender struct {
	name string
	// before prepares a run outside the timed region (e.g. changes a file).
	before func(round int) error
	// once runs and times the job; extra is a figure to report beside it.
	once func() (wall time.Duration, rssKiB int64, extra time.Duration, err error)

	walls  series
	rss    []int64
	extras series
}

// alternate runs each contender once per round, after one unrecorded warm-up
// round. Each round starts one contender further on (A,B,C then B,C,A then
// C,A,B), so that over a multiple of len(cs) rounds each takes each place
// equally often: on this stack the run that follows a push was seen to be
// 60-90 ms slower, whoever made it. settle is a pause before every run,
// outside the timed region, for the engine to finish what the previous run
// left it doing.
func alternate(rounds int, settle time.Duration, cs []*contender) error {
	for round := -1; round < rounds; round++ {
		for i := range cs {
			c := cs[(i+max(round, 0))%len(cs)]
			if settle > 0 {
				time.Sleep(settle)
			}
			if c.before != nil {
				if err := c.before(round); err != nil {
					return err
				}
			}
			wall, rss, extra, err := c.once()
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if round < 0 {
				continue // warm-up
			}
			c.walls = append(c.walls, wall)
			c.rss = append(c.rss, rss)
			c.extras = append(c.extras, extra)
		}
		if round >= 0 {
			progress("  round %d/%d: %s", round+1, rounds, roundLine(cs))
		}
	}
	return nil
}

func roundLine(cs []*contender) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s", c.name, ms(c.walls[len(c.walls)-1])))
	}
	return strings.Join(parts, ", ")
}

var awsCallLine = regexp.MustCompile(`(?m)^aws: [a-z0-9]+\.[A-Za-z]+ (\S+) \S+$`)

// awsTime adds up the durations of the --verbose call lines.
func awsTime(stderr string) time.Duration {
	var total time.Duration
	for _, m := range awsCallLine.FindAllStringSubmatch(stderr, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			total += d
		}
	}
	return total
}

// pushSettle is the pause before each run of the push and context scenarios.
const pushSettle = time.Second

// scenarioPush: the same small image, built and pushed on the same stack by
// containerise push, by the seed's script and by docker build && docker push.
func (b *bench) scenarioPush() error {
	vars, err := b.ciVars()
	if err != nil {
		return err
	}
	dir := filepath.Join(b.tmp, "push-context")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dockerfile := fmt.Sprintf("FROM %s\nLABEL containerise-bench=%s\nCOPY stamp /stamp\nCMD [\"cat\", \"/stamp\"]\n", b.baseImage, b.runID)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	// The seed builds the folder it stands in: a copy of it sits in the
	// context, for all three alike.
	seed, err := os.ReadFile(b.seed)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "containerise.py"), seed, 0o644); err != nil {
		return err
	}
	stampCount := 0
	stamp := func(int) error {
		stampCount++
		return os.WriteFile(filepath.Join(dir, "stamp"), fmt.Appendf(nil, "%s run %d %d\n", b.runID, stampCount, time.Now().UnixNano()), 0o644)
	}

	// Each contender gets a Docker config folder of its own, so none reads or
	// writes the user's ~/.docker. Only the floor's is logged in beforehand.
	configs := map[string]string{}
	for _, name := range []string{"containerise", "seed", "floor"} {
		configs[name] = filepath.Join(b.tmp, "docker-config-"+name)
		if err := os.MkdirAll(configs[name], 0o700); err != nil {
			return err
		}
	}
	image := b.registryHost + "/circleci-ecr-test:v1"
	floorEnv := withEnv(b.env, []string{"DOCKER_CONFIG=" + configs["floor"], "DOCKER_BUILDKIT=0"})
	if _, err := mustRun(b.ctx, cmdSpec{Name: "docker", Args: []string{"login", b.registryHost, "-u", "AWS", "--password-stdin"},
		Env: floorEnv, In: b.registryPassword}); err != nil {
		return err
	}

	czEnv := b.ciEnv(vars, "DOCKER_CONFIG="+configs["containerise"])
	seedEnv := b.ciEnv(vars, "DOCKER_CONFIG="+configs["seed"])
	seedScript := filepath.Join(dir, "containerise.py")

	// contenders builds the three, each running before() ahead of every run.
	contenders := func(before func(int) error) []*contender {
		return []*contender{
			{
				name:   "containerise push",
				before: before,
				once: func() (time.Duration, int64, time.Duration, error) {
					r := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"--verbose", "push"}, Dir: dir, Env: czEnv})
					if r.Err != nil {
						return 0, 0, 0, r.Err
					}
					if !strings.Contains(r.Stdout, "/circleci-ecr-test:v1@sha256:") {
						return 0, 0, 0, fmt.Errorf("no pushed digest on stdout:\n%s", tail(r.Stdout, 10))
					}
					return r.Wall, r.MaxRSSKiB, awsTime(r.Stderr), nil
				},
			},
			{
				name:   "seed script",
				before: before,
				once: func() (time.Duration, int64, time.Duration, error) {
					r := execute(b.ctx, cmdSpec{Name: b.python, Args: []string{seedScript}, Dir: dir, Env: seedEnv})
					if r.Err != nil {
						return 0, 0, 0, r.Err
					}
					// The seed exits 0 even when the push failed: read its stream.
					if strings.Contains(r.Stdout, "'error'") || strings.Contains(r.Stdout, "errorDetail") {
						return 0, 0, 0, fmt.Errorf("the seed's push stream reports an error:\n%s", tail(r.Stdout, 10))
					}
					return r.Wall, r.MaxRSSKiB, 0, nil
				},
			},
			{
				name:   "docker build && push",
				before: before,
				once: func() (time.Duration, int64, time.Duration, error) {
					build := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"build", "-t", image, "."}, Dir: dir, Env: floorEnv})
					if build.Err != nil {
						return 0, 0, 0, build.Err
					}
					push := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"push", image}, Dir: dir, Env: floorEnv})
					if push.Err != nil {
						return 0, 0, 0, push.Err
					}
					// extra: the push's share, to show where the floor's time goes.
					return build.Wall + push.Wall, max(build.MaxRSSKiB, push.MaxRSSKiB), push.Wall, nil
				},
			},
		}
	}
	progress("push: changed file, %d rounds of 3 contenders", b.runs)
	changed := contenders(stamp)
	if err := alternate(b.runs, pushSettle, changed); err != nil {
		return err
	}
	progress("push: unchanged context, %d rounds of 3 contenders", b.runs)
	cached := contenders(nil)
	if err := alternate(b.runs, pushSettle, cached); err != nil {
		return err
	}

	section(b.out, "1. Push: the same small image, same stack",
		"image: FROM "+b.baseImage+" + COPY of a 1-line file + CMD; pushed to "+image+".",
		"containerise push: assume role + ECR token (with --verbose, to read its AWS time) + Engine API build + push.",
		"seed script: $STACK_PYTHON ../shared/seed/containerise.py, copied into the context (for all three alike).",
		"floor: docker build (DOCKER_BUILDKIT=0: the same classic builder the other two use) && docker push,",
		"       after a docker login done once beforehand with a temporary DOCKER_CONFIG.",
		"MAIN FIGURES, \"changed file\": before EVERY run, for all three alike, the copied file changes, so",
		"each run builds one new layer and pushes it, as a CI job after a commit does. For reference,",
		"\"unchanged\": the same context again, the build wholly cached and every layer already pushed,",
		"which leaves mostly each tool's own overhead.",
		fmt.Sprintf("%d alternating rounds per variant after one warm-up round, the order rotated each round,", b.runs),
		fmt.Sprintf("and a %s pause before every run (the engine was seen to keep working after a push).", pushSettle))
	b.pushTable("changed file (main)", changed, true)
	fmt.Fprintln(b.out)
	b.pushTable("unchanged (reference)", cached, false)
	return nil
}

// pushTable prints one variant of the push scenario, and its targets.
func (b *bench) pushTable(variant string, cs []*contender, main bool) {
	cz, seedC, floor := cs[0], cs[1], cs[2]
	fmt.Fprintf(b.out, "  %s\n", variant)
	t := newTable("contender", "median", "min-max", "vs seed", "vs floor", "minus floor", "peak RSS")
	for _, c := range cs {
		t.add(c.name, ms(c.walls.median()), ms(c.walls.min())+" - "+ms(c.walls.max()),
			ratio(c.walls.median(), seedC.walls.median()), ratio(c.walls.median(), floor.walls.median()),
			signedMs(c.walls.median()-floor.walls.median()), mib(medianInt(c.rss)))
	}
	t.write(b.out)
	fmt.Fprintf(b.out, "  floor split: docker build %s, docker push %s; containerise's AWS calls (as moto answers them): %s\n",
		ms(floor.walls.median()-floor.extras.median()), ms(floor.extras.median()), ms(cz.extras.median()))

	r := float64(cz.walls.median()) / float64(seedC.walls.median())
	best := float64(floor.walls.median()) / float64(seedC.walls.median())
	over := cz.walls.median() - floor.walls.median()
	fmt.Fprintf(b.out, "  target: at most 0.5 of the seed's time: %.2f (the floor itself is %.2f), %s\n", r, best, verdict(r <= 0.5))
	fmt.Fprintf(b.out, "  target: within 50 ms of the floor: %s, %s\n", signedMs(over), verdict(over <= 50*time.Millisecond))
	label := "1 push, changed"
	if !main {
		label = "1 push, unchanged"
	}
	b.target(label, "<= 0.5x the seed's time", fmt.Sprintf("%.2fx (floor %.2fx)", r, best), r <= 0.5)
	b.target(label, "within 50 ms of the floor", signedMs(over)+" (AWS calls "+ms(cz.extras.median())+")", over <= 50*time.Millisecond)
}

func signedMs(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return "-" + ms(-d)
}
