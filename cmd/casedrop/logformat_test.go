package main

import (
	"errors"
	"testing"
)

func TestLogsAreTextOnATerminalAndJSONOtherwiseUnlessTold(t *testing.T) {
	for _, tc := range []struct {
		format   string
		terminal bool
		text     bool
	}{
		{"auto", true, true}, {"auto", false, false},
		{"text", false, true}, {"text", true, true},
		{"json", true, false}, {"json", false, false},
	} {
		if got := logText(tc.format, tc.terminal); got != tc.text {
			t.Errorf("--log-format %s, terminal %v: text %v, want %v", tc.format, tc.terminal, got, tc.text)
		}
	}
	c, err := parseConfig("serve", nil, env(map[string]string{"CASEDROP_LOG_FORMAT": "json"}))
	if err != nil || c.LogFormat != "json" {
		t.Errorf("CASEDROP_LOG_FORMAT=json: %q, %v", c.LogFormat, err)
	}
	if c, err := parseConfig("serve", nil, env(nil)); err != nil || c.LogFormat != "auto" {
		t.Errorf("default: %q, %v; want auto", c.LogFormat, err)
	}
	if _, err := parseConfig("serve", []string{"--log-format", "xml"}, env(nil)); !errors.As(err, new(usageError)) {
		t.Errorf("--log-format xml: %v, want a usage error", err)
	}
}
