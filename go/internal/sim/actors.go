package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/audit"
	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/readiness"
)

// consumer is one consumer process: the real consume.Loop over the simulated stores.
type consumer struct {
	w      *world
	name   string
	reg    *prometheus.Registry
	cancel context.CancelFunc
	dead   bool
	actors []*actor
	gen    *generation // the generation it runs
	next   *generation // the one the group has for it, not yet taken
}

func (w *world) startConsumer() {
	w.nextID++
	c := &consumer{w: w, name: fmt.Sprintf("c%d", w.nextID), reg: prometheus.NewRegistry()}
	w.consumers = append(w.consumers, c)
	loop := consume.New(consume.Config{
		BatchSize: w.cfg.BatchSize,
		// Retries and drains are steps of the scheduler, not time: no real waiting, and a
		// drain never times out by the clock (a killed consumer stops at its next call instead).
		RetryMin: time.Nanosecond, RetryMax: time.Nanosecond,
		AttemptTimeout: time.Hour, DrainTimeout: time.Hour, BatchWait: time.Hour, WatermarkCheck: time.Hour,
		// By the clock, a commit would be due or not at random: the first batch commits, the
		// rest when a partition stops (every schedule the same).
		CommitEvery: time.Hour,
	}, consume.Deps{
		Group:       membership{c},
		Partitions:  partitions{w, c},
		Counts:      counts.New(w.redis.client(c.name)),
		Logs:        w.mongo,
		DeadLetters: deadLetters{w},
		Health:      readiness.New(),
		Metrics:     consume.NewMetrics(c.reg),
		Log:         w.logger(c.name),
		Now:         func() time.Time { return simTime },
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	w.spawn(c.name+".run", c, func() { _ = loop.Run(ctx) })
	w.tracef("start consumer %s", c.name)
}

// kill SIGKILLs a random live consumer; its partitions move at the next rebalance.
func (w *world) kill() {
	var live []*consumer
	for _, c := range w.consumers {
		if !c.dead {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	c := live[w.rng.IntN(len(live))]
	w.stats.Kills++
	w.tracef("kill %s", c.name)
	w.killConsumer(c)
	w.group.rebalance(true)
}

func (w *world) killConsumer(c *consumer) {
	c.dead = true
	if c.gen != nil {
		c.gen.cancel()
	}
	for _, a := range append([]*actor(nil), c.actors...) {
		if !a.exited {
			w.run(a, false)
		}
	}
	c.cancel()
	w.reap()
}

// metric is the sum of a consumer counter's samples.
func (c *consumer) metric(name string) float64 {
	families, err := c.reg.Gather()
	if err != nil {
		panic(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// startAudit runs the real audit (go/internal/audit) as an actor, with or without -repair.
// Without loss named by a consumer it must find no difference: the counts it reads are exact.
func (w *world) startAudit(repair bool) {
	for _, a := range w.actors {
		if a.owner == nil {
			return // one at a time, as the CronJob runs it
		}
	}
	w.audits++
	w.stats.Audits++
	name := fmt.Sprintf("audit%d", w.audits)
	store := counts.New(w.redis.client(name))
	w.tracef("start %s (repair %v)", name, repair)
	w.spawn(name, nil, func() {
		lostBefore := len(w.losses)
		res, err := audit.Run(context.Background(), store, w.mongo, repair, w.logger(name))
		if res.Repaired {
			w.stats.Repairs++
		}
		if err != nil && !errors.Is(err, audit.ErrDiffer) {
			return // a store failed: the audit exits 1 and changes nothing
		}
		if res.Differences > 0 && lostBefore == 0 && len(w.losses) == 0 {
			w.violate("%s found %d differences, yet no consumer named a lost record", name, res.Differences)
		}
	})
}

// deadLetters is the dead-letter topic.
type deadLetters struct{ w *world }

func (d deadLetters) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	d.w.yield(nil)
	if err := d.w.kafka.fault(); err != nil {
		return err
	}
	for _, m := range msgs {
		d.w.dead[queue.Header(m, queue.HeaderDeadPartition)+":"+queue.Header(m, queue.HeaderDeadOffset)] = true
	}
	return nil
}
