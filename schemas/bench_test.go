package schemas

import "testing"

// benchEvent is a typical full event as a verify service publishes it: every field set, phone with
// +86, RFC 3339 time with an offset.
var benchEvent = []byte(`{
  "event_id": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
  "ts": "2025-03-14T09:26:53.589+08:00",
  "app_id": "app-7c41d9",
  "flow": "one_click_login",
  "phone": "+8613812348000",
  "ip": "223.104.63.18",
  "carrier": "CM",
  "platform": "android",
  "device_id": "a3f9e2c1d4b5a6f7e8d9c0b1a2f3e4d5",
  "outcome": "success",
  "error_code": "",
  "token_digest": "3A7BD3E2360A3D29EEA436FCFB7E44C735D117C42D1C1835420B6B9942DD4F1B",
  "ex_id": "order-20250314-000123"
}`)

// BenchmarkDecodeEvent is the baseline the scoring benchmarks are compared with: decoding and
// validating one typical event.
func BenchmarkDecodeEvent(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		if _, err := DecodeEvent(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

// phoneBenchInputs are what the phone scans meet on hot paths: ids without a number (the usual
// case), an id with one, and a log line with one.
var phoneBenchInputs = []string{
	"9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
	"order-20250314-000123",
	"app-7c41d9",
	"设备-a3f9e2c1d4b5",
	"scorer: publish failed for key 3A7BD3E2 at offset 1733390000: +86 138 1234 5678",
}

// BenchmarkContainsPhone is the refusal scan of the free-text fields (checkText's exact scan).
func BenchmarkContainsPhone(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range phoneBenchInputs {
			ContainsPhone(s)
		}
	}
}

// BenchmarkMaskPhones is what every log line's values go through.
func BenchmarkMaskPhones(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range phoneBenchInputs {
			MaskPhones(s)
		}
	}
}
