package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/load"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// pipelineReport is the whole path under steady load: votes offered to both routes at once, with
// the consumer replicas running, each vote timed from its accept to its count.
type pipelineReport struct {
	Consumers int      `json:"consumers"`
	Env       []string `json:"consumer_env"`
	// PollMs is how often the benchmark read the partitions' applied watermarks from Redis: the
	// "visible" latencies are late by up to that much.
	PollMs   float64        `json:"watermark_poll_ms"`
	Steps    []pipelineStep `json:"steps"`
	Profiles []cpuProfile   `json:"profiles,omitempty"`
}

// pipelineStep is one offered rate, split evenly between the routes.
type pipelineStep struct {
	Offered float64        `json:"offered_per_s"`
	Routes  []routeLatency `json:"routes"`
	// Stages are the consumers' stage histograms (tally_consumer_stage_seconds), summed over the
	// replicas, over this step.
	Stages []stageTime `json:"consumer_stages"`
	// Uncounted is how many accepted votes Redis had not counted SettleS after the load ended.
	Uncounted int64   `json:"uncounted"`
	SettleS   float64 `json:"settle_s"`
	CPU       cpuUse  `json:"cpu"`
	// WriteErrors are the consumers' failed attempts (retried) during the step, by target.
	WriteErrors map[string]float64 `json:"consumer_write_errors,omitempty"`
}

// routeLatency is one route's votes of a step.
type routeLatency struct {
	Route string `json:"route"`
	// Accept is the producer's answers as the load generator saw them: accepted votes per second
	// and the time to the 202 from when the vote was due (the producer's batch wait and Kafka's
	// acknowledgement are in it).
	Accept load.Result `json:"accept"`
	Logs   int         `json:"logs_found"`
	// Logged is counted_at − accepted_at from the vote logs: up to the start of the batch's
	// writes (the consumer sets counted_at before it writes the log).
	Logged load.Latency `json:"accept_to_counted_at"`
	// Visible is from accepted_at to the first poll that found the vote's partition watermark in
	// Redis at or past its offset: when a reader of the counts could see it.
	Visible load.Latency `json:"accept_to_visible"`
	// Missing are accepted votes without a log or not visible when the benchmark stopped waiting
	// (60 s after the load): those with a log are in Visible at that time, a lower bound, so a
	// step that did not keep up shows as slow rather than hiding its slowest votes.
	Missing  int64 `json:"not_counted_in_time"`
	Censored int   `json:"visible_at_the_wait_end"`
	// Seconds of accept: how many had a vote visible after 1 s, and the worst one with the
	// fastest vote of that same second.
	SecondsOver1s int     `json:"seconds_with_a_vote_over_1s"`
	WorstSecond   int     `json:"worst_second"`
	WorstMaxMs    float64 `json:"worst_second_max_ms"`
	WorstMinMs    float64 `json:"worst_second_min_ms"`
}

