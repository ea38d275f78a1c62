package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// run is one finished child process: what it printed, how long it took from
// start to exit, and its peak resident set size.
type run struct {
	Stdout, Stderr string
	StderrLines    []stampedLine // stderr, each line with the time it arrived
	Wall           time.Duration
	MaxRSSKiB      int64         // ru_maxrss of the child (and any child it waited for), KiB on Linux
	CPU            time.Duration // user + system CPU time of the child
	Err            error
}

// MaxRSSMiB is the peak RSS in MiB.
func (r run) MaxRSSMiB() float64 { return float64(r.MaxRSSKiB) / 1024 }

// cmdSpec describes a child process to time.
type cmdSpec struct {
	Name string   // executable
	Args []string // arguments, without the executable
	Dir  string
	Env  []string // full environment; nil means the bench's own
	In   string   // standard input
}

func (c cmdSpec) String() string {
	return strings.TrimSpace(c.Name + " " + strings.Join(c.Args, " "))
}

// execute runs spec to completion and measures it. The clock starts just
// before fork and stops when wait returns, so process start-up is included,
// as a user would see it.
func execute(ctx context.Context, spec cmdSpec) run {
	cmd := exec.CommandContext(ctx, spec.Name, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	if spec.In != "" {
		cmd.Stdin = strings.NewReader(spec.In)
	}
	var stdout bytes.Buffer
	stderr := &stampWriter{}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	start := time.Now()
	stderr.start = start
	err := cmd.Run()
	wall := time.Since(start)
	r := run{Wall: wall, Err: err, StderrLines: stderr.done()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSSKiB = ru.Maxrss
		}
		r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	r.Stdout, r.Stderr = stdout.String(), stderr.all.String()
	if err != nil {
		r.Err = fmt.Errorf("%s: %w\n%s", spec, err, tail(r.Stderr+r.Stdout, 25))
	}
	return r
}

// stampedLine is a line of output and when it arrived, from the child's start.
type stampedLine struct {
	At   time.Duration
	Text string
}

// stampWriter keeps what a child writes and stamps each line as it arrives:
// with --verbose, that tells when each AWS call completed.
type stampWriter struct {
	start   time.Time
	all     bytes.Buffer
	partial []byte
	lines   []stampedLine
}

func (w *stampWriter) Write(p []byte) (int, error) {
	at := time.Since(w.start)
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, stampedLine{At: at, Text: string(w.partial[:i])})
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *stampWriter) done() []stampedLine {
	if len(w.partial) > 0 {
		w.lines = append(w.lines, stampedLine{At: time.Since(w.start), Text: string(w.partial)})
		w.partial = nil
	}
	return w.lines
}

// mustRun is execute that turns a failure into an error the caller returns.
func mustRun(ctx context.Context, spec cmdSpec) (run, error) {
	r := execute(ctx, spec)
	return r, r.Err
}

// tail keeps the last n lines of s, for error messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// withEnv returns env with each "K=V" of set replacing any K, and the names in
// unset removed.
func withEnv(env []string, set []string, unset ...string) []string {
	drop := map[string]bool{}
	for _, u := range unset {
		drop[u] = true
	}
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

// ---------------------------------------------------------------- statistics

// series is the samples of one measured thing.
type series []time.Duration

func (s series) median() time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

func (s series) min() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Min(s)
}

func (s series) max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	c := slices.Clone(v)
	slices.Sort(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// ms formats a duration in milliseconds with one decimal below 100 ms.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f < 100 {
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// ratio formats a/b as "0.42x".
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// verdict is "met" or "missed".
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// progress writes a line to stderr, where all progress goes.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
