package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// pendingPromotion is a draft one admin asked to promote, waiting for another (Deps.Approvals 2).
// Requests are kept in Deps.State: any node lists them, and another admin approves through any.
type pendingPromotion struct {
	ID      string
	Version string // the draft's content hash, as rules.Pack.Version computes it
	// Base is the live version when it was asked (the draft was edited from it): the request
	// is approved only while it is still live, else its promotion would undo the packs promoted
	// in between, unseen by the one who asked.
	Base string `json:",omitempty"`
	// Rollback: the request brings back a recorded version, loaded as recorded (untested, as a
	// rollback is), not promoted.
	Rollback bool `json:",omitempty"`
	By       string
	At       time.Time
	Draft    []byte
	Node     string `json:"-"` // where it was asked
}

// maxPending bounds the requests kept; the oldest goes first.
const maxPending = 32

func draftVersion(draft []byte) string {
	sum := sha256.Sum256(draft)
	return hex.EncodeToString(sum[:])[:16]
}

// requestPromotion records a promotion request by who.
// A rollback request names the recorded version it brings back (rollback), whose text is draft.
func (s *Server) requestPromotion(ctx context.Context, draft []byte, who, base, rollback string) (*pendingPromotion, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := &pendingPromotion{ID: hex.EncodeToString(b[:]), Version: draftVersion(draft), By: who, At: s.d.Now().UTC(), Draft: draft, Base: base, Rollback: rollback != ""}
	if rollback != "" {
		p.Version = rollback
	}
	if old, err := s.pendingList(ctx); err == nil && len(old) >= maxPending {
		for _, q := range old[:len(old)-maxPending+1] {
			_ = s.put(ctx, Item{Kind: ItemPromotion, ID: q.ID, Admin: who, Deleted: true})
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := s.put(ctx, Item{Kind: ItemPromotion, ID: p.ID, Admin: who, Body: body}); err != nil {
		return nil, err
	}
	return p, nil
}

func decodePromotion(it Item) (*pendingPromotion, error) {
	var p pendingPromotion
	if err := schemas.UnmarshalJSON(it.Body, &p, "At"); err != nil {
		return nil, fmt.Errorf("promotion request %s: %w", it.ID, err)
	}
	p.Node = it.Node
	return &p, nil
}

// pendingOf returns one request, nil when there is none.
func (s *Server) pendingOf(ctx context.Context, id string) (*pendingPromotion, error) {
	if !stateIDPattern.MatchString(id) {
		return nil, nil // no id this console made: not looked up (it is whatever was sent)
	}
	it, ok, err := s.d.State.Get(ctx, ItemPromotion, id)
	if err != nil || !ok {
		return nil, err
	}
	return decodePromotion(it)
}

// pendingList returns the requests, oldest first.
func (s *Server) pendingList(ctx context.Context) ([]*pendingPromotion, error) {
	its, err := s.d.State.List(ctx, ItemPromotion)
	if err != nil {
		return nil, fmt.Errorf("promotion requests: %w", err)
	}
	out := make([]*pendingPromotion, 0, len(its))
	for _, it := range its {
		p, err := decodePromotion(it)
		if err != nil {
			s.log.Warn("console: promotion request unreadable; skipped", "err", err)
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *pendingPromotion) int { return a.At.Compare(b.At) })
	return out, nil
}

type pendingData struct {
	P       *pendingPromotion
	Live    PackInfo
	Diff    []diffLine
	Mine    bool // the viewer asked for it: they cannot approve it
	Stale   bool // another pack went live since it was asked: it cannot be approved
	Problem string
}

func (s *Server) pendingPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	p, err := s.pendingOf(ctx, r.PathValue("id"))
	if err != nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Promotion request", Nav: "rules", Problem: notAvailable("promotion requests", err)})
		return
	}
	if p == nil || s.d.Rules == nil {
		s.render(w, r, http.StatusNotFound, "error", ss, page{Title: "Promotion request", Nav: "rules", Problem: "No such promotion request (approved or withdrawn already?)."})
		return
	}
	d := pendingData{P: p, Mine: p.By == ss.who}
	live, err := s.d.Rules.Live(ctx)
	d.Live, d.Problem = live, notAvailable("live pack", err)
	switch {
	case err == nil && live.Version == p.Version:
		d.Problem = "Version " + p.Version + " is live already: approving it closes the request, promoting nothing."
	case err == nil && p.stale(live):
		d.Stale, d.Problem = true, p.staleProblem(live)
	}
	d.Diff = lineDiff(string(live.Content), string(p.Draft))
	s.render(w, r, http.StatusOK, "pending", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: d.Problem, Data: d})
}

// stale reports whether another pack went live since the request was asked (requests of earlier
// builds carry no base: they are not refused for it).
func (p *pendingPromotion) stale(live PackInfo) bool {
	return p.Base != "" && live.Version != "" && live.Version != p.Base
}

