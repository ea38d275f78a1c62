package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// contender is one way of doing the same job, run once per round.
type contender struct {
	name string
	// before prepares a run outside the timed region (e.g. changes a file).
	before func(round int) error
	// once runs and times the job.
	once func() (sample, error)

	walls  series
	rss    []int64
	cpus   series
	extras series
	phases [3]series
}

// sample is what one run of a contender measured.
type sample struct {
	wall  time.Duration
	rss   int64         // peak RSS, KiB
	cpu   time.Duration // user + system
	extra time.Duration // a figure to report beside the wall time
	// phases: before the build request, build, push (zero when unknown)
	phases [3]time.Duration
}

func sampleOf(r run) sample { return sample{wall: r.Wall, rss: r.MaxRSSKiB, cpu: r.CPU} }

// alternate runs each contender once per round, after one unrecorded warm-up
// round. The order changes from round to round: rotated (A,B,C then B,C,A
// then C,A,B), then the same reversed (C,B,A, A,C,B, B,A,C). Over a multiple
// of 2n rounds each contender takes each place, and follows each other one,
// equally often: on this stack the run that follows a push was seen to be
// 60-90 ms slower, so rotation alone (where A always follows C) would bias.
// settle is a pause before every run, outside the timed region, for the
// engine to finish what the previous run left it doing.
func alternate(rounds int, settle time.Duration, cs []*contender) error {
	for round := -1; round < rounds; round++ {
		for _, c := range roundOrder(cs, max(round, 0)) {
			if settle > 0 {
				time.Sleep(settle)
			}
			if c.before != nil {
				if err := c.before(round); err != nil {
					return err
				}
			}
			got, err := c.once()
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if round < 0 {
				continue // warm-up
			}
			c.walls = append(c.walls, got.wall)
			c.rss = append(c.rss, got.rss)
			c.cpus = append(c.cpus, got.cpu)
			c.extras = append(c.extras, got.extra)
			for i, p := range got.phases {
				c.phases[i] = append(c.phases[i], p)
			}
		}
		if round >= 0 {
			progress("  round %d/%d: %s", round+1, rounds, roundLine(cs))
		}
	}
	return nil
}

