package mcpwire

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestParamBindings(t *testing.T) {
	for _, tc := range []struct {
		name, schema string
		want         int // bindings; -1: invalid
	}{
		{"none", `{"type":"object","properties":{"a":{"type":"string"}}}`, 0},
		{"top level", `{"type":"object","properties":{"r":{"type":"string","x-mcp-header":"Region"}}}`, 1},
		{"nested", `{"type":"object","properties":{"o":{"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"N"}}}}}`, 1},
		{"number type", `{"type":"object","properties":{"n":{"type":"number","x-mcp-header":"N"}}}`, -1},
		{"not a token", `{"type":"object","properties":{"r":{"type":"string","x-mcp-header":"Re gion"}}}`, -1},
		{"duplicate", `{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"X"},"b":{"type":"string","x-mcp-header":"x"}}}`, -1},
		{"under items", `{"type":"object","properties":{"a":{"type":"array","items":{"type":"string","x-mcp-header":"X"}}}}`, -1},
		{"under oneOf", `{"type":"object","oneOf":[{"properties":{"a":{"type":"string","x-mcp-header":"X"}}}]}`, -1},
		{"at the root", `{"type":"string","x-mcp-header":"X"}`, -1},
	} {
		b, err := ParamBindings(json.RawMessage(tc.schema))
		if got := len(b); tc.want < 0 && err == nil || tc.want >= 0 && (err != nil || got != tc.want) {
			t.Errorf("%s: %d bindings, err %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestCheckParamHeaders(t *testing.T) {
	b := []ParamBinding{{Path: []string{"region"}, Header: "Region"}, {Path: []string{"o", "n"}, Header: "N"}}
	for _, tc := range []struct {
		name, args string
		hdr        []string
		ok         bool
	}{
		{"match", `{"region":"eu"}`, []string{"Mcp-Param-Region", "eu"}, true},
		{"base64", `{"region":"Grüße"}`, []string{"Mcp-Param-Region", EncodeHeaderValue("Grüße")}, true},
		{"integer numerically", `{"o":{"n":42}}`, []string{"Mcp-Param-N", "42.0"}, true},
		{"absent both", `{}`, nil, true},
		{"null value no header", `{"region":null}`, nil, true},
		{"mismatch", `{"region":"eu"}`, []string{"Mcp-Param-Region", "us"}, false},
		{"missing", `{"region":"eu"}`, nil, false},
		{"unexpected", `{}`, []string{"Mcp-Param-Region", "eu"}, false},
		{"twice", `{"region":"eu"}`, []string{"Mcp-Param-Region", "eu", "Mcp-Param-Region", "eu"}, false},
		{"bad base64", `{"region":"eu"}`, []string{"Mcp-Param-Region", "=?base64?***?="}, false},
		{"control character", `{"region":"e\nu"}`, []string{"Mcp-Param-Region", "e\nu"}, false},
		{"string is not the integer", `{"o":{"n":"42"}}`, []string{"Mcp-Param-N", "42.0"}, false},
	} {
		h := http.Header{}
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			h.Add(tc.hdr[i], tc.hdr[i+1])
		}
		err := CheckParamHeaders(h, b, json.RawMessage(tc.args))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
		if tc.ok && len(tc.hdr) > 0 {
			// What a client would send for those arguments passes too.
			if err := CheckParamHeaders(ParamHeaders(b, json.RawMessage(tc.args)), b, json.RawMessage(tc.args)); err != nil {
				t.Errorf("%s: generated headers refused: %v", tc.name, err)
			}
		}
	}
}

func FuzzParamHeaders(f *testing.F) {
	f.Add(`{"type":"object","properties":{"r":{"type":"string","x-mcp-header":"Region"}}}`, `{"r":"eu"}`, "eu")
	f.Add(`{"properties":{"o":{"properties":{"n":{"type":"integer","x-mcp-header":"N"}}}}}`, `{"o":{"n":1e3}}`, "=?base64?MTAwMA==?=")
	f.Fuzz(func(t *testing.T, schema, args, value string) {
		b, err := ParamBindings(json.RawMessage(schema))
		if err != nil {
			return
		}
		h := ParamHeaders(b, json.RawMessage(args))
		// Whatever a client derives from the arguments, the server's
		// check accepts.
		if json.Valid([]byte(args)) {
			if err := CheckParamHeaders(h, b, json.RawMessage(args)); err != nil {
				t.Fatalf("generated headers refused: %v (%v)", err, h)
			}
		}
		for _, bd := range b {
			h.Set(ParamHeaderPrefix+bd.Header, value)
		}
		_ = CheckParamHeaders(h, b, json.RawMessage(args))
	})
}
