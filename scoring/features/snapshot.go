package features

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Snapshots: the whole state as bytes, so a restart loads it and replays only what came after
// instead of the whole retention window.
//
// Layout (little endian; n = uvarint): magic "RFSTATE\0", format version (uint16), retention,
// MaxEntriesPerKey, DistinctCap, bucketSec, hllM (uint32 each), watermark (uint32), applied
// (uint64), the caller's metadata (n bytes), then per shard: per kind n records of key (uint64),
// for phone keys a location flag, n entries of 3×uint32 (4×uint32 for a located phone: and the
// location), a coarse flag (+ n ring
// slots, n non-empty buckets of slot, idx, first, last, count, fails and 2×hllM register bytes);
// n token digests (key, n seconds of sightings, sightings past them, the last second); n event ids (key, second). Last, the xxhash64
// of everything before it.

// SnapshotVersion is the snapshot format this build writes and reads; any other is refused.
// Version 2: phone keys (and the phone members of other keys' entries) are keyed hashes
// (scoring's phone keys); a version 1 snapshot holds unkeyed ones that match nothing now.
// Version 3: the per-app kinds KindAppIP, KindAppPrefix and KindAppBlocks.
// Version 4: event ids are keyed hashes (scoring's event keys); a version 3 snapshot holds
// unkeyed ones that no event matches now (its re-deliveries would count twice).
// Version 5: a network key (KindNet, and the network members of phone entries) on a mobile
// carrier network is the pool's IPv4 /16 or IPv6 /32 and on a datacenter network an IPv6 /48; a
// version 4 snapshot holds the /24 and /64 keys those addresses had, which would mix with them.
// Version 6: a located phone's entries hold their attempts' locations; a version 5 snapshot holds
// the phone's two last locations instead, which do not say where it was before older attempts.
// Version 7: app keys (KindApp, KindAppBlocks, and the app's part of KindAppIP and KindAppPrefix
// keys) are keyed hashes (scoring's app keys); a version 6 snapshot holds unkeyed ones.
const SnapshotVersion = 7

var snapshotMagic = [8]byte{'R', 'F', 'S', 'T', 'A', 'T', 'E', 0}

// ErrSnapshot marks a snapshot that cannot be used: damaged, cut short, another format, or state
// kept under other bounds. The state it was loaded into is left as it was.
var ErrSnapshot = errors.New("unusable feature snapshot")

