// Package grpcroute_test runs the gRPC route's real processes (Kafka, grpc-producer, grpc-front,
// supervised by go/internal/stack) through what the HTTP contract suite cannot do from outside:
// SIGTERM with requests in flight, and Kafka going away and coming back.
package grpcroute_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/stack/stacktest"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// One stack for the whole route; the subtests run in order, Kafka's outage last.
func TestGRPCRoute(t *testing.T) {
	cfg := stacktest.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := stacktest.Start(ctx, t, cfg, stack.GRPCFrontName)

	t.Run("front finishes requests in flight on SIGTERM", func(t *testing.T) { frontSIGTERM(ctx, t, cfg) })
	t.Run("producer finishes calls in flight on SIGTERM", func(t *testing.T) { producerSIGTERM(ctx, t, cfg) })
	t.Run("Kafka down gives 503 with Retry-After", func(t *testing.T) { kafkaDown(ctx, t, cfg, s) })
	select {
	case err := <-s.Exited():
		t.Errorf("a process of the stack died: %v", err)
	default:
	}
}

// process is one of our programs started by the test itself, so it can signal it and see how it exits.
type process struct {
	cmd  *exec.Cmd
	logs stacktest.LogBuffer
	done chan struct{}
	err  error
}

func startProcess(t *testing.T, program string, env ...string) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(program)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", program, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s logs:\n%s", filepath.Base(program), p.logs.String())
		}
	})
	return p
}

// terminate sends SIGTERM and waits for the exit.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, time.Now())
}

// waitExit fails unless the process exits with status 0 within the contract's 10 s of SIGTERM.
func (p *process) waitExit(t *testing.T, signalled time.Time) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Until(signalled.Add(10 * time.Second))):
		t.Fatalf("still running 10 s after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", p.err)
	}
	t.Logf("exited 0, %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
}

// freeAddr is a port as the stack picks them: below the ephemeral range, so that polling it before
// the server binds cannot end in a self-connected socket holding the port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := stack.FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(ports.GRPCFront))
}

func eventually(ctx context.Context, t *testing.T, within time.Duration, what string, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const validVote = `{"name":"Alux Nahual","album":"Alux Nahual","year":1981,"rank":1}`

// A request whose body is still arriving when SIGTERM comes is answered 202; new connections are
// refused from then on; the front exits 0.
func frontSIGTERM(ctx context.Context, t *testing.T, cfg stack.Config) {
	addr := freeAddr(t)
	front := startProcess(t, cfg.GRPCFront, "HTTP_ADDR="+addr, "PRODUCER_GRPC_TARGET="+cfg.GRPCProducerAddr())
	eventually(ctx, t, 30*time.Second, "front ready", func() error { return stack.HTTPOK(ctx, "http://"+addr+"/readyz") })

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := len(validVote) / 2
	fmt.Fprintf(conn, "POST /votes HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nIdempotency-Key: in-flight-at-sigterm\r\nContent-Length: %d\r\n\r\n%s",
		addr, len(validVote), validVote[:half])
	time.Sleep(300 * time.Millisecond) // the front has the headers: the request is in flight

	signalled := time.Now()
	if err := front.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 5*time.Second, "listener closed after SIGTERM", func() error {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		return fmt.Errorf("still accepting connections")
	})
	if _, err := io.WriteString(conn, validVote[half:]); err != nil {
		t.Fatalf("finish the body: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"in-flight-at-sigterm"`) {
		t.Fatalf("in-flight request: %d %s, want 202 with its id", resp.StatusCode, body)
	}
	front.waitExit(t, signalled)
}

// Calls in flight when SIGTERM comes complete (their votes are in Kafka); later ones are refused
// as Unavailable, never cut or failed otherwise; the producer exits 0.
func producerSIGTERM(ctx context.Context, t *testing.T, cfg stack.Config) {
	addr := freeAddr(t)
	producer := startProcess(t, cfg.GRPCProducer, "GRPC_ADDR="+addr, "HTTP_ADDR="+freeAddr(t), "KAFKA_BROKERS="+cfg.KafkaAddr())
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(ctx, t, 30*time.Second, "producer SERVING", func() error {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("%s", resp.GetStatus())
		}
		return err
	})

	client := votev1.NewVoteServiceClient(conn)
	run := fmt.Sprintf("sigterm-%d", time.Now().UnixNano())
	var mu sync.Mutex
	var okIDs []string
	codesSeen := map[codes.Code]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := client.CastVote(callCtx, &votev1.CastVoteRequest{Vote: &votev1.Vote{
					Name: "Viernes Verde", Album: "P.M.", Year: 2017, Rank: 5, VoteId: fmt.Sprintf("%s-%d-%d", run, w, i),
				}})
				cancel()
				mu.Lock()
				codesSeen[status.Code(err)]++
				if err == nil {
					okIDs = append(okIDs, resp.GetVoteId())
				}
				mu.Unlock()
				if err != nil {
					return // the server is going away
				}
			}
		})
	}
	time.Sleep(time.Second) // calls flowing
	producer.terminate(t)
	close(stop)
	wg.Wait()
	t.Logf("codes: %v", codesSeen)
	for code, n := range codesSeen {
		if code != codes.OK && code != codes.Unavailable {
			t.Errorf("%d calls ended %v: a call in flight was cut", n, code)
		}
	}
	if len(okIDs) == 0 {
		t.Fatal("no call succeeded before SIGTERM")
	}
	// Every acknowledged vote is in Kafka.
	inKafka := map[string]bool{}
	for _, m := range readTopic(ctx, t, cfg.KafkaAddr()) {
		inKafka[string(m.Key)] = true
	}
	for _, id := range okIDs {
		if !inKafka[id] {
			t.Errorf("vote %s was acknowledged but is not in Kafka", id)
		}
	}
}

