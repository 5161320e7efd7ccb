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
