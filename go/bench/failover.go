package main

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/load"
	"github.com/tally-voting/tally/go/internal/queue"
)

// failoverReport is one Kafka leader lost under steady load on every route: what each route
// answered from the leader's end until it accepted votes of those partitions again.
type failoverReport struct {
	// Signal is how the leader ended: KILL (a crash) or TERM (a controlled shutdown).
	Signal string `json:"signal"`
	// Node is the broker that led Partitions, the ones whose votes had to find a new leader;
	// Nodes how many brokers were signalled at once (2 of 3: min.insync.replicas cannot be met,
	// so no route may accept anything again).
	Node       int   `json:"node"`
	Nodes      int   `json:"nodes"`
	Partitions []int `json:"partitions"`
	// RatePerRoute is the votes per second offered to each route throughout.
	RatePerRoute float64         `json:"rate_per_route"`
	Routes       []failoverRoute `json:"routes"`
	LoadAvg      string          `json:"loadavg_at_signal"`
}

type failoverRoute struct {
	Name string `json:"name"`
	// RecoveredMs is from the signal to the first 202 for a vote of the lost leader's partitions
	// sent after it; -1 when none came within the wait.
	RecoveredMs float64 `json:"recovered_ms"`
	// Refused counts the votes answered otherwise than 202 from the signal until the route had
	// recovered, by HTTP status (0: no answer); RefusedAfter those refused later in the run.
	Refused      map[int]int `json:"refused"`
	RefusedAfter int         `json:"refused_after_recovery"`
	// RefusedAnswerMs is how long a refused vote waited for its answer: median and most.
	RefusedAnswerP50Ms float64 `json:"refused_answer_p50_ms"`
	RefusedAnswerMaxMs float64 `json:"refused_answer_max_ms"`
	// Latency of accepted votes (from when each was due): Before (due in the last
	// failoverBefore before the signal), During (due from the signal to the recovery), After
	// (due in the rest of the run).
	Before load.Latency `json:"before"`
	During load.Latency `json:"during"`
	After  load.Latency `json:"after"`
	// AcceptedDuring counts the votes due during the change that were accepted (any partition).
	AcceptedDuring int `json:"accepted_during"`
}

