package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketIndexRoundTrip(t *testing.T) {
	values := []uint64{0, 1, 127, 255, 256, 257, 300, 511, 512, 1000, 1 << 20, 123456789, 1<<40 + 12345, math.MaxInt64}
	for _, v := range values {
		i := bucketIndex(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketIndex(%d) = %d, out of range", v, i)
		}
		lo, w := bucketRange(i)
		if v < lo || v-lo >= w {
			t.Errorf("value %d in bucket %d = [%d, %d+%d)", v, i, lo, lo, w)
		}
		if v >= linearMax && float64(w)/float64(lo) > 1.0/subCount {
			t.Errorf("bucket %d too wide: %d at %d", i, w, lo)
		}
	}
	// Buckets are contiguous and increasing.
	for i := 1; i < numBuckets-1; i++ {
		plo, pw := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if plo+pw != lo {
			t.Fatalf("gap between bucket %d and %d: %d+%d != %d", i-1, i, plo, pw, lo)
		}
	}
}

// exactQuantile is the nearest-rank quantile of sorted samples.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestQuantile(t *testing.T) {
	seq := func(from, to, step time.Duration) []time.Duration {
		var s []time.Duration
		for v := from; v <= to; v += step {
			s = append(s, v)
		}
		return s
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lognormal []time.Duration
	for range 100000 {
		lognormal = append(lognormal, time.Duration(math.Exp(rng.NormFloat64()*0.8)*float64(time.Millisecond)))
	}
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration // 0: compare with exactQuantile
		relTol  float64
	}{
		{"empty", nil, 0.5, 0, 0},
		{"single", []time.Duration{42 * time.Millisecond}, 0.99, 42 * time.Millisecond, 0},
		{"small exact p50", seq(1, 100, 1), 0.50, 50, 0},
		{"small exact p90", seq(1, 100, 1), 0.90, 90, 0},
		{"small exact p99", seq(1, 100, 1), 0.99, 99, 0},
		{"small exact p100", seq(1, 100, 1), 1, 100, 0},
		{"small exact p0", seq(1, 100, 1), 0, 1, 0},
		{"ten samples p99 is max", seq(1, 10, 1), 0.99, 10, 0},
		{"ms range p50", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 0.50, 0, 0.005},
		{"ms range p90", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 0.90, 0, 0.005},
		{"ms range p99", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 0.99, 0, 0.005},
		{"lognormal p50", lognormal, 0.50, 0, 0.005},
		{"lognormal p99", lognormal, 0.99, 0, 0.005},
		{"lognormal p999", lognormal, 0.999, 0, 0.005},
		{"outlier is max", append(seq(time.Millisecond, 99*time.Millisecond, time.Millisecond), 10*time.Second), 1, 10 * time.Second, 0},
		{"outlier beyond p99", append(seq(time.Millisecond, 99*time.Millisecond, time.Millisecond), 10*time.Second), 0.99, 99 * time.Millisecond, 0.005},
		{"negative clamps to zero", []time.Duration{-5}, 0.5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistogram()
			// Record in random order: the histogram must not care.
			shuffled := append([]time.Duration(nil), tt.samples...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for _, s := range shuffled {
				h.Record(s)
			}
			if got := h.Count(); got != uint64(len(tt.samples)) {
				t.Fatalf("Count = %d, want %d", got, len(tt.samples))
			}
			want := tt.want
			if want == 0 && len(tt.samples) > 0 && tt.relTol > 0 {
				sorted := append([]time.Duration(nil), tt.samples...)
				sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
				want = exactQuantile(sorted, tt.q)
			}
			got := h.Quantile(tt.q)
			if tt.relTol == 0 {
				if got != want {
					t.Errorf("Quantile(%v) = %v, want exactly %v", tt.q, got, want)
				}
				return
			}
			if rel := math.Abs(float64(got-want)) / float64(want); rel > tt.relTol {
				t.Errorf("Quantile(%v) = %v, want %v ± %.1f%% (off by %.3f%%)", tt.q, got, want, tt.relTol*100, rel*100)
			}
		})
	}
}

func TestHistogramMaxExact(t *testing.T) {
	h := newHistogram()
	for _, d := range []time.Duration{3 * time.Millisecond, 123456789, time.Microsecond} {
		h.Record(d)
	}
	if got := h.Max(); got != 123456789 {
		t.Errorf("Max = %v, want 123.456789ms", got)
	}
	if got := newHistogram().Max(); got != 0 {
		t.Errorf("empty Max = %v", got)
	}
}
