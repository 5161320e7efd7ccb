package realnode_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/audit"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/load"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// rate is the votes per second the test sends to a producer: under the per-client limit the
// producers enforce (RATE_LIMIT_PER_SECOND 5 in k8s/manifests), since every vote comes from the
// test's one address; over it they answer 429, as they should.
const rate = 4

// namespaces are every namespace the deployment's pods run in.
var namespaces = []string{"kube-system", "strimzi", "tally-kafka", "tally-data", "tally"}

// fitOneNode writes r's manifests with every CPU request divided by cpuShare, and returns them:
// the deployment asks for 2.1 cores at rest (k8s/manifests: Kafka 0.5, MongoDB's server 0.25, two
// consumers, two producers of each route, Redis, plus Strimzi's operator and CoreDNS), more than
// this 2-core machine's node offers, so as requested some pods could never be scheduled. Limits,
// memory and everything else stay as rendered. The log says so; nothing else is changed.
func (e *env) fitOneNode(r rendered) rendered {
	e.t.Helper()
	data, err := os.ReadFile(r.manifests)
	if err != nil {
		e.t.Fatal(err)
	}
	const cpuShare = 4
	request := regexp.MustCompile(`requests: \{cpu: "?([0-9]+)(m?)"?`)
	changed := 0
	out := request.ReplaceAllStringFunc(string(data), func(m string) string {
		g := request.FindStringSubmatch(m)
		milli, _ := strconv.Atoi(g[1])
		if g[2] == "" {
			milli *= 1000
		}
		changed++
		return fmt.Sprintf("requests: {cpu: %dm", max(milli/cpuShare, 1))
	})
	file := e.mkdir("fit") + "/manifests.yaml"
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.logf("divergence from the render: %d CPU requests divided by %d to fit one 2-core node", changed, cpuShare)
	return rendered{file, r.refs}
}

