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

// redisWorld is a real Redis database with simulated faults: calls fail while it is down, a
// reply may be lost after the command ran, and a crash brings back the state of its last fsync
// (appendfsync everysec loses the writes since; a restored backup loses more).
type redisWorld struct {
	w       *world
	opts    *redis.Options
	oracle  *redis.Client // the simulation's own client, outside the schedule
	clients []*redis.Client
	down    int // steps it stays down
	durable map[string]dumped
}

type dumped struct {
	value string
	ttl   int64
}

func newRedisWorld(ctx context.Context, w *world, opts *redis.Options) (*redisWorld, error) {
	o := *opts
	o.MaxRetries = -1
	r := &redisWorld{w: w, opts: &o, oracle: redis.NewClient(&o), durable: map[string]dumped{}}
	if err := r.oracle.FlushDB(ctx).Err(); err != nil {
		r.oracle.Close()
		return nil, fmt.Errorf("flush the simulation's Redis database: %w", err)
	}
	return r, nil
}

func (r *redisWorld) close() {
	for _, c := range r.clients {
		c.Close()
	}
	r.oracle.Close()
}

// client is an actor's connection: every command and pipeline first yields to the scheduler.
func (r *redisWorld) client(name string) *redis.Client {
	c := redis.NewClient(r.opts)
	c.AddHook(&hook{r: r, name: name})
	r.clients = append(r.clients, c)
	return c
}

type hook struct {
	r    *redisWorld
	name string
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

// fsync makes the current state the one a crash comes back to.
func (r *redisWorld) fsync() {
	ctx := context.Background()
	keys, err := r.oracle.Keys(ctx, "*").Result()
	if err != nil {
		panic(err)
	}
	r.durable = map[string]dumped{}
	for _, k := range keys {
		v, err := r.oracle.Dump(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			panic(err)
		}
		ttl, err := r.oracle.PTTL(ctx, k).Result()
		if err != nil {
			panic(err)
		}
		r.durable[k] = dumped{v, max(int64(ttl.Milliseconds()), 0)}
	}
	r.w.tracef("redis fsync (%d keys)", len(keys))
}

// crash restarts Redis from its last fsync, down for a few steps.
func (r *redisWorld) crash() {
	ctx := context.Background()
	if err := r.oracle.FlushDB(ctx).Err(); err != nil {
		panic(err)
	}
	for _, k := range sortedKeys(r.durable) {
		d := r.durable[k]
		if err := r.oracle.RestoreReplace(ctx, k, 0, d.value).Err(); err != nil {
			panic(err)
		}
	}
	r.down = 1 + r.w.rng.IntN(20)
	r.w.stats.RedisCrashes++
	r.w.epoch++
	r.w.tracef("redis crash: back at its last fsync (%d keys), down for %d steps", len(r.durable), r.down)
}

// tick counts a step of downtime.
func (r *redisWorld) tick() {
	if r.down > 0 {
		r.down--
	}
}

// watermarks reads every partition's watermark.
func (r *redisWorld) watermarks() map[int]int64 {
	ctx := context.Background()
	out := map[int]int64{}
	for p := range r.w.cfg.Partitions {
		v, err := r.oracle.Get(ctx, counts.AppliedKey(p)).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			panic(err)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			panic(err)
		}
		out[p] = n
	}
	return out
}
