package cell

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the Cell wire protocol version this client speaks.
const ProtocolVersion = 1

// DefaultMaxFrame is the largest frame body either side accepts unless its HELLO says otherwise.
const DefaultMaxFrame = 16 << 20

// DefaultTimeout is the deadline of a call whose context has none.
const DefaultTimeout = 10 * time.Second

const agent = "cell-go/" + codegenVersion

// Frame kinds of protocol version 1.
const (
	KindHello    = 0
	KindRequest  = 1
	KindResponse = 2
	KindError    = 3
	KindCancel   = 4
	KindPing     = 5
	KindPong     = 6
	KindGoaway   = 7
)

// Code is a Cell error code: gRPC's status codes, with the same numbers on the wire.
type Code uint32

// The closed set of error codes.
const (
	CodeCancelled          Code = 1
	CodeUnknown            Code = 2
	CodeInvalidArgument    Code = 3
	CodeDeadlineExceeded   Code = 4
	CodeNotFound           Code = 5
	CodeAlreadyExists      Code = 6
	CodePermissionDenied   Code = 7
	CodeResourceExhausted  Code = 8
	CodeFailedPrecondition Code = 9
	CodeAborted            Code = 10
	CodeOutOfRange         Code = 11
	CodeUnimplemented      Code = 12
	CodeInternal           Code = 13
	CodeUnavailable        Code = 14
	CodeDataLoss           Code = 15
	CodeUnauthenticated    Code = 16
)

var codeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED"}

// String is the code's name, such as NOT_FOUND.
func (c Code) String() string {
	if c >= 1 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "UNKNOWN"
}

// CodeFromWire maps a wire number to a Code: numbers outside the table are CodeUnknown.
func CodeFromWire(n uint64) Code {
	if n < 1 || n > 16 {
		return CodeUnknown
	}
	return Code(n)
}

// CodeFromName maps a name such as "NOT_FOUND" to its Code, or CodeUnknown.
func CodeFromName(name string) Code {
	for i, n := range codeNames {
		if i > 0 && n == name {
			return Code(i)
		}
	}
	return CodeUnknown
}

// CellError is the error of a failed call. Use errors.As to get it from a returned error.
type CellError struct {
	Code    Code
	Message string
	// Details is the optional structured data of the ERROR frame.
	Details any
	cause   error
	// unsent marks calls the cell provably never processed, which any method may retry.
	unsent bool
}

func (e *CellError) Error() string { return e.Code.String() + ": " + e.Message }

// Unwrap returns the cause, such as context.DeadlineExceeded.
func (e *CellError) Unwrap() error { return e.cause }

// ErrorCode is the Code of err when it is (or wraps) a *CellError, else CodeUnknown.
func ErrorCode(err error) Code {
	var ce *CellError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return CodeUnknown
}

func newError(code Code, cause error, format string, args ...any) *CellError {
	return &CellError{Code: code, Message: fmt.Sprintf(format, args...), cause: cause}
}

// Hello is the info map of a HELLO frame.
type Hello struct {
	Cell       string `msgpack:"cell,omitempty"`
	SchemaHash string `msgpack:"schema_hash,omitempty"`
	MaxFrame   uint32 `msgpack:"max_frame,omitempty"`
	Peer       string `msgpack:"peer,omitempty"`
	Agent      string `msgpack:"agent,omitempty"`
}

// Frame is one decoded frame; which fields are set depends on Kind.
type Frame struct {
	Kind      uint64
	Version   uint32
	Info      Hello
	ID        uint32
	Method    string
	Payload   msgpack.RawMessage
	TimeoutMs uint32
	Metadata  map[string]string
	Code      uint32
	Message   string
	Details   msgpack.RawMessage
	LastID    uint32
}

// ErrMalformed is wrapped by the errors of DecodeFrame for bodies that break the protocol.
var ErrMalformed = errors.New("malformed frame")

// ErrUnknownKind is returned by DecodeFrame for a well-formed frame of a kind v1 does not know:
// skip it.
var ErrUnknownKind = errors.New("unknown frame kind")

// ErrFrameTooLarge is returned by ReadFrame for a length prefix above the limit.
var ErrFrameTooLarge = errors.New("frame too large")

