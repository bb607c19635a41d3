package features

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cespare/xxhash/v2"
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

// A key, token digest or event id stored under another shard than its own (a writer's bug, a file
// edited by hand: the checksum is made right) is refused: loaded, it would sit where no query
// looks, its counts silently 0 and a re-delivered event counted again.
func TestSnapshotRefusesAKeyInAnotherShard(t *testing.T) {
	const (
		phone = uint64(0x1122334455667788)
		token = uint64(0x2233445566778899)
		id    = uint64(0x33445566778899aa)
	)
	// other returns a value in another shard than v's.
	other := func(v uint64) uint64 {
		for d := uint64(1); ; d++ {
			if w := v + d<<40; shardOf(w) != shardOf(v) {
				return w
			}
		}
	}
	for name, v := range map[string]uint64{"phone key": phone, "token digest": token, "event id": id} {
		s := New(Config{})
		s.Apply(&Keys{EventID: id, T: 1000, Phone: phone, Token: token})
		var buf bytes.Buffer
		if _, err := s.WriteSnapshot(&buf, func() []byte { return nil }); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		stored := binary.LittleEndian.AppendUint64(nil, v)
		if n := bytes.Count(data, stored); n != 1 {
			t.Fatalf("%s: %d copies in the snapshot, want 1", name, n)
		}
		moved := bytes.Clone(data)
		binary.LittleEndian.PutUint64(moved[bytes.Index(data, stored):], other(v))
		binary.LittleEndian.PutUint64(moved[len(moved)-8:], xxhash.Sum64(moved[:len(moved)-8]))
		if _, err := New(Config{}).LoadSnapshot(bytes.NewReader(moved), nil); !errors.Is(err, ErrSnapshot) || !strings.Contains(err.Error(), "another shard") {
			t.Errorf("%s in another shard: err = %v, want an ErrSnapshot naming another shard", name, err)
		}
		// The same bytes with the value in its own shard load (the test changes nothing else).
		if _, err := New(Config{}).LoadSnapshot(bytes.NewReader(data), nil); err != nil {
			t.Errorf("%s: the untouched snapshot is refused: %v", name, err)
		}
	}
}
