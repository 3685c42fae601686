// Package server serves gRPC and HTTP on one TLS port: after the handshake,
// HTTP/2 connections whose first request is application/grpc go to the gRPC
// server, other HTTP/2 and HTTP/1.1 connections to the HTTP handler.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/soheilhy/cmux"
	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

type tlsStateKey struct{}

// TLSState returns the TLS connection state of an HTTP request, from the
// request itself or from the context the server put it in.
func TLSState(r *http.Request) *tls.ConnectionState {
	if r.TLS != nil {
		return r.TLS
	}
	st, _ := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	return st
}

func tlsConnOf(c net.Conn) *tls.Conn {
	for {
		switch v := c.(type) {
		case *tls.Conn:
			return v
		case *cmux.MuxConn:
			c = v.Conn
		default:
			return nil
		}
	}
}

// muxCreds hands gRPC the TLS state of a connection whose handshake the
// listener already did.
type muxCreds struct{}

func (muxCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("server-side credentials only")
}

func (muxCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc := tlsConnOf(c)
	if tc == nil {
		return nil, nil, errors.New("connection is not TLS")
	}
	return c, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (muxCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3"}
}
func (c muxCreds) Clone() credentials.TransportCredentials { return c }
func (muxCreds) OverrideServerName(string) error           { return nil }

// GRPCCredentials is the transport credential option for a gRPC server
// given to Serve.
func GRPCCredentials() grpc.ServerOption { return grpc.Creds(muxCreds{}) }

// Serve serves until ctx is cancelled, then stops gracefully within grace.
func Serve(ctx context.Context, lis net.Listener, tc *tls.Config, gs *grpc.Server, h http.Handler, grace time.Duration, logger *zap.Logger) error {
	tc = tc.Clone()
	tc.NextProtos = []string{"h2", "http/1.1"}
	tlsL := tls.NewListener(lis, tc)
	m := cmux.New(tlsL)
	m.SetReadTimeout(10 * time.Second)
	grpcL := m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
	h2L := m.Match(cmux.HTTP2())
	h1L := m.Match(cmux.Any())

	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tcn := tlsConnOf(c); tcn != nil {
				st := tcn.ConnectionState()
				return context.WithValue(ctx, tlsStateKey{}, &st)
			}
			return ctx
		},
		ErrorLog: zap.NewStdLog(logger.Named("http")),
	}
	h2s := &http2.Server{}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	errc := make(chan error, 4)
	wg.Add(4)
	go func() { defer wg.Done(); errc <- gs.Serve(grpcL) }()
	go func() { defer wg.Done(); errc <- hs.Serve(h1L) }()
	go func() {
		defer wg.Done()
		for {
			c, err := h2L.Accept()
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				base := context.Background()
				if tcn := tlsConnOf(c); tcn != nil {
					st := tcn.ConnectionState()
					base = context.WithValue(base, tlsStateKey{}, &st)
				}
				h2s.ServeConn(newSettingsAckDropper(c), &http2.ServeConnOpts{Context: base, Handler: h, BaseConfig: hs})
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	go func() { defer wg.Done(); errc <- m.Serve() }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		if isClosed(serveErr) {
			serveErr = nil
		}
	}
	// Shut down: stop accepting, let requests finish within grace.
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = hs.Shutdown(shutdownCtx)
	select {
	case <-done:
	case <-shutdownCtx.Done():
		gs.Stop()
		<-done
	}
	m.Close()
	_ = tlsL.Close()
	mu.Lock()
	for c := range conns {
		_ = c.Close()
	}
	mu.Unlock()
	wg.Wait()
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

func isClosed(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) || errors.Is(err, cmux.ErrListenerClosed) || errors.Is(err, cmux.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped)
}