// TestDeployment: from an empty cluster, //k8s:apply with the real-node settings until every pod
// is Running and Ready as a process of this machine; votes at both producers through their
// Services are counted exactly once in Redis and logged once in the database, also across a
// consumer pod's deletion and a producer's rollout under load (which answers no 5xx);
// //k8s:delete then //k8s:apply brings Kafka back with its data; --volumes leaves no volume.
func TestDeployment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	e := start(t, ctx, "")
	// GKE's own kinds (ManagedCertificate, FrontendConfig, BackendConfig): stand-in CRDs, as in
	// the apply test (//go/test/kubernetes); no controller acts on them here.
	if err := e.cluster.InstallCRDs(ctx, os.Getenv("TEST_SRCDIR")+"/"+os.Getenv("GKE_CRDS")); err != nil {
		t.Fatal(err)
	}
	r := e.fitOneNode(realnodeRender(t))
	refs := readRefs(t, r.refs)

	out, err := e.apply("apply", r, "--timeout", "8m")
	e.logf("k8s/apply.sh apply:\n%s", out)
	e.pods(namespaces...)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	e.checkAllReady()
	e.checkLogs()
	e.checkNoGrafanaSecrets()
	checkKafka(t, e, refs)

	d := e.connect()
	var votes []load.Answer
	t.Run("votes at both producers are counted once", func(t *testing.T) {
		for _, route := range []string{"grpc-producer", "wasm-producer"} {
			s := load.StartSteady(ctx, load.NewHTTP(e.serviceURL("tally", route), 4), rate, 4, route)
			time.Sleep(10 * time.Second)
			votes = append(votes, e.stopLoad(t, route, s)...)
		}
		d.checkCounted(t, votes)
		e.runAudit(t)
	})

	t.Run("the consumer's pod deleted under load: still exact", func(t *testing.T) {
		s := load.StartSteady(ctx, load.NewHTTP(e.serviceURL("tally", "wasm-producer"), 4), rate, 4, "consumer-deleted")
		time.Sleep(3 * time.Second)
		pod := strings.Fields(e.kubectl("", "get", "pods", "-n", "tally", "-l", "app=consumer", "-o", "jsonpath={.items[*].metadata.name}"))[0]
		e.kubectl("", "delete", "pod", pod, "-n", "tally", "--wait=true")
		e.kubectl("", "rollout", "status", "deployment/consumer", "-n", "tally", "--timeout=4m")
		time.Sleep(3 * time.Second)
		votes = append(votes, e.stopLoad(t, "wasm-producer", s)...)
		e.pods("tally")
		d.checkCounted(t, votes)
	})

	t.Run("a producer's rollout under load answers no 5xx", func(t *testing.T) {
		old := strings.Fields(e.kubectl("", "get", "pods", "-n", "tally", "-l", "app=grpc-producer", "-o", "name"))
		s := load.StartSteady(ctx, load.NewHTTP(e.serviceURL("tally", "grpc-producer"), 4), rate, 4, "rollout")
		e.kubectl("", "rollout", "restart", "deployment/grpc-producer", "-n", "tally")
		e.kubectl("", "rollout", "status", "deployment/grpc-producer", "-n", "tally", "--timeout=6m")
		// The rollout is done when the new pods are ready; the old ones still drain (preStop):
		// the load goes on until they are gone.
		e.kubectl("", append([]string{"wait", "--for=delete", "-n", "tally", "--timeout=3m"}, old...)...)
		answers := e.stopLoad(t, "grpc-producer", s)
		votes = append(votes, answers...)
		e.pods("tally")
		d.checkCounted(t, votes)
	})

	// The manual's picture of the deployment (docs/manual, section 7), after the pod deletion
	// and the rollout: real pods, their restarts and ages.
	e.kubectlGet("kubectl-get.txt")

	t.Run("delete keeps the volumes and apply brings Kafka back with its data", func(t *testing.T) {
		id := e.kubectl("", "get", "kafka", "tally", "-n", "tally-kafka", "-o", "jsonpath={.status.clusterId}")
		ends := e.topicEnds()
		if out, err := e.apply("delete", r); err != nil {
			t.Fatalf("delete: %v\n%s", err, out)
		}
		out, err := e.apply("apply", r, "--timeout", "8m")
		e.logf("k8s/apply.sh apply after delete:\n%s", out)
		if err != nil {
			e.pods(namespaces...)
			t.Fatalf("apply after delete: %v", err)
		}
		if got := e.kubectl("", "get", "kafka", "tally", "-n", "tally-kafka", "-o", "jsonpath={.status.clusterId}"); got != id {
			t.Errorf("Kafka's cluster id after delete and apply is %s, was %s", got, id)
		}
		if got := e.topicEnds(); !maps.Equal(got, ends) {
			t.Errorf("votes' end offsets after delete and apply are %v, were %v", got, ends)
		}
		e.pods(namespaces...)
		d = e.connect()
		d.checkCounted(t, votes)
		// And the pipeline goes on from there: new votes at both producers are counted once.
		for _, route := range []string{"grpc-producer", "wasm-producer"} {
			s := load.StartSteady(ctx, load.NewHTTP(e.serviceURL("tally", route), 4), rate, 4, route+"-again")
			time.Sleep(5 * time.Second)
			votes = append(votes, e.stopLoad(t, route, s)...)
		}
		d.checkCounted(t, votes)
	})

	t.Run("delete --volumes leaves no volume", func(t *testing.T) {
		if out, err := e.apply("delete", r, "--volumes"); err != nil {
			t.Fatalf("delete --volumes: %v\n%s", err, out)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			pvc := e.kubectl("", "get", "pvc", "-A", "-o", "name")
			pv := e.kubectl("", "get", "pv", "-o", "name")
			dirs, _ := os.ReadDir(e.dir + "/node/volumes")
			if pvc == "" && pv == "" && len(dirs) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after delete --volumes: claims %q, volumes %q, %d volume folders left", pvc, pv, len(dirs))
			}
			time.Sleep(2 * time.Second)
		}
		e.logf("delete --volumes: no claim, volume or volume folder left")
	})
}

// checkAllReady fails the test for any pod of the deployment's namespaces that is neither
// Running with every container ready nor a Job's pod that succeeded.
func (e *env) checkAllReady() {
	e.t.Helper()
	out := e.kubectl("", "get", "pods", "-A", "-o",
		`jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.status.phase} {.status.containerStatuses[*].ready}{"\n"}{end}`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] == "Succeeded" {
			continue
		}
		// The audit CronJob (every 15 minutes, backoffLimit 0) may fire while apply is still
		// starting the stores; its failed run is the Job's record, not a workload down. Its log
		// says why; the test's own audits check the counts.
		if f[1] == "Failed" && strings.HasPrefix(f[0], "tally/audit-") {
			logs, err := e.cluster.Kubectl(e.ctx, "", "logs", "-n", "tally", strings.TrimPrefix(f[0], "tally/"))
			e.logf("the audit CronJob's run %s failed; its log (%v):\n%s", f[0], err, logs)
			continue
		}
		if f[1] != "Running" || len(f) < 3 || strings.Contains(strings.Join(f[2:], " "), "false") {
			e.t.Errorf("pod %s is not Running and Ready: %s", f[0], line)
		}
	}
}

