// Package voterpc is the gRPC side of the gRPC route: the VoteService server that validates a
// vote, gives it an id and writes it to Kafka, the errors it answers with (InvalidArgument naming
// the field, Unavailable when Kafka fails), its per-call log line and metrics, and the standard
// grpc.health.v1 service following the process's readiness (go/internal/readiness).
package voterpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tally-voting/tally/go/internal/badrequest"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/reqlog"
	"github.com/tally-voting/tally/go/internal/vote"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// MessageWriter writes records and returns once they are acknowledged: a *kafka.Writer.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Options of a Server. Zero values take the defaults noted.
type Options struct {
	// WriteTimeout bounds one vote's write to Kafka, retries included (default 5 s).
	WriteTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics, from NewMetrics; nil counts nothing.
	Metrics *Metrics
	// Ballot, when set, refuses well-formed votes that are not on it (nil: no ballot).
	Ballot *vote.Ballot
}

// Server implements tally.vote.v1.VoteService.
type Server struct {
	votev1.UnimplementedVoteServiceServer
	kafka   MessageWriter
	timeout time.Duration
	now     func() time.Time
	metrics *Metrics
	ballot  *vote.Ballot
}

var _ votev1.VoteServiceServer = (*Server)(nil)

// NewServer returns a VoteService that writes every accepted vote through w (shared by all calls,
// so concurrent calls share Kafka batches).
func NewServer(w MessageWriter, o Options) *Server {
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{kafka: w, timeout: o.WriteTimeout, now: o.Now, metrics: o.Metrics, ballot: o.Ballot}
}

// CastVote validates the vote with the same rules as the HTTP front (go/internal/vote) and, when
// the server has one, against the ballot (the gRPC route's only ballot check), assigns
// its id (the client's, or a new UUIDv7) and accept time, and returns once Kafka acknowledged it.
func (s *Server) CastVote(ctx context.Context, req *votev1.CastVoteRequest) (*votev1.CastVoteResponse, error) {
	in := req.GetVote()
	if in == nil {
		return nil, badrequest.InvalidArgument(badrequest.FieldVote, "is required")
	}
	now := s.now()
	v, err := vote.Check(vote.Vote{Name: in.GetName(), Album: in.GetAlbum(), Year: in.GetYear(), Rank: in.GetRank()}, now)
	if err == nil {
		err = s.ballot.Check(v)
	}
	if err != nil {
		var fe *vote.FieldError
		if errors.As(err, &fe) {
			return nil, badrequest.InvalidArgument(badrequest.FieldVote+"."+fe.Field, fe.Reason)
		}
		return nil, status.Error(codes.Internal, "vote check failed")
	}
	id := in.GetVoteId()
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "make vote id: %v", err)
		}
		id = u.String()
	} else if err := vote.CheckID(id); err != nil {
		return nil, badrequest.InvalidArgument(badrequest.FieldVoteID, err.Error())
	}
	reqlog.Add(ctx, slog.String("vote_id", id))

	record := &votev1.Vote{
		Name: v.Name, Album: v.Album, Year: v.Year, Rank: v.Rank,
		VoteId: id, AcceptedAtUnixMs: now.UnixMilli(),
	}
	msg, err := queue.Encode(queue.Record{Vote: record, Route: queue.RouteGRPC})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode vote: %v", err)
	}
	if err := s.write(ctx, msg); err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, status.Error(codes.Canceled, "caller went away before Kafka acknowledged the vote")
		}
		s.metrics.kafkaError()
		reqlog.Add(ctx, slog.String("kafka_error", err.Error()))
		return nil, status.Error(codes.Unavailable, "kafka did not acknowledge the vote; retry with the same vote_id")
	}
	return &votev1.CastVoteResponse{VoteId: id, AcceptedAtUnixMs: record.AcceptedAtUnixMs}, nil
}

func (s *Server) write(ctx context.Context, msg kafka.Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.kafka.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("write vote %s to kafka: %w", msg.Key, err)
	}
	return nil
}