// stageTime is one stage's histogram over a step.
type stageTime struct {
	Stage string  `json:"stage"`
	Count float64 `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

// runPipeline starts cfg.pipelineConsumers consumers, warms the path up, then offers each rate of
// cfg.pipelineRates to all routes at once (half each with two) and times every vote from accept
// to count.
func runPipeline(ctx context.Context, cfg *config, out string, own *[]proc) (*pipelineReport, error) {
	c, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	var routes []route
	for _, r := range cfg.routes {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := stack.HTTPOK(rctx, r.URL+"/readyz")
		cancel()
		if err != nil {
			return nil, fmt.Errorf("route %s: GET %s/readyz: %w", r.Name, r.URL, err)
		}
		routes = append(routes, r)
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("no routes to load")
	}
	rep := &pipelineReport{Consumers: cfg.pipelineConsumers, Env: cfg.consumerEnv, PollMs: float64(cfg.pipelinePoll) / 1e6}

	var bases []string
	var pprofs []proc
	for i := range cfg.pipelineConsumers {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		env := append([]string{"HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port), "DEBUG_PPROF=1"}, cfg.consumerEnv...)
		name := fmt.Sprintf("consumer-%d", i+1)
		log.Printf("pipeline: starting %s (%s)", name, strings.Join(env, " "))
		cons, err := startChild(name, []string{cfg.consumerBin}, env, filepath.Join(out, name+".log"), nil)
		if err != nil {
			return nil, err
		}
		defer cons.stop()
		if err := cons.waitHTTP(ctx, base+"/readyz", 60*time.Second); err != nil {
			return nil, err
		}
		*own = append(*own, cons.proc())
		pprofs = append(pprofs, cons.proc())
		bases = append(bases, base)
	}
	all := stackProcesses(*own)
	for _, p := range all {
		if p.Name == "mongo (ferretdb)" {
			pprofs = append(pprofs, p)
		}
	}

	// Warm-up: every consumer has its partitions and has counted some votes.
	log.Printf("pipeline: warming up until every consumer counts")
	warm := time.Now()
	for {
		if _, err := c.pipelineStep(ctx, cfg, routes, bases, 200, 2*time.Second, "warm", nil); err != nil {
			return nil, err
		}
		ready := true
		for _, b := range bases {
			m, err := scrape(ctx, b+"/metrics")
			if err != nil {
				return nil, err
			}
			if n, _ := m[`tally_consumer_processed_total{outcome="counted"}`].(int64); n == 0 {
				ready = false
			}
		}
		if ready {
			break
		}
		if time.Since(warm) > 2*time.Minute {
			return nil, fmt.Errorf("not every consumer counted a vote within 2 min of warm-up")
		}
	}
	// Then, unmeasured, the first rate for pipelineWarmup: a fresh stack's first minute of load
	// costs more than the next (Kafka's JIT compiling its hot paths). Four 15 s steps of 1,000
	// votes/s in a row, without it, measured Kafka at 0.29, 0.32, 0.23, then 0.11 cores and the
	// MongoDB insert's p50 at 1,150, 418, 206, then 56 ms (on a loaded machine); the first step
	// measured the warm-up, on a machine of 2 cores, not the steady state.
	if cfg.pipelineWarmup > 0 {
		log.Printf("pipeline: warming up at %.0f votes/s for %v", cfg.pipelineRates[0], cfg.pipelineWarmup)
		if _, err := c.pipelineStep(ctx, cfg, routes, bases, cfg.pipelineRates[0], cfg.pipelineWarmup, "warm", nil); err != nil {
			return nil, err
		}
	}

	for _, rate := range cfg.pipelineRates {
		waitQuiet(all, cfg.quietLimit, cfg.quietWait)
		var prof func()
		if rate == cfg.pipelineProfileRate && cfg.profileSeconds > 0 {
			prof = func() {
				var wg sync.WaitGroup
				var mu sync.Mutex
				during := fmt.Sprintf("pipeline-%.0f", rate)
				for _, p := range pprofs {
					base := findPprof(ctx, p.PID)
					if base == "" {
						continue
					}
					wg.Add(2)
					go func() {
						defer wg.Done()
						pr := profileURL(ctx, base, p.Name, during, cfg.profileSeconds, out)
						mu.Lock()
						rep.Profiles = append(rep.Profiles, pr)
						mu.Unlock()
					}()
					go func() { // what every goroutine waits on, twice mid-profile
						defer wg.Done()
						for i := range 2 {
							time.Sleep(time.Duration(cfg.profileSeconds) * time.Second / 3)
							_ = fetchProfile(ctx, base, "goroutine?debug=1", p.Name, fmt.Sprintf("%s-%d", during, i+1), "goroutines", 0, out)
						}
					}()
				}
				wg.Wait()
			}
		}
		m := startCPU(all)
		step, err := c.pipelineStep(ctx, cfg, routes, bases, rate, cfg.pipelineDuration, fmt.Sprintf("r%.0f", rate), prof)
		if err != nil {
			return nil, err
		}
		step.CPU = m.stop()
		rep.Steps = append(rep.Steps, *step)
		for _, r := range step.Routes {
			log.Printf("  %6.0f/s %-5s accept p99 %6.1f ms | accept→visible p50 %7.1f p99 %7.1f max %7.1f ms | →counted_at p99 %7.1f ms | %d s over 1 s | not counted in time %d",
				rate, r.Route, r.Accept.Latency.P99, r.Visible.P50, r.Visible.P99, r.Visible.Max, r.Logged.P99, r.SecondsOver1s, r.Missing)
		}
		var parts []string
		for _, s := range step.Stages {
			parts = append(parts, fmt.Sprintf("%s p50 %.1f p99 %.1f", s.Stage, s.P50, s.P99))
		}
		log.Printf("           stages (ms): %s; uncounted %d; CPU %v", strings.Join(parts, ", "), step.Uncounted, step.CPU.Ours)
		pause(ctx)
	}
	return rep, nil
}

// pipelineStep offers rate votes/s for d, split evenly over routes (keyed votes, so their logs
// are found), waits until Redis counts every accepted vote, and times each vote.
func (c *clients) pipelineStep(ctx context.Context, cfg *config, routes []route, bases []string, rate float64, d time.Duration, tag string, during func()) (*pipelineStep, error) {
	step := &pipelineStep{Offered: rate}
	before, err := scrapeAll(ctx, bases)
	if err != nil {
		return nil, err
	}
	total0, err := c.total(ctx)
	if err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("bench-%d-%s-", time.Now().UnixNano(), tag)
	poll := startWatermarkPoll(ctx, c.rdb, cfg.pipelinePoll)
	results := make([]load.Result, len(routes))
	var wg sync.WaitGroup
	for i, r := range routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := newKeyedHTTP(r.URL, cfg.workers, prefix+r.Name+"-")
			defer t.Close()
			results[i] = load.RunOpen(ctx, t, load.Open{Rate: rate / float64(len(routes)), Duration: d, Workers: cfg.workers})
		}()
	}
	if during != nil {
		wg.Add(1)
		go func() { defer wg.Done(); during() }()
	}
	wg.Wait()
	var accepted int64
	for _, r := range results {
		accepted += r.OK
	}
	ended := time.Now()
	const settle = 60 * time.Second
	for {
		n, err := c.total(ctx)
		if err != nil {
			poll.stop(ctx)
			return nil, err
		}
		step.Uncounted = accepted - (n - total0)
		if step.Uncounted <= 0 || time.Since(ended) > settle {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	step.SettleS = round2(time.Since(ended).Seconds())
	samples := poll.stop(ctx)
	gaveUp := time.Now()
	after, err := scrapeAll(ctx, bases)
	if err != nil {
		return nil, err
	}
	step.Stages = stageDeltas(before, after)
	step.WriteErrors = map[string]float64{}
	for k, v := range after {
		if t, ok := strings.CutPrefix(k, `tally_consumer_write_errors_total{target="`); ok {
			if d := toFloat(v) - toFloat(before[k]); d > 0 {
				step.WriteErrors[strings.TrimSuffix(t, `"}`)] = d
			}
		}
	}

	logs, err := c.stepLogs(ctx, prefix)
	if err != nil {
		return nil, err
	}
	for i, r := range routes {
		step.Routes = append(step.Routes, routeLatencies(r.Name, results[i], logs, samples, gaveUp))
	}
	return step, nil
}

