package queue

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/test/runfile"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

func sampleVote() *votev1.Vote {
	return &votev1.Vote{
		Name: "Bohemia Suburbana", Album: "Sombras en el Jardín", Year: 1993, Rank: 3,
		VoteId: "0190f1e2-7c3a-7b2e-9d4f-1a2b3c4d5e6f", AcceptedAtUnixMs: 1795460000123,
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m, err := Encode(Record{Vote: sampleVote(), Route: RouteWasm})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if string(m.Key) != sampleVote().GetVoteId() {
		t.Fatalf("key = %q, want the vote id", m.Key)
	}
	if got := header(m, HeaderAcceptedAt); got != "1795460000123" {
		t.Fatalf("%s = %q", HeaderAcceptedAt, got)
	}
	r, err := Decode(m)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if r.Route != RouteWasm || r.Vote.GetName() != "Bohemia Suburbana" || r.Vote.GetYear() != 1993 ||
		r.AcceptedAt().UnixMilli() != 1795460000123 {
		t.Fatalf("round trip = %+v", r)
	}
}

func TestAcceptedAtHeader(t *testing.T) {
	m, err := Encode(Record{Vote: sampleVote(), Route: RouteGRPC})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if at, ok := AcceptedAtHeader(m); !ok || at.UnixMilli() != 1795460000123 {
		t.Errorf("AcceptedAtHeader = %v, %v; want 1795460000123 ms", at, ok)
	}
	for _, v := range []string{"", "soon", "0", "-5"} {
		bad := kafka.Message{Headers: []kafka.Header{{Key: HeaderAcceptedAt, Value: []byte(v)}}}
		if at, ok := AcceptedAtHeader(bad); ok {
			t.Errorf("AcceptedAtHeader(%q) = %v, true; want false", v, at)
		}
	}
}

func TestEncodeRejectsIncompleteRecords(t *testing.T) {
	noID := sampleVote()
	noID.VoteId = ""
	noTime := sampleVote()
	noTime.AcceptedAtUnixMs = 0
	for name, r := range map[string]Record{
		"no id":   {Vote: noID, Route: RouteGRPC},
		"no time": {Vote: noTime, Route: RouteGRPC},
		"route":   {Vote: sampleVote(), Route: "carrier-pigeon"},
	} {
		if _, err := Encode(r); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
}

func TestDecodeRejectsPoison(t *testing.T) {
	good, err := Encode(Record{Vote: sampleVote(), Route: RouteGRPC})
	if err != nil {
		t.Fatal(err)
	}
	otherKey := good
	otherKey.Key = []byte("someone-else")
	noRoute := good
	noRoute.Headers = nil
	badRank := sampleVote()
	badRank.Rank = 11
	outOfRange, err := Encode(Record{Vote: badRank, Route: RouteGRPC})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]kafka.Message{
		"garbage":   {Key: good.Key, Value: []byte("\xff\xff not protobuf"), Headers: good.Headers},
		"json":      {Key: good.Key, Value: []byte(`{"name":"a"}`), Headers: good.Headers},
		"empty":     {Key: good.Key, Headers: good.Headers},
		"other key": otherKey,
		"no route":  noRoute,
		"rank 11":   outOfRange,
	} {
		_, err := Decode(m)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: Decode error = %v, want a DecodeError", name, err)
		}
	}
}

func TestDeadLetterKeepsTheRecordAndSaysWhy(t *testing.T) {
	m := kafka.Message{Topic: VotesTopic, Partition: 4, Offset: 1234, Key: []byte("k"), Value: []byte("junk"),
		Headers: []kafka.Header{{Key: HeaderRoute, Value: []byte("grpc")}}}
	d := DeadLetter(m, "value is not a vote")
	if string(d.Key) != "k" || string(d.Value) != "junk" || d.Topic != "" {
		t.Fatalf("dead letter = %+v", d)
	}
	for key, want := range map[string]string{
		HeaderRoute: "grpc", HeaderDeadReason: "value is not a vote", HeaderDeadTopic: VotesTopic,
		HeaderDeadPartition: "4", HeaderDeadOffset: "1234",
	} {
		if got := Header(d, key); got != want {
			t.Errorf("header %s = %q, want %q", key, got, want)
		}
	}
	if len(m.Headers) != 1 {
		t.Fatalf("DeadLetter changed the original's headers: %v", m.Headers)
	}
}

// The fixture both producers' tests read: the Wasm producer must write these exact bytes, to
// the same partition, so this test pins what the Go side writes.
func TestEncodeMatchesSharedFixture(t *testing.T) {
	data, err := os.ReadFile(runfile.Repo(t, "proto/testdata/vote_record.json"))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var f struct {
		Vote struct {
			Name             string `json:"name"`
			Album            string `json:"album"`
			Year             int32  `json:"year"`
			Rank             int32  `json:"rank"`
			VoteID           string `json:"vote_id"`
			AcceptedAtUnixMs int64  `json:"accepted_at_unix_ms"`
		} `json:"vote"`
		Route   string `json:"route"`
		KeyHex  string `json:"key_hex"`
		Value   string `json:"value_hex"`
		Headers []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"headers"`
		Partitions int `json:"partitions"`
		Partition  int `json:"partition"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
	m, err := Encode(Record{Route: f.Route, Vote: &votev1.Vote{
		Name: f.Vote.Name, Album: f.Vote.Album, Year: f.Vote.Year, Rank: f.Vote.Rank,
		VoteId: f.Vote.VoteID, AcceptedAtUnixMs: f.Vote.AcceptedAtUnixMs,
	}})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if got := hex.EncodeToString(m.Key); got != f.KeyHex {
		t.Errorf("key = %s, fixture has %s", got, f.KeyHex)
	}
	if got := hex.EncodeToString(m.Value); got != f.Value {
		t.Errorf("value = %s, fixture has %s", got, f.Value)
	}
	if len(m.Headers) != len(f.Headers) {
		t.Fatalf("%d headers, fixture has %d", len(m.Headers), len(f.Headers))
	}
	for i, h := range f.Headers {
		if m.Headers[i].Key != h.Key || string(m.Headers[i].Value) != h.Value {
			t.Errorf("header %d = %s: %s, fixture has %s: %s", i, m.Headers[i].Key, m.Headers[i].Value, h.Key, h.Value)
		}
	}
	partitions := make([]int, f.Partitions)
	for i := range partitions {
		partitions[i] = i
	}
	if got := (&kafka.Murmur2Balancer{}).Balance(m, partitions...); got != f.Partition {
		t.Errorf("partition = %d, fixture has %d", got, f.Partition)
	}
}
