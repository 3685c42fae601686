package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/websocket"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/portforward"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// closeGrace is how long a forwarded connection whose pod side has ended
// waits for the client to end its side, as containerd's port forwarding
// does.
const closeGrace = time.Second

// servePortForward forwards connections to ports of the pod's network
// namespace, as upstream's kubelet serves /portForward, over three
// transports: SPDY/3.1 ("portforward.k8s.io": a data and an error stream
// per connection, paired by their requestID header), the same SPDY
// tunneled in WebSocket binary messages ("SPDY/3.1+portforward.k8s.io",
// what kubectl 1.31+ asks for), and the WebSocket channel protocol (a data
// and an error channel per port of the "port" query parameter).
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, pod, uid := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid")
	netns, err := s.cfg.Runtime.PodNetNS(r.Context(), ns, pod, uid)
	if err != nil {
		if errors.Is(err, containerruntime.ErrNotRunning) {
			http.Error(w, fmt.Sprintf("pod not found (%q)", pod+"_"+ns), http.StatusInternalServerError)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pf := &portForwarder{s: s, netns: netns, pod: pod, uid: uid,
		logger: s.logger.With(zap.String("namespace", ns), zap.String("pod", pod))}
	switch {
	case wsstream.IsWebSocketRequestWithTunnelingProtocol(r):
		pf.serveTunneledSPDY(w, r)
	case wsstream.IsWebSocketRequest(r):
		pf.serveWebSocket(w, r)
	default:
		pf.serveSPDY(w, r)
	}
}

// portForwarder forwards the connections of one port-forward request.
type portForwarder struct {
	s      *Server
	netns  string
	pod    string
	uid    string
	logger *zap.Logger
}

// newStream checks a new SPDY stream's headers and hands it to streams.
func newStream(streams chan<- httpstream.Stream, done <-chan struct{}) httpstream.NewStreamHandler {
	return func(st httpstream.Stream, _ <-chan struct{}) error {
		p := st.Headers().Get(corev1.PortHeader)
		if p == "" {
			return fmt.Errorf("%q header is required", corev1.PortHeader)
		}
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fmt.Errorf("unable to parse %q as a port: %w", p, err)
		}
		if port < 1 {
			return fmt.Errorf("port %q must be > 0", p)
		}
		switch t := st.Headers().Get(corev1.StreamType); t {
		case corev1.StreamTypeData, corev1.StreamTypeError:
		default:
			return fmt.Errorf("invalid stream type %q", t)
		}
		select {
		case streams <- st:
			return nil
		case <-done:
			return errors.New("port forwarding is ending")
		}
	}
}

func (pf *portForwarder) serveSPDY(w http.ResponseWriter, r *http.Request) {
	if _, err := httpstream.Handshake(r, w, []string{portforward.PortForwardV1Name}); err != nil {
		return
	}
	streams := make(chan httpstream.Stream)
	done := make(chan struct{})
	defer close(done)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, newStream(streams, done))
	if conn == nil {
		return
	}
	pf.runSPDY(r.Context(), conn, streams)
}

// serveTunneledSPDY accepts the WebSocket and runs the SPDY server side on
// the byte stream its binary messages carry.
func (pf *portForwarder) serveTunneledSPDY(w http.ResponseWriter, r *http.Request) {
	ws := websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			for _, p := range cfg.Protocol {
				if p == portforward.WebsocketsSPDYTunnelingPortForwardV1 {
					cfg.Protocol = []string{p}
					return nil
				}
			}
			return fmt.Errorf("requested protocol(s) are not supported: %v; supports %v", cfg.Protocol, []string{portforward.WebsocketsSPDYTunnelingPortForwardV1})
		},
		Handler: func(c *websocket.Conn) {
			c.PayloadType = websocket.BinaryFrame
			streams := make(chan httpstream.Stream)
			done := make(chan struct{})
			defer close(done)
			conn, err := spdy.NewServerConnection(c, newStream(streams, done))
			if err != nil {
				pf.logger.Info("tunneled SPDY connection failed", zap.Error(err))
				return
			}
			pf.runSPDY(r.Context(), conn, streams)
		},
	}
	ws.ServeHTTP(w, r)
}

// streamPair is a forwarded connection's data and error streams.
type streamPair struct {
	id    string
	data  httpstream.Stream
	errs  httpstream.Stream
	timer *time.Timer
}

// requestID pairs a stream with its partner: the requestID header, or for
// clients older than 1.6 the stream ids, consecutive odd numbers with the
// error stream first.
func requestID(st httpstream.Stream) string {
	if id := st.Headers().Get(corev1.PortForwardRequestIDHeader); id != "" {
		return id
	}
	id := int(st.Identifier())
	if st.Headers().Get(corev1.StreamType) == corev1.StreamTypeData {
		id -= 2
	}
	return "stream-" + strconv.Itoa(id)
}

