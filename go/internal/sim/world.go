// Package sim is a deterministic simulation of the counting protocol (docs/data.md): consumers
// running the real loop of go/internal/consume, the real audit of go/internal/audit, the real Lua
// scripts of go/internal/counts on a real Redis, and fakes of Kafka's partitions and group and of
// MongoDB's logs, all interleaved by one random scheduler from a seed.
//
// Every actor (a consumer's group loop, each partition it consumes, an audit) is a goroutine
// running real code, but only one runs at a time: each call into Kafka, Redis or MongoDB first
// hands control back to the scheduler, which picks the next actor to resume, or injects a fault
// (a rebalance, a consumer killed, retention deleting records, Redis losing the writes since
// its last fsync, MongoDB failing or half-finishing a write), from its seeded generator. So a
// seed is one interleaving, and a failing seed replays exactly.
//
// After each run the counts must equal the logs at or below the watermarks, every vote id in
// the logs is counted once, and every accepted record is either counted or named in a loss
// metric (see check.go).
package sim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Config shapes one run.
type Config struct {
	Partitions int // at most queue.VotesPartitions
	Consumers  int // started at once; more may be started later
	Records    int // produced over the run
	Steps      int // scheduler steps with faults, before the drain
	BatchSize  int
	// Trace records every step and every store call (for printing a failing seed's run).
	Trace bool
}

// DefaultConfig is small, so a run takes milliseconds and thousands of runs take seconds.
func DefaultConfig() Config {
	return Config{Partitions: 3, Consumers: 2, Records: 24, Steps: 400, BatchSize: 3}
}

// killed is the panic that unwinds a killed actor's goroutine at its next store call, as a
// SIGKILL stops a process wherever it is.
type killed struct{}

// actor is one goroutine of real code under the scheduler.
type actor struct {
	name   string
	owner  *consumer // nil for an audit
	resume chan bool // true: run on; false: killed
	// ready, if set, says when a blocked actor may be resumed.
	ready  func() bool
	exited bool
}

// world is one run: the scheduler, the fake Kafka and MongoDB, the real Redis, the actors.
type world struct {
	seed uint64
	cfg  Config
	rng  *rand.Rand
	step int

	actors  []*actor
	current *actor
	back    chan *actor
	crash   string // a panic of real code (not a kill), with its stack

	trace []string

	kafka *kafkaFake
	mongo *mongoFake
	redis *redisWorld

	consumers  []*consumer
	nextID     int
	group      *coordinator
	audits     int // audits started
	violations []string

	stats  Stats
	dead   map[string]bool // records dead-lettered, as "partition:offset"
	losses []lossRange     // named in the consumers' error log lines
	epoch  int             // bumped by every event an idle reader should look again after
}

func (w *world) tracef(format string, args ...any) {
	if w.cfg.Trace {
		w.trace = append(w.trace, fmt.Sprintf("%5d ", w.step)+fmt.Sprintf(format, args...))
	}
}

func (w *world) violate(format string, args ...any) {
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
	w.tracef("VIOLATION: "+format, args...)
}

// spawn registers an actor parked before its first instruction; the scheduler starts it.
func (w *world) spawn(name string, owner *consumer, fn func()) *actor {
	a := &actor{name: name, owner: owner, resume: make(chan bool)}
	w.actors = append(w.actors, a)
	if owner != nil {
		owner.actors = append(owner.actors, a)
	}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(killed); !ok {
					w.crash = fmt.Sprintf("%s panicked: %v\n%s", a.name, r, debug.Stack())
				}
			}
			a.exited = true
			w.back <- a
		}()
		if !<-a.resume {
			panic(killed{})
		}
		fn()
	}()
	return a
}

// yield hands control back to the scheduler until it resumes this actor (once ready, if set).
// Every store call of an actor starts with it.
func (w *world) yield(ready func() bool) {
	a := w.current
	if a == nil {
		panic("sim: a store was called outside an actor")
	}
	a.ready = ready
	w.back <- a
	if !<-a.resume {
		panic(killed{})
	}
}

// run resumes a until it yields again or exits.
func (w *world) run(a *actor, alive bool) {
	w.current = a
	a.ready = nil
	a.resume <- alive
	<-w.back
	w.current = nil
}

// runnable lists the actors that may be resumed now.
func (w *world) runnable() []*actor {
	var rs []*actor
	for _, a := range w.actors {
		if !a.exited && (a.ready == nil || a.ready()) {
			rs = append(rs, a)
		}
	}
	return rs
}

// reap forgets exited actors.
func (w *world) reap() {
	w.actors = slices.DeleteFunc(w.actors, func(a *actor) bool { return a.exited })
	for _, c := range w.consumers {
		c.actors = slices.DeleteFunc(c.actors, func(a *actor) bool { return a.exited })
	}
}

// Result is the outcome of one run.
type Result struct {
	Seed       uint64
	Violations []string
	Trace      []string
	Stats      Stats
}

// Stats say what a run did, to show the faults happen.
type Stats struct {
	Produced, Deleted, RedisCrashes, Rebalances, Kills, Audits, Repairs, MongoFaults, LostNamed int
}

// Failed reports whether the run broke an invariant.
func (r Result) Failed() bool { return len(r.Violations) > 0 }

func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d violations\n", r.Seed, len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}

