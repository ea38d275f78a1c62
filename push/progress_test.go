package push

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestProgressKeepsAWSLinesWhole(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		// build is what the build's display writes, write by write; "|"
		// marks where the AWS half says its line.
		build []string
		want  string
	}{
		{name: "between lines", build: []string{"Step 1/4 : FROM x\n", "|", " ---> 2b23\n"},
			want: "Step 1/4 : FROM x\nassuming role\n ---> 2b23\n"},
		{name: "inside a step line, until its newline", build: []string{"Step 1/4 : FROM x", "|", "\n", " ---> 2b23\n"},
			want: "Step 1/4 : FROM x\nassuming role\n ---> 2b23\n"},
		{name: "inside a layer's status in CI", build: []string{"a1b2: ", "|", "Pull complete\n"},
			want: "a1b2: Pull complete\nassuming role\n"},
		{name: "amid a bar's redraw at a terminal", terminal: true,
			build: []string{"Step 1/2 : FROM x\n", "\n", "|", "\x1b[1A", "\x1b[2K\r", "a1b2: ", "Downloading [==>  ]\r", "\x1b[1B", "\n", "\x1b[1A", "a1b2: Pull complete\r", "\x1b[1B", " ---> 2b23\n"},
			want:  "Step 1/2 : FROM x\n\n\x1b[1A\x1b[2K\ra1b2: Downloading [==>  ]\r\x1b[1B\n\x1b[1Aa1b2: Pull complete\r\x1b[1B ---> 2b23\nassuming role\n"},
		{name: "a lone newline ends a line outside a terminal", build: []string{"Step 1/4 : FROM x", "\n", "|"},
			want: "Step 1/4 : FROM x\nassuming role\n"},
		{name: "after the build, a cut-off line is ended first", build: []string{"Step 1/4 : FROM x", "|"},
			want: "Step 1/4 : FROM x\nassuming role\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			g := newProgress(&out, tt.terminal)
			for _, w := range tt.build {
				if w == "|" {
					fmt.Fprintf(g.lines(), "assuming role\n")
					continue
				}
				if _, err := g.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			g.done()
			fmt.Fprintf(g.lines(), "got a token\n")
			want := tt.want + "got a token\n"
			if out.String() != want {
				t.Errorf("stderr:\n%q\nwant:\n%q", out.String(), want)
			}
		})
	}
}

func TestProgressUnderRace(t *testing.T) {
	var out bytes.Buffer
	g := newProgress(&out, false)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer g.done()
		for i := range 200 {
			fmt.Fprintf(g, "Step %d", i)
			fmt.Fprintf(g, "\n")
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 50 {
			g.say(func() { fmt.Fprintf(&out, "aws %d\n", i) })
		}
	}()
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 250 {
		t.Fatalf("%d lines, want 250", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "Step ") && !strings.HasPrefix(l, "aws ") || strings.Count(l, " ") != 1 {
			t.Errorf("mixed line %q", l)
		}
	}
}
