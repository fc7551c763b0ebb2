package shim

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The shim reads and writes the little JSON it handles (its config's
// top-level keys, the request it sends, the daemon's answer) with the
// functions below rather than encoding/json: reflection-based decoding
// costs a process that lives a few milliseconds about as much as all the
// rest of its work (measured in bench: shimCost). They follow RFC 8259 and
// encoding/json's choices where the RFC leaves one (case-insensitive key
// match, the last duplicate wins, invalid UTF-8 read as U+FFFD); a fuzz
// test holds them to encoding/json.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// member is one key of a JSON object and its value, raw.
type member struct {
	key string
	raw []byte
}

// object parses data, which must be one JSON object and nothing else, and
// returns its members in order, each value raw (validated).
func object(data []byte) ([]member, error) {
	s := &scanner{b: data}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var ms []member
	if err := s.object(func(k string, raw []byte) { ms = append(ms, member{k, raw}) }); err != nil {
		return nil, err
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, s.errAt("data after the top-level object")
	}
	return ms, nil
}

// lookup is the value encoding/json would decode into a struct field
// tagged key: the last member whose key matches, exactly or up to case.
func lookup(ms []member, key string) []byte {
	var v []byte
	for _, m := range ms {
		if m.key == key || equalFold(m.key, key) {
			v = m.raw
		}
	}
	return v
}

// equalFold is ASCII case folding, which is what encoding/json applies to
// keys spelled with ASCII letters (every key the shim reads).
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// stringValue decodes raw as a JSON string; absent or null is "" (what
// encoding/json leaves in a string field). ok is false for another type.
func stringValue(raw []byte) (s string, ok bool) {
	if raw == nil || string(raw) == "null" {
		return "", true
	}
	if raw[0] != '"' {
		return "", false
	}
	return unquote(raw), true
}

type scanner struct {
	b     []byte
	i     int
	depth int
}

func (s *scanner) errAt(what string) error {
	return errors.New("invalid JSON at offset " + strconv.Itoa(s.i) + ": " + what)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value at s.i (after white space).
func (s *scanner) value() error {
	s.ws()
	if s.i >= len(s.b) {
		return s.errAt("unexpected end")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(nil)
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	for _, lit := range []string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return nil
		}
	}
	return s.errAt("unexpected character " + strconv.QuoteRune(rune(s.b[s.i])))
}

// open enters the object or array whose opening byte is at s.i; empty
// says it closed at once ({} or []).
func (s *scanner) open(closing byte) (empty bool, err error) {
	if s.depth++; s.depth > maxDepth {
		return false, s.errAt("nested too deep")
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		s.depth--
		return true, nil
	}
	return false, nil
}

// more scans what follows a member or an element: ',' (more to come) or
// the closing byte.
func (s *scanner) more(closing byte) (bool, error) {
	s.ws()
	if s.i >= len(s.b) {
		return false, s.errAt("unexpected end")
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, nil
	case closing:
		s.i++
		s.depth--
		return false, nil
	}
	return false, s.errAt("expected ',' or '" + string(closing) + "'")
}

// object scans {…} at s.i; visit, if set, gets each key and raw value.
func (s *scanner) object(visit func(string, []byte)) error {
	if empty, err := s.open('}'); empty || err != nil {
		return err
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.errAt("expected a key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.errAt("expected ':'")
		}
		s.i++
		s.ws()
		start := s.i
		if err := s.value(); err != nil {
			return err
		}
		if visit != nil {
			visit(unquote(key), s.b[start:s.i])
		}
		if more, err := s.more('}'); !more || err != nil {
			return err
		}
	}
}

func (s *scanner) array() error {
	if empty, err := s.open(']'); empty || err != nil {
		return err
	}
	for {
		if err := s.value(); err != nil {
			return err
		}
		if more, err := s.more(']'); !more || err != nil {
			return err
		}
	}
}

// str scans a string at s.i and returns it raw, quotes included.
func (s *scanner) str() ([]byte, error) {
	start := s.i
	s.i++ // "
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], nil
		case c < 0x20:
			return nil, s.errAt("control character in string")
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return nil, s.errAt("unexpected end")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.b)-s.i < 5 || hex4(s.b[s.i+1:s.i+5]) < 0 {
					return nil, s.errAt("bad \\u escape")
				}
				s.i += 5
			default:
				return nil, s.errAt("bad escape")
			}
		default:
			s.i++
		}
	}
	return nil, s.errAt("unterminated string")
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return s.errAt("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.errAt("bad number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.errAt("bad number")
		}
	}
	return nil
}

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote decodes a string the scanner validated, as encoding/json does:
// a lone or unpaired surrogate and invalid UTF-8 become U+FFFD.
func unquote(raw []byte) string {
	b := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '\\':
			i++
			switch b[i] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(b[i+1:])
				i += 5
				if utf16.IsSurrogate(r) {
					if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(b[i+2:])); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default: // " \ /
				out = append(out, b[i])
			}
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	return string(out)
}

// appendQuoted appends s as a JSON string: quote, backslash and control
// characters escaped, invalid UTF-8 as U+FFFD.
func appendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(dst, '"')
}
