package features_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/riskflow/riskflow/scoring/features"
)

// busyState fills a state with every kind of content: exact entries, keys past the entry cap
// (coarse tier with sketches), locations, token digests and event ids.
func busyState(t *testing.T, cfg features.Config) (*features.State, []*features.Keys) {
	t.Helper()
	s := features.New(cfg)
	r := rand.New(rand.NewPCG(3, 4))
	var ks []*features.Keys
	for i := range 6000 {
		k := &features.Keys{
			EventID: nextID.Add(1), T: base + uint32(r.IntN(20000)), Fail: r.IntN(5) == 0,
			Phone: uint64(1 + r.IntN(400)), IP: ipA + uint64(r.IntN(3)), Net: netA, Prefix: prefA,
			Device: uint64(1 + r.IntN(40)), App: 99,
		}
		if i%9 == 0 {
			k.Token = uint64(1 + r.IntN(30))
		}
		if i%5 == 0 {
			k.HasLoc, k.Lat, k.Lon = true, float32(r.Float64()*50), float32(100+r.Float64()*30)
		}
		mustApply(t, s, k)
		ks = append(ks, k)
	}
	return s, ks
}

// A state loaded from a snapshot answers every query as the original does, and still refuses to
// count an event it had counted.
func TestSnapshotRoundTrip(t *testing.T) {
	cfg := features.Config{MaxEntriesPerKey: 64, DistinctCap: 16}
	orig, ks := busyState(t, cfg)
	var buf bytes.Buffer
	if _, err := orig.WriteSnapshot(&buf, func() []byte { return []byte(`{"offsets":{"0":42}}`) }); err != nil {
		t.Fatal(err)
	}
	loaded := features.New(cfg)
	meta, err := loaded.LoadSnapshot(bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(meta) != `{"offsets":{"0":42}}` {
		t.Errorf("meta %q", meta)
	}
	if a, b := orig.Stats(), loaded.Stats(); a != b {
		t.Errorf("stats differ: %+v vs %+v", a, b)
	}
	aggs := []features.Agg{{Window: 600}, {Window: 3600, Fails: true}, {Window: 86400, Distinct: true, Field: features.FieldA}, {Window: 86400, Distinct: true, Field: features.FieldB}}
	a, b := make([]int, len(aggs)), make([]int, len(aggs))
	for _, kind := range []features.Kind{features.KindPhone, features.KindIP, features.KindNet, features.KindDevice, features.KindPrefix, features.KindApp} {
		for _, key := range []uint64{1, 7, 300, ipA, ipA + 2, netA, prefA, 99, 12345} {
			for _, at := range []uint32{base + 100, base + 9000, base + 20500} {
				orig.Aggregates(kind, key, at, false, false, aggs, a)
				loaded.Aggregates(kind, key, at, false, false, aggs, b)
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("kind %d key %d at +%d agg %+v: original %d, loaded %d", kind, key, at-base, aggs[i], a[i], b[i])
					}
				}
			}
		}
	}
	for phone := uint64(1); phone <= 400; phone += 13 {
		for _, at := range []uint32{base + 5000, base + 20500} {
			t1, la1, lo1, ok1 := orig.LastLocation(phone, at)
			t2, la2, lo2, ok2 := loaded.LastLocation(phone, at)
			if t1 != t2 || la1 != la2 || lo1 != lo2 || ok1 != ok2 {
				t.Fatalf("LastLocation(%d) differs", phone)
			}
		}
	}
	for tok := uint64(1); tok <= 30; tok++ {
		if orig.TokenSeen(tok, base+20500) != loaded.TokenSeen(tok, base+20500) {
			t.Fatalf("TokenSeen(%d) differs", tok)
		}
	}
	if loaded.Apply(ks[17]) {
		t.Error("an event counted before the snapshot was counted again after loading it")
	}
}

