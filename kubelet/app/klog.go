package app

import (
	"errors"
	"fmt"
	"net"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
)

// klogSink takes the logs of the k8s.io libraries the kubelet API streams
// with (apimachinery's SPDY and WebSocket packages log through klog) into
// zap: their info at debug, their errors as warnings, except the closed
// connections that end every WebSocket session, at debug.
type klogSink struct {
	logger *zap.Logger
}

func (s klogSink) Init(logr.RuntimeInfo) {}

func (s klogSink) Enabled(level int) bool { return level <= 4 }

func (s klogSink) Info(level int, msg string, kv ...any) {
	s.logger.Debug(msg, append(zapFields(kv), zap.Int("v", level))...)
}

func (s klogSink) Error(err error, msg string, kv ...any) {
	f := append(zapFields(kv), zap.Error(err))
	if err == nil || errors.Is(err, net.ErrClosed) {
		s.logger.Debug(msg, f...)
		return
	}
	s.logger.Warn(msg, f...)
}

func (s klogSink) WithValues(kv ...any) logr.LogSink {
	return klogSink{logger: s.logger.With(zapFields(kv)...)}
}

func (s klogSink) WithName(name string) logr.LogSink {
	return klogSink{logger: s.logger.Named(name)}
}

// zapFields turns logr's key-value pairs into zap fields.
func zapFields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2+1)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, zap.Any(fmt.Sprint(kv[i]), kv[i+1]))
	}
	if len(kv)%2 == 1 {
		out = append(out, zap.Any("extra", kv[len(kv)-1]))
	}
	return out
}
