package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/queue"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// kafkaFake is topic votes: each partition's records by offset, and the earliest offset
// retention has left.
type kafkaFake struct {
	w        *world
	logs     [][]kafka.Message
	earliest []int64
	// ids are the vote ids produced so far, and the partition each id's records go to (the
	// producers key records by vote id).
	ids       []string
	partition map[string]int
	body      map[string]*votev1.Vote // the first record's vote of each id
}

func newKafkaFake(partitions int) *kafkaFake {
	return &kafkaFake{logs: make([][]kafka.Message, partitions), earliest: make([]int64, partitions),
		partition: map[string]int{}, body: map[string]*votev1.Vote{}}
}

func (k *kafkaFake) ends() map[int]int64 {
	m := map[int]int64{}
	for p, l := range k.logs {
		m[p] = int64(len(l))
	}
	return m
}

func (k *kafkaFake) earliests() []int64 { return append([]int64(nil), k.earliest...) }

var bands = []struct{ band, album string }{
	{"Alux Nahual", "Leyenda"}, {"Alux Nahual", "Hijos del Sol"}, {"Bohemia Suburbana", "Eres"},
	{"Viernes Verde", "Verde Esperanza"},
}

// produce appends one accepted record: a new vote, the same vote again (a retry, the same
// Idempotency-Key), the same key with another body, or a record that is not a vote.
func (w *world) produce() {
	k := w.kafka
	w.stats.Produced++
	w.epoch++
	n := w.rng.IntN(100)
	var (
		p int
		m kafka.Message
	)
	switch {
	case n < 5:
		p = w.rng.IntN(len(k.logs))
		m = kafka.Message{Key: []byte("junk"), Value: []byte("not a vote")}
	case n < 25 && len(k.ids) > 0:
		id := k.ids[w.rng.IntN(len(k.ids))]
		p = k.partition[id]
		first := k.body[id]
		v := &votev1.Vote{Name: first.Name, Album: first.Album, Year: first.Year, Rank: first.Rank, VoteId: id,
			AcceptedAtUnixMs: first.AcceptedAtUnixMs}
		if n < 10 { // the same key, another body
			b := bands[w.rng.IntN(len(bands))]
			v.Name, v.Album = b.band, b.album
		}
		m = encode(v, w.rng.IntN(2))
	default:
		id := fmt.Sprintf("v%03d", len(k.ids))
		p = w.rng.IntN(len(k.logs))
		b := bands[w.rng.IntN(len(bands))]
		v := &votev1.Vote{Name: b.band, Album: b.album, Year: 1990, Rank: 1, VoteId: id, AcceptedAtUnixMs: simTime.UnixMilli()}
		k.ids = append(k.ids, id)
		k.partition[id] = p
		k.body[id] = v
		m = encode(v, w.rng.IntN(2))
	}
	m.Topic, m.Partition, m.Offset = queue.VotesTopic, p, int64(len(k.logs[p]))
	k.logs[p] = append(k.logs[p], m)
	w.tracef("produce %d:%d key %s", p, m.Offset, m.Key)
}

func encode(v *votev1.Vote, route int) kafka.Message {
	m, err := queue.Encode(queue.Record{Vote: v, Route: []string{queue.RouteGRPC, queue.RouteWasm}[route]})
	if err != nil {
		panic(err)
	}
	return m
}

// retention deletes the oldest records of a partition, possibly all of them.
func (w *world) retention() {
	k := w.kafka
	p := w.rng.IntN(len(k.logs))
	end := int64(len(k.logs[p]))
	if k.earliest[p] >= end {
		return
	}
	to := k.earliest[p] + 1 + w.rng.Int64N(end-k.earliest[p])
	w.stats.Deleted += int(to - k.earliest[p])
	k.earliest[p] = to
	w.epoch++
	w.tracef("retention: partition %d now starts at %d (end %d)", p, to, end)
}

// Open and Earliest are consume.Partitions.
type partitions struct {
	w *world
	c *consumer
}

func (ps partitions) Open(p int, offset int64) consume.PartitionReader {
	ps.w.tracef("%s opens %d at %d", ps.c.name, p, offset)
	return &reader{w: ps.w, p: p, next: offset, idleEpoch: -1}
}

func (ps partitions) Earliest(ctx context.Context, p int) (int64, error) {
	ps.w.yield(nil)
	if err := ps.w.kafka.fault(); err != nil {
		return 0, err
	}
	return ps.w.kafka.earliest[p], nil
}

