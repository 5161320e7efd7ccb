package servers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestMongoInsertAndReadNewest20(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(mustEnv(t, "MONGO_URL")))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database("harness").Collection("logs")

	docs := make([]any, 50)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("vote-%03d", i)}, {Key: "seq", Value: i}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("insert: %v", err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(20))
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	var got []struct {
		Seq int `bson:"seq"`
	}
	if err := cur.All(ctx, &got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != 20 {
		t.Fatalf("got %d documents, want 20", len(got))
	}
	for i, d := range got {
		if want := 49 - i; d.Seq != want {
			t.Fatalf("document %d has seq %d, want %d (newest first)", i, d.Seq, want)
		}
	}
}