// runAudit runs the audit CronJob's Job now, as deployed (its image, its Redis user, its
// settings), and fails the test unless it completes: it exits 1 on any difference or error. Its
// log, read through the API, is in the test's log.
func (e *env) runAudit(t *testing.T) {
	t.Helper()
	const job = "audit-by-test"
	e.kubectl("", "create", "job", job, "--from=cronjob/audit", "-n", "tally")
	defer e.kubectl("", "delete", "job", job, "-n", "tally", "--wait=true")
	var status string
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(2 * time.Second) {
		status = e.kubectl("", "get", "job", job, "-n", "tally", "-o", "jsonpath={.status.succeeded}/{.status.failed}")
		if strings.Trim(status, "0/") != "" || time.Now().After(deadline) {
			break
		}
	}
	logs, err := e.cluster.Kubectl(e.ctx, "", "logs", "-n", "tally", "job/"+job)
	e.logf("the audit Job (from CronJob audit): succeeded/failed %s; its log (%v):\n%s", status, err, logs)
	if status != "1/" && status != "1/0" {
		t.Errorf("the audit Job did not complete: succeeded/failed %q", status)
	}
}

// checkLogs reads a container's log through the API server, as `kubectl logs` does on a real
// cluster: the API server asks the node's kubelet at its InternalIP for it.
func (e *env) checkLogs() {
	e.t.Helper()
	logs := e.kubectl("", "logs", "-n", "tally", "deployment/consumer", "--tail=-1")
	if !strings.Contains(logs, "consumer starting") {
		e.t.Errorf("kubectl logs deployment/consumer has no \"consumer starting\" line:\n%.2000s", logs)
	}
	e.logf("kubectl logs deployment/consumer: %d bytes through the API server", len(logs))
}

// checkNoGrafanaSecrets: the test settings leave Grafana out (images.grafana: none), so apply
// makes none of its Secrets; Redis's grafana user keeps its password in tally-data.
func (e *env) checkNoGrafanaSecrets() {
	e.t.Helper()
	if out := e.kubectl("", "get", "secrets", "-n", "tally-monitoring", "-o", "name"); out != "" {
		e.t.Errorf("apply made Secrets for Grafana, which images.grafana: none leaves out: %s", out)
	}
	if _, err := e.cluster.Kubectl(e.ctx, "", "get", "secret", "redis-grafana", "-n", "tally-data"); err != nil {
		e.t.Errorf("Redis's grafana user has no password Secret in tally-data: %v", err)
	}
}

