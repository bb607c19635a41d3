package rules_test

import (
	"fmt"

	"cel.dev/cel-go/interpreter"

	"github.com/riskflow/riskflow/rules"
)

// features is how a scorer supplies variable values: a switch over a struct.
type features struct {
	phoneVerifies10m int64
	ipType           string
}

func (f *features) ResolveName(name string) (any, bool) {
	switch name {
	case "phone_verifies_10m":
		return f.phoneVerifies10m, true
	case "ip_type":
		return f.ipType, true
	}
	return nil, false
}

func (*features) Parent() interpreter.Activation { return nil }

func Example() {
	env, err := rules.NewEnv([]rules.Var{
		{Name: "phone_verifies_10m", Type: rules.Int, Doc: "verifications of this number in the last 10 minutes"},
		{Name: "ip_type", Type: rules.String, Doc: "mobile, broadband, idc or unknown"},
	})
	if err != nil {
		panic(err)
	}
	pack, err := rules.Compile([]byte(`
pack: example
rules:
  - id: phone_velocity_observe
    tag: phone_velocity
    level: 300
    when: phone_verifies_10m >= 3
    reason: "{phone_verifies_10m} verifications of this number in 10 min"
  - id: idc_ip_trial
    tag: idc_proxy_ip
    level: 600
    mode: shadow
    when: ip_type == "idc"
    reason: "client IP is in a {ip_type} network"
`), env)
	if err != nil {
		panic(err)
	}

	var res rules.Result // reused for every event
	if err := pack.Eval(&features{phoneVerifies10m: 4, ipType: "idc"}, &res); err != nil {
		panic(err)
	}
	fmt.Println("score:", res.Score)
	fmt.Println("tags:", res.Tags)
	fmt.Println("detail:", res.Detail["phone_velocity"].Reason)
	for _, h := range res.Hits {
		fmt.Printf("hit: %s %s %d %q\n", h.Rule, h.Mode, h.Score, h.Reason)
	}
	// Output:
	// score: 300
	// tags: [phone_velocity]
	// detail: 4 verifications of this number in 10 min
	// hit: phone_velocity_observe enforce 300 "4 verifications of this number in 10 min"
	// hit: idc_ip_trial shadow 600 "client IP is in a idc network"
}
