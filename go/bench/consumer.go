package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/load"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/votelog"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// consumerReport is the backlog drain and the baselines measured beside it.
type consumerReport struct {
	Backlog int `json:"backlog"`
	// Env is what the consumer got beyond the stack's addresses (its defaults otherwise).
	Env []string `json:"consumer_env"`
	// Produce is writing the backlog straight to Kafka with queue.Encode (kafka-go, acks=all).
	Produce rate `json:"kafka_produce"`
	// Seconds from the consumer's start: ready, first vote counted, last vote counted.
	ReadyS    float64      `json:"start_to_ready_s"`
	FirstS    float64      `json:"start_to_first_count_s"`
	DoneS     float64      `json:"start_to_all_counted_s"`
	DrainS    float64      `json:"drain_s"`
	DrainRate float64      `json:"drain_votes_per_s"`
	StartRate float64      `json:"start_to_done_votes_per_s"`
	Series    []point      `json:"total_every_second"`
	Checks    []check      `json:"checks"`
	Exact     bool         `json:"exact"`
	Memory    memory       `json:"memory"`
	CPU       cpuUse       `json:"cpu_during_drain"`
	ExitCode  int          `json:"exit_code_after_sigterm"`
	Baselines []rate       `json:"baselines"`
	Profiles  []cpuProfile `json:"profiles,omitempty"`
	// Growth is Redis's and MongoDB's size every GrowthEvery votes counted, and at the end.
	Growth      []growth `json:"growth"`
	GrowthEvery int      `json:"growth_every"`
	// Insert is the MongoDB-wire server's own insertMany rate into the drained tally.logs, at the
	// consumer's batch size and parallelism (6 partitions), measured right after the drain; the
	// drain's rate is compared with it.
	Insert        rate    `json:"mongo_insert_same_run"`
	DrainVsInsert float64 `json:"drain_vs_insert"`
}

// growth is the stores' size at a count of votes.
type growth struct {
	Votes int64 `json:"votes"`
	// RedisUsed is INFO's used_memory; RedisDataset its used_memory_dataset; RedisKeys DBSIZE.
	RedisUsed    int64 `json:"redis_used_memory"`
	RedisDataset int64 `json:"redis_used_memory_dataset"`
	RedisKeys    int64 `json:"redis_keys"`
	// MongoData and MongoStorage are dbStats' dataSize and storageSize of database tally;
	// MongoFiles is the MongoDB-wire server's data directory on disk.
	MongoData    int64  `json:"mongo_data_size"`
	MongoStorage int64  `json:"mongo_storage_size"`
	MongoFiles   int64  `json:"mongo_files_bytes"`
	Error        string `json:"error,omitempty"`
}

// rate is count things in seconds.
type rate struct {
	Name    string  `json:"name"`
	What    string  `json:"what"`
	Count   int     `json:"count"`
	Seconds float64 `json:"seconds"`
	PerS    float64 `json:"per_s"`
	Unit    string  `json:"unit"`
	Error   string  `json:"error,omitempty"`
}

type point struct {
	T     float64 `json:"t_s"`
	Total int64   `json:"total"`
}

type check struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

func newRate(name, what, unit string, count int, d time.Duration, err error) rate {
	r := rate{Name: name, What: what, Unit: unit, Count: count, Seconds: round2(d.Seconds())}
	if d > 0 {
		r.PerS = round1(float64(count) / d.Seconds())
	}
	if err != nil {
		r.Error = err.Error()
	}
	log.Printf("  %-28s %10.0f %s/s (%d in %.1f s)%s", name, r.PerS, unit, count, d.Seconds(), map[bool]string{true: " ERROR " + r.Error}[err != nil])
	return r
}

// clients are the benchmark's own connections to the stack's servers.
type clients struct {
	rdb     *redis.Client
	mongo   *mongo.Client
	brokers []string
}

func connect(cfg *config) (*clients, error) {
	opts, err := redis.ParseURL(cfg.redisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.mongoURL).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("MONGO_URL: %w", err)
	}
	return &clients{rdb: redis.NewClient(opts), mongo: mc, brokers: cfg.kafka}, nil
}

func (c *clients) close() {
	c.rdb.Close()
	c.mongo.Disconnect(context.Background())
}

