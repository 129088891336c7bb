// The Go conformance runner: runs every case of tests/conformance/cases.json against the
// conformance cell through the generated Go client (package conformance, generated into
// ./client), and checks the wire test vectors of tests/vectors/ through the client's codec and
// framing. Prints one JSON line per check and a summary line (tests/conformance/README.md) and
// exits 1 when any check failed. The generated client is expected in ./client (see go.mod).
//
//	runner cases <cases.json> [<socket>]   (no socket: discover through $CELL_HOME)
//	runner vectors <tests/vectors>
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"conformance"
)

var passed, failed int

// report prints one JSON line per check (tests/conformance/README.md, "Runners").
func report(name string, err error) {
	line := map[string]any{"name": name, "ok": err == nil}
	if err != nil {
		failed++
		line["error"] = err.Error()
	} else {
		passed++
	}
	out, _ := json.Marshal(line)
	fmt.Println(string(out))
}

// typed calls method through the generated client: the request goes through the generated
// struct (decoded from MessagePack), the response back through its generated encoder.
func typed(ctx context.Context, c *conformance.Client, method string, req []byte) ([]byte, error) {
	switch method {
	case "echo_scalars":
		var r conformance.Scalars
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.EchoScalars(ctx, r))
	case "echo_nested":
		var r conformance.Outer
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.EchoNested(ctx, r))
	case "echo_optionals":
		var r conformance.Optionals
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.EchoOptionals(ctx, r))
	case "echo_any":
		var r conformance.Anything
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.EchoAny(ctx, r))
	case "echo_blob":
		var r conformance.Blob
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.EchoBlob(ctx, r))
	case "make_blob":
		var r conformance.Size
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.MakeBlob(ctx, r))
	case "fail":
		var r conformance.Failure
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.Fail(ctx, r))
	case "slow":
		var r conformance.Slow
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.Slow(ctx, r))
	case "was_cancelled":
		var r conformance.Token
		if err := conformance.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		return marshal(c.WasCancelled(ctx, r))
	}
	return nil, fmt.Errorf("the runner does not know method %q", method)
}

func marshal[T any](resp *T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return conformance.Marshal(resp)
}

func runCase(c *conformance.Client, tc *object) error {
	method := tc.get("method").(string)
	req, err := encode(canonical(tc.get("request")))
	if err != nil {
		return err
	}
	ctx := context.Background()
	if ms := tc.get("timeout_ms"); ms != nil {
		n, _ := ms.(interface{ Int64() (int64, error) }).Int64()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(n)*time.Millisecond)
		defer cancel()
	}
	if ms := tc.get("cancel_after_ms"); ms != nil {
		n, _ := ms.(interface{ Int64() (int64, error) }).Int64()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		time.AfterFunc(time.Duration(n)*time.Millisecond, cancel)
	}
	start := time.Now()
	got, callErr := typed(ctx, c, method, req)
	elapsed := time.Since(start)
	if ms := tc.get("max_elapsed_ms"); ms != nil {
		n, _ := ms.(interface{ Int64() (int64, error) }).Int64()
		if elapsed > time.Duration(n)*time.Millisecond {
			return fmt.Errorf("took %v, more than %d ms", elapsed, n)
		}
	}
	expect := tc.get("expect").(*object)
	if want := expect.get("error"); want != nil {
		w := want.(*object)
		var ce *conformance.CellError
		if !errors.As(callErr, &ce) {
			return fmt.Errorf("expected error %s, got %v", w.get("code"), callErr)
		}
		if ce.Code.String() != w.get("code").(string) {
			return fmt.Errorf("expected code %s, got %s (%s)", w.get("code"), ce.Code, ce.Message)
		}
		if m := w.get("message"); m != nil && m.(string) != ce.Message {
			return fmt.Errorf("expected message %q, got %q", m, ce.Message)
		}
		return nil
	}
	if callErr != nil {
		return fmt.Errorf("unexpected error: %w", callErr)
	}
	gotValue, err := decode(got)
	if err != nil {
		return err
	}
	want := canonical(expect.get("response"))
	if !same(gotValue, want, false) {
		return fmt.Errorf("got %s, want %s", show(gotValue), show(want))
	}
	return nil
}

func runCases(path, socket string) {
	data, err := os.ReadFile(path)
	if err != nil {
		report("reading the cases", err)
		return
	}
	parsed, err := parseJSON(data)
	if err != nil {
		report("parsing the cases", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := conformance.Connect(ctx, conformance.Options{SocketPath: socket, Strict: true})
	report("connect with a strict schema-hash check", err)
	if err != nil {
		return
	}
	defer c.Close()
	for _, tc := range parsed.(*object).get("cases").([]any) {
		o := tc.(*object)
		report(o.get("name").(string), runCase(c, o))
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: runner cases <cases.json> <socket> | runner vectors <dir>")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "cases":
		socket := ""
		if len(os.Args) > 3 {
			socket = os.Args[3]
		}
		runCases(os.Args[2], socket)
	case "vectors":
		runVectors(os.Args[2])
	}
	out, _ := json.Marshal(map[string]any{"summary": true, "passed": passed, "failed": failed})
	fmt.Println(string(out))
	if failed > 0 {
		os.Exit(1)
	}
}