// Run runs one schedule from seed against db, which it empties first.
func Run(ctx context.Context, seed uint64, cfg Config, db *Redis) (Result, error) {
	w := &world{
		seed: seed, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x7a11)),
		back:  make(chan *actor),
		dead:  map[string]bool{},
		kafka: newKafkaFake(cfg.Partitions),
		mongo: &mongoFake{docs: map[string]storedLog{}},
	}
	w.mongo.w = w
	w.kafka.w = w
	r, err := newRedisWorld(ctx, w, db)
	if err != nil {
		return Result{}, err
	}
	w.redis = r
	w.group = &coordinator{w: w}
	for range cfg.Consumers {
		w.startConsumer()
	}
	w.group.rebalance(true)

	for w.step = 0; w.step < cfg.Steps && w.crash == ""; w.step++ {
		w.chaos()
	}
	w.drain()
	w.stopAll()
	if w.crash == "" {
		w.check(ctx)
	} else {
		w.violate("%s", w.crash)
	}
	return Result{Seed: seed, Violations: w.violations, Trace: w.trace, Stats: w.stats}, nil
}

// chaos is one step of the first phase: an event, or an actor resumed.
func (w *world) chaos() {
	w.redis.tick()
	w.group.settle()
	n := w.rng.IntN(1000)
	switch {
	case n < 120:
		if w.stats.Produced < w.cfg.Records {
			w.produce()
			return
		}
	case n < 135:
		w.retention()
		return
	case n < 150:
		w.redis.fsync()
		return
	case n < 158:
		w.redis.crash()
		return
	case n < 166:
		w.mongo.fault()
		return
	case n < 176:
		w.group.rebalance(w.rng.IntN(3) > 0)
		return
	case n < 181:
		w.kill()
		return
	case n < 186:
		w.startConsumer()
		w.group.rebalance(true)
		return
	case n < 196:
		w.startAudit(w.rng.IntN(2) == 0)
		return
	}
	w.resumeOne()
}

// resumeOne resumes a random runnable actor; it reports false if none is.
func (w *world) resumeOne() bool {
	rs := w.runnable()
	if len(rs) == 0 {
		return false
	}
	a := rs[w.rng.IntN(len(rs))]
	w.tracef("resume %s", a.name)
	w.run(a, true)
	w.reap()
	return true
}

// drain ends the faults and runs the actors until every partition's watermark is at its end
// and no audit runs; a run that cannot get there breaks liveness.
func (w *world) drain() {
	w.tracef("drain: faults end")
	w.redis.down = 0
	w.mongo.faults = 0
	for w.stats.Produced < w.cfg.Records {
		w.produce()
	}
	if w.live() == 0 {
		w.startConsumer()
	}
	w.group.rebalance(true)
	limit := w.step + 40*w.cfg.Steps
	for ; w.step < limit && w.crash == ""; w.step++ {
		w.redis.tick()
		w.group.settle()
		if w.drained() {
			return
		}
		if !w.resumeOne() {
			w.violate("stuck: no actor can run and the partitions are not drained (watermarks %v, ends %v)", w.redis.watermarks(), w.kafka.ends())
			return
		}
	}
	if w.crash == "" && !w.drained() {
		w.violate("not drained after %d steps: watermarks %v, partition ends %v, earliest %v",
			limit, w.redis.watermarks(), w.kafka.ends(), w.kafka.earliests())
	}
}

func (w *world) drained() bool {
	for _, a := range w.actors {
		if a.owner == nil && !a.exited {
			return false // an audit still runs
		}
	}
	// Drained: every partition's watermark is at its last record, whether the records were
	// applied or deleted by retention (the consumers pass deleted ones, naming them lost).
	marks := w.redis.watermarks()
	for p, end := range w.kafka.ends() {
		m, ok := marks[p]
		if !ok {
			m = -1
		}
		if m != end-1 {
			return false
		}
	}
	return true
}

// stopAll kills every actor, so none runs on into the next run.
func (w *world) stopAll() {
	for _, c := range w.consumers {
		w.killConsumer(c)
	}
	for _, a := range slices.Clone(w.actors) {
		if !a.exited {
			w.run(a, false)
		}
	}
	w.reap()
}

func (w *world) live() int {
	n := 0
	for _, c := range w.consumers {
		if !c.dead {
			n++
		}
	}
	return n
}

// logger is the consumers' and audits' log: loss lines are collected; with Trace, all lines.
func (w *world) logger(name string) *slog.Logger {
	return slog.New(&logHandler{w: w, name: name})
}

type logHandler struct {
	w     *world
	name  string
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value
		return true
	})
	if r.Level >= slog.LevelError {
		p, okP := attrs["partition"]
		from, okF := attrs["from_offset"]
		n, okN := attrs["missing_records"]
		if okP && okF && okN {
			l := lossRange{p: int(p.Int64()), from: from.Int64(), n: n.Int64()}
			h.w.losses = append(h.w.losses, l)
			h.w.stats.LostNamed += int(l.n)
		}
	}
	if h.w.cfg.Trace {
		var b strings.Builder
		for _, k := range sortedKeys(attrs) {
			if k == "took" {
				continue // the wall clock's, the one thing a replay does not repeat
			}
			fmt.Fprintf(&b, " %s=%v", k, attrs[k])
		}
		h.w.tracef("%s log %s %q%s", h.name, r.Level, r.Message, b.String())
	}
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{w: h.w, name: h.name, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

type lossRange struct {
	p    int
	from int64
	n    int64
}

// simTime is every vote's accept time and the consumers' clock: long past, so the 10-second
// buckets expire at once and Redis holds only the counts that are checked.
var simTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