func (p *pendingPromotion) staleProblem(live PackInfo) string {
	return fmt.Sprintf("Not approvable: the live pack changed since %s asked: the request was made against version %s, the live one is now %s "+
		"(see History on the rules page), and promoting it would undo that change. Withdraw it; %s can ask again from a draft of the live pack.",
		p.By, p.Base, live.Version, p.By)
}

var errOwnRequest = errors.New("a second admin must approve it: you asked for this promotion")

// pendingPost approves (another admin: promotes the draft) or withdraws (anyone) a request.
func (s *Server) pendingPost(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	id := r.PathValue("id")
	back := func(msg string) {
		http.Redirect(w, r, "/console/rules?"+s.notice(ss, msg), http.StatusSeeOther)
	}
	// One decision at a time on this node, each reading the request afresh: a withdrawal while
	// another admin's approval was promoting said "withdrawn" of a request that went live.
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	p, err := s.pendingOf(ctx, id)
	if err != nil {
		back("Promotion requests: " + err.Error())
		return
	}
	if p == nil || s.d.Rules == nil {
		back("No such promotion request (approved or withdrawn already?).")
		return
	}
	switch r.PostForm.Get("decision") {
	case "withdraw":
		if err := s.put(ctx, Item{Kind: ItemPromotion, ID: id, Admin: ss.who, Deleted: true}); err != nil {
			back("Not withdrawn: " + err.Error())
			return
		}
		s.log.Info("console: promotion request withdrawn", "id", id, "version", p.Version, "requested_by", p.By, "admin", ss.who)
		back(fmt.Sprintf("Promotion of version %s (asked by %s) withdrawn by %s.", p.Version, p.By, ss.who))
	case "approve":
		if p.By == ss.who {
			s.render(w, r, http.StatusForbidden, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: "Not approved: " + errOwnRequest.Error()})
			return
		}
		if live, err := s.d.Rules.Live(ctx); err == nil && live.Version == p.Version {
			// Its version is live already: the request was promoted and its removal failed, or the
			// same pack went live another way. Nothing to promote: the request is closed. It was
			// refused as "the live pack changed since … the live one is now <its own version>".
			if err := s.put(ctx, Item{Kind: ItemPromotion, ID: id, Admin: ss.who, Deleted: true}); err != nil {
				back("Version " + p.Version + " is live already; the request could not be closed: " + err.Error())
				return
			}
			s.log.Info("console: promotion request closed, its version live already", "id", id, "version", p.Version, "requested_by", p.By, "admin", ss.who)
			back(fmt.Sprintf("Version %s (asked by %s) is live already: nothing to promote, the request is closed.", p.Version, p.By))
			return
		} else if err == nil && p.stale(live) {
			s.render(w, r, http.StatusConflict, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: p.staleProblem(live)})
			return
		}
		var info PackInfo
		if p.Rollback {
			info, err = s.d.Rules.Rollback(ctx, p.Version, p.By+",approved-by:"+ss.who, p.Base)
		} else {
			info, err = s.d.Rules.Promote(ctx, p.Draft, p.By+",approved-by:"+ss.who, p.Base)
		}
		if errors.Is(err, ErrStale) {
			// Another pack went live between the check above and the swap.
			if live, lerr := s.d.Rules.Live(ctx); lerr == nil && p.stale(live) {
				s.render(w, r, http.StatusConflict, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: p.staleProblem(live)})
				return
			}
			s.render(w, r, http.StatusConflict, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: "Not approved: " + err.Error()})
			return
		}
		if err != nil {
			// A pack refused (it fails the pack's tests now) is the request's fault, not a
			// part away: 400, as the draft page answers it.
			status := http.StatusServiceUnavailable
			if errors.Is(err, ErrInvalid) {
				status = http.StatusBadRequest
			}
			s.render(w, r, status, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: "Not promoted: " + err.Error()})
			return
		}
		// Promoted: the request goes. Should this write fail the request stays listed, and
		// approving it again finds its version live and closes it.
		if err := s.put(ctx, Item{Kind: ItemPromotion, ID: id, Admin: ss.who, Deleted: true}); err != nil {
			s.log.Warn("console: promoted, but the request could not be removed", "id", id, "err", err)
		}
		s.log.Info("console: rule pack promoted", "version", info.Version, "requested_by", p.By, "approved_by", ss.who)
		msg := fmt.Sprintf("Promoted version %s (%d rules), asked by %s, approved by %s.", info.Version, info.Rules, p.By, ss.who)
		if p.Rollback {
			msg = fmt.Sprintf("Rolled back to version %s, asked by %s, approved by %s.", info.Version, p.By, ss.who)
		}
		if info.Note != "" {
			msg += " Note: " + info.Note
		}
		back(msg)
	default:
		s.render(w, r, http.StatusBadRequest, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: "decision: approve or withdraw"})
	}
}
