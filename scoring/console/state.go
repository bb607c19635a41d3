package console

import (
	"context"
	"sync"
	"time"
)

// Kinds of the console's shared state.
const (
	ItemDraft          = "draft"           // ID: the admin; Body: the draft's text
	ItemDraftBase      = "draft_base"      // ID: the admin; Body: the live version their draft was edited from
	ItemPromotion      = "promotion"       // ID: the request; Body: JSON of the request and its draft
	ItemBacktest       = "backtest"        // ID: the run; Body: JSON of its state, progress and report
	ItemBacktestCancel = "backtest_cancel" // ID: the run; an admin asked to cancel it
	ItemSessionEnded   = "session_ended"   // ID: a session's nonce; its admin logged out (on any node)
)

// Item is one piece of the console's working state.
type Item struct {
	Kind, ID string
	Node     string    // the node that wrote it
	Admin    string    // whose action wrote it
	At       time.Time // when it was written: of two writes of one (Kind, ID), the later wins
	Deleted  bool      // the item was removed (a draft discarded, a request approved or withdrawn)
	Body     []byte
}

// State is where the console keeps its working state — drafts, promotion requests, backtest runs
// and requests to cancel them — so that every node behind a load balancer sees the same: a draft
// saved through one node opens on another, a promotion asked on one is approved on another, a
// backtest running on one is shown (and cancelled) from another. cmd/riskflow keeps it in
// ClickHouse (console_state) next to rule_versions; without it (Deps.State nil) each node keeps its
// own in memory.
//
// Put must be visible to Get and List on every node once it returned. Get and List never return
// deleted items.
type State interface {
	Put(ctx context.Context, it Item) error
	Get(ctx context.Context, kind, id string) (Item, bool, error)
	List(ctx context.Context, kind string) ([]Item, error)
}

// memState is State in this node's memory.
type memState struct {
	mu sync.Mutex
	m  map[string]map[string]Item
}

// NewMemoryState returns a State held in this process's memory: for one node, and tests.
func NewMemoryState() State { return &memState{m: map[string]map[string]Item{}} }

func (s *memState) Put(_ context.Context, it Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.m[it.Kind]
	if k == nil {
		k = map[string]Item{}
		s.m[it.Kind] = k
	}
	if old, ok := k[it.ID]; ok && old.At.After(it.At) {
		return nil
	}
	it.Body = append([]byte(nil), it.Body...)
	k[it.ID] = it
	return nil
}

func (s *memState) Get(_ context.Context, kind, id string) (Item, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.m[kind][id]
	if !ok || it.Deleted {
		return Item{}, false, nil
	}
	return it, true, nil
}

func (s *memState) List(_ context.Context, kind string) ([]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Item
	for _, it := range s.m[kind] {
		if !it.Deleted {
			out = append(out, it)
		}
	}
	return out, nil
}
