package delegate

import (
	"encoding/json"
	"errors"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

func result(t *testing.T, s string) *current.Result {
	t.Helper()
	var r current.Result
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatal(err)
	}
	r.CNIVersion = "1.0.0"
	return &r
}

func TestVerifyRequested(t *testing.T) {
	t.Parallel()
	res := `{"interfaces":[{"name":"net1","mac":"02:AA:bb:cc:dd:ee","sandbox":"/x"}],"ips":[{"address":"10.1.1.5/24","interface":0},{"address":"fd00::5/64","interface":0}]}`
	cases := []struct {
		name  string
		caps  map[string]interface{}
		field string // "" = no error
	}{
		{"nothing requested", nil, ""},
		{"ip honoured", map[string]interface{}{"ips": []string{"10.1.1.5/24"}}, ""},
		{"ip without prefix honoured", map[string]interface{}{"ips": []interface{}{"10.1.1.5"}}, ""},
		{"both families honoured", map[string]interface{}{"ips": []string{"10.1.1.5/24", "fd00::5/64"}}, ""},
		{"ip ignored", map[string]interface{}{"ips": []string{"10.1.1.9/24"}}, "ips"},
		{"mac honoured, other case", map[string]interface{}{"mac": "02:aa:bb:cc:dd:ee"}, ""},
		{"mac ignored", map[string]interface{}{"mac": "02:00:00:00:00:01"}, "mac"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyRequested([]Outcome{{Spec: Spec{Network: "ns/n", IfName: "net1", CapabilityArgs: c.caps}, Result: result(t, res)}})
			var rn *RequestNotHonoredError
			switch {
			case c.field == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case c.field != "" && (!errors.As(err, &rn) || rn.Field != c.field):
				t.Errorf("want a %s error, got %v", c.field, err)
			}
		})
	}
}
