package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    zapcore.Level
		wantErr bool
	}{
		{"debug", zapcore.DebugLevel, false},
		{"info", zapcore.InfoLevel, false},
		{"", zapcore.InfoLevel, false},
		{"WARN", zapcore.WarnLevel, false},
		{"error", zapcore.ErrorLevel, false},
		{"verbose", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Errorf("ParseLevel(%q) = %v, %v, want %v, wantErr %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := New("loud"); err == nil || !strings.Contains(err.Error(), Levels) {
		t.Errorf("New(loud) error = %v, want one naming %s", err, Levels)
	}
}

func TestNewJSONAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l, err := New("warn", WithOutput(&buf))
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", zap.String("k", "v"))
	_ = l.Sync()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1: %q", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	if m["msg"] != "shown" || m["k"] != "v" || m["level"] != "warn" {
		t.Errorf("entry = %v, want msg=shown k=v level=warn", m)
	}
}

func TestConsoleAndFlags(t *testing.T) {
	var buf bytes.Buffer
	l, err := New("debug", WithConsole(), WithOutput(&buf))
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hello")
	if !strings.Contains(buf.String(), "DEBUG") || strings.HasPrefix(buf.String(), "{") {
		t.Errorf("console output = %q", buf.String())
	}
	var level string
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	AddFlags(fs, &level)
	if err := fs.Parse([]string{"--log-level=debug"}); err != nil || level != "debug" {
		t.Errorf("--log-level parsed to %q, %v", level, err)
	}
}
