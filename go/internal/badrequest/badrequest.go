// Package badrequest is the gRPC form of a refused vote: status InvalidArgument with a
// google.rpc.BadRequest detail naming the field. The gRPC producer (voterpc) makes these errors
// and the HTTP front (front) reads them back into a 400 naming the same field; this package holds
// both sides so that neither imports the other's dependencies.
package badrequest

import (
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Field paths in InvalidArgument details, relative to CastVoteRequest: "vote", "vote.name",
// "vote.album", "vote.year", "vote.rank", "vote.vote_id".
const (
	FieldVote   = "vote"
	FieldVoteID = "vote.vote_id"
)

// InvalidArgument is the error for a bad request: status InvalidArgument with a
// google.rpc.BadRequest detail holding one field violation.
func InvalidArgument(field, reason string) error {
	st := status.New(codes.InvalidArgument, field+": "+reason)
	withDetails, err := st.WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: reason}},
	})
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

// Violation returns the first field violation of an InvalidArgument error, if it has one.
func Violation(err error) (field, reason string, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus || st.Code() != codes.InvalidArgument {
		return "", "", false
	}
	for _, d := range st.Details() {
		if br, isBR := d.(*errdetails.BadRequest); isBR && len(br.GetFieldViolations()) > 0 {
			v := br.GetFieldViolations()[0]
			return v.GetField(), v.GetDescription(), true
		}
	}
	return "", "", false
}

// VoteField turns a field path under "vote." into the vote field's name ("vote.year" → "year").
func VoteField(path string) (string, bool) {
	return strings.CutPrefix(path, FieldVote+".")
}