// WriteSnapshot writes the whole state to w. Applying is paused while the state is encoded
// (queries are not), so the snapshot is one consistent moment; meta is called in that moment, and
// what it returns (e.g. the feed offsets the state covers) is stored with it. The encoding goes to
// memory first, so the pause does not include w's speed — in chunks, so that it takes the
// snapshot's size and no more beside the state.
func (s *State) WriteSnapshot(w io.Writer, meta func() []byte) (int64, error) {
	var buf chunkWriter
	s.applyMu.Lock()
	err := s.encode(&buf, meta())
	s.applyMu.Unlock()
	if err != nil {
		return 0, err
	}
	chunks := append(buf.done, buf.b)
	h := xxhash.New()
	for _, c := range chunks {
		_, _ = h.Write(c)
	}
	chunks = append(chunks, binary.LittleEndian.AppendUint64(nil, h.Sum64()))
	var n int64
	for _, c := range chunks {
		k, err := w.Write(c)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// chunkWriter holds an encoding in chunks of about snapshotChunk bytes. One slice grown by
// append is copied each time it doubles: a snapshot of S bytes allocated 5S and held up to 3S at
// once, beside the state — on a node sized for its state, a risk of an OOM kill at every snapshot.
type chunkWriter struct {
	done [][]byte // full chunks
	b    []byte   // the chunk being filled
}

// snapshotChunk is the size of a chunkWriter's chunks; a chunk is closed at the first record
// boundary past snapshotChunk-chunkSlack, so a record (at most about 60 KB with the default
// bounds) fits in the chunk's capacity without a copy.
const (
	snapshotChunk = 1 << 20
	chunkSlack    = 64 << 10
)

// cut closes the current chunk once it is full enough; the encoder calls it between records.
func (w *chunkWriter) cut() {
	if len(w.b) < snapshotChunk-chunkSlack {
		return
	}
	w.done = append(w.done, w.b)
	w.b = make([]byte, 0, snapshotChunk)
}

func (s *State) encode(w *chunkWriter, meta []byte) error {
	w.b = make([]byte, 0, snapshotChunk)
	e := encoder{w: w}
	e.raw(snapshotMagic[:])
	e.u16(SnapshotVersion)
	e.u32(s.retention)
	e.u32(uint32(s.cfg.MaxEntriesPerKey))
	e.u32(uint32(s.cfg.DistinctCap))
	e.u32(bucketSec)
	e.u32(hllM)
	e.u32(s.watermark.Load())
	e.u64(s.applied.Load())
	e.bytes(meta)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k := range sh.recs {
			rt := &sh.recs[k]
			e.n(int(rt.n))
			for i := uint32(0); i < rt.cap; i++ {
				if key := rt.key(i); key != 0 {
					e.u64(key)
					v := rt.viewAt(i, key)
					e.rec(&v, rt.locs)
					w.cut()
				}
			}
		}
		e.n(int(sh.tokens.n))
		for i := uint32(0); i < sh.tokens.cap; i++ {
			if key := sh.tokens.key(i); key != 0 {
				e.u64(key)
				secs, more, last := sh.tokens.sightings(i, key)
				e.n(len(secs))
				for _, sec := range secs {
					e.u32(sec)
				}
				e.u32(more)
				e.u32(last)
				w.cut()
			}
		}
		e.n(int(sh.seen.n))
		for i := uint32(0); i < sh.seen.cap; i++ {
			if key := sh.seen.key(i); key != 0 {
				e.u64(key)
				e.u32(sh.seen.val(i)[0])
				w.cut()
			}
		}
		sh.mu.RUnlock()
	}
	return nil
}

type encoder struct {
	w       *chunkWriter
	scratch [binary.MaxVarintLen64]byte
}

func (e *encoder) raw(b []byte) { e.w.b = append(e.w.b, b...) }
func (e *encoder) u16(v uint16) { e.w.b = binary.LittleEndian.AppendUint16(e.w.b, v) }
func (e *encoder) u32(v uint32) { e.w.b = binary.LittleEndian.AppendUint32(e.w.b, v) }
func (e *encoder) u64(v uint64) { e.w.b = binary.LittleEndian.AppendUint64(e.w.b, v) }
func (e *encoder) f32(v float32) {
	e.u32(math.Float32bits(v))
}
func (e *encoder) n(v int)        { e.w.b = binary.AppendUvarint(e.w.b, uint64(v)) }
func (e *encoder) bytes(b []byte) { e.n(len(b)); e.raw(b) }

// rec writes a key's state; locs: its kind's entries may hold locations (a located phone's have
// four words).
func (e *encoder) rec(r *recView, locs bool) {
	e.n(r.n())
	located := locs && r.ew == 4
	if locs {
		e.raw([]byte{b2u8(located)})
	}
	for p := 0; p < len(r.es); p += r.ew {
		e.u32(r.es[p])   // second and failure bit
		e.u32(r.es[p+1]) // member a
		if r.ew >= 3 {
			e.u32(r.es[p+2]) // member b
		} else {
			e.u32(0)
		}
		if located {
			e.u32(r.es[p+locWord])
		}
	}
	if r.old == nil {
		e.raw([]byte{0})
		return
	}
	e.raw([]byte{1})
	e.n(len(r.old.b))
	used := 0
	for i := range r.old.b {
		if r.old.b[i].idx != 0 {
			used++
		}
	}
	e.n(used)
	for i := range r.old.b {
		b := &r.old.b[i]
		if b.idx == 0 {
			continue
		}
		e.n(i)
		e.u32(b.idx)
		e.u32(b.first)
		e.u32(b.last)
		e.u32(b.count)
		e.u32(b.fails)
		e.raw(b.sketch[0][:])
		e.raw(b.sketch[1][:])
	}
}

// LoadSnapshot reads a snapshot written by WriteSnapshot into s, which must be empty (nothing
// applied yet), and returns the metadata stored with it. A snapshot that is damaged, cut short, of
// another format version or kept under other bounds (retention, entries per key, distinct cap) is
// refused with an error wrapping ErrSnapshot; so is one whose metadata accept (may be nil) returns
// an error for. The whole snapshot is decoded, its checksum verified and its metadata accepted
// before anything is installed: a refused snapshot leaves s empty.
func (s *State) LoadSnapshot(r io.Reader, accept func(meta []byte) error) ([]byte, error) {
	if s.applied.Load() != 0 {
		return nil, errors.New("load feature snapshot: the state is not empty")
	}
	// The magic and version first: a file of something else (a sparse file of gigabytes, another
	// format) was read whole into memory before it was refused.
	head := make([]byte, len(snapshotMagic)+2)
	if n, err := io.ReadFull(r, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %d bytes is too short", ErrSnapshot, n)
		}
		return nil, fmt.Errorf("read feature snapshot: %w", err)
	}
	if string(head[:len(snapshotMagic)]) != string(snapshotMagic[:]) {
		return nil, fmt.Errorf("%w: not a riskflow feature snapshot", ErrSnapshot)
	}
	if v := binary.LittleEndian.Uint16(head[len(snapshotMagic):]); v != SnapshotVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrSnapshot, v, SnapshotVersion)
	}
	data, err := readAll(r, head)
	if err != nil {
		return nil, fmt.Errorf("read feature snapshot: %w", err)
	}
	if len(data) < len(snapshotMagic)+8 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrSnapshot, len(data))
	}
	body, sum := data[:len(data)-8], binary.LittleEndian.Uint64(data[len(data)-8:])
	if string(body[:len(snapshotMagic)]) != string(snapshotMagic[:]) {
		return nil, fmt.Errorf("%w: not a riskflow feature snapshot", ErrSnapshot)
	}
	if xxhash.Sum64(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (damaged or partly written)", ErrSnapshot)
	}
	d := decoder{b: body[len(snapshotMagic):]}
	if v := d.u16(); v != SnapshotVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrSnapshot, v, SnapshotVersion)
	}
	bounds := [5]uint32{d.u32(), d.u32(), d.u32(), d.u32(), d.u32()}
	want := [5]uint32{s.retention, uint32(s.cfg.MaxEntriesPerKey), uint32(s.cfg.DistinctCap), bucketSec, hllM}
	if d.err == nil && bounds != want {
		return nil, fmt.Errorf("%w: kept under other bounds (retention, entries per key, distinct cap, bucket, sketch: %v, this node %v)", ErrSnapshot, bounds, want)
	}
	watermark, applied := d.u32(), d.u64()
	meta := append([]byte(nil), d.bytes()...)
	shards := make([]shardData, numShards)
	for i := range shards {
		sd := &shards[i]
		for k := range sd.recs {
			sd.recs[k] = newRecTable(Kind(k), s.seed, s.retention)
			n := d.n()
			sd.recs[k].reserve(n)
			// The blocks' arena at its final size at once: grown record by record, an eighth
			// at a time, it allocated about four times its size.
			a := &sd.recs[k].a
			a.w = allocWords(a.w, d.blockWords(n, sd.recs[k].ew, sd.recs[k].locs))
			for j := 0; j < n && d.err == nil; j++ {
				key := d.u64()
				if d.err == nil && key != 0 && shardOf(key) != i {
					d.fail("a key in another shard than its own")
					break
				}
				d.rec(&sd.recs[k], key, s)
			}
		}
		sd.tokens, sd.seen = newTokenTable(s.seed), newTable(seenStride, s.seed)
		n := d.n()
		sd.tokens.reserve(n)
		for j := 0; j < n && d.err == nil; j++ {
			key := d.u64()
			m := d.n()
			if m > maxTokenSightings || m == 1 {
				d.fail("a token digest's sightings out of range")
				break
			}
			var secs []uint32
			if m > 0 {
				secs = make([]uint32, m)
			}
			for s := range secs {
				secs[s] = d.u32()
			}
			more, last := d.u32(), d.u32()
			switch {
			case key == 0:
				d.fail("zero token digest")
			case shardOf(key) != i:
				d.fail("a token digest in another shard than its own")
			case m == 0 && (more == 0 || more == tokenOverflow):
				d.fail("a token digest without sightings")
			case !slices.IsSorted(secs):
				d.fail("a token digest's sightings out of order")
			}
			if d.err != nil {
				break
			}
			i, _ := sd.tokens.upsert(key)
			sd.tokens.restore(i, key, secs, more, last)
		}
		n = d.n()
		sd.seen.reserve(n)
		for j := 0; j < n && d.err == nil; j++ {
			key, t := d.u64(), d.u32()
			if key == 0 {
				d.fail("zero event id")
				break
			}
			if shardOf(key) != i {
				d.fail("an event id in another shard than its own")
				break
			}
			i, _ := sd.seen.upsert(key)
			sd.seen.val(i)[0] = t
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the last shard", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, d.err)
	}
	if accept != nil {
		if err := accept(meta); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
		}
	}
	for i := range shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.recs, sh.tokens, sh.seen = shards[i].recs, shards[i].tokens, shards[i].seen
		sh.mu.Unlock()
	}
	s.watermark.Store(watermark)
	s.applied.Store(applied)
	return meta, nil
}

