//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// An API node restarted from its snapshot, with a backlog produced while it was down, answers
// checks as a node that replayed everything: the same score, tags and reasons (counts) for
// numbers of the IP farm, the device farm and the filler, and for numbers it never saw.
func TestAPINodeFromSnapshotAnswersAsAReplay(t *testing.T) {
	e := newEnv(t)
	base := time.Now().UTC().Add(-8 * time.Minute).Truncate(time.Second)
	stream := farmStream(base, 3000)
	before, backlog := stream[:len(stream)/2], stream[len(stream)/2:] // the farms before, filler after
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := e.writer()
	if err := w.WriteMessages(ctx, before...); err != nil {
		t.Fatal(err)
	}
	snapDir := t.TempDir()
	withSnap := func(args ...string) []string { return append(args, "--set", "scoring.snapshot_dir="+snapDir) }

	a := testaddr.Free(t)
	first := e.start("api", withSnap("--listen", a)...)
	waitHTTP(t, "http://"+a+"/readyz")
	first.stop(syscall.SIGTERM)
	if !strings.Contains(first.log.String(), `"feature snapshot written" why=shutdown`) { // the first is written once caught up
		t.Fatalf("no snapshot at shutdown:\n%s", tail(first.log, 20))
	}
	if err := w.WriteMessages(ctx, backlog...); err != nil { // while no node runs
		t.Fatal(err)
	}

	fromSnap, replayed := testaddr.Free(t), testaddr.Free(t)
	b := e.start("api", withSnap("--listen", fromSnap)...)
	e.start("api", "--listen", replayed, "--set", "scoring.snapshot_dir="+t.TempDir())
	waitHTTP(t, "http://"+fromSnap+"/readyz")
	waitHTTP(t, "http://"+replayed+"/readyz")
	if !strings.Contains(b.log.String(), "feature snapshot loaded") {
		t.Fatalf("the snapshot was not loaded:\n%s", tail(b.log, 20))
	}

	var reqs []map[string]string
	for _, m := range append(stream[:60:60], stream[len(stream)-40:]...) {
		reqs = append(reqs, checkOf(t, m))
	}
	reqs = append(reqs, map[string]string{"phone": "13700009999", "ip": "47.92.10.20", "app_id": "it-app"}, // a new number on the farm IP
		map[string]string{"phone": "13800009999", "ip": "183.14.99.9", "device_id": "farm-rig-1", "app_id": "it-app"}) // on the farm device
	risky := 0
	for _, req := range reqs {
		x, y := postCheck(t, fromSnap, req), postCheck(t, replayed, req)
		if !reflect.DeepEqual(x, y) {
			t.Errorf("check %v: from the snapshot %v, replayed %v", req, x, y)
		}
		if x.Score > 0 {
			risky++
		}
	}
	if risky == 0 {
		t.Error("no check scored above 0: the farms are not in either state")
	}
	t.Logf("%d checks alike, %d of them above 0", len(reqs), risky)
}

// checkOf is the check request of a recorded event.
func checkOf(t *testing.T, m kafka.Message) map[string]string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		t.Fatal(err)
	}
	req := map[string]string{}
	for _, k := range []string{"phone", "ip", "app_id", "carrier", "flow", "platform", "device_id"} {
		if v, ok := ev[k].(string); ok {
			req[k] = v
		}
	}
	return req
}

type apiVerdict struct {
	Score  int                       `json:"score"`
	Tags   []string                  `json:"tags"`
	Detail map[string]map[string]any `json:"detail"`
}

func postCheck(t *testing.T, addr string, req map[string]string) apiVerdict {
	t.Helper()
	body, _ := json.Marshal(req)
	r, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/risk/check", strings.NewReader(string(body)))
	r.SetBasicAuth("it-app", "it-secret")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("check on %s: %d %s", addr, resp.StatusCode, b)
	}
	var v apiVerdict
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(fmt.Errorf("decode check answer: %w", err))
	}
	return v
}
