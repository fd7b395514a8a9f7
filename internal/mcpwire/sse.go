package mcpwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Event is one Server-Sent Event (HTML Living Standard §9.2 "Server-sent
// events"). Data holds the joined data lines without the trailing newline.
type Event struct {
	ID    string
	Name  string // the "event:" field; empty means "message"
	Data  []byte
	Retry int // reconnection time in milliseconds, 0 when absent
	// HasID is true when the event carried an id field, even an empty one.
	HasID bool
}

// MaxEventSize bounds one event read from an upstream, so a misbehaving
// upstream cannot make the gateway buffer without limit.
const MaxEventSize = 16 << 20

// ErrEventTooLarge is returned by EventReader.Next for oversized events.
var ErrEventTooLarge = errors.New("sse event too large")

// EventReader reads events from a text/event-stream body.
type EventReader struct {
	r   *bufio.Reader
	max int
}

// NewEventReader returns a reader over r.
func NewEventReader(r io.Reader) *EventReader {
	return &EventReader{r: bufio.NewReaderSize(r, 32<<10), max: MaxEventSize}
}

// Next returns the next event that carries data, an id or a retry field.
// It returns io.EOF at the end of the stream.
func (er *EventReader) Next() (Event, error) {
	var (
		ev      Event
		data    bytes.Buffer
		hasData bool
		size    int
	)
	for {
		line, err := er.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it whole, still within the limit.
			buf := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(buf) > er.max {
					return Event{}, ErrEventTooLarge
				}
				line, err = er.r.ReadSlice('\n')
				buf = append(buf, line...)
			}
			line = buf
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			if errors.Is(err, io.EOF) && (hasData || ev.HasID) {
				// A stream cut after a complete field but before the blank
				// line: the event is incomplete and must be discarded.
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		size += len(line)
		if size > er.max {
			return Event{}, ErrEventTooLarge
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if hasData || ev.HasID || ev.Retry > 0 {
				ev.Data = data.Bytes()
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			if !bytes.ContainsRune(value, 0) {
				ev.ID = string(value)
				ev.HasID = true
			}
		case "event":
			ev.Name = string(value)
		case "retry":
			if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 {
				ev.Retry = n
			}
		}
	}
}

// WriteEvent writes ev in text/event-stream framing. Data containing
// newlines is split over several data lines, as the format requires.
func WriteEvent(w io.Writer, ev Event) error {
	var b strings.Builder
	if ev.Name != "" {
		fmt.Fprintf(&b, "event: %s\n", ev.Name)
	}
	if ev.HasID || ev.ID != "" {
		fmt.Fprintf(&b, "id: %s\n", ev.ID)
	}
	if ev.Retry > 0 {
		fmt.Fprintf(&b, "retry: %d\n", ev.Retry)
	}
	if len(ev.Data) > 0 || (!ev.HasID && ev.Retry == 0) {
		for _, line := range bytes.Split(ev.Data, []byte("\n")) {
			b.WriteString("data: ")
			b.Write(line)
			b.WriteByte('\n')
		}
	} else {
		// A priming event: id (and retry) with empty data (SEP-1699).
		b.WriteString("data: \n")
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
