// Package logging builds Berth's zap loggers and routes protoactor's slog
// output into the same zap core, so one process writes one log stream.
package logging

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

// Options select the log format and level.
type Options struct {
	// Format is "console" (default) or "json".
	Format string
	// Level is debug, info, warn or error (default warn for the CLI).
	Level string
}

// New builds a zap logger writing to stderr.
func New(o Options) (*zap.Logger, error) {
	lvl := zapcore.WarnLevel
	if o.Level != "" {
		if err := lvl.Set(o.Level); err != nil {
			return nil, fmt.Errorf("log level %q: %w", o.Level, err)
		}
	}
	var enc zapcore.Encoder
	switch o.Format {
	case "", "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		enc = zapcore.NewConsoleEncoder(cfg)
	case "json":
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	default:
		return nil, fmt.Errorf("log format %q: want console or json", o.Format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core), nil
}

// SystemOption routes an actor system's slog logging into zl.
func SystemOption(zl *zap.Logger) actor.ConfigOption {
	return actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(demoteEndpoints{zapslog.NewHandler(zl.Core(), zapslog.WithName("protoactor"))}).With("system", s.ID)
	})
}

// demoteEndpoints logs protoactor's remote connection lifecycle at debug
// level. Every client that connects and goes away (each `berth execute
// --agent`, `berth ps`) makes protoactor log eight info lines and an error
// with a stack trace ("EndpointWriter lost connection"); for an agent that
// is routine, and it would bury what an operator needs to see.
type demoteEndpoints struct{ slog.Handler }

// endpointMessage tells protoactor's connection lifecycle messages.
func endpointMessage(msg string) bool {
	for _, prefix := range []string{"EndpointWriter", "EndpointReader", "EndpointWatcher", "EndpointManager", "EndpointSupervisor", "Started EndpointW"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

func (d demoteEndpoints) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug && endpointMessage(r.Message) {
		r.Level = slog.LevelDebug
	}
	if !d.Enabled(ctx, r.Level) {
		return nil
	}
	return d.Handler.Handle(ctx, r)
}

func (d demoteEndpoints) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteEndpoints{d.Handler.WithAttrs(attrs)}
}

func (d demoteEndpoints) WithGroup(name string) slog.Handler {
	return demoteEndpoints{d.Handler.WithGroup(name)}
}
