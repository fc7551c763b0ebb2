// Package rawjson edits JSON at the byte level, so that everything a
// delegate's config or a cached result carries, apart from the keys set,
// stays byte-for-byte intact: key order, whitespace, and numbers that a
// float64 round trip would corrupt. It is the one way Plexus edits JSON it
// does not own. A leaf (standard library only); fuzzed through netselect.
package rawjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Every function here expects input that json.Valid accepts; they still
// return errors instead of panicking on anything else.

var errMalformed = errors.New("malformed JSON")

// Span is a half-open byte range [start, end) of a JSON value.
type Span struct{ Start, End int }

// Member is one "key": value pair of a JSON object.
type Member struct {
	Key string
	Val Span
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errMalformed
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errMalformed
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errMalformed
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errMalformed
	default:
		start := i
		for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		if i == start {
			return 0, errMalformed
		}
		return i, nil
	}
}

// Members lists the members of the JSON object obj (trimmed, valid).
func Members(obj []byte) ([]Member, error) {
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return nil, errMalformed
	}
	var out []Member
	i := skipSpace(obj, 1)
	if obj[i] == '}' {
		return nil, nil
	}
	for {
		keyEnd, err := skipString(obj, i)
		if err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(obj[i:keyEnd], &key); err != nil {
			return nil, errMalformed
		}
		i = skipSpace(obj, keyEnd)
		if i >= len(obj) || obj[i] != ':' {
			return nil, errMalformed
		}
		i = skipSpace(obj, i+1)
		end, err := skipValue(obj, i)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Key: key, Val: Span{i, end}})
		i = skipSpace(obj, end)
		if i >= len(obj) {
			return nil, errMalformed
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			return out, nil
		default:
			return nil, errMalformed
		}
	}
}

// Elements lists the element spans of the JSON array arr (trimmed, valid).
func Elements(arr []byte) ([]Span, error) {
	if len(arr) < 2 || arr[0] != '[' || arr[len(arr)-1] != ']' {
		return nil, errMalformed
	}
	var out []Span
	i := skipSpace(arr, 1)
	if arr[i] == ']' {
		return nil, nil
	}
	for {
		end, err := skipValue(arr, i)
		if err != nil {
			return nil, err
		}
		out = append(out, Span{i, end})
		i = skipSpace(arr, end)
		if i >= len(arr) {
			return nil, errMalformed
		}
		switch arr[i] {
		case ',':
			i = skipSpace(arr, i+1)
		case ']':
			return out, nil
		default:
			return nil, errMalformed
		}
	}
}

// Find returns the last Member named key (the one encoding/json would
// use) and whether there is one.
func Find(ms []Member, key string) (Member, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Key == key {
			return ms[i], true
		}
	}
	return Member{}, false
}

// Encode marshals v without HTML escaping and without a trailing newline.
func Encode(v interface{}) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// replacement swaps the bytes in at with with.
type replacement struct {
	at   Span
	with []byte
}

// splice applies non-overlapping replacements, sorted by position, to b.
func splice(b []byte, reps []replacement) []byte {
	out := make([]byte, 0, len(b))
	last := 0
	for _, r := range reps {
		out = append(out, b[last:r.at.Start]...)
		out = append(out, r.with...)
		last = r.at.End
	}
	return append(out, b[last:]...)
}

// SetMember sets obj[key] = val (val must be valid JSON). Every existing
// Member named key has its value replaced in place; otherwise the Member is
// appended after the last one. All other bytes are untouched.
func SetMember(obj []byte, key string, val []byte) ([]byte, error) {
	ms, err := Members(obj)
	if err != nil {
		return nil, err
	}
	var reps []replacement
	for _, m := range ms {
		if m.Key == key {
			reps = append(reps, replacement{at: m.Val, with: val})
		}
	}
	if len(reps) > 0 {
		return splice(obj, reps), nil
	}
	k, err := Encode(key)
	if err != nil {
		return nil, err
	}
	pair := append(append(k, ':'), val...)
	if len(ms) == 0 {
		return splice(obj, []replacement{{at: Span{1, 1}, with: pair}}), nil
	}
	end := ms[len(ms)-1].Val.End
	return splice(obj, []replacement{{at: Span{end, end}, with: append([]byte{','}, pair...)}}), nil
}

// PluginSpans returns the spans, within doc, of the conflist's plugin objects.
func PluginSpans(doc []byte) ([]Span, error) {
	if !json.Valid(doc) {
		return nil, fmt.Errorf("conflist: %w", errMalformed)
	}
	ms, err := Members(doc)
	if err != nil {
		return nil, fmt.Errorf("conflist: must be a JSON object: %w", err)
	}
	pm, ok := Find(ms, "plugins")
	if !ok {
		return nil, errors.New(`conflist: no "plugins" key`)
	}
	arr := doc[pm.Val.Start:pm.Val.End]
	els, err := Elements(arr)
	if err != nil {
		return nil, fmt.Errorf(`conflist: "plugins" must be an array: %w`, err)
	}
	for i := range els {
		els[i].Start += pm.Val.Start
		els[i].End += pm.Val.Start
		if doc[els[i].Start] != '{' {
			return nil, fmt.Errorf("conflist: plugins[%d] is not an object", i)
		}
	}
	return els, nil
}

// EditPlugins rewrites every plugin object of a conflist with edit.
func EditPlugins(confList []byte, edit func(i int, plugin []byte) ([]byte, error)) ([]byte, error) {
	doc := bytes.TrimSpace(confList)
	spans, err := PluginSpans(doc)
	if err != nil {
		return nil, err
	}
	reps := make([]replacement, 0, len(spans))
	for i, s := range spans {
		p, err := edit(i, doc[s.Start:s.End])
		if err != nil {
			return nil, fmt.Errorf("plugins[%d]: %w", i, err)
		}
		reps = append(reps, replacement{at: s, with: p})
	}
	return splice(doc, reps), nil
}

// ReplaceMember returns obj with the value of its member key replaced by
// val; the member must occur exactly once (ErrNoMember if it is missing).
func ReplaceMember(obj []byte, key string, val []byte) ([]byte, error) {
	lead := len(obj) - len(bytes.TrimLeft(obj, " \t\r\n"))
	trail := len(bytes.TrimRight(obj, " \t\r\n"))
	if lead >= trail {
		return nil, errMalformed
	}
	ms, err := Members(obj[lead:trail])
	if err != nil {
		return nil, err
	}
	if n := len(DuplicateOf(ms, key)); n > 1 {
		return nil, fmt.Errorf("key %q occurs %d times", key, n)
	}
	if _, ok := Find(ms, key); !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoMember, key)
	}
	out, err := SetMember(obj[lead:trail], key, val)
	if err != nil {
		return nil, err
	}
	return append(append(append([]byte{}, obj[:lead]...), out...), obj[trail:]...), nil
}

// ErrNoMember: the object has no member of that name.
var ErrNoMember = errors.New("no such member")

// DuplicateOf returns every member of ms named key.
func DuplicateOf(ms []Member, key string) []Member {
	var out []Member
	for _, m := range ms {
		if m.Key == key {
			out = append(out, m)
		}
	}
	return out
}

// DuplicateKeys returns the keys of the object obj that occur more than
// once (encoding/json would silently keep the last), in order of their
// second occurrence.
func DuplicateKeys(obj []byte) ([]string, error) {
	ms, err := Members(bytes.TrimSpace(obj))
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	var dups []string
	for _, m := range ms {
		if seen[m.Key]++; seen[m.Key] == 2 {
			dups = append(dups, m.Key)
		}
	}
	return dups, nil
}
