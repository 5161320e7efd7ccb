// Package votelog stores one log document per counted vote in MongoDB and answers "what are the
// newest N logs" quickly however large the log grows.
//
// Two collections, both keyed by vote id so that writing a vote twice is a no-op:
//   - tally.logs: every vote, forever.
//   - tally_recent.logs_recent: only the newest few dozen, trimmed by the writers. It has a
//     database of its own because the local MongoDB-wire server (FerretDB v1 on SQLite) keeps
//     each database in one SQLite file with one writer at a time: in the same database, its
//     writes and trims held the lock that the batches' inserts into logs waited for, and they
//     were the largest part of the insert's tail under steady load (docs/performance.md, "Fifth
//     round"). On MongoDB the split changes nothing but the name.
//
// The newest-N query reads logs_recent only. On real MongoDB an index on accepted_at would do,
// but the local MongoDB-wire server (FerretDB v1 on SQLite) pushes no sort or limit down and scans
// the whole collection for every such query (seconds at 100k documents); a collection that holds
// only a few dozen documents keeps the query in milliseconds on both. docs/data.md
// describes the layout; the Node API reads logs_recent the same way.
package votelog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Names shared with the Node API, mongodb-setup's roles and docs/data.md.
const (
	Database         = "tally"
	LogsCollection   = "logs"
	RecentCollection = "logs_recent"
)

// RecentDatabaseOf names the database of logs_recent for the logs' database: tally_recent for
// tally.
func RecentDatabaseOf(database string) string { return database + "_recent" }

// RecentKeep is how many logs Newest can return at most, the API's limit too
// (proto/mongo_names.json, newest_max): the webapp shows 20. What logs_recent costs the
// MongoDB-wire server grows with it, and that server's CPU is the accept-to-counted tail under
// load (docs/performance.md, "Seventh round"): at 100, the trims alone were a quarter of the
// server's CPU at 1,000 votes/s.
//
// A Store writes logs_recent in the background, after Insert has written logs (see writeRecent),
// and trims it at most once per TrimInterval: it deletes what is older than the RecentKeep-th
// newest log the Store itself put there, which needs no read (every log older than that has
// RecentKeep newer ones in logs_recent, so it is not among the newest). With several Stores
// (consumer replicas) each trims below its own bound. Between trims logs_recent grows by what
// was written meanwhile (at most RecentKeep documents a write).
//
// Trimming inside the write, as before, made one write a second per consumer wait for the read
// and the delete of everything written in that second, and writing logs_recent inside Insert
// made every batch wait for a second write: on the MongoDB-wire server here those were the
// accept-to-counted tail under steady load (docs/performance.md).
const (
	RecentKeep   = 20
	TrimInterval = time.Second
)

// RecentInterval is the least time between two writes of a Store to logs_recent: what comes
// meanwhile goes in the next write, only its newest RecentKeep. Under load logs_recent then gets
// at most RecentKeep documents per RecentInterval from each Store instead of every vote, and
// trims read fewer; the newest-N query lags the counts by up to RecentInterval plus a write.
const RecentInterval = 500 * time.Millisecond

// Log is one counted vote.
type Log struct {
	VoteID     string    `bson:"_id"`
	Name       string    `bson:"name"`
	Album      string    `bson:"album"`
	Year       int32     `bson:"year"`
	Rank       int32     `bson:"rank"`
	Route      string    `bson:"route"`
	AcceptedAt time.Time `bson:"accepted_at"`
	CountedAt  time.Time `bson:"counted_at"`
	Partition  int       `bson:"partition"`
	Offset     int64     `bson:"offset"`
}

// Store writes and reads vote logs.
type Store struct {
	logs   *mongo.Collection
	recent *mongo.Collection

	// logs_recent is written by one background goroutine (writeRecent), which also trims it:
	// pending holds the newest RecentKeep stored logs not yet put there, newest first.
	trimEvery   time.Duration
	recentEvery time.Duration
	recentMu    sync.Mutex
	pending     []Log
	recentBusy  bool
	lastRecent  time.Time
	lastTrim    time.Time
	background  sync.WaitGroup // the running writeRecent, if any
	// newest are the newest RecentKeep logs this Store put in logs_recent, newest first: the
	// last of them bounds its trims.
	newest []head

	// Concurrent Inserts share their writes (see Insert): queue holds the calls waiting for the
	// next write, writing says a writer goroutine is running.
	mu      sync.Mutex
	queue   []*insertCall
	writing bool
}