// maxSnapshotMeta bounds the metadata PeekSnapshot reads (a snapshot's is a few hundred bytes).
const maxSnapshotMeta = 1 << 20

// PeekSnapshot reads the start of a snapshot written by WriteSnapshot — nothing past its
// metadata, and without verifying the checksum, which needs the whole file — and returns the
// metadata and whether the snapshot was kept under this state's bounds (retention, entries per
// key, distinct cap, bucket, sketch). It tells which configuration wrote a snapshot without
// reading a file as large as the state; an error wrapping ErrSnapshot when r does not start with
// a snapshot of this format version.
func (s *State) PeekSnapshot(r io.Reader) (meta []byte, sameBounds bool, err error) {
	br := bufio.NewReaderSize(r, 256)
	head := make([]byte, len(snapshotMagic)+2+5*4+4+8)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, false, fmt.Errorf("%w: header: %w", ErrSnapshot, err)
	}
	if string(head[:len(snapshotMagic)]) != string(snapshotMagic[:]) {
		return nil, false, fmt.Errorf("%w: not a riskflow feature snapshot", ErrSnapshot)
	}
	d := decoder{b: head[len(snapshotMagic):]}
	if v := d.u16(); v != SnapshotVersion {
		return nil, false, fmt.Errorf("%w: format version %d, this build reads %d", ErrSnapshot, v, SnapshotVersion)
	}
	bounds := [5]uint32{d.u32(), d.u32(), d.u32(), d.u32(), d.u32()}
	want := [5]uint32{s.retention, uint32(s.cfg.MaxEntriesPerKey), uint32(s.cfg.DistinctCap), bucketSec, hllM}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, false, fmt.Errorf("%w: metadata length: %w", ErrSnapshot, err)
	}
	if n > maxSnapshotMeta {
		return nil, false, fmt.Errorf("%w: metadata of %d bytes", ErrSnapshot, n)
	}
	meta = make([]byte, n)
	if _, err := io.ReadFull(br, meta); err != nil {
		return nil, false, fmt.Errorf("%w: metadata: %w", ErrSnapshot, err)
	}
	return meta, bounds == want, nil
}