// A damaged, cut, foreign or differently bounded snapshot is refused, and the state stays empty.
func TestSnapshotRefusals(t *testing.T) {
	cfg := features.Config{MaxEntriesPerKey: 64, DistinctCap: 16}
	orig, _ := busyState(t, cfg)
	var buf bytes.Buffer
	if _, err := orig.WriteSnapshot(&buf, func() []byte { return nil }); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	flip := append([]byte(nil), good...)
	flip[len(flip)/2] ^= 0x40
	cases := map[string]struct {
		data []byte
		cfg  features.Config
	}{
		"flipped byte":    {flip, cfg},
		"cut short":       {good[:len(good)*2/3], cfg},
		"empty":           {nil, cfg},
		"not a snapshot":  {[]byte("PK\x03\x04 a zip file, not a snapshot at all"), cfg},
		"other entry cap": {good, features.Config{MaxEntriesPerKey: 128, DistinctCap: 16}},
		"other retention": {good, features.Config{MaxEntriesPerKey: 64, DistinctCap: 16, Retention: 48 * 3600 * 1e9}},
	}
	for name, c := range cases {
		st := features.New(c.cfg)
		if _, err := st.LoadSnapshot(bytes.NewReader(c.data), nil); !errors.Is(err, features.ErrSnapshot) {
			t.Errorf("%s: err %v, want ErrSnapshot", name, err)
		}
		if s := st.Stats(); s.Entries != 0 || s.EventIDs != 0 || s.Applied != 0 {
			t.Errorf("%s: a refused snapshot left state behind: %+v", name, s)
		}
	}
	// Another format version (the field after the 8-byte magic) is refused.
	other := append([]byte(nil), good...)
	other[8] = 9
	if _, err := features.New(cfg).LoadSnapshot(bytes.NewReader(other), nil); !errors.Is(err, features.ErrSnapshot) {
		t.Errorf("other version: %v", err)
	}
	// Loading into a state that has applied something is refused outright.
	if _, err := orig.LoadSnapshot(bytes.NewReader(good), nil); err == nil {
		t.Error("loaded a snapshot over a non-empty state")
	}
	// Metadata the caller refuses (another topic, another key) leaves the state empty too.
	st := features.New(cfg)
	if _, err := st.LoadSnapshot(bytes.NewReader(good), func([]byte) error { return errors.New("other key") }); !errors.Is(err, features.ErrSnapshot) {
		t.Errorf("refused metadata: %v", err)
	}
	if s := st.Stats(); s.Applied != 0 || s.Entries != 0 {
		t.Errorf("refused metadata left state behind: %+v", s)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// zeros reads as zero bytes, for ever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A file that is no snapshot of this format is refused from its first bytes, not read whole into
// memory first: a sparse file of gigabytes under the snapshot's name (or one of another format
// version, as large as a state) was read to its end before its magic was looked at.
func TestSnapshotOfAnotherKindRefusedFromItsStart(t *testing.T) {
	cfg := features.Config{MaxEntriesPerKey: 64, DistinctCap: 16}
	other := append([]byte("RFSTATE\x00\x09\x00"), make([]byte, 64<<20)...) // format version 9
	for name, r := range map[string]io.Reader{
		"zeros":         io.LimitReader(zeros{}, 64<<20),
		"other version": bytes.NewReader(other),
	} {
		cr := &countingReader{r: r}
		_, err := features.New(cfg).LoadSnapshot(cr, nil)
		if !errors.Is(err, features.ErrSnapshot) {
			t.Errorf("%s: %v, want ErrSnapshot", name, err)
		}
		if cr.n > 4096 {
			t.Errorf("%s: read %d bytes before refusing it (%v)", name, cr.n, err)
		}
	}
}

// PeekSnapshot reads a snapshot's metadata and whether it was kept under the state's bounds from
// the file's start alone (a damaged body does not matter to it), and refuses what is not a
// snapshot of this format.
func TestPeekSnapshot(t *testing.T) {
	cfg := features.Config{MaxEntriesPerKey: 64, DistinctCap: 16}
	orig, _ := busyState(t, cfg)
	var buf bytes.Buffer
	if _, err := orig.WriteSnapshot(&buf, func() []byte { return []byte(`{"key_fingerprint":"a"}`) }); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for _, c := range []struct {
		name string
		data []byte
		cfg  features.Config
		same bool
	}{
		{"whole", good, cfg, true},
		{"only its first 100 bytes", good[:100], cfg, true},
		{"other entry cap", good, features.Config{MaxEntriesPerKey: 128, DistinctCap: 16}, false},
	} {
		meta, same, err := features.New(c.cfg).PeekSnapshot(bytes.NewReader(c.data))
		if err != nil || string(meta) != `{"key_fingerprint":"a"}` || same != c.same {
			t.Errorf("%s: meta %q, same bounds %v, err %v; want the metadata, %v", c.name, meta, same, err, c.same)
		}
	}
	other := append([]byte(nil), good...)
	other[8] = 9
	for name, data := range map[string][]byte{"other version": other, "not a snapshot": []byte("PK\x03\x04 a zip file"), "empty": nil, "cut in the metadata": good[:45]} {
		if _, _, err := features.New(cfg).PeekSnapshot(bytes.NewReader(data)); !errors.Is(err, features.ErrSnapshot) {
			t.Errorf("%s: err %v, want ErrSnapshot", name, err)
		}
	}
}

// allocated returns the bytes f allocates (the process's cumulative count, so the test runs
// nothing else meanwhile).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A snapshot is written and loaded where memory is scarce (every scorer and API node holds the
// whole state, sized to its container's limit), so neither may take much more than the snapshot's
// own size beside the state. Encoded into one growing slice, an 11 MB snapshot allocated 62 MB,
// and a 1M-event state of 101 MB peaked at 323 MB in use while its 64 MB snapshot was written (a
// node whose memory limit leaves the usual GC headroom over its state risks an OOM kill at every
// snapshot); loading that snapshot peaked at
// 243 MB. (The file read: TestReadAllOfAFileTakesItsSize.)
func TestSnapshotWriteAndLoadTakeAboutItsSize(t *testing.T) {
	s := features.New(features.Config{})
	r := rand.New(rand.NewPCG(7, 8))
	for range 150_000 {
		mustApply(t, s, &features.Keys{
			EventID: nextID.Add(1), T: base + uint32(r.IntN(80000)), Fail: r.IntN(5) == 0,
			Phone: uint64(1 + r.IntN(60_000)), IP: ipA + uint64(r.IntN(20_000)), Net: netA + uint64(r.IntN(500)),
			Prefix: prefA + uint64(r.IntN(300)), Device: uint64(1 + r.IntN(30_000)), App: 99,
		})
	}
	p := filepath.Join(t.TempDir(), "state.snap")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size int64
	wrote := allocated(func() { size, err = s.WriteSnapshot(f, func() []byte { return []byte(`{}`) }) })
	if err != nil {
		t.Fatal(err)
	}
	if size < 8<<20 {
		t.Fatalf("snapshot of %d bytes: too small to tell", size)
	}
	if limit := uint64(size) + uint64(size)/8 + 2<<20; wrote > limit {
		t.Errorf("writing a snapshot of %d MB allocated %d MB (at most %d MB: its size and a little)", size>>20, wrote>>20, limit>>20)
	}

	// Loading it takes the state it builds and the file, read once: not the file read into a
	// doubling buffer, nor the blocks' arenas grown an eighth at a time (together 69 MB for
	// this 11 MB snapshot of a 12 MB state).
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	loaded := features.New(features.Config{})
	before := heapHeld()
	read := allocated(func() { _, err = loaded.LoadSnapshot(f, nil) })
	if err != nil {
		t.Fatal(err)
	}
	held := heapHeld() - before
	if limit := held + uint64(size) + uint64(size)/8 + 2<<20; read > limit {
		t.Errorf("loading a snapshot of %d MB into a state of %d MB allocated %d MB (at most %d MB: the state, the file and a little)", size>>20, held>>20, read>>20, limit>>20)
	}
	if a, b := s.Stats(), loaded.Stats(); a != b {
		t.Errorf("loaded %+v, wrote %+v", b, a)
	}
}

// heapHeld returns the live heap after a collection.
func heapHeld() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
