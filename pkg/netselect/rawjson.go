package netselect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// This file edits JSON at the byte level so that everything a delegate's
// config carries, apart from the keys we set, stays byte-for-byte intact:
// key order, whitespace, and numbers that a float64 round trip would corrupt.
// Every function here expects input that json.Valid accepts; they still
// return errors instead of panicking on anything else.

var errMalformed = errors.New("malformed JSON")

// span is a half-open byte range [start, end) of a JSON value.
type span struct{ start, end int }

// member is one "key": value pair of a JSON object.
type member struct {
	key string
	val span
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

// objectMembers lists the members of the JSON object obj (trimmed, valid).
func objectMembers(obj []byte) ([]member, error) {
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return nil, errMalformed
	}
	var out []member
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
		out = append(out, member{key: key, val: span{i, end}})
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

// arrayElements lists the element spans of the JSON array arr (trimmed, valid).
func arrayElements(arr []byte) ([]span, error) {
	if len(arr) < 2 || arr[0] != '[' || arr[len(arr)-1] != ']' {
		return nil, errMalformed
	}
	var out []span
	i := skipSpace(arr, 1)
	if arr[i] == ']' {
		return nil, nil
	}
	for {
		end, err := skipValue(arr, i)
		if err != nil {
			return nil, err
		}
		out = append(out, span{i, end})
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

// findMember returns the last member named key (the one encoding/json would
// use) and whether there is one.
func findMember(ms []member, key string) (member, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].key == key {
			return ms[i], true
		}
	}
	return member{}, false
}

// encodeJSON marshals v without HTML escaping and without a trailing newline.
func encodeJSON(v interface{}) ([]byte, error) {
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
	at   span
	with []byte
}

// splice applies non-overlapping replacements, sorted by position, to b.
func splice(b []byte, reps []replacement) []byte {
	out := make([]byte, 0, len(b))
	last := 0
	for _, r := range reps {
		out = append(out, b[last:r.at.start]...)
		out = append(out, r.with...)
		last = r.at.end
	}
	return append(out, b[last:]...)
}

// setMember sets obj[key] = val (val must be valid JSON). Every existing
// member named key has its value replaced in place; otherwise the member is
// appended after the last one. All other bytes are untouched.
func setMember(obj []byte, key string, val []byte) ([]byte, error) {
	ms, err := objectMembers(obj)
	if err != nil {
		return nil, err
	}
	var reps []replacement
	for _, m := range ms {
		if m.key == key {
			reps = append(reps, replacement{at: m.val, with: val})
		}
	}
	if len(reps) > 0 {
		return splice(obj, reps), nil
	}
	k, err := encodeJSON(key)
	if err != nil {
		return nil, err
	}
	pair := append(append(k, ':'), val...)
	if len(ms) == 0 {
		return splice(obj, []replacement{{at: span{1, 1}, with: pair}}), nil
	}
	end := ms[len(ms)-1].val.end
	return splice(obj, []replacement{{at: span{end, end}, with: append([]byte{','}, pair...)}}), nil
}

// pluginSpans returns the spans, within doc, of the conflist's plugin objects.
func pluginSpans(doc []byte) ([]span, error) {
	if !json.Valid(doc) {
		return nil, fmt.Errorf("conflist: %w", errMalformed)
	}
	ms, err := objectMembers(doc)
	if err != nil {
		return nil, fmt.Errorf("conflist: must be a JSON object: %w", err)
	}
	pm, ok := findMember(ms, "plugins")
	if !ok {
		return nil, errors.New(`conflist: no "plugins" key`)
	}
	arr := doc[pm.val.start:pm.val.end]
	els, err := arrayElements(arr)
	if err != nil {
		return nil, fmt.Errorf(`conflist: "plugins" must be an array: %w`, err)
	}
	for i := range els {
		els[i].start += pm.val.start
		els[i].end += pm.val.start
		if doc[els[i].start] != '{' {
			return nil, fmt.Errorf("conflist: plugins[%d] is not an object", i)
		}
	}
	return els, nil
}

// editPlugins rewrites every plugin object of a conflist with edit.
func editPlugins(confList []byte, edit func(i int, plugin []byte) ([]byte, error)) ([]byte, error) {
	doc := bytes.TrimSpace(confList)
	spans, err := pluginSpans(doc)
	if err != nil {
		return nil, err
	}
	reps := make([]replacement, 0, len(spans))
	for i, s := range spans {
		p, err := edit(i, doc[s.start:s.end])
		if err != nil {
			return nil, fmt.Errorf("plugins[%d]: %w", i, err)
		}
		reps = append(reps, replacement{at: s, with: p})
	}
	return splice(doc, reps), nil
}
