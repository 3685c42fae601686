package etcd

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// protobufMagic starts every object in the Kubernetes protobuf encoding.
var protobufMagic = []byte("k8s\x00")

var errNotEnvelope = errors.New("not a Kubernetes protobuf envelope")

// WithResourceVersion returns a copy of a stored object (the Kubernetes
// protobuf envelope, runtime.Unknown) whose metadata.resourceVersion is rev,
// without decoding it. It appends to the object's bytes a second metadata
// field holding only resourceVersion: protobuf merges repeated embedded
// messages and the last value of a scalar wins, so every decoder reads the
// object with that resourceVersion. Every Kubernetes kind keeps its
// ObjectMeta in field 1 and resourceVersion is ObjectMeta's field 6.
func WithResourceVersion(stored []byte, rev int64) ([]byte, error) {
	if len(stored) < len(protobufMagic) || string(stored[:len(protobufMagic)]) != string(protobufMagic) {
		return nil, errNotEnvelope
	}
	rv := strconv.AppendInt(nil, rev, 10)
	// metadata { resourceVersion: rv }
	meta := make([]byte, 0, 2+len(rv))
	meta = append(meta, 6<<3|2)
	meta = binary.AppendUvarint(meta, uint64(len(rv)))
	meta = append(meta, rv...)
	patch := make([]byte, 0, 2+len(meta))
	patch = append(patch, 1<<3|2)
	patch = binary.AppendUvarint(patch, uint64(len(meta)))
	patch = append(patch, meta...)

	out := make([]byte, 0, len(stored)+len(patch)+4)
	out = append(out, protobufMagic...)
	b := stored[len(protobufMagic):]
	patched := false
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errNotEnvelope
		}
		field, wire := tag>>3, tag&7
		if wire != 2 {
			// runtime.Unknown has only length-delimited fields.
			return nil, errNotEnvelope
		}
		l, m := binary.Uvarint(b[n:])
		if m <= 0 || uint64(len(b)-n-m) < l {
			return nil, errNotEnvelope
		}
		body := b[n+m : n+m+int(l)]
		out = binary.AppendUvarint(out, tag)
		if field == 2 { // Unknown.raw: the object itself
			out = binary.AppendUvarint(out, uint64(len(body)+len(patch)))
			out = append(out, body...)
			out = append(out, patch...)
			patched = true
		} else {
			out = binary.AppendUvarint(out, l)
			out = append(out, body...)
		}
		b = b[n+m+int(l):]
	}
	if !patched {
		return nil, errNotEnvelope
	}
	return out, nil
}

// ObjectBytes returns the object inside a Kubernetes protobuf envelope (the
// raw field of runtime.Unknown), without copying.
func ObjectBytes(envelope []byte) ([]byte, error) {
	if len(envelope) < len(protobufMagic) || string(envelope[:len(protobufMagic)]) != string(protobufMagic) {
		return nil, errNotEnvelope
	}
	b := envelope[len(protobufMagic):]
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 || tag&7 != 2 {
			return nil, errNotEnvelope
		}
		l, m := binary.Uvarint(b[n:])
		if m <= 0 || uint64(len(b)-n-m) < l {
			return nil, errNotEnvelope
		}
		if tag>>3 == 2 {
			return b[n+m : n+m+int(l)], nil
		}
		b = b[n+m+int(l):]
	}
	return nil, errNotEnvelope
}

// AppendEnvelope appends to dst the Kubernetes protobuf envelope of an
// object already marshalled as obj, of the given apiVersion and kind.
func AppendEnvelope(dst []byte, apiVersion, kind string, obj []byte) []byte {
	var tm []byte
	tm = appendBytesField(tm, 1, []byte(apiVersion))
	tm = appendBytesField(tm, 2, []byte(kind))
	dst = append(dst, protobufMagic...)
	dst = appendBytesField(dst, 1, tm)
	dst = appendBytesField(dst, 2, obj)
	dst = appendBytesField(dst, 3, nil)
	return appendBytesField(dst, 4, nil)
}

// AppendBytesField appends a length-delimited protobuf field.
func AppendBytesField(dst []byte, field int, b []byte) []byte { return appendBytesField(dst, field, b) }

func appendBytesField(dst []byte, field int, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(field)<<3|2)
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}
