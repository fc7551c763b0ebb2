package shim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// maxResponse bounds what the shim reads from the daemon.
const maxResponse = 16 << 20

// exchange is one HTTP/1.1 request to plexusd over c (Connection: close)
// and its answer: status code and body. The shim speaks this one exchange
// with net/textproto rather than linking net/http, whose TLS, HTTP/2 and
// x509 packages would double the binary and the start-up of a process the
// runtime execs for every CNI call. The server is plexusd's net/http
// server, which sizes every answer (Content-Length).
func exchange(ctx context.Context, c net.Conn, method, path string, body []byte) (int, []byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: plexusd\r\nConnection: close\r\n", method, path)
	if body != nil {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n")
	req.Write(body)
	if _, err := c.Write(req.Bytes()); err != nil {
		return 0, nil, ctxErr(ctx, err)
	}
	tp := textproto.NewReader(bufio.NewReader(io.LimitReader(c, maxResponse+64<<10)))
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, ctxErr(ctx, fmt.Errorf("read status line: %w", err))
	}
	proto, rest, _ := strings.Cut(line, " ")
	codeText, _, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeText)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return 0, nil, fmt.Errorf("malformed status line %q", line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, ctxErr(ctx, fmt.Errorf("read headers: %w", err))
	}
	if te := hdr.Get("Transfer-Encoding"); te != "" {
		return 0, nil, fmt.Errorf("unexpected Transfer-Encoding %q", te)
	}
	var data []byte
	if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > maxResponse {
			return 0, nil, fmt.Errorf("bad Content-Length %q", cl)
		}
		data = make([]byte, n)
		_, err = io.ReadFull(tp.R, data)
		if err != nil {
			return 0, nil, ctxErr(ctx, fmt.Errorf("read body: %w", err))
		}
	} else if data, err = io.ReadAll(tp.R); err != nil { // Connection: close delimits it
		return 0, nil, ctxErr(ctx, fmt.Errorf("read body: %w", err))
	}
	return code, data, nil
}

// ctxErr says the context ended when that is why the connection failed
// (its deadline was forced into the past).
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}
