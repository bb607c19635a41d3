// Package bench is riskflow's load harness. Every figure is a ratio against a baseline measured in
// the same run on the same machine, because absolute numbers on a shared 2-core box mean little:
//
//   - API: a bare net/http handler returning a fixed riskCheck of the same size versus
//     /v1/risk/check with the default pack over a warmed feature state, driven by the same load
//     generator at the same concurrency (throughput) and the same offered rate (latency).
//   - Pipeline: events/s through real Kafka → scorer → risk.scores versus kafka-go's raw consume
//     rate of the same messages on the same broker.
//   - Freshness: event produced to Kafka → visible in the feature state that /v1/risk/check reads.
//   - Archiver: score records/s from Kafka into ClickHouse (verify_events and risk_scores) versus
//     clickhouse-client's Native bulk insert of the same rows into copies of the two tables.
//   - History freshness: event produced to verify.events → its rows acknowledged by ClickHouse,
//     through the scorer and the archiver, at a steady offered rate.
package bench
