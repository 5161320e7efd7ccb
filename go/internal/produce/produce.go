// Package produce configures the Kafka writer that the gRPC producer shares across all requests.
package produce

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
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
	// MetadataTTL is how often the partitions' leaders are asked for while nothing fails
	// (default 10 s); a write that finds a leader moved asks at once (Writer).
	MetadataTTL time.Duration
}

// Writer is the one Kafka writer of a producer process: kafka-go's, plus what kafka-go does not
// do itself. kafka-go learns the partitions' leaders only on a timer (a random point within
// MetadataTTL), so after a leader moves or dies it keeps writing to the old one, failing every
// vote of its partitions, until the timer fires; Kafka's own clients ask at once. Writer does:
// a write that fails in a way that says the leaders it knows are stale drops kafka-go's
// connections and cached metadata (the next write fetches both anew) and is tried once more.
type Writer struct {
	*kafka.Writer
	transport *kafka.Transport

	mu        sync.Mutex
	refreshed time.Time
}

// refreshEvery bounds how often stale metadata is dropped: one failing write drops it, the
// hundreds failing with it at the same moment reuse the fresh one.
const refreshEvery = 250 * time.Millisecond

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
func NewWriter(cfg Config) *Writer {
	ttl := cfg.MetadataTTL
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	transport := &kafka.Transport{
		ClientID:    cfg.ClientID,
		DialTimeout: 2 * time.Second,
		IdleTimeout: time.Minute,
		MetadataTTL: ttl,
	}
	return &Writer{
		transport: transport,
		Writer: &kafka.Writer{
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
			Transport:              transport,
		},
	}
}

// WriteMessages writes msgs and returns once every in-sync replica has them (kafka-go's
// WriteMessages), asking for the leaders again and retrying once when they turn out stale. A
// retried record may have been written by the first try too (a connection lost after the write):
// the consumer counts a vote id once (docs/data.md).
func (w *Writer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	err := w.Writer.WriteMessages(ctx, msgs...)
	if err == nil || ctx.Err() != nil || !staleLeader(err) {
		return err
	}
	w.refresh()
	return w.Writer.WriteMessages(ctx, msgs...)
}

// refresh drops the transport's connections and metadata, at most once per refreshEvery.
func (w *Writer) refresh() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.refreshed) < refreshEvery {
		return
	}
	w.refreshed = time.Now()
	w.transport.CloseIdleConnections()
}

// staleLeader says whether a write failed because the leader it went to no longer leads (or no
// longer runs): Kafka's leader errors, and a connection refused or lost.
func staleLeader(err error) bool {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil && staleLeader(e) {
				return true
			}
		}
		return false
	}
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafka.NotLeaderForPartition, kafka.LeaderNotAvailable, kafka.UnknownTopicOrPartition,
			kafka.FencedLeaderEpoch, kafka.UnknownLeaderEpoch, kafka.KafkaStorageError,
			kafka.BrokerNotAvailable, kafka.NetworkException:
			return true
		}
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