// readAll reads r to its end after read, what was read of it already. A file is read into a buffer of its size: io.ReadAll grows its
// buffer by doubling, allocating two to three times a snapshot's size beside the state being
// built from it.
func readAll(r io.Reader, read []byte) ([]byte, error) {
	size := int64(512)
	if f, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size() + 1 // +1: the read that finds the end needs room
		}
	}
	b := append(make([]byte, 0, max(size, int64(len(read))+512)), read...)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) { // longer than it was (or not a file): grow as io.ReadAll does
			b = append(b, 0)[:len(b)]
		}
	}
}

type shardData struct {
	recs   [NumKinds]recTable
	tokens tokenTable
	seen   table
}

// decoder reads what encoder wrote; the first problem sticks in err and every later read returns
// zero, so callers check err once.
type decoder struct {
	b    []byte
	err  error
	ents []uint32 // a record's entries, three words each
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errors.New("cut short")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) f32() float32 { return math.Float32frombits(d.u32()) }

func (d *decoder) byte1() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

// n reads a count, refusing one larger than the bytes left could hold (a damaged length must not
// make the decoder allocate gigabytes).
func (d *decoder) n() int {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 || v > uint64(len(d.b)) {
		d.err = errors.New("bad length")
		return 0
	}
	d.b = d.b[k:]
	return int(v)
}