// insertCall is one Insert waiting for its logs' write.
type insertCall struct {
	ctx    context.Context
	logs   []Log
	stored []Log
	err    error
	done   chan struct{}
}

// New returns a Store over db (normally client.Database(Database)), with logs_recent in the
// database RecentDatabaseOf(db's name).
//
// Its writes wait for a majority of the replica set, journaled, and its reads see only what a
// majority holds, whatever the connection string says: a log decides for good which record of
// a vote id counts, and Redis counts it right after the insert returns, so the log must survive
// a failover to another member (a write acknowledged by the primary alone can be rolled back,
// and then another record of the id could be stored and counted too), and the audit must not
// recount a log that a failover may still roll back. On one server (the local MongoDB-wire
// server) a majority is that server.
func New(db *mongo.Database) *Store {
	journaled := true
	opts := options.Collection().
		SetWriteConcern(&writeconcern.WriteConcern{W: writeconcern.WCMajority, Journal: &journaled}).
		SetReadConcern(readconcern.Majority())
	recent := db.Client().Database(RecentDatabaseOf(db.Name()))
	return &Store{logs: db.Collection(LogsCollection, opts), recent: recent.Collection(RecentCollection, opts),
		trimEvery: TrimInterval, recentEvery: RecentInterval}
}

// Insert writes logs to collection logs and returns, for each log, the log stored under its
// vote id: the log itself when it inserted it, or when an earlier attempt at the same record did
// (a replay after a crash or a lost Redis tail); the first record's log when another record of
// the same vote id came first (the same vote sent twice, accepted twice, or the same
// Idempotency-Key reused for another vote). The first log written for a vote id wins for good, so
// the answer for a record never changes: go/internal/consume counts a record exactly when the
// stored log is its own (same partition and offset).
//
// The stored logs go to logs_recent after Insert returns, in the background (writeRecent): it
// gets the stored log rather than the new one, so both collections always hold the same
// document for a vote id.
//
// Concurrent calls (the consumer's partitions) share one write: a call made while another write
// is in flight waits for it to end, then goes with every call that came meanwhile in one
// insertMany (group commit). The MongoDB-wire server here commits every
// write on its own and lets one writer in at a time, so per-partition writes queued behind each
// other and their lock waits were what made some votes wait seconds (docs/performance.md,
// "Accept to counted"); on MongoDB it saves round trips and journal commits too. If ctx ends
// first, Insert returns its error; the write may still happen, and a retry changes nothing.
func (s *Store) Insert(ctx context.Context, logs []Log) (stored []Log, err error) {
	if len(logs) == 0 {
		return nil, nil
	}
	c := &insertCall{ctx: ctx, logs: logs, done: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, c)
	if !s.writing {
		s.writing = true
		go s.writeQueued()
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.stored, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("insert logs: %w", ctx.Err())
	}
}

