package httpcontract_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
)

// Accepted votes are in Kafka when the 202 arrives: key = id, value decodes (queue.Decode) to the
// normalized vote, the route header names this producer; an id given twice is one key in one
// partition; and rejected votes, off-ballot ones included, are nowhere. This run's records are
// told apart by their ids (Idempotency-Keys starting with the run's id), since every name must
// be on the ballot.
func TestAcceptedVotesReachKafka(t *testing.T) {
	c := setup(t)
	run := runID()
	type sent struct {
		name, album string
		year, rank  int32
	}
	want := map[string]sent{}
	before := time.Now().Add(-time.Second)
	for i, v := range []struct {
		body string
		want sent
	}{
		{`{"name":"  Alux Nahual ","album":"Alux Nahual","year":1981,"rank":1}`, sent{"Alux Nahual", "Alux Nahual", 1981, 1}},
		{`{"name":"Bohemia Suburbana","album":"Sub","year":"2001","rank":"10"}`, sent{"Bohemia Suburbana", "Sub", 2001, 10}},
		{`{"rank":5,"year":2015,"album":"Imaginaria Sonora","name":"Bohemia Suburbana"}`, sent{"Bohemia Suburbana", "Imaginaria Sonora", 2015, 5}},
	} {
		key := fmt.Sprintf("%s-%d", run, i)
		r := c.vote(t, v.body, "Idempotency-Key", key)
		if r.code != http.StatusAccepted || r.ID != key {
			t.Fatalf("vote %d: %d %s", i, r.code, r.body)
		}
		want[key] = v.want
	}
	key := run + "-retried"
	for range 2 {
		if r := c.vote(t, `{"name":"Malacates Trébol Shop","album":"Paquetecuetes","year":1999,"rank":7}`, "Idempotency-Key", key); r.code != http.StatusAccepted {
			t.Fatalf("keyed vote: %d %s", r.code, r.body)
		}
	}
	want[key] = sent{name: "Malacates Trébol Shop", album: "Paquetecuetes", year: 1999, rank: 7}
	for i, bad := range []struct{ body, field string }{
		{`{"name":"Alux Nahual","album":"Conquista","year":1800,"rank":1}`, "year"},
		{`{"name":"Alux Nahual","album":"Conquista","year":1982,"rank":11}`, "rank"},
		{`{"name":"Alux Nahual","album":"","year":1982,"rank":1}`, "album"},
		{`{"name":"Alux Nahual","album":"Conquista","year":1982,"rank":1,"extra":true}`, "extra"},
		// Off the ballot: a made-up band, another band's album, the album's wrong year.
		{`{"name":"Los Made Up","album":"Conquista","year":1982,"rank":1}`, "name"},
		{`{"name":"Bohemia Suburbana","album":"Conquista","year":1982,"rank":1}`, "album"},
		{`{"name":"Alux Nahual","album":"Conquista","year":1983,"rank":1}`, "year"},
	} {
		r := c.vote(t, bad.body, "Idempotency-Key", fmt.Sprintf("%s-bad-%d", run, i))
		if r.code != http.StatusBadRequest || r.Field != bad.field {
			t.Fatalf("invalid vote %s: %d %s, want 400 naming %s", bad.body, r.code, r.body, bad.field)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs := readTopic(ctx, t, c.brokers, queue.VotesTopic)
	found := map[string]int{}
	partitionOf := map[string]int{}
	for _, m := range msgs {
		rec, err := queue.Decode(m)
		if err != nil {
			if string(m.Key) == key || want[string(m.Key)] != (sent{}) {
				t.Errorf("record %q does not decode: %v", m.Key, err)
			}
			continue
		}
		if !strings.HasPrefix(rec.Vote.GetVoteId(), run+"-") {
			continue
		}
		id := rec.Vote.GetVoteId()
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected record of this run in Kafka (a rejected vote?): %v", rec.Vote)
			continue
		}
		found[id]++
		if string(m.Key) != id {
			t.Errorf("key %q, want the vote id %q", m.Key, id)
		}
		if rec.Route != c.route {
			t.Errorf("route header %q, want %q", rec.Route, c.route)
		}
		if got := (sent{rec.Vote.GetName(), rec.Vote.GetAlbum(), rec.Vote.GetYear(), rec.Vote.GetRank()}); got != w {
			t.Errorf("record %s = %+v, want %+v", id, got, w)
		}
		if at := rec.AcceptedAt(); at.Before(before) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("accepted_at %v outside the test's window", at)
		}
		if h := header(m, queue.HeaderAcceptedAt); h != strconv.FormatInt(rec.Vote.GetAcceptedAtUnixMs(), 10) {
			t.Errorf("header %s = %q, value says %d", queue.HeaderAcceptedAt, h, rec.Vote.GetAcceptedAtUnixMs())
		}
		if h := header(m, queue.HeaderType); h != queue.ContentType {
			t.Errorf("header %s = %q", queue.HeaderType, h)
		}
		if p, seen := partitionOf[id]; seen && p != m.Partition {
			t.Errorf("vote %s in partitions %d and %d", id, p, m.Partition)
		}
		partitionOf[id] = m.Partition
	}
	for id := range want {
		wantN := 1
		if id == key {
			wantN = 2 // sent twice: the consumer dedups by id
		}
		if found[id] != wantN {
			t.Errorf("vote %s: %d records in Kafka, want %d", id, found[id], wantN)
		}
	}
}

// readTopic reads every record of every partition of topic, up to each partition's end.
func readTopic(ctx context.Context, t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatalf("dial kafka: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		leader, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatalf("dial leader of %s/%d: %v", topic, p.ID, err)
		}
		first, last, err := leader.ReadOffsets()
		if err != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, p.ID, err)
		}
		if _, err := leader.Seek(first, kafka.SeekAbsolute); err != nil {
			t.Fatal(err)
		}
		for next := first; next < last; {
			if deadline, ok := ctx.Deadline(); ok {
				_ = leader.SetReadDeadline(deadline)
			}
			batch := leader.ReadBatch(1, 10<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				out = append(out, m)
				next = m.Offset + 1
			}
			if err := batch.Close(); err != nil {
				t.Fatalf("read %s/%d at %d: %v", topic, p.ID, next, err)
			}
		}
		leader.Close()
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
