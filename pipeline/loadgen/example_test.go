package loadgen_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/riskflow/riskflow/pipeline/loadgen"
)

// Five minutes of evening traffic with 20 % attacks from two scenarios, written as JSONL with a
// ground-truth side file.
func ExampleWriteJSONL() {
	g, err := loadgen.New(loadgen.Config{
		Seed:        1,
		Rate:        20,
		Duration:    5 * time.Minute,
		Start:       time.Date(2026, 3, 2, 20, 0, 0, 0, time.FixedZone("CST", 8*3600)),
		AttackShare: 0.2,
		Scenarios:   []string{loadgen.ScenarioTokenReplay, loadgen.ScenarioSMSPumping},
	})
	if err != nil {
		log.Fatal(err)
	}
	var events, labels bytes.Buffer
	n, err := loadgen.WriteJSONL(context.Background(), &events, g, &labels)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n > 0, strings.Count(events.String(), "\n") == n, strings.Count(labels.String(), "\n") == n)
	// Output: true true true
}

func ExampleScenarios() {
	for _, s := range loadgen.Scenarios() {
		fmt.Println(s)
	}
	// Output:
	// sms_pumping
	// datacenter_farm
	// device_farm
	// token_replay
	// failure_hammering
	// overseas_proxy
	// virtual_numbers
	// number_velocity
}

// Send batches of 500 events, e.g. to Kafka or POST /v1/events.
func ExampleBatches() {
	g, err := loadgen.New(loadgen.Config{Seed: 2, Rate: 100, Duration: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	sent := 0
	err = loadgen.Batches(g, 500, func(batch []loadgen.Labeled) error {
		sent += len(batch) // a producer would write batch[i].Event here
		return nil
	})
	fmt.Println(err, sent > 0)
	// Output: <nil> true
}