// writeQueued writes the queued calls' logs, all the calls queued at a time together, until the
// queue is empty.
func (s *Store) writeQueued() {
	for {
		s.mu.Lock()
		calls := s.queue
		s.queue = nil
		if len(calls) == 0 {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.writeCalls(calls)
	}
}

// writeCalls writes calls' logs in one insert per collection and answers each call. The write
// lasts until the last of the calls' deadlines (a caller that gave up retries anyway).
func (s *Store) writeCalls(calls []*insertCall) {
	ctx := context.Background()
	var deadline time.Time
	var all []Log
	for _, c := range calls {
		d, ok := c.ctx.Deadline()
		if !ok {
			deadline = time.Time{}
			break
		}
		deadline = later(deadline, d)
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	for _, c := range calls {
		all = append(all, c.logs...)
	}
	stored, err := s.insert(ctx, all)
	for _, c := range calls {
		if err == nil {
			c.stored, stored = stored[:len(c.logs):len(c.logs)], stored[len(c.logs):]
		}
		c.err = err
		close(c.done)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// insert is Insert's write, of the logs of one or more calls.
func (s *Store) insert(ctx context.Context, logs []Log) (stored []Log, err error) {
	docs := make([]any, len(logs))
	for i := range logs {
		docs[i] = logs[i]
	}
	dups, err := insertIgnoringDuplicates(ctx, s.logs, docs)
	if err != nil {
		return nil, fmt.Errorf("insert into %s: %w", LogsCollection, err)
	}
	stored = slices.Clone(logs)
	if len(dups) > 0 {
		if stored, err = s.asStored(ctx, stored, dups); err != nil {
			return nil, err
		}
	}
	s.queueRecent(stored)
	return stored, nil
}

// Own reports whether stored, the log under l's vote id, is l's own: the log of the same record.
func Own(l, stored Log) bool { return stored.Partition == l.Partition && stored.Offset == l.Offset }

// SameVote reports whether two logs of one vote id carry the same vote; a record that is not its
// vote id's own and not the same vote reused the id (an Idempotency-Key) for another vote.
func SameVote(a, b Log) bool {
	return a.Name == b.Name && a.Album == b.Album && a.Year == b.Year && a.Rank == b.Rank
}

// insertIgnoringDuplicates inserts docs, skipping those whose _id is taken, and returns the
// indexes of the skipped ones.
func insertIgnoringDuplicates(ctx context.Context, coll *mongo.Collection, docs []any) ([]int, error) {
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bulk mongo.BulkWriteException
	if errors.As(err, &bulk) && bulk.WriteConcernError == nil &&
		!slices.ContainsFunc(bulk.WriteErrors, func(e mongo.BulkWriteError) bool { return !e.HasErrorCode(duplicateKey) }) {
		dups := make([]int, len(bulk.WriteErrors))
		for i, e := range bulk.WriteErrors {
			dups[i] = e.Index
		}
		return dups, nil
	}
	return nil, err
}

// asStored replaces the logs at indexes dups, whose ids logs already held, with the stored ones.
func (s *Store) asStored(ctx context.Context, logs []Log, dups []int) ([]Log, error) {
	ids := make(bson.A, len(dups))
	for i, d := range dups {
		ids[i] = logs[d].VoteID
	}
	cur, err := s.logs.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("read stored logs: %w", err)
	}
	var found []Log
	if err := cur.All(ctx, &found); err != nil {
		return nil, fmt.Errorf("read stored logs: %w", err)
	}
	stored := make(map[string]Log, len(found))
	for _, l := range found {
		stored[l.VoteID] = l
	}
	for _, d := range dups {
		l, ok := stored[logs[d].VoteID]
		if !ok {
			return nil, fmt.Errorf("log %s: a duplicate key in %s, yet not found there", logs[d].VoteID, LogsCollection)
		}
		logs[d] = l
	}
	return logs, nil
}

const duplicateKey = 11000

// queueRecent hands stored logs to the background writer of logs_recent. Only the newest
// RecentKeep of what is pending can be among the newest RecentKeep overall, so logs that came
// while a write of logs_recent was in flight go together, and at most RecentKeep of them.
func (s *Store) queueRecent(stored []Log) {
	s.recentMu.Lock()
	defer s.recentMu.Unlock()
	s.pending = newestOf(append(s.pending, stored...))
	if !s.recentBusy {
		s.recentBusy = true
		s.background.Add(1)
		go s.writeRecent()
	}
}

// newestOf sorts logs newest first and keeps the first RecentKeep, one per vote id.
func newestOf(logs []Log) []Log {
	slices.SortFunc(logs, func(a, b Log) int { return newestFirst(a.AcceptedAt, a.VoteID, b.AcceptedAt, b.VoteID) })
	logs = slices.CompactFunc(logs, func(a, b Log) bool { return a.VoteID == b.VoteID })
	return logs[:min(RecentKeep, len(logs))]
}

// writeRecent puts the pending logs in logs_recent, at most once per recentEvery, until none are
// pending, and trims it at most once per trimEvery, below the Store's own RecentKeep-th newest.
// It runs beside Insert, not in it: logs_recent only serves the newest-N query, so a vote's count
// need not wait for it (the audit's invariant, every counted vote is in logs, is Insert's). A
// write that fails is retried with what comes meanwhile, after a pause; a trim that fails leaves
// more for the next.
func (s *Store) writeRecent() {
	defer s.background.Done()
	for {
		s.recentMu.Lock()
		if len(s.pending) == 0 {
			s.recentBusy = false
			s.recentMu.Unlock()
			return
		}
		s.recentMu.Unlock()
		time.Sleep(s.recentEvery - time.Since(s.lastRecent))
		s.recentMu.Lock()
		logs := s.pending
		s.pending = nil
		s.recentMu.Unlock()
		s.lastRecent = time.Now()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		docs := make([]any, len(logs))
		for i := range logs {
			docs[i] = logs[i]
		}
		_, err := insertIgnoringDuplicates(ctx, s.recent, docs)
		if err != nil {
			cancel()
			s.recentMu.Lock()
			s.pending = newestOf(append(s.pending, logs...))
			s.recentMu.Unlock()
			time.Sleep(time.Second)
			continue
		}
		if bound, ok := s.wroteRecent(logs); ok {
			_ = s.trimBelow(ctx, bound)
		}
		cancel()
	}
}

// wroteRecent notes logs (newest first) put in logs_recent and says whether a trim is due, and
// below which log.
func (s *Store) wroteRecent(logs []Log) (bound head, due bool) {
	heads := make([]head, 0, len(s.newest)+len(logs))
	heads = append(heads, s.newest...)
	for _, l := range logs {
		heads = append(heads, head{VoteID: l.VoteID, AcceptedAt: l.AcceptedAt})
	}
	slices.SortFunc(heads, func(a, b head) int { return newestFirst(a.AcceptedAt, a.VoteID, b.AcceptedAt, b.VoteID) })
	// Slice what CompactFunc kept, not heads' old length: past it CompactFunc left zeroed heads.
	heads = slices.CompactFunc(heads, func(a, b head) bool { return a.VoteID == b.VoteID })
	s.newest = heads[:min(RecentKeep, len(heads))]
	if len(s.newest) < RecentKeep || time.Since(s.lastTrim) < s.trimEvery {
		return head{}, false
	}
	s.lastTrim = time.Now()
	return s.newest[RecentKeep-1], true
}

// trimBelow deletes the logs_recent documents older than bound, in newestFirst's order: one or
// two comparisons a document. (A list of the ids to delete, with $in, cost the MongoDB-wire
// server a comparison per id and document: quadratic in the votes of a second.)
func (s *Store) trimBelow(ctx context.Context, bound head) error {
	_, err := s.recent.DeleteMany(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "accepted_at", Value: bson.D{{Key: "$lt", Value: bound.AcceptedAt}}}},
		bson.D{{Key: "accepted_at", Value: bound.AcceptedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: bound.VoteID}}}},
	}}})
	if err != nil {
		return fmt.Errorf("trim %s: %w", RecentCollection, err)
	}
	return nil
}

