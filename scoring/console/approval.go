package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// pendingPromotion is a draft one admin asked to promote, waiting for another (Deps.Approvals 2).
// Requests live on the node that took them, like drafts.
type pendingPromotion struct {
	ID      string
	Version string // the draft's content hash, as rules.Pack.Version computes it
	By      string
	At      time.Time
	Draft   []byte
}

// maxPending bounds the requests kept; the oldest goes first.
const maxPending = 32

func draftVersion(draft []byte) string {
	sum := sha256.Sum256(draft)
	return hex.EncodeToString(sum[:])[:16]
}

// requestPromotion records a promotion request by who.
func (s *Server) requestPromotion(draft []byte, who string) *pendingPromotion {
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := &pendingPromotion{ID: hex.EncodeToString(b[:]), Version: draftVersion(draft), By: who, At: s.d.Now().UTC(), Draft: draft}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= maxPending {
		var oldest *pendingPromotion
		for _, q := range s.pending {
			if oldest == nil || q.At.Before(oldest.At) {
				oldest = q
			}
		}
		delete(s.pending, oldest.ID)
	}
	s.pending[p.ID] = p
	return p
}

// pendingList returns the requests, oldest first.
func (s *Server) pendingList() []*pendingPromotion {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pendingPromotion, 0, len(s.pending))
	for _, p := range s.pending {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *pendingPromotion) int { return a.At.Compare(b.At) })
	return out
}

type pendingData struct {
	P       *pendingPromotion
	Live    PackInfo
	Diff    []diffLine
	Mine    bool // the viewer asked for it: they cannot approve it
	Problem string
}

func (s *Server) pendingPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	s.mu.Lock()
	p := s.pending[r.PathValue("id")]
	s.mu.Unlock()
	if p == nil || s.d.Rules == nil {
		s.render(w, r, http.StatusNotFound, "error", ss, page{Title: "Promotion request", Nav: "rules", Problem: "No such promotion request on this node (approved, withdrawn, or asked on another node)."})
		return
	}
	d := pendingData{P: p, Mine: p.By == ss.who}
	live, err := s.d.Rules.Live(ctx)
	d.Live, d.Problem = live, notAvailable("live pack", err)
	d.Diff = lineDiff(string(live.Content), string(p.Draft))
	s.render(w, r, http.StatusOK, "pending", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: d.Problem, Data: d})
}

var errOwnRequest = errors.New("a second admin must approve it: you asked for this promotion")

// pendingPost approves (another admin: promotes the draft) or withdraws (anyone) a request.
func (s *Server) pendingPost(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	id := r.PathValue("id")
	s.mu.Lock()
	p := s.pending[id]
	s.mu.Unlock()
	back := func(msg string) {
		http.Redirect(w, r, "/console/rules?msg="+url.QueryEscape(msg), http.StatusSeeOther)
	}
	if p == nil || s.d.Rules == nil {
		back("No such promotion request on this node.")
		return
	}
	switch r.PostForm.Get("decision") {
	case "withdraw":
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		s.log.Info("console: promotion request withdrawn", "id", id, "version", p.Version, "requested_by", p.By, "admin", ss.who)
		back(fmt.Sprintf("Promotion of version %s (asked by %s) withdrawn by %s.", p.Version, p.By, ss.who))
	case "approve":
		if p.By == ss.who {
			s.render(w, r, http.StatusForbidden, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: "Not approved: " + errOwnRequest.Error()})
			return
		}
		info, err := s.d.Rules.Promote(ctx, p.Draft, p.By+",approved-by:"+ss.who)
		if err != nil {
			s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: "Not promoted: " + err.Error()})
			return
		}
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		s.log.Info("console: rule pack promoted", "version", info.Version, "requested_by", p.By, "approved_by", ss.who)
		msg := fmt.Sprintf("Promoted version %s (%d rules), asked by %s, approved by %s.", info.Version, info.Rules, p.By, ss.who)
		if info.Note != "" {
			msg += " Note: " + info.Note
		}
		back(msg)
	default:
		s.render(w, r, http.StatusBadRequest, "error", ss, page{Title: "Promotion of " + p.Version, Nav: "rules", Problem: "decision: approve or withdraw"})
	}
}
