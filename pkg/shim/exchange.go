package shim

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plexus-cni/plexus/pkg/api/wire"
)

// maxResponse bounds what the shim reads from the daemon.
const maxResponse = 16 << 20

// The shim speaks one HTTP/1.1 exchange (Connection: close) with plexusd's
// net/http server over the unix socket, on the raw file descriptor: the net
// package, like net/http's TLS and HTTP/2, would cost every CNI call its
// start-up. The server sizes every answer (Content-Length).

// opError names the step that failed; errors.Is sees the errno.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

var errTimeout = errors.New("deadline exceeded")

// conn is a connected unix stream socket with a deadline for the exchange.
type conn struct {
	fd       int
	deadline time.Time
}

// dial connects to socket within timeout and checks that the process
// listening there runs as root: whoever could plant a socket there must not
// be able to forge results.
func dial(socket string, timeout time.Duration, deadline time.Time) (*conn, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &opError{"socket", err}
	}
	c := &conn{fd: fd, deadline: deadline}
	if d := time.Now().Add(timeout); d.Before(deadline) {
		c.deadline = d
	}
	if err := c.arm(syscall.SO_SNDTIMEO); err != nil {
		c.close()
		return nil, err
	}
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: socket})
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EAGAIN) { // the listen queue stayed full until the timeout
		err = errTimeout
	}
	if err != nil {
		c.close()
		return nil, &opError{"dial unix " + socket, err}
	}
	cred, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err == nil && cred.Uid != 0 {
		err = errors.New("the process listening on " + socket + " runs as uid " + strconv.FormatUint(uint64(cred.Uid), 10) + ", not root: refusing it")
	}
	if err != nil {
		c.close()
		return nil, &opError{"peer of " + socket, err}
	}
	c.deadline = deadline
	return c, nil
}

func (c *conn) close() { _ = syscall.Close(c.fd) }

// arm sets the socket timeout opt to what is left until the deadline.
func (c *conn) arm(opt int) error {
	left := time.Until(c.deadline)
	if left <= 0 {
		return errTimeout
	}
	if left < time.Microsecond {
		left = time.Microsecond // 0 would mean no timeout
	}
	tv := syscall.NsecToTimeval(left.Nanoseconds())
	if err := syscall.SetsockoptTimeval(c.fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
		return &opError{"setsockopt", err}
	}
	return nil
}

func (c *conn) write(b []byte) error {
	for len(b) > 0 {
		if err := c.arm(syscall.SO_SNDTIMEO); err != nil {
			return err
		}
		n, err := syscall.Write(c.fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return &opError{"write", errTimeout}
		case err != nil:
			return &opError{"write", err}
		}
		b = b[n:]
	}
	return nil
}

// read reads once into b; 0 bytes is the end of the stream.
func (c *conn) read(b []byte) (int, error) {
	for {
		if err := c.arm(syscall.SO_RCVTIMEO); err != nil {
			return 0, err
		}
		n, err := syscall.Read(c.fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return 0, &opError{"read", errTimeout}
		case err != nil:
			return 0, &opError{"read", err}
		}
		return n, nil
	}
}

// exchange sends one request and returns the status code and the body.
func (c *conn) exchange(method, path string, body []byte) (int, []byte, error) {
	req := make([]byte, 0, 160+len(body))
	req = append(req, method+" "+path+" HTTP/1.1\r\nHost: plexusd\r\nConnection: close\r\n"...)
	if body != nil {
		req = append(req, "Content-Type: application/json\r\nContent-Length: "...)
		req = append(strconv.AppendInt(req, int64(len(body)), 10), "\r\n"...)
	}
	req = append(append(req, "\r\n"...), body...)
	if err := c.write(req); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.read(buf[len(buf):cap(buf)])
		if err != nil {
			return 0, nil, err
		}
		buf = buf[:len(buf)+n]
		code, body, complete, err := parseResponse(buf, n == 0)
		if err != nil || complete {
			return code, body, err
		}
		if n == 0 {
			return 0, nil, errors.New("connection closed before the answer was complete")
		}
		if len(buf) > maxResponse+64<<10 {
			return 0, nil, errors.New("answer larger than " + strconv.Itoa(maxResponse) + " bytes")
		}
	}
}

// parseResponse parses an HTTP/1.x answer in buf; complete is false while
// more bytes are needed. eof says the server closed the stream.
func parseResponse(buf []byte, eof bool) (code int, body []byte, complete bool, err error) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, nil, false, nil
	}
	lines := bytes.Split(buf[:end], []byte("\r\n"))
	status := string(lines[0])
	proto, rest, _ := strings.Cut(status, " ")
	codeText, _, _ := strings.Cut(rest, " ")
	code, cerr := strconv.Atoi(codeText)
	if len(proto) < 7 || proto[:7] != "HTTP/1." || cerr != nil {
		return 0, nil, false, errors.New("malformed status line " + strconv.Quote(status))
	}
	length := -1
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(string(l), ":")
		switch {
		case strings.EqualFold(k, "Transfer-Encoding"):
			return 0, nil, false, errors.New("unexpected Transfer-Encoding " + strconv.Quote(strings.Trim(v, " \t")))
		case strings.EqualFold(k, "Content-Length"):
			n, err := strconv.Atoi(strings.Trim(v, " \t"))
			if err != nil || n < 0 || n > maxResponse {
				return 0, nil, false, errors.New("bad Content-Length " + strconv.Quote(strings.Trim(v, " \t")))
			}
			length = n
		}
	}
	rest2 := buf[end+4:]
	switch {
	case length >= 0 && len(rest2) >= length:
		return code, rest2[:length], true, nil
	case length < 0 && eof: // Connection: close delimits it
		return code, rest2, true, nil
	}
	return 0, nil, false, nil
}

// answer is the daemon's api.Response, raw.
type answer struct {
	result, errRaw []byte
	notReady       bool // the error is "not ready yet": retry ADD and CHECK
}

// send is one exchange with the daemon; every error it returns is a
// failure to talk to the daemon at all.
func send(s *settings, deadline time.Time, body []byte) (*answer, error) {
	c, err := dial(s.socket, s.connectTimeout, deadline)
	if err != nil {
		return nil, err
	}
	defer c.close()
	code, data, err := c.exchange("POST", wire.PathCNI, body)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, errors.New("HTTP " + strconv.Itoa(code) + ": " + string(bytes.TrimSpace(data)))
	}
	resp, err := object(data)
	if err != nil {
		return nil, errors.New("decode daemon response: " + err.Error())
	}
	a := &answer{}
	if r := lookup(resp, "result"); r != nil && string(r) != "null" {
		a.result = r
	}
	if e := lookup(resp, "error"); e != nil && string(e) != "null" {
		fields, err := object(e)
		if err != nil {
			return nil, errors.New("decode daemon response: error: " + err.Error())
		}
		msg, _ := stringValue(lookup(fields, "msg"))
		a.errRaw = e
		a.notReady = string(lookup(fields, "code")) == strconv.Itoa(errTryAgainLater) && msg == wire.MsgNotReady
	}
	return a, nil
}

// Probe asks the daemon's /readyz; nil means ready. Used by the DaemonSet's
// readiness probe (plexusd --probe SOCKET).
func Probe(socket string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c, err := dial(socket, timeout, deadline)
	if err != nil {
		return err
	}
	defer c.close()
	code, body, err := c.exchange("GET", wire.PathReadyz, nil)
	if err != nil {
		return err
	}
	if code != 200 {
		return errors.New("not ready: " + string(bytes.TrimSpace(body)))
	}
	return nil
}
