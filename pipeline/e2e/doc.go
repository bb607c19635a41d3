// Package e2e holds riskflow's end-to-end integration tests (build tag integration): the real
// riskflow binary, run as separate processes, against the real Kafka broker and ClickHouse server
// started by deploy/local/up. Nothing here is faked.
package e2e
