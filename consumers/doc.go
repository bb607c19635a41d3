// Package consumers reads and writes riskflow's Kafka topics with segmentio/kafka-go: consumer-group
// loops that commit only after their handler succeeded, writers tuned for latency, topic creation,
// and per-partition tails for state replay and replicas. It knows the wire types only through the
// handlers it calls.
package consumers
