package rawjson

import (
	"errors"
	"testing"
)

func TestReplaceMember(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		wantErr        error
	}{
		{
			name: "keeps other keys, order and formatting",
			in:   "{ \"kind\" : \"cniCacheV1\",\n  \"result\":  {\"routes\": [1]} ,\"z\":[1, 2]}\n",
			want: "{ \"kind\" : \"cniCacheV1\",\n  \"result\":  {\"new\":true} ,\"z\":[1, 2]}\n",
		},
		{name: "last key", in: `{"a":1,"result":{}}`, want: `{"a":1,"result":{"new":true}}`},
		{name: "a nested result key is not the top-level one", in: `{"a":{"result":1}}`, wantErr: ErrNoMember},
		{name: "missing", in: `{"a":1}`, wantErr: ErrNoMember},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReplaceMember([]byte(tc.in), "result", []byte(`{"new":true}`))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if string(got) != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"result":1,"result":2}`, `{"result":`} {
		if _, err := ReplaceMember([]byte(bad), "result", []byte(`{}`)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestDuplicateKeys(t *testing.T) {
	got, err := DuplicateKeys([]byte(` {"a":1,"b":{"a":2},"a":3,"c":0,"c":1,"a":4} `))
	if err != nil || len(got) != 2 || got[0] != "a" || got[1] != "c" {
		t.Errorf("DuplicateKeys = %v, %v; want [a c]", got, err)
	}
	if _, err := DuplicateKeys([]byte(`[1]`)); err == nil {
		t.Error("an array: no error")
	}
}
