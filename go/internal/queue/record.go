package queue

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/tally-voting/tally/go/internal/vote"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// The Kafka record of a vote, written by both producers and read by the consumer
// (proto/README.md, "The Kafka record"):
//
//	key      the vote id
//	value    tally.vote.v1.Vote, protobuf binary, with vote_id and accepted_at_unix_ms set
//	headers  tally-route: grpc | wasm
//	         tally-accepted-at: accept time, Unix milliseconds in decimal
//	         content-type: ContentType
const (
	HeaderRoute      = "tally-route"
	HeaderAcceptedAt = "tally-accepted-at"
	HeaderType       = "content-type"
	ContentType      = "application/x-protobuf; messageType=tally.vote.v1.Vote"
)

// Routes a vote can arrive by.
const (
	RouteGRPC = "grpc"
	RouteWasm = "wasm"
)

// Record is a vote as it travels on the votes topic.
type Record struct {
	Vote  *votev1.Vote
	Route string
}

// Encode turns a record into the Kafka message both producers write.
func Encode(r Record) (kafka.Message, error) {
	if r.Vote.GetVoteId() == "" {
		return kafka.Message{}, errors.New("encode vote: no vote id")
	}
	if r.Vote.GetAcceptedAtUnixMs() == 0 {
		return kafka.Message{}, errors.New("encode vote: no accept time")
	}
	if r.Route != RouteGRPC && r.Route != RouteWasm {
		return kafka.Message{}, fmt.Errorf("encode vote: unknown route %q", r.Route)
	}
	value, err := proto.Marshal(r.Vote)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode vote: %w", err)
	}
	return kafka.Message{
		Key:   []byte(r.Vote.GetVoteId()),
		Value: value,
		Headers: []kafka.Header{
			{Key: HeaderRoute, Value: []byte(r.Route)},
			{Key: HeaderAcceptedAt, Value: []byte(strconv.FormatInt(r.Vote.GetAcceptedAtUnixMs(), 10))},
			{Key: HeaderType, Value: []byte(ContentType)},
		},
	}, nil
}

// DecodeError says why a message on the votes topic is not a vote; the consumer sends such
// messages to the dead-letter topic with this reason.
type DecodeError struct{ Reason string }

func (e *DecodeError) Error() string { return "not a vote record: " + e.Reason }

// Decode reads a vote record, rejecting anything a producer would not have written.
func Decode(m kafka.Message) (Record, error) {
	var v votev1.Vote
	if err := proto.Unmarshal(m.Value, &v); err != nil {
		return Record{}, &DecodeError{Reason: "value is not a tally.vote.v1.Vote: " + err.Error()}
	}
	switch {
	case v.GetVoteId() == "":
		return Record{}, &DecodeError{Reason: "vote has no vote_id"}
	case string(m.Key) != v.GetVoteId():
		return Record{}, &DecodeError{Reason: fmt.Sprintf("key %q differs from vote_id %q", m.Key, v.GetVoteId())}
	case v.GetName() == "" || v.GetAlbum() == "":
		return Record{}, &DecodeError{Reason: "vote has no name or album"}
	case v.GetAcceptedAtUnixMs() <= 0:
		return Record{}, &DecodeError{Reason: "vote has no accepted_at_unix_ms"}
	}
	if err := vote.CheckID(v.GetVoteId()); err != nil {
		return Record{}, &DecodeError{Reason: "vote_id " + err.Error()}
	}
	// The producers' rules, with the accept time as "now", so a replay decides the same way.
	checked := vote.Vote{Name: v.GetName(), Album: v.GetAlbum(), Year: v.GetYear(), Rank: v.GetRank()}
	if _, err := vote.Check(checked, time.UnixMilli(v.GetAcceptedAtUnixMs())); err != nil {
		return Record{}, &DecodeError{Reason: "invalid vote: " + err.Error()}
	}
	route := header(m, HeaderRoute)
	if route != RouteGRPC && route != RouteWasm {
		return Record{}, &DecodeError{Reason: fmt.Sprintf("header %s is %q, want %q or %q", HeaderRoute, route, RouteGRPC, RouteWasm)}
	}
	return Record{Vote: &v, Route: route}, nil
}

// AcceptedAt is the vote's accept time.
func (r Record) AcceptedAt() time.Time { return time.UnixMilli(r.Vote.GetAcceptedAtUnixMs()).UTC() }

// AcceptedAtHeader is the accept time in m's header, without decoding the vote (for timing a
// record before its batch is processed); ok is false when the header is missing or malformed.
func AcceptedAtHeader(m kafka.Message) (at time.Time, ok bool) {
	ms, err := strconv.ParseInt(header(m, HeaderAcceptedAt), 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
