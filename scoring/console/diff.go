package console

import "strings"

// diffLine is one line of a unified line diff: Op is ' ', '-' or '+'.
type diffLine struct {
	Op   string
	Old  int // line number in the old text (0 for an added line)
	New  int // line number in the new text (0 for a removed line)
	Text string
}

// lineDiff is a longest-common-subsequence line diff of a and b. The lines both share at the
// start and at the end are taken out first: an edit of a large pack (thousands of rules) is a
// small table between them. Packs are a few hundred lines, so the quadratic table is small;
// beyond maxDiffCells the changed middle shows as all removed and all new.
func lineDiff(a, b string) []diffLine {
	x, y := splitLines(a), splitLines(b)
	var head, tail []diffLine
	for len(x) > 0 && len(y) > 0 && x[0] == y[0] {
		n := len(head) + 1
		head = append(head, diffLine{Op: " ", Old: n, New: n, Text: x[0]})
		x, y = x[1:], y[1:]
	}
	for len(x) > 0 && len(y) > 0 && x[len(x)-1] == y[len(y)-1] {
		tail = append(tail, diffLine{Op: " ", Text: x[len(x)-1]})
		x, y = x[:len(x)-1], y[:len(y)-1]
	}
	off := len(head)
	mid := lcsDiff(x, y)
	out := append(head, make([]diffLine, 0, len(mid)+len(tail))...)
	for _, l := range mid {
		if l.Old > 0 {
			l.Old += off
		}
		if l.New > 0 {
			l.New += off
		}
		out = append(out, l)
	}
	oldN, newN := off+len(x), off+len(y)
	for i := len(tail) - 1; i >= 0; i-- {
		oldN, newN = oldN+1, newN+1
		l := tail[i]
		l.Old, l.New = oldN, newN
		out = append(out, l)
	}
	return out
}

// lcsDiff is the diff of x and y by their longest common subsequence.
func lcsDiff(x, y []string) []diffLine {
	const maxDiffCells = 4 << 20
	if (len(x)+1)*(len(y)+1) > maxDiffCells {
		var out []diffLine
		for i, l := range x {
			out = append(out, diffLine{Op: "-", Old: i + 1, Text: l})
		}
		for j, l := range y {
			out = append(out, diffLine{Op: "+", New: j + 1, Text: l})
		}
		return out
	}
	// lcs[i][j] = length of the LCS of x[i:] and y[j:]
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, diffLine{Op: " ", Old: i + 1, New: j + 1, Text: x[i]})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, diffLine{Op: "-", Old: i + 1, Text: x[i]})
			i++
		default:
			out = append(out, diffLine{Op: "+", New: j + 1, Text: y[j]})
			j++
		}
	}
	return out
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// changed counts the diff's added and removed lines.
func changed(d []diffLine) (added, removed int) {
	for _, l := range d {
		switch l.Op {
		case "+":
			added++
		case "-":
			removed++
		}
	}
	return added, removed
}
