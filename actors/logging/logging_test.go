package logging

import (
	"log/slog"
	"testing"

	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestEndpointLifecycleIsDebug: protoactor's connection lifecycle messages
// reach the log only at debug level; everything else keeps its level.
func TestEndpointLifecycleIsDebug(t *testing.T) {
	for _, tc := range []struct {
		name      string
		level     zapcore.Level
		msg       string
		logged    slog.Level
		wantLevel zapcore.Level
		want      bool
	}{
		{"lost connection hidden at info", zapcore.InfoLevel, "EndpointWriter lost connection", slog.LevelError, 0, false},
		{"reader closing hidden at info", zapcore.InfoLevel, "EndpointReader is closing", slog.LevelInfo, 0, false},
		{"watcher started hidden at info", zapcore.InfoLevel, "Started EndpointWatcher", slog.LevelInfo, 0, false},
		{"lost connection shown at debug", zapcore.DebugLevel, "EndpointWriter lost connection", slog.LevelError, zapcore.DebugLevel, true},
		{"other errors kept", zapcore.InfoLevel, "actor failed", slog.LevelError, zapcore.ErrorLevel, true},
		{"other info kept", zapcore.InfoLevel, "Started Activator", slog.LevelInfo, zapcore.InfoLevel, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(tc.level)
			l := slog.New(demoteEndpoints{zapslog.NewHandler(core)})
			l.Log(t.Context(), tc.logged, tc.msg, "address", "127.0.0.1:1")
			got := logs.All()
			if !tc.want {
				if len(got) != 0 {
					t.Fatalf("logged %v, want nothing", got)
				}
				return
			}
			if len(got) != 1 || got[0].Level != tc.wantLevel || got[0].Message != tc.msg || got[0].ContextMap()["address"] != "127.0.0.1:1" {
				t.Fatalf("logged %v, want %q at %v", got, tc.msg, tc.wantLevel)
			}
		})
	}
}
