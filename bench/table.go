package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// table is a plain aligned text table: the first column left-aligned, the
// others right-aligned, so columns of figures line up.
type table struct {
	head []string
	rows [][]string
	left map[int]bool // extra left-aligned columns
}

func newTable(head ...string) *table { return &table{head: head, left: map[int]bool{0: true}} }

// leftAlign makes the named column indexes left-aligned (text, not figures).
func (t *table) leftAlign(cols ...int) *table {
	for _, c := range cols {
		t.left[c] = true
	}
	return t
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	width := make([]int, len(t.head))
	all := append([][]string{t.head}, t.rows...)
	for _, r := range all {
		for i, c := range r {
			if i < len(width) && utf8.RuneCountInString(c) > width[i] {
				width[i] = utf8.RuneCountInString(c)
			}
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("  ")
		for i := range width {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if t.left[i] {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
			if i < len(width)-1 {
				b.WriteString("  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(t.head)
	rule := make([]string, len(width))
	for i, n := range width {
		rule[i] = strings.Repeat("-", n)
	}
	line(rule)
	for _, r := range t.rows {
		line(r)
	}
}

// section prints a scenario's title and the lines saying how it was measured.
func section(w io.Writer, title string, method ...string) {
	fmt.Fprintf(w, "\n== %s\n", title)
	for _, m := range method {
		fmt.Fprintf(w, "   %s\n", m)
	}
	fmt.Fprintln(w)
}
