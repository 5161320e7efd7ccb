package queue

import (
	"slices"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// Headers the consumer adds to a record it moves to DeadLetterTopic; the record's key, value and
// own headers are kept as they were (proto/README.md, "The dead-letter record").
const (
	HeaderDeadReason    = "tally-dlq-reason"
	HeaderDeadTopic     = "tally-dlq-topic"
	HeaderDeadPartition = "tally-dlq-partition"
	HeaderDeadOffset    = "tally-dlq-offset"
)

// DeadLetter is the record written to DeadLetterTopic for m, a record that is not a vote.
func DeadLetter(m kafka.Message, reason string) kafka.Message {
	headers := slices.Clip(slices.Clone(m.Headers))
	headers = append(headers,
		kafka.Header{Key: HeaderDeadReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDeadTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderDeadPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderDeadOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
}

// Header returns the value of m's header key, or "" if it has none.
func Header(m kafka.Message, key string) string { return header(m, key) }
