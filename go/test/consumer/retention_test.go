package consumer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// A running consumer is stalled on a paused Redis (CLIENT PAUSE WRITE: its scripts wait, as on a
// full Redis with noeviction) while Kafka's DeleteRecords removes, as retention does, the records
// it had not fetched. Once Redis is back, the records counted nowhere are exactly the ones the
// consumer names lost: in tally_consumer_retention_lost_records_total and in its error log lines,
// offset by offset.
func TestRetentionDeletesUnderARunningConsumer(t *testing.T) {
	e := start(t)
	c := e.startConsumer(stack.ConsumerName)
	v := newVotes(10)
	e.produce(v.next(600, 0)...)
	e.waitCommitted()

	if err := e.rdb.Do(e.ctx, "CLIENT", "PAUSE", "120000", "WRITE").Err(); err != nil {
		t.Fatalf("pause Redis: %v", err)
	}
	unpaused := false
	unpause := func() {
		if !unpaused {
			unpaused = true
			if err := e.rdb.Do(context.Background(), "CLIENT", "UNPAUSE").Err(); err != nil {
				t.Errorf("unpause Redis: %v", err)
			}
		}
	}
	t.Cleanup(unpause)
	e.produce(v.next(6000, 0)...)
	// The consumer has fetched what it holds and stalls on its first script.
	e.waitStalled(c)
	end, _, err := e.offsets()
	if err != nil {
		t.Fatal(err)
	}
	if err := deleteRecords(e.ctx, e.cfg.KafkaAddr(), queue.VotesTopic, end); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	unpause()
	// Records after the deletion show the gap to a reader; the idle check finds it anyway.
	e.produce(v.next(60, 0)...)
	e.waitCommitted()

	// Which offsets of each partition are counted: those of the logs (no vote id repeats).
	counted := map[int][]int64{}
	cur, err := e.mongo.Database(votelog.Database).Collection(votelog.LogsCollection).Find(e.ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var logs []votelog.Log
	if err := cur.All(e.ctx, &logs); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		counted[l.Partition] = append(counted[l.Partition], l.Offset)
	}
	if got := e.total(); got != len(logs) {
		t.Fatalf("Redis counts %d votes, MongoDB logs %d", got, len(logs))
	}
	lost := v.records - len(logs)
	if lost == 0 {
		t.Fatal("no record was lost: the deletion came after the consumer had read everything")
	}
	if got := c.metric("tally_consumer_retention_lost_records_total"); got != float64(lost) {
		t.Errorf("tally_consumer_retention_lost_records_total = %v, want %d (%d records accepted, %d counted)", got, lost, v.records, len(logs))
	}
	named := namedLost(t, e.logs.String())
	finalEnd, _, err := e.offsets()
	if err != nil {
		t.Fatal(err)
	}
	for p := range queue.VotesPartitions {
		seen := map[int64]string{}
		for _, o := range counted[p] {
			seen[o] = "counted"
		}
		for _, s := range named[p] {
			for o := s[0]; o <= s[1]; o++ {
				if seen[o] != "" {
					t.Errorf("partition %d offset %d is named lost and %s", p, o, seen[o])
				}
				seen[o] = "named lost"
			}
		}
		for o := range finalEnd[p] {
			if seen[o] == "" {
				t.Errorf("partition %d offset %d is neither counted nor named lost", p, o)
			}
		}
	}
	t.Logf("%d records accepted, %d counted, %d deleted unread and named lost; ends %v", v.records, len(logs), lost, finalEnd)
}

