package config

import (
	"strings"
	"testing"
)

// TestMaxBatchKey: limits.max_batch defaults to 100 and must be within
// 1..10000.
func TestMaxBatchKey(t *testing.T) {
	const server = "\nservers: [{name: s, auth: none, upstream: {url: \"http://127.0.0.1:1/mcp\"}}]\n"
	for _, tc := range []struct {
		limits string
		want   int
		err    bool
	}{
		{"", DefaultMaxBatch, false},
		{"limits: {max_batch: 5}", 5, false},
		{"limits: {max_batch: -1}", 0, true},
		{"limits: {max_batch: 10001}", 0, true},
	} {
		c, err := Parse([]byte(tc.limits+server), "t.yaml", nil)
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "limits.max_batch") {
				t.Errorf("%q: error %v, want one naming limits.max_batch", tc.limits, err)
			}
			continue
		}
		if err != nil || c.Limits.MaxBatch != tc.want {
			t.Errorf("%q: max_batch %v, err %v; want %d", tc.limits, c, err, tc.want)
		}
	}
}

// TestInitializesPerMinuteKey: limits.initializes_per_minute defaults to
// 30 and must be within 1..100000.
func TestInitializesPerMinuteKey(t *testing.T) {
	const server = "\nservers: [{name: s, auth: none, upstream: {url: \"http://127.0.0.1:1/mcp\"}}]\n"
	for _, tc := range []struct {
		limits string
		want   int
		err    bool
	}{
		{"", DefaultInitializesPerMinute, false},
		{"limits: {initializes_per_minute: 5}", 5, false},
		{"limits: {initializes_per_minute: -1}", 0, true},
		{"limits: {initializes_per_minute: 100001}", 0, true},
	} {
		c, err := Parse([]byte(tc.limits+server), "t.yaml", nil)
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "limits.initializes_per_minute") {
				t.Errorf("%q: error %v, want one naming limits.initializes_per_minute", tc.limits, err)
			}
			continue
		}
		if err != nil || c.Limits.InitsPerMinute != tc.want {
			t.Errorf("%q: initializes_per_minute %v, err %v; want %d", tc.limits, c, err, tc.want)
		}
	}
}