// roundOrder is the order of the contenders in a round (see alternate).
func roundOrder(cs []*contender, round int) []*contender {
	n := len(cs)
	order := make([]*contender, n)
	for i := range n {
		order[i] = cs[(i+round)%n]
	}
	if (round/n)%2 == 1 {
		slices.Reverse(order)
	}
	return order
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

// toolEnv is a CI job's environment with a Docker config folder of its own
// (empty: no login), so no tool reads or writes the user's ~/.docker.
func (b *bench) toolEnv(vars map[string]string, name string) ([]string, error) {
	dir := filepath.Join(b.tmp, "docker-config-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return b.ciEnv(vars, "DOCKER_CONFIG="+dir), nil
}

// floorEnv is the docker CLI's environment for the floor: the classic builder
// and a Docker config folder of its own, logged in to the registry once.
func (b *bench) floorEnv() ([]string, error) {
	dir := filepath.Join(b.tmp, "docker-config-floor")
	env := withEnv(b.env, []string{"DOCKER_CONFIG=" + dir, "DOCKER_BUILDKIT=0"})
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return env, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	_, err := mustRun(b.ctx, cmdSpec{Name: "docker", Args: []string{"login", b.registryHost, "-u", "AWS", "--password-stdin"},
		Env: env, In: b.registryPassword})
	return env, err
}

// scenarioPush: the same small image, built and pushed on the same stack by
// containerise push, by the peer script doing the blog's steps and by
// docker build && docker push.
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
	stampCount := 0
	stamp := func(int) error {
		stampCount++
		return os.WriteFile(filepath.Join(dir, "stamp"), fmt.Appendf(nil, "%s run %d %d\n", b.runID, stampCount, time.Now().UnixNano()), 0o644)
	}

	image := b.registryHost + "/circleci-ecr-test:v1"
	floorEnv, err := b.floorEnv()
	if err != nil {
		return err
	}
	czEnv, err := b.toolEnv(vars, "containerise")
	if err != nil {
		return err
	}
	peerEnv, err := b.toolEnv(vars, "peer")
	if err != nil {
		return err
	}

	// contenders builds the three, each running before() ahead of every run.
	contenders := func(before func(int) error) []*contender {
		return []*contender{
			{
				name:   "containerise push",
				before: before,
				once: func() (sample, error) {
					r := execute(b.ctx, cmdSpec{Name: b.bin, Args: []string{"--verbose", "push"}, Dir: dir, Env: czEnv})
					if r.Err != nil {
						return sample{}, r.Err
					}
					if !strings.Contains(r.Stdout, "/circleci-ecr-test:v1@sha256:") {
						return sample{}, fmt.Errorf("no pushed digest on stdout:\n%s", tail(r.Stdout, 10))
					}
					got := sampleOf(r)
					got.extra = awsTime(r.Stderr)
					got.phases = pushPhases(r)
					return got, nil
				},
			},
			{
				name:   "blog flow (peer)",
				before: before,
				once: func() (sample, error) {
					// It builds the working directory, as containerise push does.
					r := execute(b.ctx, cmdSpec{Name: b.python, Args: []string{b.peer}, Dir: dir, Env: peerEnv})
					if r.Err != nil {
						return sample{}, r.Err
					}
					if !strings.Contains(r.Stdout, "/circleci-ecr-test:v1@sha256:") {
						return sample{}, fmt.Errorf("no pushed digest on stdout:\n%s", tail(r.Stdout, 10))
					}
					return sampleOf(r), nil
				},
			},
			{
				name:   "docker build && push",
				before: before,
				once: func() (sample, error) {
					build := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"build", "-t", image, "."}, Dir: dir, Env: floorEnv})
					if build.Err != nil {
						return sample{}, build.Err
					}
					push := execute(b.ctx, cmdSpec{Name: "docker", Args: []string{"push", image}, Dir: dir, Env: floorEnv})
					if push.Err != nil {
						return sample{}, push.Err
					}
					// extra: the push's share, to show where the floor's time goes.
					return sample{wall: build.Wall + push.Wall, rss: max(build.MaxRSSKiB, push.MaxRSSKiB),
						cpu: build.CPU + push.CPU, extra: push.Wall, phases: [3]time.Duration{0, build.Wall, push.Wall}}, nil
				},
			},
		}
	}
	progress("push: changed file, %d rounds of 3 contenders", b.runs)
	changed := contenders(stamp)
	if err := alternate(b.runs, b.settle, changed); err != nil {
		return err
	}
	progress("push: unchanged context, %d rounds of 3 contenders", b.runs)
	cached := contenders(nil)
	if err := alternate(b.runs, b.settle, cached); err != nil {
		return err
	}

	section(b.out, "1. Push: the same small image, same stack",
		"image: FROM "+b.baseImage+" + COPY of a 1-line file + CMD; pushed to "+image+".",
		"containerise push: its defaults (BuildKit, registry cache: the engine has the tag's previous image after the",
		"       warm-up, so it builds from it while AWS answers) + push; --verbose, to read its AWS time.",
		"blog flow (peer): $STACK_PYTHON peer/blogflow.py, the project's boto3 + docker-py script doing the blog",
		"       post's steps (STS, ECR token, build, push with per-request credentials), in the context folder.",
		"floor: docker build (DOCKER_BUILDKIT=0: the classic builder, as the peer's docker-py) && docker push,",
		"       after a docker login done once beforehand with a temporary DOCKER_CONFIG.",
		"MAIN FIGURES, \"changed file\": before EVERY run, for all three alike, the copied file changes, so",
		"each run builds one new layer and pushes it, as a CI job after a commit does. For reference,",
		"\"unchanged\": the same context again, the build wholly cached and every layer already pushed,",
		"which leaves mostly each tool's own overhead.",
		fmt.Sprintf("%d alternating rounds per variant after one warm-up round, the order changed each round,", b.runs),
		fmt.Sprintf("and a %s pause before every run (the engine was seen to keep working after a push).", b.settle))
	b.pushTable("changed file (main)", changed, true)
	fmt.Fprintln(b.out)
	b.pushTable("unchanged (reference)", cached, false)
	return nil
}

