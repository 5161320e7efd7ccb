package load

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<40 + 12345, 1<<63 + 1, ^uint64(0)} {
		i := bucketOf(v)
		if i < 0 || i >= buckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, buckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("%d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if v >= subBuckets && float64(hi-lo) > float64(lo)/subBuckets {
			t.Errorf("bucket %d = [%d, %d] is wider than 1/%d of its value", i, lo, hi, subBuckets)
		}
	}
	// Buckets follow each other without gaps.
	for i := 1; i < buckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	for range 100_000 {
		d := time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
		vals = append(vals, d)
		h.Record(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subBuckets+1 {
			t.Errorf("p%v = %v, exact %v", q*100, got, exact)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] || h.Count() != uint64(len(vals)) {
		t.Errorf("max %v min %v count %d", h.Max(), h.Min(), h.Count())
	}
	if h.Quantile(1) != h.Max() {
		t.Errorf("p100 = %v, max %v", h.Quantile(1), h.Max())
	}
}

func TestMerge(t *testing.T) {
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(time.Second)
	b.Record(time.Microsecond)
	a.Merge(&b)
	if a.Count() != 3 || a.Max() != time.Second || a.Min() != time.Microsecond {
		t.Errorf("merged: count %d max %v min %v", a.Count(), a.Max(), a.Min())
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 || empty.Min() != 0 {
		t.Error("an empty histogram reports non-zero values")
	}
}
