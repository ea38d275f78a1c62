package push

import (
	"bytes"
	"io"
	"sync"
)

// progress shares stderr between the build's display and the AWS half of a
// push while the two run together, so that the few AWS lines stay readable
// among the build's.
//
// The build's display writes through Write. The AWS half's lines go through
// say: a line goes out at once when the build's output stands at the start of
// a line, and otherwise waits until the build ends its line. So an AWS line
// never lands inside a build line (the engine streams partial lines: "Step
// 1/4 : FROM x" then "\n"; in CI, "<layer>: " then its status), nor amid the
// cursor moves with which progress bars redraw themselves at a terminal,
// which count the lines below them. Once the build is over (done), lines go
// straight out. Every write to the underlying writer happens under one lock.
type progress struct {
	w        io.Writer
	terminal bool

	mu sync.Mutex
	// midLine says the build's last write left its output inside a line or
	// a redraw of progress bars.
	midLine bool
	over    bool
	held    []func()
}

func newProgress(w io.Writer, terminal bool) *progress {
	return &progress{w: w, terminal: terminal}
}

// Write is the build's side.
func (g *progress) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.w.Write(b)
	g.midLine = !g.endsLine(b)
	if !g.midLine {
		g.flush()
	}
	return n, err
}

// endsLine says whether a write of the build's display leaves its output at
// the start of a line where another line may go: it ends with a newline and
// moves no cursor. At a terminal, a lone newline is how a new progress bar
// takes its line before the cursor moves up to draw it, so it does not count.
func (g *progress) endsLine(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '\n' || bytes.IndexByte(b, 0x1b) >= 0 {
		return false
	}
	return !(g.terminal && len(b) == 1)
}

// say runs out (which writes one whole line of the AWS half) now, or as
// soon as the build's output is between lines.
func (g *progress) say(out func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.midLine && !g.over {
		g.held = append(g.held, out)
		return
	}
	out()
}

// lines is the AWS half's side as a writer: each Write is one whole line
// (logf writes so).
func (g *progress) lines() io.Writer { return awsLines{g} }

type awsLines struct{ g *progress }

func (a awsLines) Write(b []byte) (int, error) {
	line := bytes.Clone(b)
	a.g.say(func() { _, _ = a.g.w.Write(line) })
	return len(b), nil
}

// done says the build's display is over: a line it left unfinished (a
// stream cut off) is ended, held lines go out, and later ones go straight
// out.
func (g *progress) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.midLine {
		_, _ = g.w.Write([]byte("\n"))
		g.midLine = false
	}
	g.over = true
	g.flush()
}

func (g *progress) flush() {
	for _, out := range g.held {
		out()
	}
	g.held = nil
}
