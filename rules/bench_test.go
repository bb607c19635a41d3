package rules

import (
	"fmt"
	"strings"
	"testing"

	"cel.dev/cel-go/interpreter"
)

// benchVars are 21 features of the kind scoring declares.
var benchVars = []Var{
	{Name: "phone_verifies_10m", Type: Int}, {Name: "phone_verifies_1h", Type: Int},
	{Name: "phone_failures_10m", Type: Int}, {Name: "ip_phones_10m", Type: Int},
	{Name: "ip_phones_1h", Type: Int}, {Name: "ip_verifies_1h", Type: Int},
	{Name: "device_phones_24h", Type: Int}, {Name: "phone_devices_24h", Type: Int},
	{Name: "phone_ips_24h", Type: Int}, {Name: "prefix_phones_1h", Type: Int},
	{Name: "device_verifies_10m", Type: Int},
	{Name: "token_seen", Type: Bool}, {Name: "ip_is_mobile", Type: Bool},
	{Name: "segment_mvno", Type: Bool}, {Name: "segment_iot", Type: Bool},
	{Name: "segment_unallocated", Type: Bool}, {Name: "carrier_mismatch", Type: Bool},
	{Name: "overseas_ip", Type: Bool},
	{Name: "ip_type", Type: String}, {Name: "carrier", Type: String}, {Name: "platform", Type: String},
}

// benchRules are 30 rules shaped like the default pack's; for benchInput only the first two
// match (phone_velocity at 300 and carrier_mismatch in shadow).
var benchRules = []struct{ id, tag, mode, when, reason string }{
	{"pv_observe", "phone_velocity", "enforce", "phone_verifies_10m >= 3", "{phone_verifies_10m} verifications in 10 min"},
	{"carrier_mismatch_shadow", "carrier_mismatch", "shadow", "carrier_mismatch && carrier != ''", "reported carrier {carrier} differs"},
	{"pv_stepup", "phone_velocity", "enforce", "phone_verifies_10m >= 10", "{phone_verifies_10m} verifications in 10 min"},
	{"pv_hour", "phone_velocity", "enforce", "phone_verifies_1h >= 30", "{phone_verifies_1h} verifications in 1 h"},
	{"failures", "repeated_failures", "enforce", "phone_failures_10m >= 5", "{phone_failures_10m} failures"},
	{"ip_phones", "phones_per_ip", "enforce", "ip_phones_10m >= 20 && ip_type != 'mobile'", "{ip_phones_10m} phones from a {ip_type} IP"},
	{"ip_phones_mobile", "phones_per_ip", "enforce", "ip_phones_10m >= 200 && ip_type == 'mobile'", "{ip_phones_10m} phones"},
	{"ip_phones_hour", "phones_per_ip", "enforce", "ip_phones_1h >= 100 && !ip_is_mobile", "{ip_phones_1h} phones in 1 h"},
	{"ip_velocity", "ip_velocity", "enforce", "ip_verifies_1h >= 500", "{ip_verifies_1h} requests in 1 h"},
	{"device_phones", "phones_per_device", "enforce", "device_phones_24h >= 3", "{device_phones_24h} phones on this device"},
	{"device_phones_block", "phones_per_device", "enforce", "device_phones_24h >= 10", "{device_phones_24h} phones on this device"},
	{"phone_devices", "devices_per_phone", "enforce", "phone_devices_24h >= 3", "{phone_devices_24h} devices"},
	{"phone_ips", "ips_per_phone", "enforce", "phone_ips_24h >= 5", "{phone_ips_24h} networks"},
	{"prefix_burst", "prefix_burst", "enforce", "prefix_phones_1h >= 10", "{prefix_phones_1h} numbers in the range"},
	{"device_velocity", "device_velocity", "enforce", "device_verifies_10m >= 20", "{device_verifies_10m} requests"},
	{"token_replay", "token_replay", "enforce", "token_seen", "token seen before"},
	{"mvno", "mvno_segment", "enforce", "segment_mvno", "virtual operator number"},
	{"iot", "iot_or_data_card", "enforce", "segment_iot", "data-only or IoT number"},
	{"unallocated", "unallocated_segment", "enforce", "segment_unallocated", "unallocated number range"},
	{"carrier_mismatch", "carrier_mismatch", "enforce", "carrier_mismatch && carrier != '' && phone_verifies_10m >= 5", "carrier {carrier}"},
	{"overseas", "overseas_ip", "enforce", "overseas_ip && platform != 'web'", "overseas IP"},
	{"overseas_burst", "overseas_ip", "enforce", "overseas_ip && phone_verifies_1h >= 5", "overseas IP, {phone_verifies_1h} tries"},
	{"idc", "idc_proxy_ip", "enforce", "ip_type == 'idc'", "datacenter IP"},
	{"idc_burst", "idc_proxy_ip", "enforce", "ip_type == 'idc' && ip_phones_1h >= 5", "datacenter IP, {ip_phones_1h} phones"},
	{"mvno_burst", "mvno_segment", "enforce", "segment_mvno && phone_verifies_10m >= 2", "virtual operator number, repeated"},
	{"h5_idc", "idc_proxy_ip", "shadow", "platform == 'h5' && ip_type in ['idc', 'proxy']", "H5 from a datacenter"},
	{"fail_burst_ip", "repeated_failures", "enforce", "phone_failures_10m >= 3 && ip_phones_10m >= 10", "failures across phones"},
	{"velocity_combo", "phone_velocity", "enforce", "phone_verifies_10m >= 5 && phone_ips_24h >= 3 && !ip_is_mobile", "velocity from many networks"},
	{"device_combo", "phones_per_device", "enforce", "device_phones_24h >= 2 && device_verifies_10m >= 10", "busy shared device"},
	{"harmony_replay", "token_replay", "shadow", "token_seen && platform == 'harmony'", "replay on harmony"},
}

