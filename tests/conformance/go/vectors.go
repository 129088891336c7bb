package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"conformance"
)

func loadVectors(dir, file string) []any {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		report(file, err)
		return nil
	}
	v, err := parseJSON(data)
	if err != nil {
		report(file, err)
		return nil
	}
	return v.([]any)
}

func runVectors(dir string) {
	for _, v := range loadVectors(dir, "msgpack.json") {
		o := v.(*object)
		report("msgpack.json: "+o.get("name").(string), checkValueVector(o))
	}
	for _, file := range []string{"frames.json", "ignored.json", "malformed.json"} {
		for _, v := range loadVectors(dir, file) {
			o := v.(*object)
			report(file+": "+o.get("name").(string), checkFrameVector(o))
		}
	}
}

func checkValueVector(o *object) error {
	want := canonical(o.get("meaning"))
	for _, key := range []string{"hex", "alt_hex"} {
		h, ok := o.get(key).(string)
		if !ok {
			continue
		}
		data, _ := hex.DecodeString(h)
		got, err := decode(data)
		if err != nil {
			return fmt.Errorf("decoding %s: %v", key, err)
		}
		if !same(got, want, true) {
			return fmt.Errorf("%s decodes to %s, want %s", key, show(got), show(want))
		}
	}
	if o.get("decode_only") == true {
		return nil
	}
	enc, err := encode(want)
	if err != nil {
		return err
	}
	if h := hex.EncodeToString(enc); h != o.get("hex") && h != o.get("alt_hex") {
		return fmt.Errorf("encodes to %s, want %s", h, o.get("hex"))
	}
	return nil
}

var kindNames = map[string]uint64{"HELLO": 0, "REQUEST": 1, "RESPONSE": 2, "ERROR": 3,
	"CANCEL": 4, "PING": 5, "PONG": 6, "GOAWAY": 7}

func u32(v any) uint32 {
	if n, ok := v.(*big.Int); ok {
		return uint32(n.Uint64())
	}
	return 0
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// frameOf builds the frame a vector's meaning describes.
func frameOf(m *object) (*conformance.Frame, error) {
	f := &conformance.Frame{Kind: kindNames[str(m.get("kind"))], ID: u32(m.get("id")),
		Version: u32(m.get("version")), Method: str(m.get("method")),
		TimeoutMs: u32(m.get("timeout_ms")), Code: u32(m.get("code")),
		Message: str(m.get("message")), LastID: u32(m.get("last_id"))}
	if info, ok := m.get("info").(*object); ok {
		f.Info = conformance.Hello{Cell: str(info.get("cell")), SchemaHash: str(info.get("schema_hash")),
			MaxFrame: u32(info.get("max_frame")), Peer: str(info.get("peer")), Agent: str(info.get("agent"))}
	}
	if md, ok := m.get("metadata").(*object); ok {
		f.Metadata = map[string]string{}
		for _, k := range md.keys {
			f.Metadata[k] = str(md.vals[k])
		}
	}
	var err error
	if _, ok := m.vals["payload"]; ok {
		if f.Payload, err = encode(m.get("payload")); err != nil {
			return nil, err
		}
	}
	if d, ok := m.vals["details"]; ok {
		if f.Details, err = encode(d); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func sameFrame(got, want *conformance.Frame) error {
	if got.Kind != want.Kind || got.ID != want.ID || got.Version != want.Version ||
		got.Method != want.Method || got.TimeoutMs != want.TimeoutMs || got.Code != want.Code ||
		got.Message != want.Message || got.LastID != want.LastID || got.Info != want.Info ||
		len(got.Metadata) != len(want.Metadata) || (got.Metadata == nil) != (want.Metadata == nil) {
		return fmt.Errorf("decoded %+v, want %+v", *got, *want)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			return fmt.Errorf("metadata %q is %q, want %q", k, got.Metadata[k], v)
		}
	}
	for _, pair := range [][2][]byte{{got.Payload, want.Payload}, {got.Details, want.Details}} {
		if (len(pair[0]) == 0) != (len(pair[1]) == 0) {
			return fmt.Errorf("payload or details present in one frame only")
		}
		if len(pair[0]) == 0 {
			continue
		}
		a, err := decode(pair[0])
		if err != nil {
			return err
		}
		b, _ := decode(pair[1])
		if !same(a, b, true) {
			return fmt.Errorf("payload %s, want %s", show(a), show(b))
		}
	}
	return nil
}

func checkFrameVector(o *object) error {
	data, _ := hex.DecodeString(o.get("hex").(string))
	maxFrame := uint32(conformance.DefaultMaxFrame)
	if m := o.get("max_frame"); m != nil {
		maxFrame = u32(canonical(m))
	}
	r := bytes.NewReader(data)
	body, err := conformance.ReadFrame(r, maxFrame)
	expect := str(o.get("expect"))
	if expect == "frame_too_large" {
		if !errors.Is(err, conformance.ErrFrameTooLarge) {
			return fmt.Errorf("expected the reader to refuse the length, got %v", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading: %v", err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d bytes left after the frame", r.Len())
	}
	f, err := conformance.DecodeFrame(body)
	switch expect {
	case "ignore":
		if !errors.Is(err, conformance.ErrUnknownKind) {
			return fmt.Errorf("expected an unknown kind to skip, got %v", err)
		}
		enc, err := encode(canonical(o.get("meaning")))
		if err != nil {
			return err
		}
		if !bytes.Equal(enc, body) {
			return fmt.Errorf("meaning encodes to %x, want %x", enc, body)
		}
		return nil
	case "malformed":
		if !errors.Is(err, conformance.ErrMalformed) {
			return fmt.Errorf("expected malformed, got %v", err)
		}
		if want := u32(canonical(o.get("call_id"))); f.ID != want && !(want == 0 && f.Kind != conformance.KindRequest) {
			return fmt.Errorf("the ERROR would carry id %d, want %d", f.ID, want)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("decoding: %v", err)
	}
	want, err := frameOf(canonical(o.get("meaning")).(*object))
	if err != nil {
		return err
	}
	if err := sameFrame(f, want); err != nil {
		return err
	}
	if m := o.get("max_frame"); m != nil {
		if _, err := conformance.ReadFrame(bytes.NewReader(data), maxFrame-1); !errors.Is(err, conformance.ErrFrameTooLarge) {
			return fmt.Errorf("a reader one byte stricter accepted it")
		}
	}
	if o.get("decode_only") == true {
		return nil
	}
	enc, err := conformance.EncodeFrame(want)
	if err != nil {
		return err
	}
	if !bytes.Equal(enc, data) {
		return fmt.Errorf("encodes to %x, want %x", enc, data)
	}
	return nil
}
