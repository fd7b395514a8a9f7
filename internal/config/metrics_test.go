package config

import (
	"strings"
	"testing"
)

func TestMetricsValidation(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // substring of a problem at metrics.listen; "" = valid
	}{
		{"off by default", okServer, ""},
		{"loopback", "metrics: {listen: '127.0.0.1:9464'}\n" + okServer, ""},
		{"port 0 beside port 0", "listen: '127.0.0.1:0'\nmetrics: {listen: '127.0.0.1:0'}\n" + okServer, ""},
		{"other host same port", "listen: '127.0.0.1:8080'\nmetrics: {listen: '10.0.0.1:8080'}\n" + okServer, ""},
		{"not host:port", "metrics: {listen: '9464'}\n" + okServer, "must be host:port"},
		{"bad port", "metrics: {listen: '127.0.0.1:99999'}\n" + okServer, "port"},
		{"bad host", "metrics: {listen: 'bad host:9464'}\n" + okServer, "not a valid host"},
		{"empty but written", "metrics: {listen: ''}\n" + okServer, "must be host:port"},
		{"the public listener", "listen: '127.0.0.1:8080'\nmetrics: {listen: '127.0.0.1:8080'}\n" + okServer, "must differ from listen"},
		{"the default public listener", "metrics: {listen: '127.0.0.1:8080'}\n" + okServer, "must differ from listen"},
		{"all interfaces, same port", "listen: ':8080'\nmetrics: {listen: '127.0.0.1:8080'}\n" + okServer, "must differ from listen"},
		{"same port, metrics on all interfaces", "listen: '127.0.0.1:8080'\nmetrics: {listen: '0.0.0.0:8080'}\n" + okServer, "must differ from listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				c, err := Parse([]byte(tt.doc), "gw.yaml", env())
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				if strings.Contains(tt.doc, "metrics:") && c.Metrics.Listen == "" {
					t.Fatal("metrics.listen not parsed")
				}
				return
			}
			found := false
			ps := parseProblems(t, []byte(tt.doc), env())
			for _, p := range ps {
				found = found || p.Path == "metrics.listen" && strings.Contains(p.Message, tt.want)
			}
			if !found {
				t.Fatalf("problems %v, want one at metrics.listen containing %q", ps, tt.want)
			}
		})
	}
}