// ReadFrame reads one length-prefixed frame body of at most maxFrame bytes; it refuses a larger
// frame from its length prefix alone.
func ReadFrame(r io.Reader, maxFrame uint32) ([]byte, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(prefix[:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooLarge, n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

func newEncoder(w io.Writer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(w)
	enc.UseCompactInts(true)
	return enc
}

// Marshal encodes v as MessagePack the way the protocol wants: smallest integers, maps for
// structs, float64 for generated float fields.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := newEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes MessagePack data into v.
func Unmarshal(data []byte, v any) error { return msgpack.Unmarshal(data, v) }

// EncodeFrame encodes f with its length prefix.
func EncodeFrame(f *Frame) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 0, 0})
	w := &writer{e: newEncoder(&buf)}
	switch f.Kind {
	case KindHello:
		w.arrayLen(3)
		w.uint(KindHello)
		w.uint(uint64(f.Version))
		n := 0
		for _, s := range []string{f.Info.Cell, f.Info.SchemaHash, f.Info.Peer, f.Info.Agent} {
			if s != "" {
				n++
			}
		}
		if f.Info.MaxFrame != 0 {
			n++
		}
		w.mapLen(n)
		w.optStr("cell", f.Info.Cell)
		w.optStr("schema_hash", f.Info.SchemaHash)
		if f.Info.MaxFrame != 0 {
			w.str("max_frame")
			w.uint(uint64(f.Info.MaxFrame))
		}
		w.optStr("peer", f.Info.Peer)
		w.optStr("agent", f.Info.Agent)
	case KindRequest:
		n := 5
		if f.Metadata != nil {
			n = 6
		}
		w.arrayLen(n)
		w.uint(KindRequest)
		w.uint(uint64(f.ID))
		w.str(f.Method)
		w.raw(f.Payload)
		w.uint(uint64(f.TimeoutMs))
		if f.Metadata != nil {
			keys := make([]string, 0, len(f.Metadata))
			for k := range f.Metadata {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			w.mapLen(len(keys))
			for _, k := range keys {
				w.str(k)
				w.str(f.Metadata[k])
			}
		}
	case KindResponse:
		w.arrayLen(3)
		w.uint(KindResponse)
		w.uint(uint64(f.ID))
		w.raw(f.Payload)
	case KindError:
		n := 4
		if len(f.Details) > 0 {
			n = 5
		}
		w.arrayLen(n)
		w.uint(KindError)
		w.uint(uint64(f.ID))
		w.uint(uint64(f.Code))
		w.str(f.Message)
		if n == 5 {
			w.raw(f.Details)
		}
	case KindCancel, KindPing, KindPong:
		w.arrayLen(2)
		w.uint(f.Kind)
		w.uint(uint64(f.ID))
	case KindGoaway:
		w.arrayLen(3)
		w.uint(KindGoaway)
		w.uint(uint64(f.LastID))
		w.str(f.Message)
	default:
		return nil, fmt.Errorf("cannot encode a frame of kind %d", f.Kind)
	}
	if w.err != nil {
		return nil, w.err
	}
	out := buf.Bytes()
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// readU32 reads an integer of any width from 0 to 2^32-1.
func readU32(d *msgpack.Decoder, what string) (uint32, error) {
	v, err := d.DecodeInterfaceLoose()
	if err != nil {
		return 0, malformed("%s: %v", what, err)
	}
	switch n := v.(type) {
	case int64:
		if n >= 0 && n <= 0xffffffff {
			return uint32(n), nil
		}
	case uint64:
		if n <= 0xffffffff {
			return uint32(n), nil
		}
	}
	return 0, malformed("%s must be an integer from 0 to 2^32-1, got %v", what, v)
}

func readStr(d *msgpack.Decoder, what string) (string, error) {
	c, err := d.PeekCode()
	if err != nil {
		return "", malformed("%s: %v", what, err)
	}
	if !isStrCode(c) {
		return "", malformed("%s must be a string", what)
	}
	return d.DecodeString()
}

func isStrCode(c byte) bool {
	return (c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda || c == 0xdb
}

func readRaw(d *msgpack.Decoder, what string) (msgpack.RawMessage, error) {
	raw, err := d.DecodeRaw()
	if err != nil {
		return nil, malformed("%s: %v", what, err)
	}
	if err := checkValue(raw); err != nil {
		return nil, malformed("%s: %v", what, err)
	}
	return raw, nil
}

// checkValue refuses extension types and the never-used byte 0xc1 inside a value.
func checkValue(raw []byte) error {
	d := msgpack.NewDecoder(bytes.NewReader(raw))
	return walkValue(d, 0)
}

func walkValue(d *msgpack.Decoder, depth int) error {
	if depth > 256 {
		return errors.New("nesting deeper than 256 levels")
	}
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case c == 0xc1 || (c >= 0xd4 && c <= 0xd8) || (c >= 0xc7 && c <= 0xc9):
		return fmt.Errorf("byte 0x%02x (extension or reserved) is not allowed", c)
	case (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := walkValue(d, depth+1); err != nil {
				return err
			}
		}
		return nil
	case (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf:
		n, err := d.DecodeMapLen()
		if err != nil {
			return err
		}
		for i := 0; i < 2*n; i++ {
			if err := walkValue(d, depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		return d.Skip()
	}
}

// DecodeFrame decodes a frame body. Its errors wrap ErrMalformed or are ErrUnknownKind; for a
// malformed REQUEST whose id could be read, the returned frame carries that id.
func DecodeFrame(body []byte) (*Frame, error) {
	r := bytes.NewReader(body)
	d := msgpack.NewDecoder(r)
	f := &Frame{}
	if len(body) == 0 {
		return f, malformed("empty body")
	}
	c, err := d.PeekCode()
	if err != nil || !((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
		return f, malformed("the body is not an array")
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return f, malformed("%v", err)
	}
	if n < 2 {
		return f, malformed("a frame has at least 2 elements, got %d", n)
	}
	kind, err := d.DecodeInterfaceLoose()
	if err != nil {
		return f, malformed("kind: %v", err)
	}
	switch k := kind.(type) {
	case uint64:
		if k > 1<<53-1 {
			return f, malformed("kind %d is beyond 2^53-1", k)
		}
		f.Kind = k
	case int64:
		if k < 0 {
			return f, malformed("kind must be a non-negative integer")
		}
		f.Kind = uint64(k)
	default:
		return f, malformed("kind must be a non-negative integer")
	}
	need := map[uint64]int{KindHello: 3, KindRequest: 5, KindResponse: 3, KindError: 4,
		KindCancel: 2, KindPing: 2, KindPong: 2, KindGoaway: 3}[f.Kind]
	if f.Kind > KindGoaway {
		for i := 1; i < n; i++ {
			if err := walkValue(d, 1); err != nil {
				return f, malformed("%v", err)
			}
		}
		if r.Len() != 0 {
			return f, malformed("bytes after the value")
		}
		return f, ErrUnknownKind
	}
	if n < need {
		if f.Kind == KindRequest && n >= 2 {
			if id, err := readU32(d, "id"); err == nil && id != 0 {
				f.ID = id
			}
		}
		return f, malformed("a frame of kind %d has at least %d elements, got %d", f.Kind, need, n)
	}
	if err := decodeFields(d, f, n); err != nil {
		return f, err
	}
	for i := need + optionalFields(f.Kind); i < n; i++ {
		if err := walkValue(d, 1); err != nil {
			return f, malformed("%v", err)
		}
	}
	if r.Len() != 0 {
		return f, malformed("bytes after the value")
	}
	return f, nil
}

func optionalFields(kind uint64) int {
	if kind == KindRequest || kind == KindError {
		return 1
	}
	return 0
}

func decodeFields(d *msgpack.Decoder, f *Frame, n int) error {
	var err error
	switch f.Kind {
	case KindHello:
		if f.Version, err = readU32(d, "version"); err != nil {
			return err
		}
		return decodeHello(d, &f.Info)
	case KindRequest:
		if f.ID, err = readU32(d, "id"); err != nil {
			return err
		}
		if f.ID == 0 {
			return malformed("a REQUEST id must be from 1 to 2^32-1")
		}
		if f.Method, err = readStr(d, "method"); err != nil {
			return err
		}
		if f.Payload, err = readRaw(d, "payload"); err != nil {
			return err
		}
		if f.TimeoutMs, err = readU32(d, "timeout_ms"); err != nil {
			return err
		}
		if n > 5 {
			return decodeMetadata(d, f)
		}
	case KindResponse:
		if f.ID, err = readU32(d, "id"); err != nil {
			return err
		}
		f.Payload, err = readRaw(d, "payload")
	case KindError:
		if f.ID, err = readU32(d, "id"); err != nil {
			return err
		}
		if f.Code, err = readU32(d, "code"); err != nil {
			return err
		}
		if f.Message, err = readStr(d, "message"); err != nil {
			return err
		}
		if n > 4 {
			if f.Details, err = readRaw(d, "details"); err != nil {
				return err
			}
			if len(f.Details) == 1 && f.Details[0] == 0xc0 {
				f.Details = nil
			}
		}
	case KindCancel, KindPing, KindPong:
		f.ID, err = readU32(d, "id")
	case KindGoaway:
		if f.LastID, err = readU32(d, "last_id"); err != nil {
			return err
		}
		f.Message, err = readStr(d, "message")
	}
	return err
}

func decodeHello(d *msgpack.Decoder, info *Hello) error {
	c, err := d.PeekCode()
	if err != nil {
		return malformed("info: %v", err)
	}
	if c == 0xc0 {
		return d.Skip()
	}
	if !((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
		return malformed("info must be a map")
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return malformed("info: %v", err)
	}
	for i := 0; i < n; i++ {
		key, err := readStr(d, "an info key")
		if err != nil {
			return err
		}
		var dst *string
		switch key {
		case "cell":
			dst = &info.Cell
		case "schema_hash":
			dst = &info.SchemaHash
		case "peer":
			dst = &info.Peer
		case "agent":
			dst = &info.Agent
		case "max_frame":
			if info.MaxFrame, err = readU32(d, "max_frame"); err != nil {
				return err
			}
			continue
		}
		if dst == nil {
			if err := walkValue(d, 2); err != nil {
				return malformed("info: %v", err)
			}
		} else if *dst, err = readStr(d, key); err != nil {
			return err
		}
	}
	return nil
}

func decodeMetadata(d *msgpack.Decoder, f *Frame) error {
	c, err := d.PeekCode()
	if err != nil {
		return malformed("metadata: %v", err)
	}
	if c == 0xc0 {
		return d.Skip()
	}
	if !((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
		return malformed("metadata must be a map of strings")
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return malformed("metadata: %v", err)
	}
	f.Metadata = make(map[string]string, n)
	for i := 0; i < n; i++ {
		k, err := readStr(d, "a metadata key")
		if err != nil {
			return err
		}
		v, err := readStr(d, "a metadata value")
		if err != nil {
			return err
		}
		f.Metadata[k] = v
	}
	return nil
}

// writer encodes with a sticky error, for generated EncodeMsgpack methods.
type writer struct {
	e   *msgpack.Encoder
	err error
}

func (w *writer) do(err error) {
	if w.err == nil {
		w.err = err
	}
}
func (w *writer) arrayLen(n int)  { w.do(w.e.EncodeArrayLen(n)) }
func (w *writer) mapLen(n int)    { w.do(w.e.EncodeMapLen(n)) }
func (w *writer) str(s string)    { w.do(w.e.EncodeString(s)) }
func (w *writer) boolean(b bool)  { w.do(w.e.EncodeBool(b)) }
func (w *writer) int(n int64)     { w.do(w.e.EncodeInt(n)) }
func (w *writer) uint(n uint64)   { w.do(w.e.EncodeUint(n)) }
func (w *writer) float(f float64) { w.do(w.e.EncodeFloat64(f)) }
func (w *writer) value(v any)     { w.do(w.e.Encode(v)) }
func (w *writer) raw(b []byte)    { w.do(w.e.Encode(msgpack.RawMessage(b))) }
func (w *writer) optStr(k, v string) {
	if v != "" {
		w.str(k)
		w.str(v)
	}
}
func (w *writer) bytes(b []byte) {
	if b == nil {
		b = []byte{}
	}
	w.do(w.e.EncodeBytes(b))
}

// Options configure Dial.
type Options struct {
	// SocketPath is the Unix socket to dial; empty means discover the cell through the nucleus
	// at $CELL_HOME/run/nucleus.sock, else use $CELL_HOME/run/<cell>.sock.
	SocketPath string
	// Home overrides $CELL_HOME (default ~/.cell).
	Home string
	// Strict fails Dial with CodeFailedPrecondition when the server's schema hash differs from
	// the one this client was generated for.
	Strict bool
	// Timeout is the deadline of calls whose context has none; 0 means DefaultTimeout.
	Timeout time.Duration
	// Peer is sent in HELLO as this client's identity.
	Peer string
}

// CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct{ metadata map[string]string }

// WithMetadata sends metadata (trace ids, tenant, ...) with the call.
func WithMetadata(md map[string]string) CallOption {
	return func(o *callOptions) { o.metadata = md }
}

type result struct {
	payload msgpack.RawMessage
	err     error
}

// Conn is one multiplexed connection to a cell: many calls in flight, answered in any order.
type Conn struct {
	nc       net.Conn
	opts     Options
	wmu      sync.Mutex
	mu       sync.Mutex
	pending  map[uint32]chan result
	nextID   uint32
	closeErr error
	goaway   bool
	hello    Hello
	helloed  chan struct{}
	done     chan struct{}
	peerMax  uint32
}

// Home is the Cell home directory: opts.Home, $CELL_HOME, or ~/.cell.
func Home(opts Options) string {
	if opts.Home != "" {
		return opts.Home
	}
	if h := os.Getenv("CELL_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cell")
}

type discoverRequest struct {
	Cell string `msgpack:"cell"`
	All  bool   `msgpack:"all"`
}

type instances struct {
	Instances []struct {
		Health    string `msgpack:"health"`
		Endpoints []struct {
			Transport string `msgpack:"transport"`
			Address   string `msgpack:"address"`
		} `msgpack:"endpoints"`
	} `msgpack:"instances"`
}

// Discover returns the Unix sockets of the usable instances of cell that the nucleus knows, in a
// random order, or the cell's own socket $CELL_HOME/run/<cell>.sock when there is no nucleus or
// it knows none.
func Discover(ctx context.Context, cell string, opts Options) []string {
	run := filepath.Join(Home(opts), "run")
	fallback := []string{filepath.Join(run, cell+".sock")}
	nucleus := filepath.Join(run, "nucleus.sock")
	if cell == "nucleus" || os.Getenv("CELL_NUCLEUS") == "0" {
		return fallback
	}
	if fi, err := os.Stat(nucleus); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return fallback
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := dialSocket(ctx, nucleus, "", Options{})
	if err != nil {
		return fallback
	}
	defer c.Close()
	var found instances
	if err := c.Call(ctx, "discover", discoverRequest{Cell: cell, All: true}, &found); err != nil {
		return fallback
	}
	var out []string
	for _, i := range found.Instances {
		if i.Health != "healthy" && i.Health != "starting" {
			continue
		}
		for _, e := range i.Endpoints {
			if e.Transport == "uds" {
				out = append(out, e.Address)
				break
			}
		}
	}
	if len(out) == 0 {
		return fallback
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Dial connects to cell: at opts.SocketPath, else to an instance the nucleus knows, else at
// $CELL_HOME/run/<cell>.sock. It waits for the server's HELLO and checks its schema hash
// against schemaHash (see Options.Strict).
func Dial(ctx context.Context, cell, schemaHash string, opts Options) (*Conn, error) {
	paths := []string{opts.SocketPath}
	if opts.SocketPath == "" {
		paths = Discover(ctx, cell, opts)
	}
	var last error
	for _, path := range paths {
		c, err := dialSocket(ctx, path, schemaHash, opts)
		if err == nil {
			return c, nil
		}
		last = err
		if ErrorCode(err) == CodeFailedPrecondition {
			break
		}
	}
	return nil, last
}

func dialSocket(ctx context.Context, path, schemaHash string, opts Options) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		ce := newError(CodeUnavailable, err, "cannot connect to %q: %v (is the cell running?)", path, err)
		ce.unsent = true
		return nil, ce
	}
	c := &Conn{nc: nc, opts: opts, pending: map[uint32]chan result{}, helloed: make(chan struct{}),
		done: make(chan struct{}), peerMax: DefaultMaxFrame}
	hello, _ := EncodeFrame(&Frame{Kind: KindHello, Version: ProtocolVersion, Info: Hello{
		SchemaHash: schemaHash, MaxFrame: DefaultMaxFrame, Peer: opts.Peer, Agent: agent}})
	if _, err := nc.Write(hello); err != nil {
		nc.Close()
		return nil, newError(CodeUnavailable, err, "cannot write HELLO to %q: %v", path, err)
	}
	go c.readLoop()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeoutOf(opts))
		defer cancel()
	}
	select {
	case <-c.helloed:
	case <-c.done:
		return nil, c.closeErr
	case <-ctx.Done():
		c.Close()
		return nil, ctxError(ctx)
	}
	if opts.Strict && schemaHash != "" && c.hello.SchemaHash != schemaHash {
		c.Close()
		return nil, newError(CodeFailedPrecondition, nil,
			"the cell at %q has schema %q, this client was generated for %q: regenerate the client or dial without Strict",
			path, c.hello.SchemaHash, schemaHash)
	}
	return c, nil
}

// ServerHello is what the server said in its HELLO: cell name, schema hash, limits.
func (c *Conn) ServerHello() Hello { return c.hello }

// Close closes the connection; calls in flight fail with CodeUnavailable.
func (c *Conn) Close() error {
	c.fail(newError(CodeUnavailable, nil, "the connection was closed"))
	return nil
}

// Closed reports whether the connection can no longer take calls (closed, or after GOAWAY).
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr != nil || c.goaway
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return
	}
	c.closeErr = err
	pending := c.pending
	c.pending = map[uint32]chan result{}
	c.mu.Unlock()
	c.nc.Close()
	for _, ch := range pending {
		ch <- result{err: err}
	}
	close(c.done)
}

func (c *Conn) readLoop() {
	helloSeen := false
	for {
		body, err := ReadFrame(c.nc, DefaultMaxFrame)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				c.fail(newError(CodeResourceExhausted, err, "the cell sent a frame over the limit: %v", err))
			} else {
				c.fail(newError(CodeUnavailable, err, "the connection was lost: %v", err))
			}
			return
		}
		f, err := DecodeFrame(body)
		if errors.Is(err, ErrUnknownKind) {
			continue
		}
		if err != nil {
			c.fail(newError(CodeInternal, err, "the cell sent a malformed frame: %v", err))
			return
		}
		switch f.Kind {
		case KindHello:
			if !helloSeen {
				helloSeen = true
				c.hello = f.Info
				if f.Info.MaxFrame != 0 {
					c.mu.Lock()
					c.peerMax = f.Info.MaxFrame
					c.mu.Unlock()
				}
				close(c.helloed)
			}
		case KindResponse:
			c.finish(f.ID, result{payload: f.Payload})
		case KindError:
			ce := &CellError{Code: CodeFromWire(uint64(f.Code)), Message: f.Message}
			if len(f.Details) > 0 {
				_ = msgpack.Unmarshal(f.Details, &ce.Details)
			}
			if f.ID == 0 {
				c.fail(ce)
				return
			}
			c.finish(f.ID, result{err: ce})
		case KindPong:
			c.finish(f.ID, result{})
		case KindPing:
			pong, _ := EncodeFrame(&Frame{Kind: KindPong, ID: f.ID})
			_ = c.write(pong)
		case KindGoaway:
			c.goAway(f.LastID, f.Message)
		}
	}
}

func (c *Conn) goAway(lastID uint32, message string) {
	c.mu.Lock()
	c.goaway = true
	var dropped []chan result
	for id, ch := range c.pending {
		if id > lastID {
			dropped = append(dropped, ch)
			delete(c.pending, id)
		}
	}
	idle := len(c.pending) == 0
	c.mu.Unlock()
	for _, ch := range dropped {
		err := newError(CodeUnavailable, nil, "the cell is shutting down (%s) and did not process the call: retry it", message)
		err.unsent = true
		ch <- result{err: err}
	}
	if idle {
		c.Close()
	}
}

func (c *Conn) finish(id uint32, r result) {
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	idle := c.goaway && len(c.pending) == 0
	c.mu.Unlock()
	if ok {
		ch <- r
	}
	if idle {
		c.Close()
	}
}

func (c *Conn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(frame)
	return err
}

func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return newError(CodeDeadlineExceeded, ctx.Err(), "the deadline passed before the cell answered")
	}
	return newError(CodeCancelled, ctx.Err(), "the call was cancelled")
}