// runConsumer writes the backlog to Kafka, starts the consumer and times it until Redis counts
// every vote, checks the counts and logs are exact, then measures the baselines.
func runConsumer(ctx context.Context, cfg *config, out string, own *[]proc) (*consumerReport, error) {
	c, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	rep := &consumerReport{Backlog: cfg.backlog, Env: cfg.consumerEnv, GrowthEvery: cfg.growthEvery}
	if err := c.mustBeEmpty(ctx); err != nil {
		return nil, err
	}

	log.Printf("consumer: writing %d vote records to Kafka", cfg.backlog)
	want, err := c.produceBacklog(ctx, cfg.backlog, rep)
	if err != nil {
		return nil, err
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	env := append([]string{"HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port), "DEBUG_PPROF=1"}, cfg.consumerEnv...)
	waitQuiet(stackProcesses(*own), cfg.quietLimit, cfg.quietWait)
	log.Printf("consumer: starting it (%s)", strings.Join(env, " "))
	start := time.Now()
	cons, err := startChild("consumer", []string{cfg.consumerBin}, env, filepath.Join(out, "consumer.log"), nil)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			cons.stop()
		}
	}()
	*own = append(*own, cons.proc())
	if err := cons.waitHTTP(ctx, base+"/readyz", 60*time.Second); err != nil {
		return nil, err
	}
	rep.ReadyS = round2(time.Since(start).Seconds())

	all := stackProcesses(*own)
	var (
		meter    *cpuMeter
		first    time.Time
		profWG   sync.WaitGroup
		profMu   sync.Mutex
		lastSec  = -1
		deadline = time.Now().Add(cfg.drainTimeout)

		milestones int
		growthWG   sync.WaitGroup
		growthMu   sync.Mutex
	)
	for {
		total, err := c.rdb.Get(ctx, counts.TotalKey).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read %s: %w", counts.TotalKey, err)
		}
		now := time.Now()
		if total > 0 && first.IsZero() {
			first = now
			meter = startCPU(all)
			rep.FirstS = round2(now.Sub(start).Seconds())
			if cfg.profileSeconds > 0 {
				for _, p := range all {
					if p.Name != "consumer" && p.Name != "mongo (ferretdb)" {
						continue
					}
					if pb := findPprof(ctx, p.PID); pb != "" {
						if p.Name == "consumer" {
							profWG.Add(1)
							go func() { // what the consumer holds in the middle of the drain
								defer profWG.Done()
								time.Sleep(time.Duration(cfg.profileSeconds) * time.Second / 2)
								pr := heapProfile(ctx, pb, p.Name, "consumer-drain", out)
								profMu.Lock()
								rep.Profiles = append(rep.Profiles, pr)
								profMu.Unlock()
							}()
						}
						profWG.Add(1)
						go func() {
							defer profWG.Done()
							pr := profileURL(ctx, pb, p.Name, "consumer-drain", cfg.profileSeconds, out)
							profMu.Lock()
							rep.Profiles = append(rep.Profiles, pr)
							profMu.Unlock()
						}()
					}
				}
			}
		}
		if cfg.growthEvery > 0 && total >= int64(milestones+1)*int64(cfg.growthEvery) && total < int64(cfg.backlog) {
			// Measured aside: MongoDB's dbStats may take a while at millions of documents, and
			// the drain's timing must not wait for it.
			milestones++
			growthWG.Add(1)
			go func() {
				defer growthWG.Done()
				g := c.growth(ctx, all)
				log.Printf("  %d counted: Redis used_memory %.1f MiB, %d keys; MongoDB data %.0f MiB, files %.0f MiB",
					g.Votes, mib(g.RedisUsed), g.RedisKeys, mib(g.MongoData), mib(g.MongoFiles))
				growthMu.Lock()
				rep.Growth = append(rep.Growth, g)
				growthMu.Unlock()
			}()
		}
		if sec := int(now.Sub(start).Seconds()); sec != lastSec {
			lastSec = sec
			rep.Series = append(rep.Series, point{round2(now.Sub(start).Seconds()), total})
			if sec%10 == 0 {
				log.Printf("  %3d s: %d counted", sec, total)
			}
		}
		if total >= int64(cfg.backlog) {
			rep.CPU = meter.stop()
			rep.DoneS = round2(now.Sub(start).Seconds())
			rep.DrainS = round2(now.Sub(first).Seconds())
			rep.DrainRate = round1(float64(cfg.backlog) / now.Sub(first).Seconds())
			rep.StartRate = round1(float64(cfg.backlog) / now.Sub(start).Seconds())
			rep.Series = append(rep.Series, point{rep.DoneS, total})
			break
		}
		select {
		case <-cons.done:
			return nil, fmt.Errorf("the consumer exited at %d of %d votes: %v\n%s", total, cfg.backlog, cons.err, cons.tail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if now.After(deadline) {
			return nil, fmt.Errorf("only %d of %d votes counted after %s", total, cfg.backlog, cfg.drainTimeout)
		}
	}
	log.Printf("consumer: %d votes counted in %.1f s from the first (%.0f votes/s), %.1f s from its start",
		cfg.backlog, rep.DrainS, rep.DrainRate, rep.DoneS)
	profWG.Wait()
	growthWG.Wait()
	slices.SortFunc(rep.Growth, func(a, b growth) int { return cmpFloat(float64(a.Votes), float64(b.Votes)) })
	rep.Checks = c.checkExact(ctx, want, cfg.backlog, base)
	rep.Exact = true
	for _, ch := range rep.Checks {
		rep.Exact = rep.Exact && ch.OK
		if !ch.OK {
			log.Printf("  CHECK FAILED: %s: want %s, got %s", ch.What, ch.Want, ch.Got)
		}
	}
	rep.Memory, _ = readMemory(cons.pid())
	rep.ExitCode = cons.stop()
	stopped = true
	log.Printf("consumer: exact=%v, peak RSS %.1f MiB, exit code %d after SIGTERM", rep.Exact, rep.Memory.Peak, rep.ExitCode)
	rep.Growth = append(rep.Growth, c.growth(ctx, all))

	// The drain against the server's own insert rate, into the same, now full, collection.
	batch := consumerBatchSize(cfg.consumerEnv)
	rep.Insert = c.insertMany(ctx, c.mongo.Database(votelog.Database).Collection(votelog.LogsCollection), cfg.mongoDocs, 6, batch, "into the drained tally.logs")
	if rep.Insert.PerS > 0 {
		rep.DrainVsInsert = round2(rep.DrainRate / rep.Insert.PerS)
	}
	log.Printf("consumer: drain %.0f votes/s = %.2f of the MongoDB-wire server's insertMany ×6 of %d (%.0f docs/s)",
		rep.DrainRate, rep.DrainVsInsert, batch, rep.Insert.PerS)

	rep.Baselines = append(rep.Baselines, rep.Produce)
	if !cfg.baselines {
		return rep, nil
	}
	log.Printf("consumer baselines:")
	rep.Baselines = append(rep.Baselines, redisBenchmark(ctx, cfg))
	rep.Baselines = append(rep.Baselines, c.luaApply(ctx, cfg.luaVotes))
	scratch := c.mongo.Database("bench")
	defer scratch.Drop(context.Background())
	rep.Baselines = append(rep.Baselines, c.insertMany(ctx, scratch.Collection("insert_many_1"), cfg.mongoDocs, 1, 500, "into a scratch collection"))
	rep.Baselines = append(rep.Baselines, c.insertMany(ctx, scratch.Collection("insert_many_6"), cfg.mongoDocs, 6, 500, "into a scratch collection"))
	// The consumer's MongoDB step alone, in batches of 500 and of the consumer's own size.
	rep.Baselines = append(rep.Baselines, c.votelogInsert(ctx, cfg.mongoDocs, 6, 500))
	if b := consumerBatchSize(cfg.consumerEnv); b != 500 {
		rep.Baselines = append(rep.Baselines, c.votelogInsert(ctx, cfg.mongoDocs, 6, b))
	}
	return rep, nil
}

// mustBeEmpty fails unless nothing has been counted or written yet: the drain must count exactly
// the backlog.
func (c *clients) mustBeEmpty(ctx context.Context) error {
	n, err := c.rdb.Get(ctx, counts.TotalKey).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if n != 0 {
		return fmt.Errorf("redis already counts %d votes: the consumer benchmark needs a fresh stack", n)
	}
	conn, err := kafka.DialContext(ctx, "tcp", c.brokers[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(queue.VotesTopic)
	if err != nil {
		return err
	}
	for _, p := range parts {
		leader, err := kafka.DialLeader(ctx, "tcp", c.brokers[0], queue.VotesTopic, p.ID)
		if err != nil {
			return err
		}
		last, err := leader.ReadLastOffset()
		leader.Close()
		if err != nil {
			return err
		}
		if last != 0 {
			return fmt.Errorf("topic %s partition %d already holds %d records: the consumer benchmark needs a fresh stack", queue.VotesTopic, p.ID, last)
		}
	}
	return nil
}

// expected is what Redis must hold once the backlog is counted.
type expected struct {
	band  map[string]int64
	album map[string]int64
}

// produceBacklog writes n vote records (unique UUIDv7 ids, the ballots in turn) to the votes
// topic as a producer would, acks=all, in large batches, made a chunk at a time so millions fit.
func (c *clients) produceBacklog(ctx context.Context, n int, rep *consumerReport) (expected, error) {
	want := expected{band: map[string]int64{}, album: map[string]int64{}}
	w := &kafka.Writer{
		Addr: kafka.TCP(c.brokers...), Topic: queue.VotesTopic, Balancer: kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 2000, BatchBytes: 4 << 20, BatchTimeout: 2 * time.Millisecond,
	}
	defer w.Close()
	const chunk, writers = 10_000, 4
	chunks := make(chan []kafka.Message, writers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msgs := range chunks {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					mu.Lock()
					firstErr = cmp(firstErr, err)
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	now := start.UnixMilli()
	var err error
	for i := 0; i < n && err == nil; i += chunk {
		msgs := make([]kafka.Message, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			b := load.Pick(uint64(j))
			var id uuid.UUID
			if id, err = uuid.NewV7(); err != nil {
				break
			}
			var m kafka.Message
			if m, err = queue.Encode(queue.Record{Route: queue.RouteGRPC, Vote: &votev1.Vote{
				Name: b.Band, Album: b.Title, Year: b.Year, Rank: b.Rank, VoteId: id.String(), AcceptedAtUnixMs: now,
			}}); err != nil {
				break
			}
			msgs = append(msgs, m)
			want.band[b.Band]++
			want.album[counts.AlbumField(b.Band, b.Title)]++
		}
		chunks <- msgs
		if i > 0 && i%1_000_000 == 0 {
			log.Printf("  %d records written", i)
		}
	}
	close(chunks)
	wg.Wait()
	rep.Produce = newRate("kafka produce (direct)", "kafka-go Writer, acks=all, batches of up to 2000 per partition, 4 concurrent WriteMessages of 10k", "records", n, time.Since(start), cmp(err, firstErr))
	return want, cmp(err, firstErr)
}

// growth measures Redis's memory and MongoDB's size now.
func (c *clients) growth(ctx context.Context, procs []proc) growth {
	var g growth
	var errs []error
	g.Votes, _ = c.rdb.Get(ctx, counts.TotalKey).Int64()
	info, err := c.rdb.InfoMap(ctx, "memory").Result()
	errs = append(errs, err)
	g.RedisUsed, _ = strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	g.RedisDataset, _ = strconv.ParseInt(info["Memory"]["used_memory_dataset"], 10, 64)
	g.RedisKeys, err = c.rdb.DBSize(ctx).Result()
	errs = append(errs, err)
	var stats bson.M
	err = c.mongo.Database(votelog.Database).RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}}).Decode(&stats)
	errs = append(errs, err)
	g.MongoData, g.MongoStorage = asInt64(stats["dataSize"]), asInt64(stats["storageSize"])
	for _, p := range procs {
		if dir := flagOf(p.PID, "-data-dir"); dir != "" {
			g.MongoFiles = dirBytes(dir)
		}
	}
	if err := errors.Join(errs...); err != nil {
		g.Error = err.Error()
	}
	return g
}

func asInt64(v any) int64 {
	switch n := v.(type) {
	case int32:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

// flagOf is the value after flag on process pid's command line, or "".
func flagOf(pid int, flag string) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	args := strings.Split(string(raw), "\x00")
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// dirBytes is the size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// checkExact compares Redis, MongoDB and the consumer's metrics with the backlog.
func (c *clients) checkExact(ctx context.Context, want expected, n int, consumerBase string) []check {
	var out []check
	add := func(what string, w, g any) {
		ws, gs := fmt.Sprint(w), fmt.Sprint(g)
		out = append(out, check{What: what, Want: ws, Got: gs, OK: ws == gs})
	}
	time.Sleep(2 * time.Second) // anything counted twice would show up now
	total, err := c.rdb.Get(ctx, counts.TotalKey).Int64()
	add("redis "+counts.TotalKey, n, orErr(total, err))
	bands, err := c.rdb.HGetAll(ctx, counts.BandKey).Result()
	for band, w := range want.band {
		add("redis "+counts.BandKey+" "+band, w, orErr(bands[band], err))
	}
	albums, err := c.rdb.HGetAll(ctx, counts.AlbumKey).Result()
	for album, w := range want.album {
		add("redis "+counts.AlbumKey+" "+album, w, orErr(albums[album], err))
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Minute) // a count scans every document here
	defer cancel()
	logs, err := c.mongo.Database(votelog.Database).Collection(votelog.LogsCollection).CountDocuments(cctx, bson.D{})
	add("mongo tally.logs documents", n, orErr(logs, err))
	metrics, err := scrape(ctx, consumerBase+"/metrics")
	add(`consumer tally_consumer_processed_total{outcome="counted"}`, n, orErr(metrics[`tally_consumer_processed_total{outcome="counted"}`], err))
	add(`consumer tally_consumer_processed_total{outcome="duplicate"}`, 0, orErr(metrics[`tally_consumer_processed_total{outcome="duplicate"}`], err))
	add("consumer tally_consumer_dead_lettered_total", 0, orErr(metrics["tally_consumer_dead_lettered_total"], err))
	return out
}

func orErr[T any](v T, err error) any {
	if err != nil {
		return "error: " + err.Error()
	}
	return v
}

// scrape reads a Prometheus text page into name{labels} → value (integers as such).
func scrape(ctx context.Context, url string) (map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]any{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		if v == float64(int64(v)) {
			out[line[:i]] = int64(v)
		} else {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// benchDB is the Redis database of the baselines: the counts live in 0.
const benchDB = 15

// redisBenchmark runs redis-benchmark's pipelined HINCRBY against the stack's Redis.
func redisBenchmark(ctx context.Context, cfg *config) rate {
	opts, _ := redis.ParseURL(cfg.redisURL)
	host, port, _ := strings.Cut(opts.Addr, ":")
	args := []string{"-h", host, "-p", port, "--dbnum", strconv.Itoa(benchDB), "-P", "16", "-c", "50",
		"-n", strconv.Itoa(cfg.redisRequests), "--csv", "HINCRBY", "bench:hash", "field", "1"}
	what := "redis-benchmark " + strings.Join(args, " ")
	start := time.Now()
	out, err := exec.CommandContext(ctx, "redis-benchmark", args...).Output()
	d := time.Since(start)
	r := newRate("redis-benchmark HINCRBY -P 16", what, "ops", cfg.redisRequests, d, err)
	if err == nil {
		// --csv: a header line, then "HINCRBY ...","<requests per second>",...
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		fields := strings.Split(lines[len(lines)-1], ",")
		if len(fields) > 1 {
			if v, err := strconv.ParseFloat(strings.Trim(fields[1], `"`), 64); err == nil {
				r.PerS = round1(v)
				r.Seconds = round2(float64(cfg.redisRequests) / v)
				log.Printf("  %-28s %10.0f ops/s (as redis-benchmark reports it)", r.Name, v)
			}
		}
	}
	c := redis.NewClient(&redis.Options{Addr: opts.Addr, DB: benchDB})
	c.FlushDB(ctx)
	c.Close()
	return r
}

// luaApply runs the consumer's Redis step alone: counts.Store.Apply in batches of 500 votes, one
// goroutine per partition (6), in a database of its own.
func (c *clients) luaApply(ctx context.Context, n int) rate {
	opts := *c.rdb.Options()
	opts.DB = benchDB
	rdb := redis.NewClient(&opts)
	defer rdb.Close()
	defer rdb.FlushDB(context.Background())
	store := counts.New(rdb)
	const parts, batch = 6, 500
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset, applied := int64(0), int64(-1)
			for done := 0; done < n/parts; done += batch {
				votes := make([]counts.Vote, 0, batch)
				for range batch {
					b := load.Pick(uint64(offset))
					votes = append(votes, counts.Vote{Offset: offset, Band: b.Band, Album: b.Title, AcceptedAt: now})
					offset++
				}
				if _, err := store.Apply(ctx, p, applied, offset-1, votes); err != nil {
					mu.Lock()
					firstErr = cmp(firstErr, err)
					mu.Unlock()
					return
				}
				applied = offset - 1
			}
		}()
	}
	wg.Wait()
	return newRate("redis counts.Apply (Lua)", "the consumer's Redis step alone: counts.Store.Apply, batches of 500, 6 partitions in parallel", "votes", n/parts/batch*batch*parts, time.Since(start), firstErr)
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// logs makes n vote logs like the consumer's.
func benchLogs(prefix string, n int) []votelog.Log {
	now := time.Now().UTC()
	out := make([]votelog.Log, n)
	for i := range out {
		b := load.Pick(uint64(i))
		out[i] = votelog.Log{VoteID: fmt.Sprintf("%s-%08d", prefix, i), Name: b.Band, Album: b.Title, Year: b.Year, Rank: b.Rank,
			Route: queue.RouteGRPC, AcceptedAt: now, CountedAt: now, Partition: i % 6, Offset: int64(i)}
	}
	return out
}

// insertMany is the MongoDB-wire server's bulk insert rate: unordered insertMany of batch vote
// logs at a time, from writers goroutines, into coll. The documents stay: the stack is the
// benchmark's own, and deleting them from a collection of millions would take longer than this.
func (c *clients) insertMany(ctx context.Context, coll *mongo.Collection, n, writers, batch int, where string) rate {
	logs := benchLogs(fmt.Sprintf("bench-im%d-%d", writers, batch), n)
	err := parallelBatches(len(logs), batch, writers, func(lo, hi int) error {
		docs := make([]any, 0, hi-lo)
		for i := lo; i < hi; i++ {
			docs = append(docs, logs[i])
		}
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	})
	return newRate(fmt.Sprintf("mongo insertMany ×%d, %d", writers, batch),
		fmt.Sprintf("MongoDB-wire server: insertMany of %d vote logs (unordered), %d writer(s), %s", batch, writers, where), "docs", n, err.d, err.err)
}

// votelogInsert is the consumer's MongoDB step alone: votelog.Store.Insert (logs; logs_recent and
// its trim follow in the background, in a database of their own) in batches of batch logs from
// writers goroutines.
func (c *clients) votelogInsert(ctx context.Context, n, writers, batch int) rate {
	db := c.mongo.Database("bench_votelog")
	defer db.Drop(context.Background())
	defer c.mongo.Database(votelog.RecentDatabaseOf(db.Name())).Drop(context.Background())
	store := votelog.New(db)
	logs := benchLogs(fmt.Sprintf("vl%d", batch), n)
	err := parallelBatches(len(logs), batch, writers, func(lo, hi int) error {
		_, err := store.Insert(ctx, logs[lo:hi])
		return err
	})
	return newRate(fmt.Sprintf("mongo votelog.Insert ×%d, %d", writers, batch),
		fmt.Sprintf("the consumer's MongoDB step alone: votelog.Store.Insert of %d logs (logs; logs_recent and its trim follow in the background), %d writers", batch, writers), "logs", n, err.d, err.err)
}

// consumerBatchSize is the consumer's BATCH_SIZE: as given in env, or its default.
func consumerBatchSize(env []string) int {
	size := consume.DefaultBatchSize
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "BATCH_SIZE="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				size = n
			}
		}
	}
	return size
}

type timed struct {
	d   time.Duration
	err error
}

// parallelBatches calls do on [lo, hi) batches of n items from writers goroutines, timing it all.
func parallelBatches(n, batch, writers int, do func(lo, hi int) error) timed {
	next := make(chan int, n/batch+1)
	for lo := 0; lo < n; lo += batch {
		next <- lo
	}
	close(next)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				if err := do(lo, min(lo+batch, n)); err != nil {
					mu.Lock()
					first = cmp(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return timed{time.Since(start), first}
}