// With Kafka stopped the front answers 503 with Retry-After (quickly), readiness fails, nothing
// crashes; once Kafka is back, votes are accepted again.
func kafkaDown(ctx context.Context, t *testing.T, cfg stack.Config, s *stack.Stack) {
	url := cfg.GRPCFrontURL()
	post := func(key string) (*http.Response, map[string]string) {
		req, _ := http.NewRequest("POST", url+"/votes", strings.NewReader(validVote))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST /votes: %v (did the front crash?)", err)
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	if resp, body := post("before-outage"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("before the outage: %d %v", resp.StatusCode, body)
	}

	if err := s.StopOne(stack.KafkaName); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		start := time.Now()
		resp, body := post(fmt.Sprintf("during-outage-%d", i))
		took := time.Since(start)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || body["error"] == "" {
			t.Fatalf("Kafka down: %d Retry-After=%q %v, want 503 with Retry-After and an error", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if took > 7*time.Second {
			t.Errorf("503 took %v", took)
		}
		t.Logf("503 in %v", took.Round(time.Millisecond))
	}
	eventually(ctx, t, 10*time.Second, "front /readyz fails while Kafka is down", func() error {
		if stack.HTTPOK(ctx, url+"/readyz") == nil {
			return fmt.Errorf("still ready")
		}
		return nil
	})
	if err := stack.HTTPOK(ctx, url+"/healthz"); err != nil {
		t.Fatalf("/healthz while Kafka is down: %v", err)
	}
	select {
	case err := <-s.Exited():
		t.Fatalf("a process died while Kafka was down: %v", err)
	default:
	}

	if err := s.StartOne(ctx, stack.KafkaName); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 60*time.Second, "votes accepted again after Kafka is back", func() error {
		if resp, body := post("after-outage"); resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("%d %v", resp.StatusCode, body)
		}
		return nil
	})
	eventually(ctx, t, 10*time.Second, "front ready again", func() error { return stack.HTTPOK(ctx, url+"/readyz") })
}

// readTopic reads every record of the votes topic.
func readTopic(ctx context.Context, t *testing.T, broker string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := range queue.VotesPartitions {
		conn, err := kafka.DialLeader(ctx, "tcp", broker, queue.VotesTopic, p)
		if err != nil {
			t.Fatalf("dial leader of partition %d: %v", p, err)
		}
		first, last, err := conn.ReadOffsets()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for next := first; next < last; {
			batch := conn.ReadBatch(1, 10<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				out = append(out, m)
				next = m.Offset + 1
			}
			if err := batch.Close(); err != nil {
				t.Fatalf("read partition %d: %v", p, err)
			}
		}
		conn.Close()
	}
	return out
}