// runSPDY pairs the connection's streams and forwards each pair until the
// connection or ctx ends, then closes the connection and waits for the
// forwarded connections.
func (pf *portForwarder) runSPDY(ctx context.Context, conn httpstream.Connection, streams <-chan httpstream.Stream) {
	conn.SetIdleTimeout(pf.s.cfg.StreamIdleTimeout)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	pairs := map[string]*streamPair{}
	expired := make(chan string)
	stopTimers := make(chan struct{})
	defer func() {
		close(stopTimers)
		for _, p := range pairs {
			p.timer.Stop()
		}
		cancel()
		_ = conn.Close()
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-conn.CloseChan():
			return
		case id := <-expired:
			p := pairs[id]
			if p == nil {
				continue
			}
			delete(pairs, id)
			if p.errs != nil {
				_, _ = fmt.Fprintf(p.errs, "timed out waiting for the streams of request %s", id)
				_ = p.errs.Close()
			}
			for _, st := range []httpstream.Stream{p.data, p.errs} {
				if st != nil {
					_ = st.Reset()
					conn.RemoveStreams(st)
				}
			}
		case st := <-streams:
			id := requestID(st)
			p := pairs[id]
			if p == nil {
				p = &streamPair{id: id}
				p.timer = time.AfterFunc(pf.s.cfg.StreamCreationTimeout, func() {
					select {
					case expired <- id:
					case <-stopTimers:
					}
				})
				pairs[id] = p
			}
			if st.Headers().Get(corev1.StreamType) == corev1.StreamTypeData {
				if p.data != nil {
					pf.logger.Info("duplicate data stream", zap.String("requestID", id))
					_ = st.Reset()
					continue
				}
				p.data = st
			} else {
				if p.errs != nil {
					pf.logger.Info("duplicate error stream", zap.String("requestID", id))
					_ = st.Reset()
					continue
				}
				p.errs = st
			}
			if p.data == nil || p.errs == nil {
				continue
			}
			p.timer.Stop()
			delete(pairs, id)
			wg.Go(func() {
				defer conn.RemoveStreams(p.data, p.errs)
				port, _ := strconv.ParseUint(p.data.Headers().Get(corev1.PortHeader), 10, 16)
				// The error stream ends as soon as the pod's side has: kubectl
				// closes its local connection only then.
				pf.forward(ctx, uint16(port), p.data, true, func() { _ = p.data.Reset() }, func(err error) {
					if err != nil {
						_, _ = fmt.Fprint(p.errs, pf.forwardError(uint16(port), err))
					}
					_ = p.errs.Close()
				})
				_ = p.data.Close()
			})
		}
	}
}

func (pf *portForwarder) forwardError(port uint16, err error) string {
	msg := fmt.Sprintf("error forwarding port %d to pod %s, uid %v: %v", port, pf.pod, pf.uid, err)
	pf.logger.Info("port forwarding failed", zap.Uint16("port", port), zap.Error(err))
	return msg
}

// forward connects to port in the pod and copies both ways until the pod's
// side ends (the client's then gets closeGrace to end its side) or ctx
// ends. With halfClose the end of the client's data is passed on as a
// half-close; without (WebSocket channels end only with the connection) it
// ends the forwarding. abort makes reads of stream return. done is called
// once, with the failure if any, as soon as the pod's side has ended.
func (pf *portForwarder) forward(ctx context.Context, port uint16, stream io.ReadWriter, halfClose bool, abort func(), done func(error)) {
	c, err := pf.s.cfg.Runtime.DialPort(ctx, pf.netns, port)
	if err != nil {
		done(err)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() {
		_ = c.Close()
		abort()
	})
	defer stop()
	in := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, stream)
		if cw, ok := c.(interface{ CloseWrite() error }); ok && err == nil && halfClose {
			_ = cw.CloseWrite()
		} else {
			_ = c.Close()
		}
		in <- err
	}()
	_, outErr := io.Copy(stream, c)
	if halfClose {
		if cw, ok := stream.(interface{ Close() error }); ok {
			// SPDY: Close ends our side of the stream only.
			_ = cw.Close()
		}
	}
	if outErr != nil && !errors.Is(outErr, net.ErrClosed) && ctx.Err() == nil {
		done(fmt.Errorf("copy from the pod: %w", outErr))
	} else {
		done(nil)
	}
	timer := time.NewTimer(closeGrace)
	defer timer.Stop()
	select {
	case <-in:
	case <-timer.C:
		abort()
		_ = c.Close()
		<-in
	}
}

// serveWebSocket serves the WebSocket channel protocol: channels 2i (data)
// and 2i+1 (error) for the i-th port of the query, each starting with the
// port as two little-endian bytes.
func (pf *portForwarder) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	ports, err := queryPorts(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	channels := make([]wsstream.ChannelType, 0, 2*len(ports))
	for range ports {
		channels = append(channels, wsstream.ReadWriteChannel, wsstream.WriteChannel)
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"": {Binary: true, Channels: channels},
		"v4." + wsstream.ChannelWebSocketProtocol:       {Binary: true, Channels: channels},
		"v4." + wsstream.Base64ChannelWebSocketProtocol: {Binary: false, Channels: channels},
	})
	conn.SetIdleTimeout(pf.s.cfg.StreamIdleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		pf.logger.Info("websocket upgrade failed", zap.Error(err))
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wg sync.WaitGroup
	for i, port := range ports {
		data, errs := streams[2*i], streams[2*i+1]
		b := binary.LittleEndian.AppendUint16(nil, port)
		_, _ = data.Write(b)
		_, _ = errs.Write(b)
		wg.Go(func() {
			pf.forward(ctx, port, data, false, func() { _ = data.Close() }, func(err error) {
				if err != nil {
					_, _ = errs.Write([]byte(pf.forwardError(port, err)))
				}
			})
		})
	}
	wg.Wait()
}

// queryPorts reads the "port" query parameters (each may list several,
// comma-separated).
func queryPorts(r *http.Request) ([]uint16, error) {
	values := r.URL.Query()[corev1.PortHeader]
	if len(values) == 0 {
		return nil, fmt.Errorf("query parameter %q is required", corev1.PortHeader)
	}
	var ports []uint16
	for _, v := range values {
		if v == "" {
			return nil, fmt.Errorf("query parameter %q cannot be empty", corev1.PortHeader)
		}
		for _, p := range strings.Split(v, ",") {
			port, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("unable to parse %q as a port: %w", v, err)
			}
			if port < 1 {
				return nil, fmt.Errorf("port %q must be > 0", v)
			}
			ports = append(ports, uint16(port))
		}
	}
	return ports, nil
}
