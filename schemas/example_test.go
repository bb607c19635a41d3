package schemas_test

import (
	"fmt"

	"github.com/riskflow/riskflow/schemas"
)

func ExampleDecodeEvent() {
	ev, err := schemas.DecodeEvent([]byte(`{
		"event_id": "evt-0001",
		"ts": "2025-03-14T17:26:53+08:00",
		"app_id": "app-7c41d9",
		"flow": "one_click_login",
		"phone": "+8613812348000",
		"ip": "223.104.63.18",
		"outcome": "success"
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Phone, schemas.MaskPhone(ev.Phone), ev.TS)

	_, err = schemas.DecodeEvent([]byte(`{
		"event_id": "evt-0002",
		"ts": 1741944413589,
		"app_id": "app-7c41d9",
		"flow": "one_click_login",
		"phone": "13812348000",
		"ip": "999.1.1.1",
		"outcome": "success"
	}`))
	fmt.Println(err)
	if fe, ok := schemas.AsFieldError(err); ok {
		fmt.Printf("field %s: %s\n", fe.Field, fe.Reason)
	}
	// Output:
	// 13812348000 1381234**** 2025-03-14 09:26:53 +0000 UTC
	// ip: "999.1.1.1" is not an IP address
	// field ip: "999.1.1.1" is not an IP address
}

// Error messages show a caller's value through Excerpt: short, escaped, phone numbers masked.
// ContainsPhone is the detector behind it, and behind the decoders' refusal of ids that hold a
// number: digits glued to a hexadecimal letter before them or to a letter after them (hex ids,
// UUIDs) are part of an identifier, while "tel13812345678" is a label and a number.
func ExampleExcerpt() {
	fmt.Println(schemas.Excerpt("call +86 138 1234 5678\nnow", 40))
	fmt.Println(schemas.Excerpt("a very long value that goes on and on and on", 16))
	fmt.Println(schemas.ContainsPhone("user-13812345678"), schemas.ContainsPhone("a3f9e2c113812345678b"))
	// Output:
	// "call <phone>\nnow"
	// "a very long valu…"
	// true false
}
