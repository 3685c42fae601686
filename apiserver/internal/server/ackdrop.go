package server

import (
	"bufio"
	"io"
	"net"
)

// settingsAckDropper hides from the HTTP/2 server the client's first
// SETTINGS acknowledgement. While telling gRPC from other HTTP/2
// connections, the listener sends the client a SETTINGS frame of its own;
// the client acknowledges it, and an HTTP/2 server that never sent that
// frame would treat the acknowledgement as a protocol error.
type settingsAckDropper struct {
	net.Conn
	r       *bufio.Reader
	started bool // the 24-byte client preface has been passed on
	dropped bool // the acknowledgement has been removed
	pending []byte
}

func newSettingsAckDropper(c net.Conn) net.Conn {
	return &settingsAckDropper{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}
}

const (
	clientPrefaceLen = 24
	frameHeaderLen   = 9
	frameSettings    = 0x4
	flagAck          = 0x1
)

func (d *settingsAckDropper) Read(p []byte) (int, error) {
	if d.dropped && len(d.pending) == 0 {
		return d.r.Read(p)
	}
	for len(d.pending) == 0 {
		if !d.started {
			buf := make([]byte, clientPrefaceLen)
			if _, err := io.ReadFull(d.r, buf); err != nil {
				return 0, err
			}
			d.started, d.pending = true, buf
			break
		}
		hdr := make([]byte, frameHeaderLen)
		if _, err := io.ReadFull(d.r, hdr); err != nil {
			return 0, err
		}
		length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		payload := make([]byte, length)
		if _, err := io.ReadFull(d.r, payload); err != nil {
			return 0, err
		}
		if hdr[3] == frameSettings && hdr[4]&flagAck != 0 {
			d.dropped = true
			continue
		}
		d.pending = append(hdr, payload...)
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}
