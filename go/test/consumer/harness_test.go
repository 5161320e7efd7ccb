// Package consumer_test runs the consumer binary Bazel built against real Kafka, Redis and
// MongoDB-wire servers, started for each test alone through go/internal/stack, and checks that
// Redis and MongoDB hold exactly the votes produced, whatever happens to the consumer meanwhile.
package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/stack/stacktest"
	"github.com/tally-voting/tally/go/internal/votelog"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// env is one test's servers and clients.
type env struct {
	t     *testing.T
	ctx   context.Context
	cfg   stack.Config
	stack *stack.Stack
	logs  *stacktest.LogBuffer
	rdb   *redis.Client
	mongo *mongo.Client
	kafka *kafka.Client
}

// start starts Kafka, Redis and the MongoDB-wire server in a temp dir of the test's own, or the
// named processes and what they need.
func start(t *testing.T, names ...string) *env {
	t.Helper()
	return startConfig(t, stacktest.Config(t), names...)
}

// startConfig is start with the stack's settings in cfg (a Kafka cluster, say).
func startConfig(t *testing.T, cfg stack.Config, names ...string) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, cfg: cfg, logs: &stacktest.LogBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs (last 40 kB):\n%s", e.logs.Tail(40_000))
		}
	})
	if len(names) == 0 {
		names = stack.ServerNames
	}
	procs, err := cfg.Servers(names...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(ctx, e.logs, procs)
	if err != nil {
		t.Fatalf("start servers: %v", err)
	}
	e.stack = s
	t.Cleanup(s.Stop)

	e.rdb = redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Ports.Redis))})
	t.Cleanup(func() { e.rdb.Close() })
	e.mongo, err = mongo.Connect(options.Client().ApplyURI(fmt.Sprintf("mongodb://127.0.0.1:%d/", cfg.Ports.Mongo)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.mongo.Disconnect(context.Background()) })
	e.kafka = &kafka.Client{Addr: kafka.TCP(e.brokers()...), Timeout: 10 * time.Second}
	return e
}

// brokers are the addresses of every Kafka node of the stack.
func (e *env) brokers() []string { return strings.Split(e.cfg.KafkaBrokers(), ",") }

