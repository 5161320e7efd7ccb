// Package counts is the consumer's Redis side: the key layout every reader of the counts relies
// on, and the atomic apply of one partition's batch of votes.
//
// The layout is defined here once, documented in docs/data.md and written down as a contract in
// proto/redis_keys.json (the Node API and the Grafana dashboard read it); this package's tests fail
// when the builders below drift from that file.
package counts

import (
	"strconv"
	"time"
)

// Keys without parameters.
const (
	// TotalKey is a STRING: every counted vote.
	TotalKey = "tally:votes:total"
	// BandKey is a HASH: band → count.
	BandKey = "tally:votes:band"
	// AlbumKey is a HASH: AlbumField(band, album) → count, for charts.
	AlbumKey = "tally:votes:album"
)

const (
	bandAlbumsPrefix = "tally:votes:band:"
	bucketPrefix     = "tally:votes:10s:"
	latencyPrefix    = "tally:votes:latency:10s:"
	appliedPrefix    = "tally:applied:votes:"
)

// Time buckets and expiries.
const (
	// BucketWidth is the width of a time bucket; buckets start at Unix seconds that are multiples of it.
	BucketWidth = 10 * time.Second
	// BucketTTL is how long after its start a bucket key lives: Grafana, their only reader, shows
	// at most the last hour.
	BucketTTL = time.Hour
)

// AlbumSeparator joins band and album in AlbumKey's fields: an em dash (U+2014) with spaces.
const AlbumSeparator = " \u2014 "

// AlbumField is the field of AlbumKey that counts votes for album by band.
func AlbumField(band, album string) string { return band + AlbumSeparator + album }

// BandAlbumsKey is a HASH: album → count, the votes for one band.
func BandAlbumsKey(band string) string { return bandAlbumsPrefix + band }

// BucketStart is the start of the 10-second bucket holding t.
func BucketStart(t time.Time) time.Time {
	width := int64(BucketWidth / time.Second)
	s := t.Unix()
	s -= ((s % width) + width) % width
	return time.Unix(s, 0).UTC()
}

// BucketKey is a HASH: band → count of the votes accepted in the 10-second bucket holding t.
// It expires BucketTTL after the bucket's start.
func BucketKey(t time.Time) string {
	return bucketPrefix + strconv.FormatInt(BucketStart(t).Unix(), 10)
}

// LatencyKey is a HASH: LatencyField(d) → how many votes counted in the 10-second bucket holding
// t took d from their accept to their count, for Grafana's accept-to-counted panel. It expires
// BucketTTL after the bucket's start.
func LatencyKey(t time.Time) string {
	return latencyPrefix + strconv.FormatInt(BucketStart(t).Unix(), 10)
}

// LatencyBounds are the upper bounds of LatencyKey's classes; a vote slower than the last is in
// class "+Inf".
var LatencyBounds = []time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// LatencyField is the field of LatencyKey counting a vote counted d after its accept: the
// smallest of LatencyBounds at or above d, in milliseconds ("250"), or "+Inf".
func LatencyField(d time.Duration) string {
	for _, b := range LatencyBounds {
		if d <= b {
			return strconv.FormatInt(b.Milliseconds(), 10)
		}
	}
	return "+Inf"
}

// AppliedKey is a STRING: the highest offset of a votes partition whose record is applied.
func AppliedKey(partition int) string { return appliedPrefix + strconv.Itoa(partition) }
