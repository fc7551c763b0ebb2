package netselect

import (
	"errors"
	"reflect"
	"testing"
)

func TestAssignIfNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		runtime   string
		requested []string
		want      []string
		conflict  *IfNameConflictError
	}{
		{name: "none", runtime: "eth0", requested: nil, want: []string{}},
		{name: "all automatic", runtime: "eth0", requested: []string{"", "", ""}, want: []string{"net1", "net2", "net3"}},
		{name: "explicit reserved first and skipped",
			runtime: "eth0", requested: []string{"", "net1", "", "macvlan1"},
			want: []string{"net2", "net1", "net3", "macvlan1"}},
		{name: "multus docs example",
			runtime: "eth0", requested: []string{"macvlan1", ""}, want: []string{"macvlan1", "net1"}},
		{name: "skips runtime ifname", runtime: "net1", requested: []string{"", ""}, want: []string{"net2", "net3"}},
		{name: "requested equals runtime", runtime: "eth0", requested: []string{"", "eth0"},
			conflict: &IfNameConflictError{Name: "eth0", First: -1, Second: 1}},
		{name: "requested twice", runtime: "eth0", requested: []string{"a", "", "a"},
			conflict: &IfNameConflictError{Name: "a", First: 0, Second: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := AssignIfNames(tc.runtime, tc.requested)
			if tc.conflict != nil {
				var ce *IfNameConflictError
				if !errors.As(err, &ce) || *ce != *tc.conflict {
					t.Fatalf("err = %v, want %+v", err, tc.conflict)
				}
				return
			}
			if err != nil {
				t.Fatalf("AssignIfNames: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
