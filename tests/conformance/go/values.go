package main

// Values as the conformance cases and the test vectors write them in JSON ($bytes, $int,
// $float, $pattern tags; maps in wire order), converted to and from MessagePack.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// object is a JSON object with its keys in order.
type object struct {
	keys []string
	vals map[string]any
}

func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return parseValue(dec)
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			out := []any{}
			for dec.More() {
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token()
			return out, err
		}
		obj := &object{vals: map[string]any{}}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			obj.keys = append(obj.keys, k.(string))
			obj.vals[k.(string)] = v
		}
		_, err := dec.Token()
		return obj, err
	default:
		return t, nil
	}
}

func (o *object) get(k string) any {
	if o == nil {
		return nil
	}
	return o.vals[k]
}

func pattern(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(i % 251)
	}
	return out
}

// canonical turns parsed JSON into comparable Go values: *big.Int, float64, []byte, string,
// bool, nil, []any, *object.
func canonical(v any) any {
	switch t := v.(type) {
	case json.Number:
		s := string(t)
		if !strings.ContainsAny(s, ".eE") {
			n, _ := new(big.Int).SetString(s, 10)
			return n
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = canonical(x)
		}
		return out
	case *object:
		if len(t.keys) == 1 && strings.HasPrefix(t.keys[0], "$") {
			arg := t.vals[t.keys[0]]
			switch t.keys[0] {
			case "$bytes":
				b, _ := hex.DecodeString(arg.(string))
				return b
			case "$int":
				n, _ := new(big.Int).SetString(arg.(string), 10)
				return n
			case "$float":
				f, _ := strconv.ParseFloat(arg.(string), 64)
				if arg.(string) == "-0" {
					f = math.Copysign(0, -1)
				}
				if math.IsNaN(f) {
					f = math.Float64frombits(0x7ff8000000000000)
				}
				return f
			case "$pattern":
				n, _ := strconv.Atoi(string(arg.(json.Number)))
				return pattern(n)
			}
		}
		out := &object{vals: map[string]any{}, keys: t.keys}
		for _, k := range t.keys {
			out.vals[k] = canonical(t.vals[k])
		}
		return out
	default:
		return v
	}
}

// encode writes a canonical value as MessagePack, maps in key order, integers in their
// smallest form, floats as float64.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := encodeTo(enc, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encodeTo(enc *msgpack.Encoder, v any) error {
	switch t := v.(type) {
	case nil:
		return enc.EncodeNil()
	case bool:
		return enc.EncodeBool(t)
	case string:
		return enc.EncodeString(t)
	case []byte:
		return enc.EncodeBytes(t)
	case float64:
		return enc.EncodeFloat64(t)
	case *big.Int:
		if t.Sign() < 0 {
			return enc.EncodeInt(t.Int64())
		}
		return enc.EncodeUint(t.Uint64())
	case []any:
		if err := enc.EncodeArrayLen(len(t)); err != nil {
			return err
		}
		for _, x := range t {
			if err := encodeTo(enc, x); err != nil {
				return err
			}
		}
		return nil
	case *object:
		if err := enc.EncodeMapLen(len(t.keys)); err != nil {
			return err
		}
		for _, k := range t.keys {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := encodeTo(enc, t.vals[k]); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("cannot encode %T", v)
}

// decode reads MessagePack into canonical values.
func decode(data []byte) (any, error) {
	r := bytes.NewReader(data)
	v, err := decodeFrom(msgpack.NewDecoder(r))
	if err == nil && r.Len() != 0 {
		err = fmt.Errorf("%d bytes after the value", r.Len())
	}
	return v, err
}

func decodeFrom(d *msgpack.Decoder) (any, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		v, err := d.DecodeInterfaceLoose()
		if err != nil {
			return nil, err
		}
		switch n := v.(type) {
		case int64:
			return big.NewInt(n), nil
		case uint64:
			return new(big.Int).SetUint64(n), nil
		}
		return nil, fmt.Errorf("not an integer: %v", v)
	case c == 0xca || c == 0xcb:
		return d.DecodeFloat64()
	case c == 0xc4 || c == 0xc5 || c == 0xc6:
		b, err := d.DecodeBytes()
		if b == nil && err == nil {
			b = []byte{}
		}
		return b, err
	case (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = decodeFrom(d); err != nil {
				return nil, err
			}
		}
		return out, nil
	case (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		out := &object{vals: map[string]any{}}
		for i := 0; i < n; i++ {
			k, err := d.DecodeString()
			if err != nil {
				return nil, err
			}
			if out.vals[k], err = decodeFrom(d); err != nil {
				return nil, err
			}
			out.keys = append(out.keys, k)
		}
		return out, nil
	}
	return d.DecodeInterface()
}

// same compares canonical values; maps ignore key order. With strict, an integer never equals a
// float and floats compare bit for bit.
func same(a, b any, strict bool) bool {
	switch x := a.(type) {
	case *big.Int:
		switch y := b.(type) {
		case *big.Int:
			return x.Cmp(y) == 0
		case float64:
			f, _ := new(big.Float).SetInt(x).Float64()
			return !strict && f == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case float64:
			if strict {
				return math.Float64bits(x) == math.Float64bits(y) || (math.IsNaN(x) && math.IsNaN(y))
			}
			return x == y || (math.IsNaN(x) && math.IsNaN(y))
		case *big.Int:
			return same(y, x, strict)
		}
		return false
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i], strict) {
				return false
			}
		}
		return true
	case *object:
		y, ok := b.(*object)
		if !ok || len(x.keys) != len(y.keys) {
			return false
		}
		for _, k := range x.keys {
			yv, ok := y.vals[k]
			if !ok || !same(x.vals[k], yv, strict) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	return reflect.DeepEqual(a, b)
}

func show(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case *object:
			b.WriteString("{")
			for i, k := range t.keys {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%q: ", k)
				walk(t.vals[k])
			}
			b.WriteString("}")
		case []any:
			b.WriteString("[")
			for i, x := range t {
				if i > 0 {
					b.WriteString(", ")
				}
				walk(x)
			}
			b.WriteString("]")
		case []byte:
			if len(t) > 32 {
				fmt.Fprintf(&b, "<%d bytes>", len(t))
			} else {
				fmt.Fprintf(&b, "0x%x", t)
			}
		default:
			fmt.Fprintf(&b, "%v", t)
		}
	}
	walk(v)
	return b.String()
}
