package consume

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
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
}

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
	reg.MustRegister(m.processed, m.deadLettered, m.writeErrors, m.applySeconds, m.batchRecords, m.lag, m.rewinds, m.retentionGap)
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