// waitStalled waits until every partition the consumer reads has a batch failing on Redis, and
// its fetches are in hand.
func (e *env) waitStalled(c *consumer) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for c.metric(`tally_consumer_write_errors_total{target="redis"}`) < queue.VotesPartitions {
		if time.Now().After(deadline) {
			e.t.Fatal("the consumer's Redis writes did not fail within a minute of the pause")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// namedLost reads the consumer's log lines naming records lost to retention: partition →
// [first, last] offsets.
func namedLost(t *testing.T, logs string) map[int][][2]int64 {
	t.Helper()
	named := map[int][][2]int64{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "{")
		if i < 0 || !strings.HasPrefix(line, stack.ConsumerName+" | ") || !strings.Contains(line, "deleted by Kafka's retention") {
			continue
		}
		var rec struct {
			Partition int   `json:"partition"`
			From      int64 `json:"from_offset"`
			To        int64 `json:"to_offset"`
			Missing   int64 `json:"missing_records"`
		}
		if err := json.Unmarshal([]byte(line[i:]), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.To-rec.From+1 != rec.Missing {
			t.Errorf("log line %q: from %d to %d is not %d records", line, rec.From, rec.To, rec.Missing)
		}
		named[rec.Partition] = append(named[rec.Partition], [2]int64{rec.From, rec.To})
	}
	for p := range named {
		slices.SortFunc(named[p], func(a, b [2]int64) int { return int(a[0] - b[0]) })
	}
	return named
}

// deleteRecords deletes the records of topic's partitions below the given offsets, as retention
// does, with Kafka's DeleteRecords request (version 2) to the broker at addr, which leads every
// partition in the tests. kafka-go has no client for it.
func deleteRecords(ctx context.Context, addr, topic string, before map[int]int64) error {
	var body bytes.Buffer
	parts := slices.Sorted(func(yield func(int) bool) {
		for p := range before {
			if !yield(p) {
				return
			}
		}
	})
	uvarint(&body, 2)                    // one topic
	uvarint(&body, uint64(len(topic))+1) // compact string
	body.WriteString(topic)
	uvarint(&body, uint64(len(parts))+1)
	for _, p := range parts {
		binary.Write(&body, binary.BigEndian, int32(p))
		binary.Write(&body, binary.BigEndian, before[p])
		body.WriteByte(0) // tagged fields
	}
	body.WriteByte(0)                                   // topic's tagged fields
	binary.Write(&body, binary.BigEndian, int32(30000)) // timeout ms
	body.WriteByte(0)

	var req bytes.Buffer
	binary.Write(&req, binary.BigEndian, int16(21)) // DeleteRecords
	binary.Write(&req, binary.BigEndian, int16(2))
	binary.Write(&req, binary.BigEndian, int32(1)) // correlation id
	binary.Write(&req, binary.BigEndian, int16(len("tally-test")))
	req.WriteString("tally-test")
	req.WriteByte(0) // header's tagged fields
	req.Write(body.Bytes())

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := binary.Write(conn, binary.BigEndian, int32(req.Len())); err != nil {
		return err
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		return err
	}
	var size int32
	if err := binary.Read(conn, binary.BigEndian, &size); err != nil {
		return err
	}
	resp := make([]byte, size)
	if _, err := io.ReadFull(conn, resp); err != nil {
		return err
	}
	r := bytes.NewReader(resp)
	var correlation, throttle int32
	binary.Read(r, binary.BigEndian, &correlation)
	skipTags(r)
	binary.Read(r, binary.BigEndian, &throttle)
	topics, _ := binary.ReadUvarint(r)
	var errs []error
	for range int(topics) - 1 {
		n, _ := binary.ReadUvarint(r)
		name := make([]byte, n-1)
		io.ReadFull(r, name)
		np, _ := binary.ReadUvarint(r)
		for range int(np) - 1 {
			var (
				p    int32
				low  int64
				code int16
			)
			binary.Read(r, binary.BigEndian, &p)
			binary.Read(r, binary.BigEndian, &low)
			binary.Read(r, binary.BigEndian, &code)
			skipTags(r)
			if code != 0 {
				errs = append(errs, fmt.Errorf("%s partition %d: %w", name, p, kafka.Error(code)))
			} else if low != before[int(p)] {
				errs = append(errs, fmt.Errorf("%s partition %d starts at %d after the deletion, want %d", name, p, low, before[int(p)]))
			}
		}
		skipTags(r)
	}
	if correlation != 1 {
		errs = append(errs, fmt.Errorf("answer to request %d, want 1", correlation))
	}
	return errors.Join(errs...)
}

func uvarint(b *bytes.Buffer, v uint64) { b.Write(binary.AppendUvarint(nil, v)) }

// skipTags skips a tagged-fields section (none are expected: a count, then each tag's bytes).
func skipTags(r *bytes.Reader) {
	n, _ := binary.ReadUvarint(r)
	for range n {
		binary.ReadUvarint(r)
		size, _ := binary.ReadUvarint(r)
		r.Seek(int64(size), io.SeekCurrent)
	}
}
