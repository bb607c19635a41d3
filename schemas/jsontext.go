package schemas

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// DecoderDone reports whether dec has nothing left to read but blanks, after the value it
// decoded. json.Decoder.More is not that test: it is false before a stray ']' or '}', so that
// `[{...}]}` would pass for one array of labels.
func DecoderDone(dec *json.Decoder) bool {
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// CheckJSONText walks the JSON document data for what a decoder built on encoding/json passes
// silently, before such a decoder reads it (the labels, the admin API's bodies): a string that is
// not valid Unicode — a byte that is not UTF-8, or half a UTF-16 surrogate pair, which
// encoding/json turns into U+FFFD, so that distinct ids become one — and a member given twice in
// one object, of which encoding/json keeps the last (a second app_id overriding the first). The
// error is a *FieldError naming the member as the decoders do: note, [2].note, a.b[0]; a member
// name is shown short, escaped and with any phone number masked (ShowName). A document that is
// not valid JSON gets nil: the decoder's own error says where it breaks; so does one that is no
// object or array (a lone string, whatever its bytes), which no caller takes and whose decoder
// names it as such ("expected a JSON object, got a string"): refused here, its bad byte was a 400
// naming nothing ("is not valid UTF-8").
func CheckJSONText(data []byte) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' && data[i] != '[' {
		return nil
	}
	var w textWalk
	w.value(data, i, "", 1)
	if w.err != nil {
		return w.err
	}
	return nil
}

// textWalk is CheckJSONText's walk; err is the first problem found.
type textWalk struct{ err *FieldError }

// value walks the value at data[i] (not space), the element of a container at depth-1, and
// returns the position just past it, or -1 once a problem or a syntax error is found.
func (w *textWalk) value(data []byte, i int, path string, depth int) int {
	switch data[i] {
	case '"':
		end, flags := scanString(data, i)
		if end < 0 {
			return -1
		}
		if why := stringWhy(data[i+1:end-1], flags); why != "" {
			w.err = fieldErr(path, "%s", why)
			return -1
		}
		return end
	case '{', '[':
		if depth > maxNestingDepth {
			return -1
		}
		return w.container(data, i, path, depth)
	}
	end, _ := scanValue(data, i, depth)
	return end
}

// container walks the object or array at data[i].
func (w *textWalk) container(data []byte, i int, path string, depth int) int {
	object := data[i] == '{'
	closing := byte(']')
	var names map[string]bool
	if object {
		closing, names = '}', map[string]bool{}
	}
	if i = skipSpace(data, i+1); i < len(data) && data[i] == closing {
		return i + 1
	}
	for n := 0; ; n++ {
		if i >= len(data) {
			return -1
		}
		var member string
		if object {
			if data[i] != '"' {
				return -1
			}
			kstart := i
			if i, _ = scanString(data, i); i < 0 {
				return -1
			}
			name, why := jsonString(data[kstart:i])
			if why != "" {
				w.err = fieldErr(path, "a member name %s", why)
				return -1
			}
			member = ShowName(name, maxShownName)
			if path != "" {
				member = path + "." + member
			}
			if names[name] {
				w.err = fieldErr(member, "appears more than once")
				return -1
			}
			names[name] = true
			if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
				return -1
			}
			if i = skipSpace(data, i+1); i >= len(data) {
				return -1
			}
		} else {
			member = path + "[" + strconv.Itoa(n) + "]"
		}
		if i = w.value(data, i, member, depth+1); i < 0 {
			return -1
		}
		if i = skipSpace(data, i); i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
			continue
		}
		if i < len(data) && data[i] == closing {
			return i + 1
		}
		return -1
	}
}
