package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tally-voting/tally/go/internal/counts"
)

// Redis is a Redis database that one run at a time has to itself, and the clients of its
// runs, kept from run to run: dialing a client for every actor was a fifth of a run's time.
type Redis struct {
	opts   redis.Options
	oracle *redis.Client // the simulation's own client, outside the schedule
	hooked []*hook       // the actors' clients, each behind its hook
}

// NewRedis returns the database of opts for Run.
func NewRedis(opts *redis.Options) *Redis {
	o := *opts
	o.MaxRetries = -1 // the simulation decides what fails
	return &Redis{opts: o, oracle: redis.NewClient(&o)}
}

// Close closes every client.
func (d *Redis) Close() {
	for _, h := range d.hooked {
		h.client.Close()
	}
	d.oracle.Close()
}

// redisWorld is a real Redis database with simulated faults: calls fail while it is down, a
// reply may be lost after the command ran, and a crash brings back the state of its last fsync
// (appendfsync everysec loses the writes since; a restored backup loses more).
type redisWorld struct {
	w       *world
	db      *Redis
	oracle  *redis.Client
	clients int               // of db.hooked, taken by this run's actors
	down    int               // steps it stays down
	durable map[string]string // each key's DUMP at the last fsync
}

func newRedisWorld(ctx context.Context, w *world, db *Redis) (*redisWorld, error) {
	r := &redisWorld{w: w, db: db, oracle: db.oracle, durable: map[string]string{}}
	if err := r.restore(ctx); err != nil {
		return nil, fmt.Errorf("empty the simulation's Redis database: %w", err)
	}
	return r, nil
}

// client is an actor's client: every command and pipeline first yields to the scheduler. It
// is a client an earlier run's actor used, if there is one left: a client with idle pooled
// connections behaves as a new one, which dials its first (a cancelled context fails a command
// before it takes a connection either way).
func (r *redisWorld) client(name string) *redis.Client {
	if r.clients == len(r.db.hooked) {
		c := redis.NewClient(&r.db.opts)
		h := &hook{client: c}
		c.AddHook(h)
		r.db.hooked = append(r.db.hooked, h)
	}
	h := r.db.hooked[r.clients]
	r.clients++
	h.r, h.name, h.inside = r, name, false
	return h.client
}

type hook struct {
	client *redis.Client
	r      *redisWorld // the run and actor it serves now
	name   string
	// inside is set while a command runs: go-redis runs the commands that set up a new
	// connection through the hooks too, and those are part of the command, not steps of their own.
	inside bool
}

func (h *hook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return h.around(func() error { return next(ctx, cmd) }, cmd)
	}
}

func (h *hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		return h.around(func() error { return next(ctx, cmds) }, cmds...)
	}
}

var errDown = errors.New("dial tcp: connection refused (simulated)")

func (h *hook) around(do func() error, cmds ...redis.Cmder) error {
	if h.inside {
		return do()
	}
	w := h.r.w
	w.yield(nil)
	if w.cfg.Trace {
		var names []string
		for _, c := range cmds {
			names = append(names, brief(c))
		}
		w.tracef("%s redis %s", h.name, strings.Join(names, "; "))
	}
	if h.r.down > 0 {
		for _, c := range cmds {
			c.SetErr(errDown)
		}
		return errDown
	}
	h.inside = true
	err := do()
	h.inside = false
	if w.rng.IntN(40) == 0 { // the reply is lost: the command ran, the caller sees an error
		w.tracef("%s: reply lost", h.name)
		for _, c := range cmds {
			c.SetErr(net.ErrClosed)
		}
		return net.ErrClosed
	}
	return err
}

func brief(c redis.Cmder) string {
	args := c.Args()
	var parts []string
	for i, a := range args {
		if i >= 4 {
			parts = append(parts, "…")
			break
		}
		s := fmt.Sprint(a)
		if len(s) > 40 {
			s = s[:12] + "…"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// fsync makes the current state the one a crash comes back to. Two round trips: the keys,
// then all their dumps in one pipeline.
func (r *redisWorld) fsync() {
	ctx := context.Background()
	keys, err := r.oracle.Keys(ctx, "*").Result()
	if err != nil {
		panic(err)
	}
	dumps := make([]*redis.StringCmd, len(keys))
	if _, err := r.oracle.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			dumps[i] = p.Dump(ctx, k)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		panic(err)
	}
	r.durable = map[string]string{}
	for i, k := range keys {
		v, err := dumps[i].Result()
		if errors.Is(err, redis.Nil) {
			continue // expired since KEYS
		}
		if err != nil {
			panic(err)
		}
		r.durable[k] = v
	}
	r.w.tracef("redis fsync (%d keys)", len(keys))
}

// crash restarts Redis from its last fsync, down for a few steps.
func (r *redisWorld) crash() {
	if err := r.restore(context.Background()); err != nil {
		panic(err)
	}
	r.down = 1 + r.w.rng.IntN(20)
	r.w.stats.RedisCrashes++
	r.w.epoch++
	r.w.tracef("redis crash: back at its last fsync (%d keys), down for %d steps", len(r.durable), r.down)
}

// restore makes the database hold exactly the keys of the last fsync (none before the first):
// every key deleted and the durable ones restored, in one transaction. (Deleting the keys it
// lists costs Redis less than FLUSHDB, which frees and rebuilds the database's tables.)
func (r *redisWorld) restore(ctx context.Context) error {
	keys, err := r.oracle.Keys(ctx, "*").Result()
	if err != nil {
		return err
	}
	_, err = r.oracle.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(keys) > 0 {
			p.Del(ctx, keys...)
		}
		for _, k := range sortedKeys(r.durable) {
			p.RestoreReplace(ctx, k, 0, r.durable[k])
		}
		return nil
	})
	return err
}

// tick counts a step of downtime.
func (r *redisWorld) tick() {
	if r.down > 0 {
		r.down--
	}
}

// watermarks reads every partition's watermark, in one MGET.
func (r *redisWorld) watermarks() map[int]int64 {
	keys := make([]string, r.w.cfg.Partitions)
	for p := range keys {
		keys[p] = counts.AppliedKey(p)
	}
	vs, err := r.oracle.MGet(context.Background(), keys...).Result()
	if err != nil {
		panic(err)
	}
	out := map[int]int64{}
	for p, v := range vs {
		if v == nil {
			continue
		}
		n, err := strconv.ParseInt(v.(string), 10, 64)
		if err != nil {
			panic(err)
		}
		out[p] = n
	}
	return out
}
