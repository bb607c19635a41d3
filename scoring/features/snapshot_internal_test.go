package features

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"testing/iotest"
)

// A snapshot file is read into a buffer of its size: io.ReadAll, which grows its buffer by
// doubling, allocated two to three times the file beside the state being built from it (a
// 1M-event state of 101 MB peaked at 243 MB in use while its 64 MB snapshot loaded), so a node
// sized for its state risked an OOM kill at every start. A reader that is not a file, or a file
// longer than it was, is still read whole.
func TestReadAllOfAFileTakesItsSize(t *testing.T) {
	data := bytes.Repeat([]byte("riskflow feature snapshot "), 400_000) // 10 MB
	p := filepath.Join(t.TempDir(), "s.snap")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readAll(f, nil)
	runtime.ReadMemStats(&after)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(data), err)
	}
	if n, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(data))+64<<10; n > limit {
		t.Errorf("reading a file of %d bytes allocated %d (at most %d)", len(data), n, limit)
	}
	for name, r := range map[string]func() ([]byte, error){
		"not a file":      func() ([]byte, error) { return readAll(iotest.HalfReader(bytes.NewReader(data)), nil) },
		"one byte a read": func() ([]byte, error) { return readAll(iotest.OneByteReader(bytes.NewReader(data[:5000])), nil) },
		"empty":           func() ([]byte, error) { return readAll(bytes.NewReader(nil), nil) },
		"grown since Stat": func() ([]byte, error) {
			return readAll(grown{f, bytes.NewReader(append(append([]byte(nil), data...), data...))}, nil)
		},
	} {
		got, err := r()
		want := data
		switch name {
		case "one byte a read":
			want = data[:5000]
		case "empty":
			want = nil
		case "grown since Stat":
			want = append(append([]byte(nil), data...), data...)
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes, want %d (%v)", name, len(got), len(want), err)
		}
	}
}

// grown is a file that grew after Stat: Stat says the file's size, Read reads more.
type grown struct {
	f *os.File
	r *bytes.Reader
}

func (g grown) Stat() (os.FileInfo, error) { return g.f.Stat() }
func (g grown) Read(p []byte) (int, error) { return g.r.Read(p) }