// consumer is one consumer process, run from its stack definition with our own hands on it so a
// test can SIGKILL it.
type consumer struct {
	e    *env
	name string
	proc stack.Process
	base string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startConsumer starts a consumer replica and waits until it reports ready.
func (e *env) startConsumer(name string) *consumer {
	e.t.Helper()
	port := e.cfg.Ports.Consumer
	if name != stack.ConsumerName {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	p := e.cfg.ConsumerProcess(name, port)
	c := &consumer{e: e, name: name, proc: p, base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	c.cmd = exec.Command(p.Args[0], p.Args[1:]...)
	// A short session timeout lets the group notice a SIGKILLed member in seconds; small batches
	// make a kill land between the writes of a batch more often.
	c.cmd.Env = append(append(os.Environ(), p.Env...), "KAFKA_SESSION_TIMEOUT=6s", "BATCH_SIZE=100", "LOG_LEVEL=info")
	w := &prefixed{out: e.logs, prefix: name + " | "}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	e.t.Cleanup(func() { c.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
		err := p.Ready(ctx)
		cancel()
		if err == nil {
			return c
		}
		select {
		case <-c.done:
			e.t.Fatalf("%s exited before it was ready: %v", name, c.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s not ready after 60 s: %v", name, err)
		}
	}
}

// kill SIGKILLs the consumer: no batch finished, no commit, no goodbye to the group.
func (c *consumer) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// terminate sends SIGTERM and returns the exit code.
func (c *consumer) terminate() int {
	c.e.t.Helper()
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.e.t.Fatalf("%s still running 30 s after SIGTERM", c.name)
	}
	return c.cmd.ProcessState.ExitCode()
}

func (c *consumer) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// readyz returns the status code of GET /readyz.
func (c *consumer) readyz() int {
	resp, err := http.Get(c.base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric returns the value of a sample of /metrics ("name" or `name{label="v"}`).
func (c *consumer) metric(sample string) float64 {
	c.e.t.Helper()
	resp, err := http.Get(c.base + "/metrics")
	if err != nil {
		c.e.t.Fatalf("metrics of %s: %v", c.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		c.e.t.Fatalf("metrics of %s have no %s", c.name, sample)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return v
}

// votes is a stream of vote records with what Redis and MongoDB must hold once it is consumed.
type votes struct {
	rng     *rand.Rand
	at      time.Time
	seq     int
	first   map[string]queue.Record // vote id → the record that counts
	ids     []string
	records int
}

func newVotes(seed uint64) *votes {
	return &votes{rng: rand.New(rand.NewPCG(seed, seed)), at: time.Now().Add(-10 * time.Minute), first: map[string]queue.Record{}}
}

var albums = map[string][]string{
	"Alux Nahual":           {"Alux Nahual", "Hijos del Sol", "Leyenda"},
	"Bohemia Suburbana":     {"Club Atlético Bohemia", "Eres", "Mil Palabras"},
	"Malacates Trébol Shop": {"Resiste", "Niño Azul"},
	"Viernes Verde":         {"Verde Esperanza"},
	"Ricardo Andrade":       {"Mi Viejo San Juan"},
}

var bands = slices.Sorted(maps.Keys(albums))

// next returns n records: new votes, and with probability dup a record repeating an earlier
// round's vote id (the same Idempotency-Key sent again, accepted again later, maybe by the other
// route). Repeats refer only to earlier rounds, already acknowledged, so the first record of each
// id is also first in its partition.
func (v *votes) next(n int, dup float64) []kafka.Message {
	earlier := len(v.ids)
	var msgs []kafka.Message
	for range n {
		v.at = v.at.Add(time.Duration(v.rng.IntN(40)) * time.Millisecond)
		route := []string{queue.RouteGRPC, queue.RouteWasm}[v.rng.IntN(2)]
		var vote *votev1.Vote
		if earlier > 0 && v.rng.Float64() < dup {
			prev := v.first[v.ids[v.rng.IntN(earlier)]].Vote
			vote = &votev1.Vote{Name: prev.Name, Album: prev.Album, Year: prev.Year, Rank: prev.Rank, VoteId: prev.VoteId}
		} else {
			v.seq++
			band := bands[v.rng.IntN(len(bands))]
			vote = &votev1.Vote{
				Name: band, Album: albums[band][v.rng.IntN(len(albums[band]))],
				Year: int32(1975 + v.rng.IntN(50)), Rank: int32(1 + v.rng.IntN(10)),
				VoteId: fmt.Sprintf("vote-%06d-%x", v.seq, v.rng.Uint32()),
			}
		}
		vote.AcceptedAtUnixMs = v.at.UnixMilli()
		r := queue.Record{Vote: vote, Route: route}
		if _, ok := v.first[vote.VoteId]; !ok {
			v.first[vote.VoteId] = r
			v.ids = append(v.ids, vote.VoteId)
		}
		m, err := queue.Encode(r)
		if err != nil {
			panic(err)
		}
		msgs = append(msgs, m)
	}
	v.records += n
	return msgs
}

// produce writes msgs to topic votes, keyed by vote id as the producers do, and returns once
// every replica acknowledged them.
func (e *env) produce(msgs ...kafka.Message) {
	e.t.Helper()
	if err := e.write(msgs...); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
}

func (e *env) write(msgs ...kafka.Message) error {
	w := &kafka.Writer{
		Addr: kafka.TCP(e.brokers()...), Topic: queue.VotesTopic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 1000,
	}
	defer w.Close()
	return w.WriteMessages(e.ctx, msgs...)
}

// produceStream writes rounds of records in the background, one every pause, and returns a
// channel that yields nil or the first error once all are written.
func (e *env) produceStream(v *votes, rounds, perRound int, pause time.Duration) <-chan error {
	batches := make([][]kafka.Message, rounds)
	for i := range batches {
		batches[i] = v.next(perRound, 0.1)
	}
	done := make(chan error, 1)
	go func() {
		for _, b := range batches {
			if err := e.write(b...); err != nil {
				done <- err
				return
			}
			time.Sleep(pause)
		}
		done <- nil
	}()
	return done
}

// total is Redis's count of all votes.
func (e *env) total() int {
	n, err := e.rdb.Get(e.ctx, counts.TotalKey).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return -1
	}
	return n
}

// waitTotal waits until Redis has counted at least n votes.
func (e *env) waitTotal(n int) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for e.total() < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("Redis counted %d votes after 2 min, want at least %d", e.total(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExactTotal waits until Redis's total is n; a consumer that replays after Redis went back
// in time gets there only after the group's committed offsets have caught up once already.
func (e *env) waitExactTotal(n int) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for e.total() != n {
		if time.Now().After(deadline) {
			e.t.Errorf("Redis counted %d votes after 2 min, want %d (%d lost)", e.total(), n, n-e.total())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// offsets returns, per partition of topic votes, the end offset and the group's committed one.
func (e *env) offsets() (end, committed map[int]int64, err error) {
	parts := []int{}
	var reqs []kafka.OffsetRequest
	for p := range queue.VotesPartitions {
		parts = append(parts, p)
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	lo, err := e.kafka.ListOffsets(e.ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{queue.VotesTopic: reqs}})
	if err != nil {
		return nil, nil, err
	}
	of, err := e.kafka.OffsetFetch(e.ctx, &kafka.OffsetFetchRequest{GroupID: consume.Group, Topics: map[string][]int{queue.VotesTopic: parts}})
	if err != nil {
		return nil, nil, err
	}
	end, committed = map[int]int64{}, map[int]int64{}
	for _, p := range lo.Topics[queue.VotesTopic] {
		end[p.Partition] = p.LastOffset
	}
	for _, p := range of.Topics[queue.VotesTopic] {
		committed[p.Partition] = p.CommittedOffset
	}
	return end, committed, nil
}

// waitCommitted waits until the group has committed every record of topic votes.
func (e *env) waitCommitted() {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		end, committed, err := e.offsets()
		if err == nil && maps.Equal(end, committed) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("group has committed %v after 3 min, topic ends at %v (%v)", committed, end, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExact compares every count in Redis and every log in MongoDB with the votes produced.
func (e *env) checkExact(v *votes) {
	e.t.Helper()
	t, ctx := e.t, e.ctx
	byBand, byAlbum, bandAlbums, buckets := map[string]int{}, map[string]int{}, map[string]map[string]int{}, map[string]map[string]int{}
	for _, r := range v.first {
		band, album := r.Vote.Name, r.Vote.Album
		byBand[band]++
		byAlbum[counts.AlbumField(band, album)]++
		if bandAlbums[counts.BandAlbumsKey(band)] == nil {
			bandAlbums[counts.BandAlbumsKey(band)] = map[string]int{}
		}
		bandAlbums[counts.BandAlbumsKey(band)][album]++
		key := counts.BucketKey(r.AcceptedAt())
		if buckets[key] == nil {
			buckets[key] = map[string]int{}
		}
		buckets[key][band]++
	}
	if got := e.total(); got != len(v.first) {
		t.Errorf("%s = %d, want %d (%d records)", counts.TotalKey, got, len(v.first), v.records)
	}
	e.checkHash(counts.BandKey, byBand)
	e.checkHash(counts.AlbumKey, byAlbum)
	for key, want := range bandAlbums {
		e.checkHash(key, want)
	}
	for key, want := range buckets {
		e.checkHash(key, want)
	}
	if got := e.scan("tally:votes:10s:*"); len(got) != len(buckets) {
		t.Errorf("Redis holds %d bucket keys, want %d", len(got), len(buckets))
	}
	// Nothing per vote: Redis's memory is bounded by the ballot and the time buckets.
	if got := e.scan("tally:vote:*"); len(got) != 0 {
		t.Errorf("Redis holds %d per-vote keys (%q...), want none", len(got), got[0])
	}

	db := e.mongo.Database(votelog.Database)
	cur, err := db.Collection(votelog.LogsCollection).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var logs []votelog.Log
	if err := cur.All(ctx, &logs); err != nil {
		t.Fatal(err)
	}
	if len(logs) != len(v.first) {
		t.Errorf("MongoDB holds %d logs, want %d", len(logs), len(v.first))
	}
	for _, l := range logs {
		r, ok := v.first[l.VoteID]
		if !ok {
			t.Errorf("log of unknown vote %q", l.VoteID)
			continue
		}
		if l.Name != r.Vote.Name || l.Album != r.Vote.Album || l.Year != r.Vote.Year || l.Rank != r.Vote.Rank ||
			l.Route != r.Route || !l.AcceptedAt.Equal(r.AcceptedAt()) || l.CountedAt.Before(l.AcceptedAt) ||
			l.Partition < 0 || l.Partition >= queue.VotesPartitions {
			t.Errorf("log %+v differs from its first record %v (route %s)", l, r.Vote, r.Route)
		}
	}
	ids := slices.Clone(v.ids)
	slices.SortFunc(ids, func(a, b string) int {
		if c := v.first[b].AcceptedAt().Compare(v.first[a].AcceptedAt()); c != 0 {
			return c
		}
		return strings.Compare(b, a)
	})
	// logs_recent is written after the counts, at most every votelog.RecentInterval: it may lag.
	var newest []votelog.Log
	for wait := time.Now().Add(10 * votelog.RecentInterval); ; time.Sleep(50 * time.Millisecond) {
		newest, err = votelog.New(db).Newest(ctx, 20)
		if err != nil {
			t.Fatal(err)
		}
		if slices.EqualFunc(newest, ids[:min(20, len(ids))], func(l votelog.Log, id string) bool { return l.VoteID == id }) ||
			time.Now().After(wait) {
			break
		}
	}
	for i, l := range newest {
		if l.VoteID != ids[i] {
			t.Errorf("newest[%d] = %s, want %s", i, l.VoteID, ids[i])
		}
	}
}

func (e *env) checkHash(key string, want map[string]int) {
	e.t.Helper()
	got, err := e.rdb.HGetAll(e.ctx, key).Result()
	if err != nil {
		e.t.Fatalf("HGETALL %s: %v", key, err)
	}
	wantS := map[string]string{}
	for k, n := range want {
		wantS[k] = strconv.Itoa(n)
	}
	if !maps.Equal(got, wantS) {
		e.t.Errorf("%s = %v, want %v", key, got, wantS)
	}
}

func (e *env) scan(pattern string) []string {
	e.t.Helper()
	var keys []string
	iter := e.rdb.Scan(e.ctx, 0, pattern, 1000).Iterator()
	for iter.Next(e.ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// prefixed writes whole lines prefixed with a process name.
type prefixed struct {
	out     io.Writer
	prefix  string
	mu      sync.Mutex
	pending []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, b...)
	for {
		i := bytes.IndexByte(p.pending, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.out, "%s%s\n", p.prefix, p.pending[:i])
		p.pending = p.pending[i+1:]
	}
}
