// Package queue names Tally's Kafka topics and how votes travel on them.
package queue

// Topics every environment creates: locally (go/internal/stack), in tests, and in Kubernetes
// (k8s/, as Strimzi KafkaTopics).
const (
	// VotesTopic carries every accepted vote, keyed by vote id.
	VotesTopic = "votes"
	// VotesPartitions exceeds the consumer's largest replica count (5), so each replica gets work.
	VotesPartitions = 6
	// DeadLetterTopic holds records the consumer could not decode, with the reason in a header.
	DeadLetterTopic = "votes.dlq"
	// DeadLetterPartitions is small: poison records are rare and read by people, not throughput.
	DeadLetterPartitions = 1
)

// Replication is every topic's replication factor on a cluster of brokers Kafka nodes: one copy
// per broker. MinInsync is its min.insync.replicas: with three copies an acks=all write needs
// two, so one broker may be down; with one copy, one. The manifests (k8s/manifests/kafka.yaml,
// through k8s/render) say the same; a test of go/internal/stack compares the rendered manifests
// with these, so the local cluster and the deployed one cannot drift apart.
func Replication(brokers int) int { return brokers }

// MinInsync is min.insync.replicas on a cluster of brokers Kafka nodes (see Replication).
func MinInsync(brokers int) int { return (brokers + 1) / 2 }
