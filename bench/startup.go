package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// scenarioStartup: how long a command takes to start and print, against the
// AWS CLI (and the docker CLI, another Go program, for reference).
func (b *bench) scenarioStartup() error {
	rounds := 20
	if b.quick {
		rounds = 10
	}
	if v := os.Getenv("BENCH_STARTUP_RUNS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			rounds = n
		}
	}
	cmd := func(name string, spec cmdSpec) *contender {
		spec.Dir = b.tmp
		return &contender{name: name, once: func() (sample, error) {
			r := execute(b.ctx, spec)
			return sampleOf(r), r.Err
		}}
	}
	cs := []*contender{
		cmd("containerise --version", cmdSpec{Name: b.bin, Args: []string{"--version"}}),
		cmd("containerise push --help", cmdSpec{Name: b.bin, Args: []string{"push", "--help"}}),
		cmd("aws --version", cmdSpec{Name: b.awsCLI, Args: []string{"--version"}}),
		cmd("docker --version", cmdSpec{Name: "docker", Args: []string{"--version"}}),
	}
	progress("startup: %d rounds", rounds)
	if err := alternate(rounds, 0, cs); err != nil {
		return err
	}
	section(b.out, "4. Start-up",
		fmt.Sprintf("Wall time from fork to exit, %d alternating rounds after one warm-up round.", rounds),
		"aws is the AWS CLI v1 of the stack's venv ($STACK_AWS_CLI); docker --version is for reference.")
	aws := cs[2].walls.median()
	t := newTable("command", "median", "min-max", "vs aws --version", "peak RSS")
	for _, c := range cs {
		t.add(c.name, ms(c.walls.median()), ms(c.walls.min())+" - "+ms(c.walls.max()), ratio(c.walls.median(), aws), mib(medianInt(c.rss)))
	}
	t.write(b.out)
	fmt.Fprintln(b.out)
	for _, c := range cs[:2] {
		ok := c.walls.median() < 20*time.Millisecond
		fmt.Fprintf(b.out, "  target: %s under 20 ms: %s, %s\n", c.name, ms(c.walls.median()), verdict(ok))
		b.target("4 start-up", c.name+" under 20 ms", ms(c.walls.median()), ok)
	}
	return nil
}