func (k *kafkaFake) fault() error {
	if k.w.rng.IntN(50) == 0 && k.w.redis.down == 0 {
		return errors.New("kafka: broker not available")
	}
	return nil
}

// reader is a partition reader as kafka-go's behaves: a position below the earliest offset
// skips to the earliest (kafka-go logs it and carries on; docs/data.md).
type reader struct {
	w         *world
	p         int
	next      int64
	idleEpoch int // the world's epoch when this reader last reported idle
}

func (r *reader) Fetch(ctx context.Context, most int, _, _ time.Duration) ([]consume.Fetched, error) {
	k := r.w.kafka
	// Idle again only after something changed; otherwise wait for records or a change.
	r.w.yield(func() bool {
		return ctx.Err() != nil || r.w.epoch != r.idleEpoch || r.available() > 0
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := k.fault(); err != nil {
		return nil, err
	}
	if r.next < k.earliest[r.p] {
		r.w.tracef("kafka-go skips %d:%d..%d (deleted)", r.p, r.next, k.earliest[r.p]-1)
		r.next = k.earliest[r.p]
	}
	n := r.available()
	if n <= 0 {
		r.idleEpoch = r.w.epoch
		return nil, nil
	}
	n = 1 + r.w.rng.Int64N(min(n, int64(most)))
	batch := make([]consume.Fetched, 0, n)
	for o := r.next; o < r.next+n; o++ {
		m := k.logs[r.p][o]
		m.HighWaterMark = int64(len(k.logs[r.p]))
		batch = append(batch, consume.Fetched{Message: m, At: simTime})
	}
	r.next += n
	return batch, nil
}

func (r *reader) available() int64 {
	k := r.w.kafka
	return int64(len(k.logs[r.p])) - max(r.next, k.earliest[r.p])
}

func (r *reader) Close() error { return nil }

// coordinator is the consumer group: it assigns the partitions to the live members. A
// rebalance ends every member's generation; normally the new one starts once every partition
// of the old ones is done (as kafka-go's members wait for their partitions), but a member whose
// session expired keeps applying its batch in hand while the partitions already go to others.
type coordinator struct {
	w       *world
	pending bool
	wait    bool
	old     []*generation
}

func (g *coordinator) rebalance(wait bool) {
	g.w.stats.Rebalances++
	g.w.tracef("rebalance (wait for the old generation: %v)", wait)
	for _, c := range g.w.consumers {
		if c.gen != nil {
			c.gen.cancel()
			g.old = append(g.old, c.gen)
			c.gen = nil
		}
		c.next = nil
	}
	g.pending = true
	g.wait = g.wait || wait
}

// settle starts the new generation when it can.
func (g *coordinator) settle() {
	if !g.pending {
		return
	}
	if g.wait {
		for _, gen := range g.old {
			for _, a := range gen.actors {
				if !a.exited {
					return
				}
			}
		}
	}
	var live []*consumer
	for _, c := range g.w.consumers {
		if !c.dead {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	g.pending, g.wait, g.old = false, false, nil
	assigned := make([][]int, len(live))
	for p := range g.w.cfg.Partitions {
		i := g.w.rng.IntN(len(live))
		assigned[i] = append(assigned[i], p)
	}
	for i, c := range live {
		ctx, cancel := context.WithCancel(context.Background())
		c.next = &generation{w: g.w, c: c, parts: assigned[i], ctx: ctx, cancel: cancel}
		g.w.tracef("generation: %s gets %v", c.name, assigned[i])
	}
}

// generation is consume.Generation.
type generation struct {
	w      *world
	c      *consumer
	parts  []int
	ctx    context.Context
	cancel context.CancelFunc
	actors []*actor
}

func (g *generation) Partitions() []int { return g.parts }

func (g *generation) Start(fn func(ctx context.Context)) {
	p := len(g.actors)
	a := g.w.spawn(fmt.Sprintf("%s.p%d", g.c.name, g.parts[p]), g.c, func() { fn(g.ctx) })
	g.actors = append(g.actors, a)
}

func (g *generation) Commit(p int, next int64) error {
	if g.c.dead {
		return errors.New("killed")
	}
	return nil
}

// membership is consume.Membership.
type membership struct{ c *consumer }

func (m membership) Next(ctx context.Context) (consume.Generation, error) {
	c := m.c
	c.w.yield(func() bool { return ctx.Err() != nil || c.next != nil })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	gen := c.next
	c.next, c.gen = nil, gen
	return gen, nil
}