// pushTable prints one variant of the push scenario, and its targets.
func (b *bench) pushTable(variant string, cs []*contender, main bool) {
	cz, peerC, floor := cs[0], cs[1], cs[2]
	fmt.Fprintf(b.out, "  %s\n", variant)
	t := newTable("contender", "median", "min-max", "vs peer", "vs floor", "minus floor", "CPU", "peak RSS")
	for _, c := range cs {
		t.add(c.name, ms(c.walls.median()), ms(c.walls.min())+" - "+ms(c.walls.max()),
			ratio(c.walls.median(), peerC.walls.median()), ratio(c.walls.median(), floor.walls.median()),
			signedMs(c.walls.median()-floor.walls.median()), ms(c.cpus.median()), mib(medianInt(c.rss)))
	}
	t.write(b.out)
	phase := func(c *contender, i int) string {
		if c.phases[i].max() == 0 {
			return "-"
		}
		return ms(c.phases[i].median())
	}
	fmt.Fprintln(b.out)
	p := newTable("where the time goes", "start-up", "build (AWS alongside)", "push")
	p.add("containerise push", phase(cz, 0), phase(cz, 1), phase(cz, 2))
	p.add("docker build && push", "(login before)", phase(floor, 1), phase(floor, 2))
	p.write(b.out)
	fmt.Fprintf(b.out, "  containerise's AWS calls (AssumeRole, GetAuthorizationToken, as moto answers them): %s\n", ms(cz.extras.median()))

	r := float64(cz.walls.median()) / float64(peerC.walls.median())
	best := float64(floor.walls.median()) / float64(peerC.walls.median())
	// Round by round, containerise minus the floor: pairing takes out the
	// engine's drift over the scenario; the range shows the engine's noise.
	d := pairedDiff(cz, floor)
	over := d.median()
	fmt.Fprintf(b.out, "  target: at most 0.5 of the peer's time: %.2f (the floor itself is %.2f), %s\n", r, best, verdict(r <= 0.5))
	fmt.Fprintf(b.out, "  target: within 50 ms of the floor: median of the per-round differences %s (range %s .. %s), %s\n",
		signedMs(over), signedMs(d.min()), signedMs(d.max()), verdict(over <= 50*time.Millisecond))
	label := "1 push, changed"
	if !main {
		label = "1 push, unchanged"
	}
	b.target(label, "<= 0.5x the peer's time", fmt.Sprintf("%.2fx (floor %.2fx)", r, best), r <= 0.5)
	b.target(label, "within 50 ms of the floor", signedMs(over)+" (AWS calls "+ms(cz.extras.median())+")", over <= 50*time.Millisecond)
}

// pushPhases splits a containerise push by the arrival of its "building"
// and "pushing" progress lines: start-up, build (with the AWS calls running
// alongside it), push. Zero when the
// lines are not found (the wording is containerise's, not a contract).
func pushPhases(r run) [3]time.Duration {
	var building, pushing time.Duration
	for _, l := range r.StderrLines {
		switch {
		case building == 0 && strings.HasPrefix(l.Text, "building "):
			building = l.At
		case pushing == 0 && strings.HasPrefix(l.Text, "pushing "):
			pushing = l.At
		}
	}
	if building == 0 || pushing < building {
		return [3]time.Duration{}
	}
	return [3]time.Duration{building, pushing - building, r.Wall - pushing}
}

// pairedDiff is, round by round, a's time minus b's.
func pairedDiff(a, b *contender) series {
	var d series
	for i := range min(len(a.walls), len(b.walls)) {
		d = append(d, a.walls[i]-b.walls[i])
	}
	return d
}

func signedMs(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return "-" + ms(-d)
}
