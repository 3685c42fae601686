package grpcapi

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/apiserver/internal/storage/cacher"
)

// preEncoded is a message already in its wire form: a watch event encoded
// once and sent to every watcher as it is.
type preEncoded []byte

// codec is gRPC's proto codec, but sends preEncoded messages without
// marshalling or copying them.
type codec struct{ inner encoding.CodecV2 }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch p := v.(type) {
	case preEncoded:
		return mem.BufferSlice{mem.SliceBuffer(p)}, nil
	case preEncodedBatch:
		out := make(mem.BufferSlice, len(p))
		for i, part := range p {
			out[i] = mem.SliceBuffer(part)
		}
		return out, nil
	}
	return c.inner.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.inner.Unmarshal(data, v) }

func (c codec) Name() string { return c.inner.Name() }

// Codec is the server codec option to use with this service.
func Codec() grpc.ServerOption {
	inner := encoding.GetCodecV2(proto.Name)
	if inner == nil {
		panic(fmt.Sprintf("grpc codec %q is not registered", proto.Name)) // programming error
	}
	return grpc.ForceServerCodecV2(codec{inner: inner})
}

var eventSlots = map[watch.EventType]int{watch.Added: 0, watch.Modified: 1, watch.Deleted: 2}

// watchEventBytes returns the resourcev1.WatchEvent wire form of an event
// on e, built once per entry and event type.
func watchEventBytes(typ watch.EventType, e *cacher.Entry) ([]byte, error) {
	slot, ok := eventSlots[typ]
	if !ok || e.Raw == nil {
		raw, err := entryBytes(e)
		if err != nil {
			return nil, err
		}
		return appendWatchEvent(nil, string(typ), raw), nil
	}
	return e.Memo(slot, func() []byte { return appendWatchEvent(nil, string(typ), e.Raw) }), nil
}

// appendWatchEvent encodes WatchEvent{type: typ, object: obj}: field 1 and
// field 2, both length-delimited.
func appendWatchEvent(b []byte, typ string, obj []byte) []byte {
	b = append(b, 1<<3|2)
	b = binary.AppendUvarint(b, uint64(len(typ)))
	b = append(b, typ...)
	b = append(b, 2<<3|2)
	b = binary.AppendUvarint(b, uint64(len(obj)))
	return append(b, obj...)
}

// preEncodedBatch is a WatchEvent whose batch (field 3) holds event
// messages, in wire form as the parts to send one after the other: each
// message's tag and length, then the message as shared by every watcher.
type preEncodedBatch [][]byte

// batch builds a preEncodedBatch.
type batch struct {
	parts [][]byte
	heads []byte // the parts' tags and lengths, back to back
}

func (b *batch) add(msg []byte) {
	start := len(b.heads)
	b.heads = append(b.heads, 3<<3|2)
	b.heads = binary.AppendUvarint(b.heads, uint64(len(msg)))
	// A head keeps pointing into the array it was written to when heads
	// grows into a new one.
	b.parts = append(b.parts, b.heads[start:len(b.heads):len(b.heads)], msg)
}
