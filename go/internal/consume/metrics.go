package consume

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-voting/tally/go/internal/queue"
)

// Metrics are the consumer's Prometheus metrics (go/cmd/consumer/README.md lists them).
type Metrics struct {
	processed    *prometheus.CounterVec
	deadLettered prometheus.Counter
	writeErrors  *prometheus.CounterVec
	applySeconds prometheus.Histogram
	batchRecords prometheus.Histogram
	lag          *prometheus.GaugeVec
	rewinds      prometheus.Counter
	retentionGap prometheus.Counter
	keyConflicts prometheus.Counter
	// stageSeconds and acceptToCounted say where a vote's time between its accept and its count
	// goes (docs/performance.md, "Accept to counted").
	stageSeconds    *prometheus.HistogramVec
	acceptToCounted *prometheus.HistogramVec
}

// Stages of a vote's way through the consumer, the stage label of tally_consumer_stage_seconds.
// Delivery and queue are observed once per record, the others once per batch.
const (
	// StageDelivery is from the vote's accept time to its record's fetch by this consumer: the
	// producer's batch wait (linger), Kafka's write and the reader's fetch.
	StageDelivery = "delivery"
	// StageQueue is from the fetch to the start of the record's batch: the batch's collection
	// window (BatchWait) and the wait for the partition's previous batch.
	StageQueue = "queue"
	// StageMongo, StageRedis and StageCommit are a batch's MongoDB insert (votelog.Store.Insert),
	// Redis apply (counts.Store.Apply) and Kafka offset commit, retries included.
	StageMongo  = "mongo_insert"
	StageRedis  = "redis_apply"
	StageCommit = "offset_commit"
)

// latencyBuckets go from 1 ms to about a minute in steps of 1.5x: fine enough for a p99 near
// 100 ms, wide enough for the seconds of a stalled partition.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 1.5, 28)

// Outcomes of a record, the processed counter's label.
const (
	OutcomeCounted   = "counted"
	OutcomeDuplicate = "duplicate"
	OutcomeReplayed  = "replayed"
)

// NewMetrics registers the consumer's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_consumer_processed_total",
			Help: "Vote records applied, by outcome: counted, duplicate (vote id already counted) or replayed (applied before).",
		}, []string{"outcome"}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_consumer_dead_lettered_total",
			Help: "Records that are not votes, written to the dead-letter topic.",
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_consumer_write_errors_total",
			Help: "Failed attempts, by target (redis, mongo, dlq, commit, kafka: fetches and offset lookups); they are retried.",
		}, []string{"target"}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_consumer_apply_seconds",
			Help:    "Time to apply one partition batch: dead letters, MongoDB logs and the Redis script, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_consumer_batch_records",
			Help:    "Records per partition batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tally_consumer_lag",
			Help: "Records of a votes partition not yet committed by this consumer (high watermark minus committed offset).",
		}, []string{"partition"}),
	}
	m.rewinds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tally_consumer_rewinds_total",
		Help: "Times a partition was read again from Redis's watermark because Redis held fewer applied records than this consumer wrote (Redis lost writes or was restored).",
	})
	m.retentionGap = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tally_consumer_retention_lost_records_total",
		Help: "Records to apply that Kafka's retention had already deleted; the counts miss them until the audit (go/cmd/audit -repair) rebuilds them from MongoDB.",
	})
	m.keyConflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tally_consumer_key_conflicts_total",
		Help: "Records whose vote id (a client's Idempotency-Key) was already counted for another vote (band, album, year or rank differ); not counted, the first vote stays.",
	})
	m.stageSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tally_consumer_stage_seconds",
		Help:    "Time in each stage between a vote's accept and its count, by stage: delivery (accept to fetch, per record), queue (fetch to its batch's start, per record), mongo_insert, redis_apply, offset_commit (per batch).",
		Buckets: latencyBuckets,
	}, []string{"stage"})
	m.acceptToCounted = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tally_consumer_accept_to_counted_seconds",
		Help:    "From a vote's accept by a producer to its count in Redis (the apply script's return), per counted vote, by route.",
		Buckets: latencyBuckets,
	}, []string{"route"})
	reg.MustRegister(m.processed, m.deadLettered, m.writeErrors, m.applySeconds, m.batchRecords, m.lag, m.rewinds, m.retentionGap, m.keyConflicts,
		m.stageSeconds, m.acceptToCounted)
	for _, s := range []string{StageDelivery, StageQueue, StageMongo, StageRedis, StageCommit} {
		m.stageSeconds.WithLabelValues(s)
	}
	for _, r := range []string{queue.RouteGRPC, queue.RouteWasm} {
		m.acceptToCounted.WithLabelValues(r)
	}
	for _, o := range []string{OutcomeCounted, OutcomeDuplicate, OutcomeReplayed} {
		m.processed.WithLabelValues(o)
	}
	for _, t := range []string{targetRedis, targetMongo, targetDLQ, targetCommit, targetKafka} {
		m.writeErrors.WithLabelValues(t)
	}
	return m
}

func (m *Metrics) setLag(partition int, lag int64) {
	m.lag.WithLabelValues(strconv.Itoa(partition)).Set(float64(max(lag, 0)))
}
