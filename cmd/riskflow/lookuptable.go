package main

import (
	"bytes"
	"io"
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// columns aligns tab-separated cells as text/tabwriter does (NewWriter(w, 2, 4, 2, ' ', 0): a
// column of consecutive lines with a cell there is as wide as its widest cell plus 2, the text
// after a line's last tab is not a cell), but measures a cell by the columns a terminal gives
// it, not by its runes: a Chinese app or device id (each character two columns wide) pushed the
// rest of its row out of line with the header.
type columns struct {
	w   io.Writer
	buf bytes.Buffer
}

const (
	columnsMinWidth = 2
	columnsPadding  = 2
)

func newColumns(w io.Writer) *columns { return &columns{w: w} }

// Write buffers p until Flush.
func (c *columns) Write(p []byte) (int, error) { return c.buf.Write(p) }

// Flush writes what was written since the last Flush, aligned.
func (c *columns) Flush() error {
	if c.buf.Len() == 0 {
		return nil
	}
	text := c.buf.String()
	c.buf.Reset()
	lines := strings.Split(text, "\n")
	ended := lines[len(lines)-1] == "" // the text ends with a newline
	if ended {
		lines = lines[:len(lines)-1]
	}
	cells := make([][]string, len(lines))
	widths := make([][]int, len(lines))
	most := 0
	for i, l := range lines {
		cells[i] = strings.Split(l, "\t")
		if i == len(lines)-1 && !ended && len(cells[i]) > 1 && cells[i][len(cells[i])-1] == "" {
			// A last line cut short after a tab: as for text/tabwriter, nothing follows its last
			// cell, which is then the line's text, not a cell.
			cells[i] = cells[i][:len(cells[i])-1]
		}
		widths[i] = make([]int, len(cells[i])-1)
		most = max(most, len(cells[i])-1)
	}
	for col := range most {
		for i := 0; i < len(lines); {
			if len(widths[i]) <= col {
				i++
				continue
			}
			// A block: the consecutive lines with a cell in this column.
			end, w := i, columnsMinWidth
			for ; end < len(lines) && len(widths[end]) > col; end++ {
				w = max(w, displayWidth(cells[end][col])+columnsPadding)
			}
			for ; i < end; i++ {
				widths[i][col] = w
			}
		}
	}
	var out bytes.Buffer
	for i, row := range cells {
		for col, w := range widths[i] {
			out.WriteString(row[col])
			out.WriteString(strings.Repeat(" ", w-displayWidth(row[col])))
		}
		out.WriteString(row[len(row)-1])
		if i < len(cells)-1 || ended {
			out.WriteByte('\n')
		}
	}
	_, err := c.w.Write(out.Bytes())
	return err
}

// displayWidth is how many terminal columns s takes: two for East Asian wide and full-width
// characters (漢字, ｆｕｌｌ-width forms, most emoji), none for combining marks and formatting
// characters, one for the rest.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r < 0x300: // ASCII and Latin: one column, without a table look-up
			n++
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		default:
			switch width.LookupRune(r).Kind() {
			case width.EastAsianWide, width.EastAsianFullwidth:
				n += 2
			default:
				n++
			}
		}
	}
	return n
}
