// Package produce configures the Kafka writer that the gRPC producer shares across all requests.
package produce

import (
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
)

// Config is the writer's tunables; everything else is fixed by the vote contract.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// BatchTimeout is how long a partition's batch waits for more records before it is sent.
	// A few milliseconds lets concurrent requests share one produce request.
	BatchTimeout time.Duration
	// WriteTimeout bounds each network write and read to a broker.
	WriteTimeout time.Duration
	// ClientID names the producer in the broker's logs and metrics.
	ClientID string
}

// NewWriter returns the one writer a producer process uses for every vote. Its settings are set
// explicitly rather than left to kafka-go's defaults (which are acks=none for a Writer literal and
// a one-second batch timeout):
//   - RequiredAcks=RequireAll: a vote is acknowledged only once every in-sync replica has it;
//   - Murmur2 hash of the key (the vote id), the partitioner of Kafka's Java client, so a vote's
//     retries land in one partition whichever standard client wrote them;
//   - a short BatchTimeout; WriteMessages blocks its caller until the record is acknowledged, but
//     concurrent callers' records are batched together per partition;
//   - few attempts with short backoff, so a dead broker yields an error quickly (the front then
//     answers 503) instead of holding requests for seconds.
func NewWriter(cfg Config) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  queue.VotesTopic,
		Balancer:               kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           cfg.BatchTimeout,
		BatchSize:              200,
		BatchBytes:             1 << 20,
		MaxAttempts:            3,
		WriteBackoffMin:        20 * time.Millisecond,
		WriteBackoffMax:        250 * time.Millisecond,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		Async:                  false,
		AllowAutoTopicCreation: false,
		Transport: &kafka.Transport{
			ClientID:    cfg.ClientID,
			DialTimeout: 2 * time.Second,
			IdleTimeout: time.Minute,
			MetadataTTL: 10 * time.Second,
		},
	}
}