// Call calls method with req and decodes the answer into resp (a pointer, or nil). The deadline
// is the context's, or Options.Timeout; when ctx ends first, Call sends CANCEL and fails with
// CodeDeadlineExceeded or CodeCancelled.
func (c *Conn) Call(ctx context.Context, method string, req, resp any, opts ...CallOption) error {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeoutOf(c.opts))
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	left := time.Until(deadline)
	if left <= 0 {
		return ctxError(ctx)
	}
	payload, err := Marshal(req)
	if err != nil {
		return newError(CodeInvalidArgument, err, "cannot encode the request of %s: %v", method, err)
	}
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.closeErr != nil || c.goaway {
		err := c.closeErr
		c.mu.Unlock()
		ce := newError(CodeUnavailable, err, "the connection is closed or the cell is shutting down: dial again")
		ce.unsent = true
		return ce
	}
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, busy := c.pending[c.nextID]; !busy {
			break
		}
	}
	id := c.nextID
	c.pending[id] = ch
	peerMax := c.peerMax
	c.mu.Unlock()
	timeoutMs := uint32((left + time.Millisecond - 1) / time.Millisecond)
	frame, err := EncodeFrame(&Frame{Kind: KindRequest, ID: id, Method: method, Payload: payload,
		TimeoutMs: timeoutMs, Metadata: o.metadata})
	if err == nil && uint32(len(frame)-4) > peerMax {
		err = newError(CodeResourceExhausted, nil, "the request of %s is %d bytes, over the cell's limit of %d: send less", method, len(frame)-4, peerMax)
	}
	if err == nil {
		if werr := c.write(frame); werr != nil {
			err = newError(CodeUnavailable, werr, "cannot send the call: %v", werr)
		}
	}
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return r.err
		}
		if resp == nil {
			return nil
		}
		if err := msgpack.Unmarshal(r.payload, resp); err != nil {
			return newError(CodeInternal, err, "cannot decode the answer of %s: %v", method, err)
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		_, inFlight := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if inFlight {
			cancel, _ := EncodeFrame(&Frame{Kind: KindCancel, ID: id})
			_ = c.write(cancel)
		}
		return ctxError(ctx)
	}
}