func benchPackSource() string {
	var b strings.Builder
	b.WriteString("pack: bench\nrules:\n")
	levels := []int{300, 600, 900}
	for i, r := range benchRules {
		fmt.Fprintf(&b, "  - id: %s\n    tag: %s\n    level: %d\n    mode: %s\n    when: %q\n    reason: %q\n",
			r.id, r.tag, levels[i%3], r.mode, r.when, r.reason)
	}
	return b.String()
}

// benchInput resolves names with a switch over a struct, as scoring does.
type benchInput struct {
	ints    [11]int64
	bools   [7]bool
	ipType  string
	carrier string
	plat    string
}

func (s *benchInput) ResolveName(name string) (any, bool) {
	switch name {
	case "phone_verifies_10m":
		return s.ints[0], true
	case "phone_verifies_1h":
		return s.ints[1], true
	case "phone_failures_10m":
		return s.ints[2], true
	case "ip_phones_10m":
		return s.ints[3], true
	case "ip_phones_1h":
		return s.ints[4], true
	case "ip_verifies_1h":
		return s.ints[5], true
	case "device_phones_24h":
		return s.ints[6], true
	case "phone_devices_24h":
		return s.ints[7], true
	case "phone_ips_24h":
		return s.ints[8], true
	case "prefix_phones_1h":
		return s.ints[9], true
	case "device_verifies_10m":
		return s.ints[10], true
	case "token_seen":
		return s.bools[0], true
	case "ip_is_mobile":
		return s.bools[1], true
	case "segment_mvno":
		return s.bools[2], true
	case "segment_iot":
		return s.bools[3], true
	case "segment_unallocated":
		return s.bools[4], true
	case "carrier_mismatch":
		return s.bools[5], true
	case "overseas_ip":
		return s.bools[6], true
	case "ip_type":
		return s.ipType, true
	case "carrier":
		return s.carrier, true
	case "platform":
		return s.plat, true
	}
	return nil, false
}

func (*benchInput) Parent() interpreter.Activation { return nil }

func benchSetup(b *testing.B) (*Pack, *benchInput) {
	env := mustEnv(b, benchVars...)
	p := mustCompile(b, env, benchPackSource())
	if len(p.Rules) != 30 {
		b.Fatalf("%d rules", len(p.Rules))
	}
	in := &benchInput{
		ints:    [11]int64{4, 6, 0, 2, 3, 9, 1, 1, 2, 1, 2},
		bools:   [7]bool{false, true, false, false, false, true, false},
		ipType:  "mobile",
		carrier: "CU",
		plat:    "android",
	}
	return p, in
}

// BenchmarkEval evaluates a 30-rule pack over 21 variables for an ordinary event: 2 rules match
// (one enforce, one shadow), 28 do not.
func BenchmarkEval(b *testing.B) {
	p, in := benchSetup(b)
	var res Result
	if err := p.Eval(in, &res); err != nil {
		b.Fatal(err)
	}
	if res.Score != 300 || len(res.Hits) != 2 {
		b.Fatalf("score %d, hits %+v", res.Score, res.Hits)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Eval(in, &res); err != nil {
			b.Fatal(err)
		}
	}
}

// fastBenchInput is benchInput with the fast path's Vars (indexes as declared in benchVars:
// 11 ints, 7 bools, 3 strings).
type fastBenchInput struct{ *benchInput }

func (f fastBenchInput) Int(i int) int64     { return f.ints[i] }
func (f fastBenchInput) Double(int) float64  { return 0 }
func (f fastBenchInput) Bool(i int) bool     { return f.bools[i-11] }
func (f fastBenchInput) String(i int) string { return [3]string{f.ipType, f.carrier, f.plat}[i-18] }

// BenchmarkEvalFast is BenchmarkEval through the fast path (an Input that implements Vars), the
// way scoring evaluates: compare the two for what the fast path saves.
func BenchmarkEvalFast(b *testing.B) {
	p, in := benchSetup(b)
	fin := fastBenchInput{in}
	var res, slow Result
	if err := p.Eval(fin, &res); err != nil {
		b.Fatal(err)
	}
	if err := p.Eval(in, &slow); err != nil || res.Score != slow.Score || len(res.Hits) != len(slow.Hits) {
		b.Fatalf("fast %d %+v, cel-go %d %+v (%v)", res.Score, res.Hits, slow.Score, slow.Hits, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Eval(fin, &res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvalParallel is BenchmarkEval from all Ps at once, one Result per goroutine.
func BenchmarkEvalParallel(b *testing.B) {
	p, in := benchSetup(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var res Result
		for pb.Next() {
			if err := p.Eval(in, &res); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCompile compiles the 30-rule pack (done once per reload, not per event).
func BenchmarkCompile(b *testing.B) {
	env := mustEnv(b, benchVars...)
	src := []byte(benchPackSource())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(src, env); err != nil {
			b.Fatal(err)
		}
	}
}