func (d *decoder) bytes() []byte { return d.take(d.n()) }

// blockWords returns the arena words the next n records (key and state, as rec reads them) take
// in a table of ew words per entry, without consuming them; 0 if they do not parse (rec then says
// why).
func (d *decoder) blockWords(n int, ew uint32, locs bool) int {
	p := decoder{b: d.b, err: d.err}
	total := 0
	for j := 0; j < n && p.err == nil; j++ {
		p.take(8) // key
		m := p.n()
		kew := ew
		if locs && p.byte1() == 1 {
			kew++
		}
		p.take(4 * int(max(kew, 3)) * m)
		words := uint32(m) * kew
		if p.byte1() == 1 {
			p.n() // slots
			used := p.n()
			for b := 0; b < used && p.err == nil; b++ {
				p.n()
				p.take(20 + 2*hllM)
			}
		}
		if words > 0 && words <= maxBlockWords {
			total += int(classWords[classFor(words)])
		}
	}
	if p.err != nil {
		return 0
	}
	return total
}

// rec decodes the state of key into rt.
func (d *decoder) rec(rt *recTable, key uint64, s *State) {
	n := d.n()
	if n > s.cfg.MaxEntriesPerKey {
		d.fail("more entries than the cap")
		return
	}
	meta, ew := uint32(n), rt.ew
	if rt.locs {
		switch d.byte1() {
		case 0:
		case 1:
			meta, ew = meta|flagLoc, ew+1
		default:
			d.fail("bad location flag")
		}
	}
	d.ents = d.ents[:0]
	fw := max(ew, 3) // two-word kinds' entries are written with a member b of 0
	for range n * int(fw) {
		d.ents = append(d.ents, d.u32())
	}
	var old *coarse
	switch d.byte1() {
	case 0:
	case 1:
		slots := d.n()
		if d.err == nil && slots != len(newCoarse(s.retention).b) {
			d.fail("coarse ring of another size")
			return
		}
		old = &coarse{b: make([]bucket, slots)}
		used := d.n()
		for j := 0; j < used && d.err == nil; j++ {
			i := d.n()
			if i >= slots {
				d.fail("coarse slot out of range")
				return
			}
			b := &old.b[i]
			b.idx, b.first, b.last, b.count, b.fails = d.u32(), d.u32(), d.u32(), d.u32(), d.u32()
			copy(b.sketch[0][:], d.take(hllM))
			copy(b.sketch[1][:], d.take(hllM))
		}
	default:
		d.fail("bad coarse flag")
	}
	if d.err != nil {
		return
	}
	if key == 0 {
		d.fail("zero key")
		return
	}
	i, added := rt.upsert(key)
	if !added {
		d.fail("key stored twice")
		return
	}
	var ref uint32
	if words := uint32(n) * ew; words > 0 {
		c := classFor(words)
		ref, meta = rt.alloc(c), meta|c<<clsShift
		w := rt.a.w
		for j := range uint32(n) {
			copy(w[ref+j*ew:][:ew], d.ents[j*fw:(j+1)*fw]) // b dropped for two-word kinds
		}
		meta |= rt.genOf(w[ref+(uint32(n)-1)*ew] &^ failBit)
	}
	if old != nil {
		if rt.old == nil {
			rt.old = make(map[uint64]*coarse)
		}
		rt.old[key] = old
		meta |= flagCoarse
	}
	v := rt.val(i)
	v[vRef], v[vMeta] = ref, meta
}

func b2u8(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}
