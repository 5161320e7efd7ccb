package badrequest

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// What the gRPC producer makes, the HTTP front reads back: the field and the reason.
func TestViolationReadsWhatInvalidArgumentWrites(t *testing.T) {
	err := InvalidArgument(FieldVote+".year", "must be from 1900 to 2027")
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("code %v, want InvalidArgument", status.Code(err))
	}
	field, reason, ok := Violation(err)
	if !ok || field != "vote.year" || reason != "must be from 1900 to 2027" {
		t.Fatalf("Violation = %q, %q, %v", field, reason, ok)
	}
	if name, ok := VoteField(field); !ok || name != "year" {
		t.Fatalf("VoteField(%q) = %q, %v", field, name, ok)
	}
	if _, ok := VoteField(FieldVote); ok {
		t.Fatal("the vote itself is not one of its fields")
	}
	for _, other := range []error{errors.New("plain"), status.Error(codes.Unavailable, "kafka"), status.Error(codes.InvalidArgument, "no detail")} {
		if _, _, ok := Violation(other); ok {
			t.Errorf("Violation(%v) found a field", other)
		}
	}
}
