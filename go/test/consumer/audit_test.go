package consumer_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/stack"
)

// audit runs go/cmd/audit against the test's servers and returns its exit code and output.
func (e *env) audit(args ...string) (int, string) {
	e.t.Helper()
	cmd := exec.CommandContext(e.ctx, filepath.Join(os.Getenv("TEST_SRCDIR"), "_main", os.Getenv("AUDIT")), args...)
	cmd.Env = append(os.Environ(), e.cfg.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		e.t.Fatalf("run the audit: %v", err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// The audit agrees with exact counts, even while votes are being counted (it recounts only the
// logs at or below the watermarks it read with the counts); it finds differences planted in
// Redis and exits 1; -repair rewrites the counts from the logs, and the audit then finds none.
func TestAuditFindsAndRepairsPlantedDifferences(t *testing.T) {
	e := start(t)
	e.startConsumer(stack.ConsumerName)
	v := newVotes(9)
	produced := e.produceStream(v, 20, 200, 100*time.Millisecond)
	e.waitTotal(1000)
	if code, out := e.audit(); code != 0 {
		t.Fatalf("audit while votes are counted: exit %d, want 0\n%s", code, out)
	}
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	e.waitCommitted()
	e.waitExactTotal(len(v.first))

	band := bands[0]
	e.rdb.HIncrBy(e.ctx, counts.BandKey, band, 7)
	e.rdb.Incr(e.ctx, counts.TotalKey)
	e.rdb.HDel(e.ctx, counts.AlbumKey, counts.AlbumField(band, albums[band][0]))
	e.rdb.HSet(e.ctx, counts.BandAlbumsKey("Nobody"), "Nothing", 3)
	code, out := e.audit()
	if code != 1 {
		t.Fatalf("audit of planted differences: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{`"count":"total"`, `"field":"` + band + `"`, `"key":"` + counts.BandAlbumsKey("Nobody") + `"`,
		`"field":"` + counts.AlbumField(band, albums[band][0]) + `"`, `"differences":4`} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit's output lacks %s:\n%s", want, out)
		}
	}
	if code, out := e.audit("-repair"); code != 0 || !strings.Contains(out, "repaired") {
		t.Fatalf("audit -repair: exit %d, want 0 and a repair\n%s", code, out)
	}
	if code, out := e.audit(); code != 0 || !strings.Contains(out, `"differences":0`) {
		t.Fatalf("audit after the repair: exit %d, want 0 and no differences\n%s", code, out)
	}
	e.checkExact(v)
}
