// Package logging builds the components' zap loggers.
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Levels accepted by New.
const Levels = "debug|info|warn|error"

// Option configures New.
type Option func(*options)

type options struct {
	console bool
	out     io.Writer
}

// WithConsole uses the human-readable console encoder instead of JSON.
func WithConsole() Option { return func(o *options) { o.console = true } }

// WithOutput writes to w instead of stderr.
func WithOutput(w io.Writer) Option { return func(o *options) { o.out = w } }

// ParseLevel parses "debug", "info", "warn" or "error".
func ParseLevel(level string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info", "":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("invalid log level %q: want one of %s", level, Levels)
}

// New returns a logger at level: JSON production encoding on stderr unless
// options say otherwise.
func New(level string, opts ...Option) (*zap.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	o := options{out: os.Stderr}
	for _, f := range opts {
		f(&o)
	}
	var enc zapcore.Encoder
	if o.console {
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	} else {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(o.out)), lvl)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel), zap.ErrorOutput(zapcore.Lock(os.Stderr))), nil
}

// AddFlags registers --log-level into level.
func AddFlags(fs *pflag.FlagSet, level *string) {
	fs.StringVar(level, "log-level", "info", "log level: "+Levels)
}
