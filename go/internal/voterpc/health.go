package voterpc

import (
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tally-voting/tally/go/internal/readiness"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// ReportHealth makes the standard health service follow checks, for the whole server ("") and
// for tally.vote.v1.VoteService alike: SERVING while ready, NOT_SERVING otherwise (from the start,
// until every check has passed once).
func ReportHealth(hs *health.Server, checks *readiness.Checks) {
	checks.Follow(func(ready bool) {
		s := healthpb.HealthCheckResponse_NOT_SERVING
		if ready {
			s = healthpb.HealthCheckResponse_SERVING
		}
		hs.SetServingStatus("", s)
		hs.SetServingStatus(votev1.VoteService_ServiceDesc.ServiceName, s)
	})
}