type head struct {
	VoteID     string
	AcceptedAt time.Time
}

// newestFirst orders by accept time, then by vote id (UUIDv7 ids grow with time too).
func newestFirst(at time.Time, id string, bt time.Time, bid string) int {
	if c := bt.Compare(at); c != 0 {
		return c
	}
	switch {
	case id > bid:
		return -1
	case id < bid:
		return 1
	}
	return 0
}

// Newest returns up to n logs (1 to RecentKeep), newest first.
func (s *Store) Newest(ctx context.Context, n int) ([]Log, error) {
	if n < 1 || n > RecentKeep {
		return nil, fmt.Errorf("newest: n must be from 1 to %d, got %d", RecentKeep, n)
	}
	// Sorted here rather than by the server, which would scan anyway (see the package doc).
	cur, err := s.recent.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", RecentCollection, err)
	}
	var logs []Log
	if err := cur.All(ctx, &logs); err != nil {
		return nil, fmt.Errorf("read %s: %w", RecentCollection, err)
	}
	slices.SortFunc(logs, func(a, b Log) int { return newestFirst(a.AcceptedAt, a.VoteID, b.AcceptedAt, b.VoteID) })
	return logs[:min(n, len(logs))], nil
}

// BandAlbum is one album of one band.
type BandAlbum struct{ Band, Album string }

// Recount counts the logs of records at or below each partition's watermark in through, per band
// and album: exactly the votes the counts hold when Redis's watermarks are through, since every
// stored log is its vote's counted record (see Insert). Logs of partitions through lacks, or
// above its watermark, are not yet counted and are left out.
func (s *Store) Recount(ctx context.Context, through map[int]int64) (map[BandAlbum]int64, error) {
	counted := bson.A{}
	for p, w := range through {
		counted = append(counted, bson.D{{Key: "partition", Value: p}, {Key: "offset", Value: bson.D{{Key: "$lte", Value: w}}}})
	}
	out := map[BandAlbum]int64{}
	if len(counted) == 0 {
		return out, nil
	}
	cur, err := s.logs.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "$or", Value: counted}}}},
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "band", Value: "$name"}, {Key: "album", Value: "$album"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("recount %s: %w", LogsCollection, err)
	}
	var groups []struct {
		ID struct {
			Band  string `bson:"band"`
			Album string `bson:"album"`
		} `bson:"_id"`
		N int64 `bson:"n"`
	}
	if err := cur.All(ctx, &groups); err != nil {
		return nil, fmt.Errorf("recount %s: %w", LogsCollection, err)
	}
	for _, g := range groups {
		out[BandAlbum{g.ID.Band, g.ID.Album}] += g.N
	}
	return out, nil
}
