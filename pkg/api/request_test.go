package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

const testLimit = 1 << 16

const conf = `{"cniVersion":"1.1.0","name":"plexus","type":"plexus"}`

// body builds a request body from fields; nil values are left out.
func body(t testing.TB, fields map[string]interface{}) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func full(cmd Command) map[string]interface{} {
	return map[string]interface{}{
		"command":     cmd,
		"containerID": "abc123",
		"netns":       "/var/run/netns/cni-1",
		"ifName":      "eth0",
		"args":        "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
		"path":        "/opt/cni/bin",
		"config":      json.RawMessage(conf),
	}
}

func without(m map[string]interface{}, keys ...string) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func with(m map[string]interface{}, key string, v interface{}) map[string]interface{} {
	out := without(m)
	out[key] = v
	return out
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		limit   int64    // 0: testLimit; negative: a limit of 0
		want    *Request // if set, the exact decoded request
		wantErr bool     // expect ErrBadRequest
	}{
		{name: "ADD", body: body(t, full(CmdAdd)), want: &Request{
			Command: CmdAdd, ContainerID: "abc123", Netns: "/var/run/netns/cni-1", IfName: "eth0",
			Args: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p", Path: "/opt/cni/bin", Config: json.RawMessage(conf),
		}},
		{name: "DEL", body: body(t, full(CmdDel))},
		{name: "DEL without netns", body: body(t, without(full(CmdDel), "netns"))},
		{name: "CHECK", body: body(t, full(CmdCheck))},
		{name: "STATUS", body: body(t, full(CmdStatus))},
		{name: "STATUS with config only", body: body(t, without(full(CmdStatus), "containerID", "netns", "ifName", "args", "path")),
			want: &Request{Command: CmdStatus, Config: json.RawMessage(conf)}},
		{name: "GC with config only", body: body(t, without(full(CmdGC), "containerID", "netns", "ifName", "args", "path")),
			want: &Request{Command: CmdGC, Config: json.RawMessage(conf)}},
		{name: "config with whitespace and nesting", body: "{\"command\":\"GC\",\"config\": \n {\"a\": [1, {\"b\": null}]} }",
			want: &Request{Command: CmdGC, Config: json.RawMessage("{\"a\": [1, {\"b\": null}]}")}},
		{name: "unknown fields ignored", body: body(t, with(full(CmdAdd), "env", []string{"SECRET=1"}))},
		{name: "body exactly at the limit", body: body(t, full(CmdAdd)), limit: int64(len(body(t, full(CmdAdd))))},

		{name: "ADD without netns", body: body(t, without(full(CmdAdd), "netns")), wantErr: true},
		{name: "CHECK without netns", body: body(t, without(full(CmdCheck), "netns")), wantErr: true},
		{name: "ADD without containerID", body: body(t, without(full(CmdAdd), "containerID")), wantErr: true},
		{name: "DEL without containerID", body: body(t, without(full(CmdDel), "containerID")), wantErr: true},
		{name: "CHECK without containerID", body: body(t, without(full(CmdCheck), "containerID")), wantErr: true},
		{name: "ADD without ifName", body: body(t, without(full(CmdAdd), "ifName")), wantErr: true},
		{name: "DEL without ifName", body: body(t, without(full(CmdDel), "ifName")), wantErr: true},
		{name: "CHECK without ifName", body: body(t, without(full(CmdCheck), "ifName")), wantErr: true},
		{name: "ADD with nothing but config", body: body(t, map[string]interface{}{"command": "ADD", "config": json.RawMessage(conf)}), wantErr: true},
		{name: "unknown command", body: body(t, with(full(CmdAdd), "command", "VERSION")), wantErr: true},
		{name: "lower-case command", body: body(t, with(full(CmdAdd), "command", "add")), wantErr: true},
		{name: "missing command", body: body(t, without(full(CmdAdd), "command")), wantErr: true},
		{name: "command not a string", body: body(t, with(full(CmdAdd), "command", 1)), wantErr: true},
		{name: "missing config", body: body(t, without(full(CmdAdd), "config")), wantErr: true},
		{name: "config null", body: body(t, with(full(CmdAdd), "config", nil)), wantErr: true},
		{name: "config array", body: body(t, with(full(CmdAdd), "config", []int{1})), wantErr: true},
		{name: "config string", body: body(t, with(full(CmdAdd), "config", conf)), wantErr: true},
		{name: "config number", body: body(t, with(full(CmdGC), "config", 7)), wantErr: true},
		{name: "body over the limit", body: body(t, full(CmdAdd)), limit: int64(len(body(t, full(CmdAdd)))) - 1, wantErr: true},
		{name: "zero limit", body: body(t, full(CmdAdd)), limit: -1, wantErr: true},
		{name: "empty body", body: "", wantErr: true},
		{name: "garbage", body: "\x00\xffnot json", wantErr: true},
		{name: "truncated", body: body(t, full(CmdAdd))[:40], wantErr: true},
		{name: "trailing garbage", body: body(t, full(CmdAdd)) + "x", wantErr: true},
		{name: "top-level array", body: `[{"command":"GC","config":{}}]`, wantErr: true},
		{name: "top-level null", body: `null`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limit := tt.limit
			switch {
			case limit == 0:
				limit = testLimit
			case limit < 0:
				limit = 0
			}
			got, err := DecodeRequest(strings.NewReader(tt.body), limit)
			if tt.wantErr {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("DecodeRequest = %+v, %v; want ErrBadRequest", got, err)
				}
				if got != nil {
					t.Fatalf("DecodeRequest returned %+v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("decoded request does not validate: %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeRequest = %+v, want %+v", got, tt.want)
			}
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecodeRequestReadError(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection reset")
	tests := []struct {
		name string
		r    io.Reader
	}{
		{name: "immediate error", r: errReader{err: cause}},
		{name: "error after data", r: io.MultiReader(strings.NewReader(`{"command":"GC",`), errReader{err: cause})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeRequest(tt.r, testLimit)
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
			if !errors.Is(err, cause) {
				t.Fatalf("err = %v does not wrap the read error", err)
			}
		})
	}
}

// TestDecodeRequestLimits covers limits at the edges of int64. The
// math.MaxInt64 case is a known bug: limit+1 overflows, io.LimitReader gets
// a negative N and reads nothing, so every request is rejected
// (pkg/api/request.go, DecodeRequest).
func TestDecodeRequestLimits(t *testing.T) {
	t.Parallel()
	valid := body(t, full(CmdAdd))
	tests := []struct {
		name   string
		limit  int64
		wantOK bool
	}{
		{name: "large", limit: 1 << 40, wantOK: true},
		{name: "max int64 minus one", limit: math.MaxInt64 - 1, wantOK: true},
		{name: "max int64", limit: math.MaxInt64, wantOK: true},
		{name: "negative", limit: -5, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeRequest(strings.NewReader(valid), tt.limit)
			if tt.wantOK && err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if !tt.wantOK && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	obj := json.RawMessage(`{}`)
	tests := []struct {
		name    string
		req     Request
		wantErr bool
	}{
		{name: "ADD complete", req: Request{Command: CmdAdd, ContainerID: "c", Netns: "/n", IfName: "eth0", Config: obj}},
		{name: "DEL without netns", req: Request{Command: CmdDel, ContainerID: "c", IfName: "eth0", Config: obj}},
		{name: "STATUS bare", req: Request{Command: CmdStatus, Config: obj}},
		{name: "GC bare", req: Request{Command: CmdGC, Config: obj}},
		{name: "empty command", req: Request{Config: obj}, wantErr: true},
		{name: "nil config", req: Request{Command: CmdGC}, wantErr: true},
		{name: "blank config", req: Request{Command: CmdGC, Config: json.RawMessage(" \n")}, wantErr: true},
		{name: "all missing", req: Request{Command: CmdAdd}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.req.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("Validate error %v is not ErrBadRequest", err)
			}
		})
	}
}

// normalizeConfig makes two encodings of one JSON value comparable:
// json.Marshal compacts a RawMessage and HTML-escapes <, >, & (and U+2028,
// U+2029) inside it, so the first decode's Config is compacted and escaped
// the same way.
func normalizeConfig(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	var c, e bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		t.Fatalf("compact config %q: %v", raw, err)
	}
	json.HTMLEscape(&e, c.Bytes())
	return e.Bytes()
}

func FuzzDecodeRequest(f *testing.F) {
	for _, cmd := range []Command{CmdAdd, CmdDel, CmdCheck, CmdStatus, CmdGC} {
		b, err := json.Marshal(full(cmd))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	for _, s := range []string{
		`{"command":"GC","config":{"cniVersion":"1.1.0","n":123456789012345678901234567890,"f":1e400}}`,
		`{"command":"STATUS","config":{"a":{"b":{"c":[[[{"d":"<&>\u2028"}]]]}}}}`,
		`{"command":"ADD","containerID":"c","netns":"/n","ifName":"eth0","config":{}}`,
		`{"command":"DEL","containerID":"c","ifName":"eth0","config":{"x":"\xff"}}`,
		`{"command":"ADD","config":[]}`,
		`{"command":"VERSION","config":{}}`,
		`{"Command":"GC","CONFIG":{}}`,
		`{"command":"GC","command":"ADD","config":{}}`,
		`{"command":"GC","config":{"k":1e99999}}`,
		"",
		"{",
		"null",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(bytes.NewReader(data), 4096)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			if req != nil {
				t.Fatalf("request %+v returned with error", req)
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("accepted request fails Validate: %v", err)
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeRequest(bytes.NewReader(enc), int64(len(enc)))
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		want := *req
		want.Config = normalizeConfig(t, req.Config)
		got := *again
		got.Config = normalizeConfig(t, again.Config)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the request:\nfirst  %+v\nsecond %+v", want, got)
		}
	})
}
