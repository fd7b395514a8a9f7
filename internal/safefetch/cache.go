package safefetch

import (
	"container/list"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CacheTTL says how long a response with header h may be cached:
// no-store or no-cache → 0 (not cached); else max-age (RFC 9111 §5.2.2.1)
// less Age (§5.1), or Expires less Date (§5.3, an invalid Expires meaning
// already expired); else minTTL. The result is bounded by minTTL and
// maxTTL, so a hostile server can neither force a fetch per request nor
// pin a response for long.
func CacheTTL(h http.Header, now time.Time, minTTL, maxTTL time.Duration) time.Duration {
	ttl, found := time.Duration(0), false
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err == nil && !found {
					ttl, found = time.Duration(min(max(n, 0), 1<<31))*time.Second, true
				}
			}
		}
	}
	switch {
	case found:
		if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
			ttl -= time.Duration(min(age, 1<<31)) * time.Second
		}
	case h.Get("Expires") != "":
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		if t, err := http.ParseTime(h.Get("Expires")); err == nil {
			ttl = t.Sub(base)
		}
	default:
		ttl = minTTL
	}
	return min(max(ttl, minTTL), maxTTL)
}

// lru is a size-bounded cache with expiry; the caller holds the lock.
type lru struct {
	max   int
	order *list.List // front = most recently used; values are *lruEntry
	items map[string]*list.Element
}

type lruEntry struct {
	key     string
	resp    *Response
	expires time.Time
}

func newLRU(n int) *lru {
	return &lru{max: n, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru) get(key string, now time.Time) (*Response, bool) {
	el, ok := l.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*lruEntry)
	if !now.Before(e.expires) {
		l.order.Remove(el)
		delete(l.items, key)
		return nil, false
	}
	l.order.MoveToFront(el)
	return e.resp, true
}

func (l *lru) put(key string, r *Response, expires time.Time) {
	if el, ok := l.items[key]; ok {
		el.Value = &lruEntry{key: key, resp: r, expires: expires}
		l.order.MoveToFront(el)
		return
	}
	l.items[key] = l.order.PushFront(&lruEntry{key: key, resp: r, expires: expires})
	for l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*lruEntry).key)
	}
}
