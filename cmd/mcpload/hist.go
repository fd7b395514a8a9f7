package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram is a log-linear ("HDR-like") latency histogram over
// nanoseconds, safe for concurrent use.
//
// Values below linearMax are counted exactly. Above that, every power of two
// is split into subCount equal-width buckets, so a bucket is at most 1/128 of
// its lower bound wide and a reported quantile (the bucket midpoint, clamped
// to the observed min/max) is within 0.4% of the true sample. Memory is fixed
// (numBuckets counters) however many samples are recorded.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	min    atomic.Int64
	max    atomic.Int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits // buckets per power of two
	linearMax  = 2 * subCount // values < linearMax get a bucket each
	numBuckets = linearMax + (64-subBits-1)*subCount
)

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketIndex maps a value to its bucket.
func bucketIndex(v uint64) int {
	if v < linearMax {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // >= 1
	m := v >> shift                        // in [subCount, 2*subCount)
	return linearMax + (shift-1)*subCount + int(m-subCount)
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < linearMax {
		return uint64(i), 1
	}
	j := i - linearMax
	shift := uint(j/subCount + 1)
	m := uint64(j%subCount + subCount)
	return m << shift, 1 << shift
}

// Record adds one sample. Negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketIndex(uint64(v))].Add(1)
	h.total.Add(1)
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.min.Load()
		if v >= cur || h.min.CompareAndSwap(cur, v) {
			break
		}
	}
}

// Count is the number of recorded samples.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Max is the largest recorded sample, exactly (0 if empty).
func (h *histogram) Max() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.max.Load())
}

// Quantile returns the nearest-rank q-quantile (0 <= q <= 1): the smallest
// recorded value v such that at least ceil(q*n) samples are <= v, up to the
// bucket resolution. Quantile(1) is the exact maximum; an empty histogram
// returns 0. Call it once recording has finished.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	lo, hi := h.min.Load(), h.max.Load()
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum < rank {
			continue
		}
		start, width := bucketRange(i)
		v := int64(start + (width-1)/2)
		return time.Duration(min(max(v, lo), hi))
	}
	return time.Duration(hi)
}