// Ping measures the round-trip time of the connection.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return 0, c.closeErr
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	start := time.Now()
	ping, _ := EncodeFrame(&Frame{Kind: KindPing, ID: id})
	if err := c.write(ping); err != nil {
		return 0, newError(CodeUnavailable, err, "cannot send PING: %v", err)
	}
	select {
	case r := <-ch:
		return time.Since(start), r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return 0, ctxError(ctx)
	}
}

func timeoutOf(opts Options) time.Duration {
	if opts.Timeout > 0 {
		return opts.Timeout
	}
	return DefaultTimeout
}

// Client is a client of the cell this package was generated for. It dials again after its
// connection is lost or the cell says GOAWAY, and retries a call that failed with
// CodeUnavailable when the method is idempotent or the cell provably never processed it (up to
// 3 attempts, backing off 25 then 50 ms, never past the deadline).
type Client struct {
	mu   sync.Mutex
	conn *Conn
	opts Options
}

// Connect connects to the cell (see Dial for how it is found and checked).
func Connect(ctx context.Context, opts Options) (*Client, error) {
	c := &Client{opts: opts}
	if _, err := c.Conn(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Conn is the current connection, dialled again when it was closed.
func (c *Client) Conn(ctx context.Context) (*Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.Closed() {
		conn, err := Dial(ctx, CellName, SchemaHash, c.opts)
		if err != nil {
			return nil, err
		}
		c.conn = conn
	}
	return c.conn, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Call calls method by name, for methods without a typed wrapper; see Conn.Call.
func (c *Client) Call(ctx context.Context, method string, idempotent bool, req, resp any, opts ...CallOption) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeoutOf(c.opts))
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		conn, err := c.Conn(ctx)
		if err == nil {
			err = conn.Call(ctx, method, req, resp, opts...)
		}
		var ce *CellError
		if err == nil || attempt >= 2 || !errors.As(err, &ce) || ce.Code != CodeUnavailable || !(idempotent || ce.unsent) {
			return err
		}
		select {
		case <-time.After((25 * time.Millisecond) << attempt):
		case <-ctx.Done():
			return ctxError(ctx)
		}
	}
}
