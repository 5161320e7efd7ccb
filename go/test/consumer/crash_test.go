package consumer_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/stack"
)

// Redis comes back from a copy of its append-only directory taken about a second before it was
// SIGKILLed mid-stream (what appendfsync everysec may lose on a crashed node, or a restored
// backup): the consumers notice Redis is behind what they applied, replay from Kafka, and the
// counts end exact.
func TestRedisRestoredFromOlderCopy(t *testing.T) {
	e := start(t)
	first := e.startConsumer(stack.ConsumerName)
	second := e.startConsumer("consumer-2")
	v := newVotes(6)
	produced := e.produceStream(v, 60, 200, 150*time.Millisecond)
	e.waitTotal(3000)

	dir := filepath.Join(e.cfg.DataDir, stack.RedisName)
	snapshot := t.TempDir()
	if err := copyDir(dir, snapshot); err != nil {
		t.Fatal(err)
	}
	atCopy := e.total()
	time.Sleep(time.Second)
	atKill := e.total()
	if err := e.stack.KillOne(stack.RedisName); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := copyDir(snapshot, dir); err != nil {
		t.Fatal(err)
	}
	if err := e.stack.StartOne(e.ctx, stack.RedisName); err != nil {
		t.Fatal(err)
	}
	t.Logf("copied Redis's directory at %d counted votes, killed it at %d, restarted it with %d",
		atCopy, atKill, e.total())
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	e.waitCommitted()
	e.waitExactTotal(len(v.first))
	e.checkExact(v)
	rewinds := first.metric("tally_consumer_rewinds_total") + second.metric("tally_consumer_rewinds_total")
	if rewinds == 0 {
		t.Error("no consumer counted a rewind, yet Redis went back in time")
	}
	t.Logf("%d records, %d votes; %v rewinds", v.records, len(v.first), rewinds)
}

// copyDir copies the regular files under src to dst, keeping the tree.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
