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
			Help: "Failed attempts to write, by target (redis, mongo, dlq, commit); writes are retried.",
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
	reg.MustRegister(m.processed, m.deadLettered, m.writeErrors, m.applySeconds, m.batchRecords, m.lag)
	for _, o := range []string{OutcomeCounted, OutcomeDuplicate, OutcomeReplayed} {
		m.processed.WithLabelValues(o)
	}
	for _, t := range []string{targetRedis, targetMongo, targetDLQ, targetCommit} {
		m.writeErrors.WithLabelValues(t)
	}
	return m
}

func (m *Metrics) setLag(partition int, lag int64) {
	m.lag.WithLabelValues(strconv.Itoa(partition)).Set(float64(max(lag, 0)))
}