func (c *clients) total(ctx context.Context) (int64, error) {
	n, err := c.rdb.Get(ctx, counts.TotalKey).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}

// stepLog is what the benchmark reads of a vote log.
type stepLog struct {
	ID         string    `bson:"_id"`
	Route      string    `bson:"route"`
	AcceptedAt time.Time `bson:"accepted_at"`
	CountedAt  time.Time `bson:"counted_at"`
	Partition  int       `bson:"partition"`
	Offset     int64     `bson:"offset"`
}

// stepLogs reads the logs of the votes whose ids start with prefix.
func (c *clients) stepLogs(ctx context.Context, prefix string) ([]stepLog, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	coll := c.mongo.Database(votelog.Database).Collection(votelog.LogsCollection)
	cur, err := coll.Find(cctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: prefix}, {Key: "$lt", Value: prefix + "~"}}}},
		options.Find().SetProjection(bson.D{{Key: "route", Value: 1}, {Key: "accepted_at", Value: 1}, {Key: "counted_at", Value: 1},
			{Key: "partition", Value: 1}, {Key: "offset", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read the step's logs: %w", err)
	}
	var logs []stepLog
	if err := cur.All(cctx, &logs); err != nil {
		return nil, fmt.Errorf("read the step's logs: %w", err)
	}
	return logs, nil
}

// routeLatencies times route's votes of a step from their logs and the watermark samples.
func routeLatencies(name string, accept load.Result, logs []stepLog, samples map[int][]watermarkSample, gaveUp time.Time) routeLatency {
	rl := routeLatency{Route: name, Accept: accept}
	var logged, visible load.Histogram
	type second struct{ lo, hi time.Duration }
	seconds := map[int64]*second{}
	var first int64 = math.MaxInt64
	for _, l := range logs {
		if l.Route != name {
			continue
		}
		rl.Logs++
		logged.Record(l.CountedAt.Sub(l.AcceptedAt))
		seen, ok := firstAtOrPast(samples[l.Partition], l.Offset)
		if !ok {
			seen = gaveUp
			rl.Censored++
		}
		d := seen.Sub(l.AcceptedAt)
		visible.Record(d)
		s := l.AcceptedAt.Unix()
		first = min(first, s)
		if sec, ok := seconds[s]; ok {
			sec.lo, sec.hi = min(sec.lo, d), max(sec.hi, d)
		} else {
			seconds[s] = &second{d, d}
		}
	}
	rl.Logged, rl.Visible = logged.Summary(), visible.Summary()
	rl.Missing = accept.OK - int64(rl.Logs) + int64(rl.Censored)
	for s, sec := range seconds {
		if sec.hi > time.Second {
			rl.SecondsOver1s++
		}
		if ms := float64(sec.hi) / 1e6; ms > rl.WorstMaxMs {
			rl.WorstSecond, rl.WorstMaxMs, rl.WorstMinMs = int(s-first), round1(ms), round1(float64(sec.lo)/1e6)
		}
	}
	return rl
}

// watermarkSample is a partition's applied watermark as first seen at a time.
type watermarkSample struct {
	at        time.Time
	watermark int64
}

// firstAtOrPast is the time of the first sample whose watermark reached offset.
func firstAtOrPast(samples []watermarkSample, offset int64) (time.Time, bool) {
	i, _ := slices.BinarySearchFunc(samples, offset, func(s watermarkSample, o int64) int {
		switch {
		case s.watermark < o:
			return -1
		case s.watermark > o:
			return 1
		}
		return 0
	})
	if i == len(samples) {
		return time.Time{}, false
	}
	return samples[i].at, true
}

type watermarkPoll struct {
	cancel  context.CancelFunc
	done    chan struct{}
	read    func(context.Context) // one poll: records the watermarks that moved
	samples map[int][]watermarkSample
}

// startWatermarkPoll reads every partition's applied watermark every interval and keeps each
// change with the time it was seen.
func startWatermarkPoll(ctx context.Context, rdb *redis.Client, interval time.Duration) *watermarkPoll {
	ctx, cancel := context.WithCancel(ctx)
	w := &watermarkPoll{cancel: cancel, done: make(chan struct{}), samples: map[int][]watermarkSample{}}
	keys := make([]string, queue.VotesPartitions)
	for p := range keys {
		keys[p] = counts.AppliedKey(p)
	}
	w.read = func(ctx context.Context) {
		vals, err := rdb.MGet(ctx, keys...).Result()
		at := time.Now()
		if err != nil {
			return
		}
		for p, v := range vals {
			s, _ := v.(string)
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				continue
			}
			if ss := w.samples[p]; len(ss) == 0 || ss[len(ss)-1].watermark < n {
				w.samples[p] = append(ss, watermarkSample{at, n})
			}
		}
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			w.read(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// stop ends the polling with one last read, so that what the counts held when the caller stopped
// waiting is seen (a poll cut off by the cancel, or due after it, would leave the last batches
// unseen and charged as not counted).
func (w *watermarkPoll) stop(ctx context.Context) map[int][]watermarkSample {
	w.cancel()
	<-w.done
	w.read(ctx)
	return w.samples
}

// keyedHTTP casts votes with load.HTTP, each with an Idempotency-Key of prefix and a sequence
// number, which becomes its vote id: the benchmark finds its logs by it.
type keyedHTTP struct {
	*load.HTTP
	prefix string
	n      atomic.Uint64
}

func newKeyedHTTP(base string, conns int, prefix string) *keyedHTTP {
	return &keyedHTTP{HTTP: load.NewHTTP(base, conns), prefix: prefix}
}

func (k *keyedHTTP) Cast(ctx context.Context, v *load.Vote) error {
	return k.CastKeyed(ctx, v, fmt.Sprintf("%s%08d", k.prefix, k.n.Add(1)))
}

// scrapeAll sums the consumers' metrics.
func scrapeAll(ctx context.Context, bases []string) (map[string]any, error) {
	sum := map[string]any{}
	for _, b := range bases {
		m, err := scrape(ctx, b+"/metrics")
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			sum[k] = toFloat(sum[k]) + toFloat(v)
		}
	}
	return sum, nil
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

var bucketLine = regexp.MustCompile(`^tally_consumer_stage_seconds_bucket\{stage="([a-z_]+)",le="([^"]+)"\}$`)

// stageDeltas is each stage's histogram between two scrapes: count, mean and quantiles
// interpolated within buckets as Prometheus's histogram_quantile does.
func stageDeltas(before, after map[string]any) []stageTime {
	type bucket struct{ le, n float64 }
	byStage := map[string][]bucket{}
	for k, v := range after {
		m := bucketLine.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		le := math.Inf(1)
		if m[2] != "+Inf" {
			le, _ = strconv.ParseFloat(m[2], 64)
		}
		byStage[m[1]] = append(byStage[m[1]], bucket{le, toFloat(v) - toFloat(before[k])})
	}
	var out []stageTime
	for _, s := range []string{consume.StageDelivery, consume.StageQueue, consume.StageMongo, consume.StageRedis, consume.StageCommit} {
		bs := byStage[s]
		slices.SortFunc(bs, func(a, b bucket) int { return cmpFloat(a.le, b.le) })
		if len(bs) == 0 || bs[len(bs)-1].n == 0 {
			out = append(out, stageTime{Stage: s})
			continue
		}
		total := bs[len(bs)-1].n
		q := func(q float64) float64 {
			rank := q * total
			prevLe, prevN := 0.0, 0.0
			for _, b := range bs {
				if b.n >= rank {
					if math.IsInf(b.le, 1) {
						return prevLe * 1000
					}
					return (prevLe + (b.le-prevLe)*(rank-prevN)/max(b.n-prevN, 1)) * 1000
				}
				prevLe, prevN = b.le, b.n
			}
			return prevLe * 1000
		}
		key := `tally_consumer_stage_seconds_%s{stage="` + s + `"}`
		sum := toFloat(after[fmt.Sprintf(key, "sum")]) - toFloat(before[fmt.Sprintf(key, "sum")])
		out = append(out, stageTime{Stage: s, Count: total, Mean: round1(sum / total * 1000), P50: round1(q(0.5)), P99: round1(q(0.99))})
	}
	return out
}

// pipelineMarkdown is the pipeline's part of results.md.
func pipelineMarkdown(pl *pipelineReport, p func(string, ...any)) {
	env := "defaults"
	if len(pl.Env) > 0 {
		env = strings.Join(pl.Env, " ")
	}
	p("\n## Accept to counted, both routes, %d consumers\n\n", pl.Consumers)
	p("Open loop on every route at once (the offered rate split evenly), keyed votes; consumers with %s. "+
		"**visible** is from the vote's `accepted_at` to the first read of Redis (every %.0f ms) that found its partition's applied watermark at or past its offset; "+
		"**counted_at** is the log's `counted_at − accepted_at` (set when the consumer starts the batch's writes). Accept is the producer's answer time at the load generator.\n\n", env, pl.PollMs)
	p("A step that did not keep up has votes **not counted in time** (no log, or not visible 60 s after the load ended): those with a log count in the visible figures at that moment, a lower bound.\n\n")
	p("| offered /s | route | accepted /s | accept p99 ms | logs | not counted in time | visible p50 ms | visible p99 ms | visible max ms | counted_at p99 ms | seconds with a vote over 1 s | worst second: max / min ms | CPU outside |\n")
	p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, s := range pl.Steps {
		for _, r := range s.Routes {
			p("| %.0f | %s | %.0f | %.1f | %d | %d | %.1f | %.1f | %.1f | %.1f | %d | %.0f / %.0f | %.2f |\n", s.Offered, r.Route, r.Accept.Throughput, r.Accept.Latency.P99,
				r.Logs, r.Missing, r.Visible.P50, r.Visible.P99, r.Visible.Max, r.Logged.P99, r.SecondsOver1s, r.WorstMaxMs, r.WorstMinMs, s.CPU.Other)
		}
	}
	p("\nThe consumers' stages over each step (`tally_consumer_stage_seconds`, all replicas; delivery and queue per record, the rest per batch), ms:\n\n")
	p("| offered /s | stage | count | mean | p50 | p99 |\n|---:|---|---:|---:|---:|---:|\n")
	for _, s := range pl.Steps {
		for _, st := range s.Stages {
			p("| %.0f | %s | %.0f | %.1f | %.1f | %.1f |\n", s.Offered, st.Stage, st.Count, st.Mean, st.P50, st.P99)
		}
	}
	p("\nCPU by process during each step (cores), uncounted votes after the settle, consumers' retried write errors:\n\n")
	for _, s := range pl.Steps {
		var names []string
		for n := range s.CPU.Ours {
			if s.CPU.Ours[n] >= 0.01 {
				names = append(names, n)
			}
		}
		slices.SortFunc(names, func(a, b string) int { return cmpFloat(s.CPU.Ours[b], s.CPU.Ours[a]) })
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.2f", n, s.CPU.Ours[n]))
		}
		p("- %.0f/s: machine %.2f, outside %.2f; %s; uncounted %d after %.1f s; write errors %v\n", s.Offered, s.CPU.Machine, s.CPU.Other, strings.Join(parts, ", "), s.Uncounted, s.SettleS, s.WriteErrors)
	}
}

// pipelineSummary is the pipeline's lines at the end of a run.
func pipelineSummary(pl *pipelineReport, w io.Writer) {
	for _, s := range pl.Steps {
		for _, r := range s.Routes {
			fmt.Fprintf(w, "pipeline %6.0f/s %-5s accept→visible p50 %.1f ms p99 %.1f ms max %.1f ms; not counted in time %d\n", s.Offered, r.Route, r.Visible.P50, r.Visible.P99, r.Visible.Max, r.Missing)
		}
	}
}
