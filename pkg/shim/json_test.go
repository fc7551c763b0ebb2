package shim

import (
	"bytes"
	"encoding/json"
	"testing"
)

var jsonSeeds = []string{
	`{}`, ` {"a":1} `, `{"a":"b","a":"c"}`, `{"a":{"b":[1,-2.5e+3,true,false,null,"x"]}}`,
	`{"s":"\u00e9\ud83d\ude00\ud800x\\\"\/\b\f\n\r\t"}`, `{"s":"` + "\xff\xfe" + `"}`, `[]`, `{"a":01}`,
	`{"a":1,}`, `{"a" 1}`, `{"a":"` + "\x01" + `"}`, `{"a":1} x`, `{"a":tru}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{`, `{"a":[1,]}`, `{"a":[}`,
}

// object accepts exactly the JSON objects encoding/json accepts, and each
// member's value is what encoding/json reads.
func FuzzObject(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := object(data)
		var want map[string]json.RawMessage
		werr := json.Unmarshal(data, &want)
		if werr != nil || want == nil {
			if err == nil {
				t.Fatalf("%q: accepted; encoding/json: %v", data, werr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v; encoding/json accepts it", data, err)
		}
		got := map[string][]byte{}
		for _, m := range ms {
			got[m.key] = m.raw
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d keys, encoding/json %d", data, len(got), len(want))
		}
		for k, w := range want {
			if !bytes.Equal(got[k], w) {
				t.Fatalf("%q: %q = %q, encoding/json %q", data, k, got[k], w)
			}
			var ws string
			if json.Unmarshal(w, &ws) == nil {
				if gs, ok := stringValue(got[k]); !ok || gs != ws {
					t.Fatalf("%q: %q decodes to %q, encoding/json %q", data, k, gs, ws)
				}
			}
		}
	})
}

// appendQuoted writes a JSON string that encoding/json reads back as the
// string it would itself have written (invalid UTF-8 as U+FFFD).
func FuzzQuoted(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00\x1f\x7f", "é😀", "\xff", "\u2028<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want string
		if err := json.Unmarshal(appendQuoted(nil, s), &got); err != nil {
			t.Fatalf("%q: %s: %v", s, appendQuoted(nil, s), err)
		}
		wb, _ := json.Marshal(s)
		_ = json.Unmarshal(wb, &want)
		if got != want {
			t.Fatalf("%q: read back %q, want %q", s, got, want)
		}
	})
}