// serviceURL is a Service's address (its cluster IP, which only kube-proxy's rules lead to).
func (e *env) serviceURL(ns, name string) string {
	return "http://" + e.kubectl("", "get", "service", name, "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
}

// stopLoad stops a run and returns its answers; any answer but 202 fails the test.
func (e *env) stopLoad(t *testing.T, route string, s *load.Steady) []load.Answer {
	t.Helper()
	answers := s.Stop()
	var accepted []load.Answer
	failed := map[string]int{}
	for _, a := range answers {
		switch {
		case a.Accepted():
			accepted = append(accepted, a)
		case a.Status != 0:
			failed[fmt.Sprintf("HTTP %d", a.Status)]++
		default:
			failed[fmt.Sprint(a.Err)]++
		}
	}
	e.logf("%s: %d votes sent, %d accepted, failed: %v", route, len(answers), len(accepted), failed)
	if len(failed) > 0 || len(accepted) == 0 {
		t.Errorf("%s: %d of %d votes not accepted: %v", route, len(answers)-len(accepted), len(answers), failed)
	}
	return accepted
}

// data reaches the deployment's Redis and database from the test.
type data struct {
	e     *env
	rdb   *redis.Client
	mongo *mongo.Client
}

func (e *env) connect() *data {
	e.t.Helper()
	password := e.kubectl("", "get", "secret", "redis-auth", "-n", "tally-data", "-o", "jsonpath={.data.password}")
	decoded, err := base64.StdEncoding.DecodeString(password)
	if err != nil {
		e.t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "redis.tally-data.svc:6379", Password: string(decoded), Dialer: dial})
	e.t.Cleanup(func() { rdb.Close() })
	mc, err := mongo.Connect(options.Client().ApplyURI("mongodb://mongodb-0.mongodb.tally-data.svc:27017/").
		SetDirect(true).SetDialer(dialerFunc(dial)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	return &data{e: e, rdb: rdb, mongo: mc}
}

// checkCounted waits until Redis counts as many votes as were accepted, then checks that the
// counts per band and album are the votes', that the database holds one log per vote and no
// other, and that the audit (go/internal/audit) finds Redis's counts equal to the logs.
func (d *data) checkCounted(t *testing.T, votes []load.Answer) {
	t.Helper()
	ctx := d.e.ctx
	byBand, byAlbum := map[string]int64{}, map[string]int64{}
	byKey := map[string]*load.Vote{}
	for _, a := range votes {
		byBand[a.Vote.Band]++
		byAlbum[counts.AlbumField(a.Vote.Band, a.Vote.Title)]++
		byKey[a.Key] = a.Vote
	}
	store := counts.New(d.rdb)
	var snap counts.Snapshot
	var err error
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		snap, err = store.Snapshot(ctx, queue.VotesPartitions)
		if err == nil && snap.Total >= int64(len(votes)) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("Redis's counts: %v", err)
	}
	if snap.Total != int64(len(votes)) {
		t.Errorf("%s = %d, want %d accepted votes", counts.TotalKey, snap.Total, len(votes))
	}
	for band, n := range byBand {
		if snap.ByBand[band] != n {
			t.Errorf("%s %s = %d, want %d", counts.BandKey, band, snap.ByBand[band], n)
		}
	}
	for album, n := range byAlbum {
		if snap.ByAlbum[album] != n {
			t.Errorf("%s %s = %d, want %d", counts.AlbumKey, album, snap.ByAlbum[album], n)
		}
	}
	db := d.mongo.Database(votelog.Database)
	cur, err := db.Collection(votelog.LogsCollection).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var logs []votelog.Log
	if err := cur.All(ctx, &logs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, l := range logs {
		seen[l.VoteID]++
		if v, ok := byKey[l.VoteID]; !ok {
			t.Errorf("log of a vote never accepted: %s", l.VoteID)
		} else if l.Name != v.Band || l.Album != v.Title || l.Rank != v.Rank {
			t.Errorf("log %s is %s / %s / %d, the vote was %s / %s / %d", l.VoteID, l.Name, l.Album, l.Rank, v.Band, v.Title, v.Rank)
		}
	}
	if len(logs) != len(votes) || len(seen) != len(byKey) {
		t.Errorf("the database holds %d logs of %d votes for %d accepted votes", len(logs), len(seen), len(votes))
	}
	res, err := audit.Run(ctx, store, votelog.New(db), false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || res.Differences != 0 {
		t.Errorf("audit: %d differences between Redis and the database (%v)", res.Differences, err)
	}
	d.e.logf("counted: %d accepted votes, Redis total %d, %d logs, audit differences %d", len(votes), snap.Total, len(logs), res.Differences)
}

// topicEnds returns the votes topic's end offset per partition.
func (e *env) topicEnds() map[int]int64 {
	e.t.Helper()
	var req []kafka.OffsetRequest
	for p := range queue.VotesPartitions {
		req = append(req, kafka.LastOffsetOf(p))
	}
	resp, err := kafkaClient().ListOffsets(e.ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{"votes": req}})
	if err != nil {
		e.t.Fatalf("votes' end offsets: %v", err)
	}
	ends := map[int]int64{}
	for _, p := range resp.Topics["votes"] {
		if p.Error != nil {
			e.t.Fatalf("votes/%d: %v", p.Partition, p.Error)
		}
		ends[p.Partition] = p.LastOffset
	}
	return ends
}

// kubectlGet writes what `kubectl get` shows of the deployment to the test's outputs
// (bazel-testlogs/go/test/realnode/deployment_test/test.outputs/) and logs it.
func (e *env) kubectlGet(name string) {
	e.t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"get", "deployments,statefulsets,horizontalpodautoscalers,cronjobs,jobs", "-A"},
		{"get", "pods", "-A"},
		{"get", "services", "-A"},
		{"get", "kafkas,kafkanodepools,kafkatopics", "-A"},
	} {
		fmt.Fprintf(&b, "$ kubectl %s\n%s\n", strings.Join(args, " "), e.kubectl("", args...))
	}
	if dir := os.Getenv("TEST_UNDECLARED_OUTPUTS_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			e.t.Error(err)
		}
	}
	e.logf("kubectl get:\n%s", b.String())
}
