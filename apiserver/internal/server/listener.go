// Package server serves gRPC and HTTP on one TLS port. The protocol is
// chosen in the TLS handshake (ALPN): Coxswain's own clients ask for
// "coxswain-grpc" and reach the gRPC server directly; "h2" connections
// (kubectl, grpcurl, other gRPC clients) go to an HTTP/2 server that hands
// application/grpc requests to the gRPC server and the rest to the HTTP
// handler; everything else is HTTP/1.1.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/coxswain/coxswain/pkg/client"
)

// TLSState returns the TLS connection state of an HTTP request.
func TLSState(r *http.Request) *tls.ConnectionState { return r.TLS }

// handshakeCreds hands gRPC the TLS state of a connection whose handshake
// the listener already did.
type handshakeCreds struct{}

func (handshakeCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("server-side credentials only")
}

func (handshakeCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil, errors.New("connection is not TLS")
	}
	return c, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (handshakeCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3"}
}
func (c handshakeCreds) Clone() credentials.TransportCredentials { return c }
func (handshakeCreds) OverrideServerName(string) error           { return nil }

// GRPCCredentials is the transport credential option for a gRPC server
// given to Serve.
func GRPCCredentials() grpc.ServerOption { return grpc.Creds(handshakeCreds{}) }

// chanListener is a net.Listener fed with connections by Serve.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// Serve serves until ctx is cancelled, then stops gracefully within grace.
func Serve(ctx context.Context, lis net.Listener, tc *tls.Config, gs *grpc.Server, h http.Handler, grace time.Duration, logger *zap.Logger) error {
	tc = tc.Clone()
	tc.NextProtos = []string{client.ALPNProtocol, "h2", "http/1.1"}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(logger.Named("http"))}
	h2s := &http2.Server{}
	grpcL, h1L := newChanListener(lis.Addr()), newChanListener(lis.Addr())

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	errc := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errc <- gs.Serve(grpcL) }()
	go func() { defer wg.Done(); errc <- hs.Serve(h1L) }()
	go func() {
		defer wg.Done()
		for {
			raw, err := lis.Accept()
			if err != nil {
				errc <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := tls.Server(raw, tc)
				track(c, true)
				defer track(c, false)
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.HandshakeContext(ctx); err != nil {
					logger.Debug("TLS handshake failed", zap.Stringer("remote", raw.RemoteAddr()), zap.Error(err))
					_ = c.Close()
					return
				}
				_ = c.SetDeadline(time.Time{})
				switch c.ConnectionState().NegotiatedProtocol {
				case client.ALPNProtocol:
					grpcL.push(c)
				case "h2":
					h2s.ServeConn(c, &http2.ServeConnOpts{Context: ctx, Handler: handler, BaseConfig: hs})
				default:
					h1L.push(c)
				}
			}()
		}
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		if isClosed(serveErr) {
			serveErr = nil
		}
	}
	_ = lis.Close()
	grpcL.Close()
	h1L.Close()
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
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped)
}
