package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// serverURL is the MongoDB-wire server that the stack harness started from this folder's binary
// (//go/cmd/ferretdb:ferretdb_stack_test).
func serverURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("MONGO_URL")
	if url == "" {
		t.Fatal("MONGO_URL is not set: run this test through its stack_test target")
	}
	return url
}

func connect(t *testing.T, url string) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	return client
}

// TestWritersOfOneDatabaseAllFinish runs, through the server and at once on one database,
// everything that takes the patched write lock (inserts in transactions, deletes and index builds
// through ExecContext) beside reads, from two clients. Every operation must succeed and every
// inserted document be there: a write path that took the lock twice, or a reader that waited for
// it while holding what a writer needs, would hang here until the deadline.
func TestWritersOfOneDatabaseAllFinish(t *testing.T) {
	url := serverURL(t)
	clients := []*mongo.Client{connect(t, url), connect(t, url)}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writers, batches, perBatch = 8, 30, 10

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	do := func(name string, f func(db *mongo.Database) error, db *mongo.Database) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(db); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	for w := range writers {
		db := clients[w%2].Database("tally")
		do(fmt.Sprintf("writer %d", w), func(db *mongo.Database) error {
			for b := range batches {
				if _, err := db.Collection("logs").InsertMany(ctx, batch(fmt.Sprintf("w%d", w), b, perBatch)); err != nil {
					return err
				}
			}
			return nil
		}, db)
	}
	for w := range 2 {
		db := clients[w].Database("tally")
		do(fmt.Sprintf("trimmer %d", w), func(db *mongo.Database) error {
			for b := range batches {
				if _, err := db.Collection("recent").InsertMany(ctx, batch(fmt.Sprintf("t%d", w), b, perBatch)); err != nil {
					return err
				}
				if _, err := db.Collection("recent").DeleteMany(ctx, bson.D{{Key: "n", Value: bson.D{{Key: "$lt", Value: b}}}}); err != nil {
					return err
				}
			}
			return nil
		}, db)
		do(fmt.Sprintf("reader %d", w), func(db *mongo.Database) error {
			for range batches {
				cur, err := db.Collection("logs").Find(ctx, bson.D{})
				if err != nil {
					return err
				}
				var got []bson.M
				if err := cur.All(ctx, &got); err != nil {
					return err
				}
			}
			return nil
		}, db)
	}
	do("index builder", func(db *mongo.Database) error {
		for range 10 {
			if _, err := db.Collection("other").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}}); err != nil {
				return err
			}
			if err := db.Collection("other").Indexes().DropAll(ctx); err != nil {
				return err
			}
		}
		return nil
	}, clients[0].Database("tally"))

	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		t.Fatal(err)
	}
	n, err := clients[1].Database("tally").Collection("logs").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != writers*batches*perBatch {
		t.Fatalf("logs holds %d documents, want %d", n, writers*batches*perBatch)
	}
}

// batch is n documents of batch number b, with ids unique to the writer.
func batch(writer string, b, n int) []any {
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("%s-b%d-%d", writer, b, i)}, {Key: "n", Value: b}}
	}
	return docs
}
