package voterpc

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// Readiness tracks whether Kafka is reachable and reports it through the standard health
// service, for the whole server ("") and for tally.vote.v1.VoteService alike, and to /readyz.
type Readiness struct {
	health *health.Server
	mu     sync.Mutex
	err    error
}

// NewReadiness starts not ready: nothing is SERVING until the first check passes.
func NewReadiness(hs *health.Server) *Readiness {
	r := &Readiness{health: hs, err: errors.New("kafka not checked yet")}
	r.publish(healthpb.HealthCheckResponse_NOT_SERVING)
	return r
}

// Err is the last check's outcome: nil when ready.
func (r *Readiness) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Watch runs check now and then every interval until ctx is done, logging each change.
func (r *Readiness) Watch(ctx context.Context, logger *slog.Logger, interval time.Duration, check func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		probe, cancel := context.WithTimeout(ctx, max(interval, time.Second))
		err := check(probe)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.set(ctx, logger, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Readiness) set(ctx context.Context, logger *slog.Logger, err error) {
	r.mu.Lock()
	was := r.err
	r.err = err
	r.mu.Unlock()
	switch {
	case err == nil && was != nil:
		logger.InfoContext(ctx, "kafka reachable: serving")
		r.publish(healthpb.HealthCheckResponse_SERVING)
	case err != nil && (was == nil || was.Error() != err.Error()):
		logger.WarnContext(ctx, "kafka unreachable: not serving", "error", err.Error())
		r.publish(healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

func (r *Readiness) publish(s healthpb.HealthCheckResponse_ServingStatus) {
	r.health.SetServingStatus("", s)
	r.health.SetServingStatus(votev1.VoteService_ServiceDesc.ServiceName, s)
}