// runFailover loads every route steadily, ends the leader of partition 0 with cfg.failoverSignal
// once the warm-up is over, and measures each route until it accepts that leader's partitions
// again and for cfg.failoverAfter more. The stack must run Kafka as a cluster
// (//go/bench:failover): the node does not come back, so each run measures one loss.
func runFailover(ctx context.Context, cfg *config, out string) (*failoverReport, error) {
	if len(cfg.kafka) < 3 {
		return nil, fmt.Errorf("KAFKA_BROKERS names %d nodes: run under a three-node stack (tools/bazel run //go/bench:failover)", len(cfg.kafka))
	}
	sig := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM}[cfg.failoverSignal]
	runs := map[string]*load.Steady{}
	for _, r := range cfg.routes {
		h := load.NewHTTP(r.URL, cfg.workers)
		defer h.Close()
		runs[r.Name] = load.StartSteady(ctx, h, cfg.failoverRate, cfg.workers, "failover-"+r.Name)
	}
	stopAll := func() map[string][]load.Answer {
		for _, s := range runs {
			s.StopSending()
		}
		out := map[string][]load.Answer{}
		for name, s := range runs {
			out[name] = s.Stop()
		}
		return out
	}
	log.Printf("failover: %.0f votes/s on each of %d routes, %s of warm-up", cfg.failoverRate, len(runs), cfg.failoverWarmup)
	select {
	case <-time.After(cfg.failoverWarmup):
	case <-ctx.Done():
		stopAll()
		return nil, ctx.Err()
	}

	node, port, led, err := leaderOfPartition0(ctx, cfg.kafka)
	if err != nil {
		stopAll()
		return nil, err
	}
	// The leader, and with -failover-nodes 2 the next broker of KAFKA_BROKERS too.
	ports := []int{port}
	for _, addr := range cfg.kafka {
		_, p, _ := strings.Cut(addr, ":")
		if n, err := strconv.Atoi(p); err == nil && len(ports) < cfg.failoverNodes && n != port {
			ports = append(ports, n)
		}
	}
	var victims []proc
	for _, p := range ports {
		victim, ok := portOwner(stackProcesses(nil), p)
		if !ok {
			stopAll()
			return nil, fmt.Errorf("no process of the stack listens on broker port %d", p)
		}
		victims = append(victims, victim)
	}
	rep := &failoverReport{Signal: cfg.failoverSignal, Node: node, Nodes: len(victims), Partitions: led, RatePerRoute: cfg.failoverRate, LoadAvg: loadAvg()}
	log.Printf("failover: SIG%s to %d broker(s) on ports %v; broker %d led partitions %v", cfg.failoverSignal, len(victims), ports, node, led)
	signalled := time.Now()
	for _, v := range victims {
		if err := syscall.Kill(v.PID, sig); err != nil {
			stopAll()
			return nil, fmt.Errorf("signal broker pid %d: %w", v.PID, err)
		}
	}

	recovered := map[string]time.Time{}
	deadline := time.Now().Add(cfg.failoverWait)
	for len(recovered) < len(runs) && time.Now().Before(deadline) && ctx.Err() == nil {
		for name, s := range runs {
			if _, ok := recovered[name]; ok {
				continue
			}
			for _, a := range s.Answers() {
				if a.Accepted() && a.Sent.After(signalled) && slices.Contains(led, partitionOf(a.Key)) {
					recovered[name] = a.Answered
					log.Printf("failover: %s accepts partitions %v again after %.0f ms", name, led, a.Answered.Sub(signalled).Seconds()*1000)
					break
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(cfg.failoverAfter)
	answers := stopAll()

	for _, r := range cfg.routes {
		rep.Routes = append(rep.Routes, failoverFigures(r.Name, answers[r.Name], signalled, recovered[r.Name]))
	}
	return rep, writeAnswers(filepath.Join(out, "answers.csv.gz"), answers, signalled)
}

// writeAnswers keeps every vote of the run, gzipped CSV, times in ms from the signal: the raw
// data behind the figures, to check them or to compute others.
func writeAnswers(path string, answers map[string][]load.Answer, signalled time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	w := csv.NewWriter(zw)
	rel := func(t time.Time) string { return strconv.FormatFloat(ms(t.Sub(signalled)), 'f', 1, 64) }
	_ = w.Write([]string{"route", "vote_id", "partition", "due_ms", "sent_ms", "answered_ms", "status", "error"})
	for _, route := range slices.Sorted(maps.Keys(answers)) {
		for _, a := range answers[route] {
			errText := ""
			if a.Err != nil && a.Status == 0 {
				errText = a.Err.Error()
			}
			_ = w.Write([]string{route, a.Key, strconv.Itoa(partitionOf(a.Key)), rel(a.Due), rel(a.Sent), rel(a.Answered),
				strconv.Itoa(a.Status), errText})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("answers: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("answers: %w", err)
	}
	return f.Close()
}

// failoverBefore is the stretch before the signal whose latency is the baseline: the end of the
// warm-up, once connections and JITs have settled.
const failoverBefore = 5 * time.Second

// failoverFigures sums up one route's answers around a leader's loss at signalled; recovered is
// zero when the route never accepted the lost partitions again.
func failoverFigures(name string, answers []load.Answer, signalled, recovered time.Time) failoverRoute {
	fr := failoverRoute{Name: name, RecoveredMs: -1, Refused: map[int]int{}}
	end := recovered
	if recovered.IsZero() {
		end = time.Now()
	} else {
		fr.RecoveredMs = ms(recovered.Sub(signalled))
	}
	var before, during, after, refused load.Histogram
	for _, a := range answers {
		lat := a.Answered.Sub(a.Due)
		if !a.Accepted() {
			switch {
			case a.Answered.Before(signalled):
			case a.Answered.Before(end):
				fr.Refused[a.Status]++
				refused.Record(a.Answered.Sub(a.Sent))
			default:
				fr.RefusedAfter++
			}
			continue
		}
		switch {
		case a.Due.Before(signalled.Add(-failoverBefore)):
		case a.Due.Before(signalled):
			before.Record(lat)
		case a.Due.Before(end):
			during.Record(lat)
			fr.AcceptedDuring++
		default:
			after.Record(lat)
		}
	}
	fr.Before, fr.During, fr.After = before.Summary(), during.Summary(), after.Summary()
	if refused.Count() > 0 {
		fr.RefusedAnswerP50Ms = ms(refused.Quantile(0.5))
		fr.RefusedAnswerMaxMs = ms(refused.Max())
	}
	return fr
}

// leaderOfPartition0 asks a live broker who leads partition 0 of topic votes, on which port,
// and which partitions that broker leads.
func leaderOfPartition0(ctx context.Context, brokers []string) (node, port int, led []int, err error) {
	for _, addr := range brokers {
		conn, derr := kafka.DialContext(ctx, "tcp", addr)
		if derr != nil {
			err = derr
			continue
		}
		parts, rerr := conn.ReadPartitions(queue.VotesTopic)
		conn.Close()
		if rerr != nil {
			err = rerr
			continue
		}
		for _, p := range parts {
			if p.ID == 0 {
				node, port = p.Leader.ID, p.Leader.Port
			}
		}
		for _, p := range parts {
			if p.Leader.ID == node {
				led = append(led, p.ID)
			}
		}
		slices.Sort(led)
		return node, port, led, nil
	}
	return 0, 0, nil, fmt.Errorf("no broker answered: %w", err)
}

// partitionOf is the partition both producers write a vote id to (murmur2, Kafka's default).
func partitionOf(key string) int {
	parts := make([]int, queue.VotesPartitions)
	for i := range parts {
		parts[i] = i
	}
	return kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte(key)}, parts...)
}

func failoverMarkdown(f *failoverReport, p func(string, ...any)) {
	p("\n## Failover\n\n")
	p("SIG%s to %d of 3 Kafka brokers at once (replication 3, min.insync.replicas 2), among them broker %d, leader of partitions %v of `votes`, under %.0f votes/s on each route; load average %s at the signal. Recovered: from the signal to the first 202 for a vote of those partitions sent after it. Refused: answers other than 202 from the signal until the route recovered, by HTTP status, and how long those votes waited for them. Latency of accepted votes from when each was due (ms): before = due in the 5 s before the signal, during = due from the signal to the recovery, after = the rest of the run. Every vote is in answers.csv.gz.\n\n",
		f.Signal, f.Nodes, f.Node, f.Partitions, f.RatePerRoute, f.LoadAvg)
	p("| route | recovered ms | refused | refused: answer p50 / max ms | p99 before | p99 during | max during | p99 after |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|\n")
	for _, r := range f.Routes {
		p("| %s | %.0f | %s | %.0f / %.0f | %.1f | %.1f | %.1f | %.1f |\n", r.Name, r.RecoveredMs, statuses(r.Refused),
			r.RefusedAnswerP50Ms, r.RefusedAnswerMaxMs, r.Before.P99, r.During.P99, r.During.Max, r.After.P99)
	}
}

func failoverSummary(f *failoverReport, w io.Writer) {
	for _, r := range f.Routes {
		fmt.Fprintf(w, "failover %-5s SIG%s %d broker(s): 202 again after %.0f ms, refused %s (answered in p50 %.0f ms, max %.0f), p99 during %.1f ms (before %.1f)\n",
			r.Name, f.Signal, f.Nodes, r.RecoveredMs, statuses(r.Refused), r.RefusedAnswerP50Ms, r.RefusedAnswerMaxMs, r.During.P99, r.Before.P99)
	}
}

// statuses writes refused votes by status: "503: 120" (0 is "no answer").
func statuses(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(m)) {
		name := fmt.Sprint(code)
		if code == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, m[code]))
	}
	return strings.Join(parts, ", ")
}
