package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/pkg/config"
)

func fileConfig(t *testing.T, format string) config.LogConfig {
	t.Helper()
	c := config.Default().Log
	c.File = filepath.Join(t.TempDir(), "sub", "plexusd.log")
	c.ToStderr = false
	c.Format = format
	return c
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestJSONFileWithRequestID(t *testing.T) {
	t.Parallel()
	c := fileConfig(t, config.FormatJSON)
	var stderr bytes.Buffer
	l, closer, err := newLogger(c, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	id := "0123456789abcdef"
	l.With("req", id).Info("ADD done", "container", "abc")
	l.Info("no request")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}

	lines := readJSONLines(t, c.File)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %v", len(lines), lines)
	}
	if lines[0]["req"] != id || lines[0]["msg"] != "ADD done" || lines[0]["container"] != "abc" || lines[0]["level"] != "INFO" {
		t.Errorf("line 0 = %v", lines[0])
	}
	if _, ok := lines[1]["req"]; ok {
		t.Errorf("line 1 has a req attribute: %v", lines[1])
	}
	if stderr.Len() != 0 {
		t.Errorf("ToStderr=false but stderr got %q", stderr.String())
	}
}

func TestLevelFiltering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		level slog.Level
		want  []string
	}{
		{"debug", slog.LevelDebug, []string{"d", "i", "w", "e"}},
		{"info", slog.LevelInfo, []string{"i", "w", "e"}},
		{"warn", slog.LevelWarn, []string{"w", "e"}},
		{"error", slog.LevelError, []string{"e"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := fileConfig(t, config.FormatJSON)
			c.Level = tc.level
			l, closer, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			if err := closer.Close(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range readJSONLines(t, c.File) {
				got = append(got, m["msg"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("logged %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFileAndStderr(t *testing.T) {
	t.Parallel()
	c := fileConfig(t, config.FormatText)
	c.ToStderr = true
	var stderr bytes.Buffer
	l, closer, err := newLogger(c, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("both", "k", "v")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(c.File)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"file": string(data), "stderr": stderr.String()} {
		if !strings.Contains(got, "msg=both k=v") {
			t.Errorf("%s = %q, want a text line with msg=both k=v", name, got)
		}
	}
}

func TestStderrOnlyWhenNoFile(t *testing.T) {
	t.Parallel()
	for _, toStderr := range []bool{true, false} {
		name := "toStderr=false"
		if toStderr {
			name = "toStderr=true"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := config.Default().Log
			c.ToStderr = toStderr
			var stderr bytes.Buffer
			l, closer, err := newLogger(c, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			l.Info("hello")
			if err := closer.Close(); err != nil {
				t.Errorf("Close of the stderr-only closer = %v", err)
			}
			if !strings.Contains(stderr.String(), "msg=hello") {
				t.Errorf("stderr = %q", stderr.String())
			}
		})
	}
}

// TestRotation checks that the rotation settings reach lumberjack: with
// MaxSize 1 MB, writing more than 1 MB rotates into a backup file.
func TestRotation(t *testing.T) {
	t.Parallel()
	c := fileConfig(t, config.FormatJSON)
	c.MaxSizeMB = 1
	c.MaxBackups = 3
	c.Compress = false
	l, closer, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.File); err != nil {
		t.Fatalf("New did not create the log file: %v", err)
	}
	big := strings.Repeat("x", 64<<10)
	for range 20 { // ~1.3 MB
		l.Info("fill", "pad", big)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(c.File))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) < 2 {
		t.Fatalf("files = %v, want the log file plus a rotated backup", names)
	}
	st, err := os.Stat(c.File)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Errorf("current log file is %d bytes, above MaxSize 1 MB", st.Size())
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	t.Run("unknown format", func(t *testing.T) {
		t.Parallel()
		c := config.Default().Log
		c.Format = "xml"
		if _, _, err := New(c); err == nil || !strings.Contains(err.Error(), `"xml"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unwritable file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		blocker := filepath.Join(dir, "file")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c := config.Default().Log
		c.File = filepath.Join(blocker, "plexusd.log") // parent is a regular file
		if _, _, err := New(c); err == nil || !strings.Contains(err.Error(), c.File) {
			t.Fatalf("err = %v, want an error naming %s", err, c.File)
		}
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFanoutKeepsWritingAfterAFailure(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	_, err := fanout{failWriter{}, &b}.Write([]byte("line\n"))
	if err == nil || b.String() != "line\n" {
		t.Fatalf("err = %v, second writer got %q", err, b.String())
	}
}
