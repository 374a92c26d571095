package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

const (
	maxBody = 1 << 20 // the installer's system info is a few KiB
	maxNICs = 256     // more than any real machine has; bounds the files one request may open
)

// server answers the installer. It holds no config: every request reads
// the config dir afresh, so an edit applies to the next request.
type server struct {
	dir string
	log *slog.Logger
}

// outcome is what one request's log line says beyond method and path.
type outcome struct {
	status  int
	host    string // the host file that matched
	match   string // what matched it: "mac aa:bb:cc:dd:ee:ff", "serial S1", "uuid ...", "default"
	layers  string // the layers merged, lowest first
	tried   string // the MACs, serial and UUID tried when none matched
	release string
	note    string // worth a log line of its own: the release rules were a guess
	err     string // the one-line error sent, if any
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var o outcome
	defer func() {
		// A panic must not drop the installer's connection without a word:
		// it gets a 500 it can show, and the log gets the stack.
		if p := recover(); p != nil {
			s.log.Error("panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			o.status = s.fail(w, http.StatusInternalServerError, &o, "internal error; see the server's log")
		}
		attrs := []slog.Attr{
			slog.String("remote", r.RemoteAddr),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", o.status),
		}
		if o.host != "" {
			attrs = append(attrs, slog.String("host", o.host))
		}
		if o.match != "" {
			attrs = append(attrs, slog.String("match", o.match), slog.String("layers", o.layers))
		}
		if o.tried != "" {
			attrs = append(attrs, slog.String("tried", o.tried))
		}
		if o.release != "" {
			attrs = append(attrs, slog.String("release", o.release))
		}
		if o.err != "" {
			attrs = append(attrs, slog.String("error", o.err))
		}
		attrs = append(attrs, slog.Duration("duration", time.Since(start)))
		level := slog.LevelInfo
		if o.status >= 500 {
			level = slog.LevelError
		} else if o.status >= 400 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
	}()

	switch r.URL.Path {
	case "/answer":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			o.status = s.fail(w, http.StatusMethodNotAllowed, &o, "/answer takes POST (the installer's system info as JSON), not "+r.Method)
			return
		}
		o.status = s.answer(w, r, &o)
	case "/health":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			o.status = s.fail(w, http.StatusMethodNotAllowed, &o, "/health takes GET, not "+r.Method)
			return
		}
		o.status = s.health(w)
	default:
		o.status = s.fail(w, http.StatusNotFound, &o, fmt.Sprintf("%q: no such path; the installer posts to /answer", r.URL.Path))
	}
}

// fail sends one plain-text line: the installer shows the body on the
// console of the machine being installed.
func (s *server) fail(w http.ResponseWriter, status int, o *outcome, msg string) int {
	msg = "pxe-pilot: " + strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	o.err = msg
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
	return status
}

func (s *server) answer(w http.ResponseWriter, r *http.Request, o *outcome) int {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.fail(w, http.StatusRequestEntityTooLarge, o, fmt.Sprintf("request body is over %d bytes; the installer's system info is a few KiB", maxBody))
		}
		return s.fail(w, http.StatusBadRequest, o, "reading the request body: "+err.Error())
	}
	status, out := respond(s.dir, body, o)
	if o.note != "" {
		s.log.Info(o.note, "remote", r.RemoteAddr)
	}
	if o.host != "" {
		w.Header().Set("X-PXE-Pilot-Host", o.host)
	}
	if status != http.StatusOK {
		return s.fail(w, status, o, string(out))
	}
	h := w.Header()
	h.Set("Content-Type", "application/toml; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return http.StatusOK
}

// respond composes the answer to an installer's request body: 200 and the
// answer, or a status and the one-line reason. The server and `pxe-pilot
// render` share it, so a dry run prints exactly what the server would send.
func respond(dir string, body []byte, o *outcome) (status int, out []byte) {
	req, err := parseRequest(body)
	if err != nil {
		return http.StatusBadRequest, []byte(err.Error())
	}
	rel, note, err := req.release()
	if err != nil {
		return http.StatusBadRequest, []byte(err.Error())
	}
	o.release, o.note = rel.String(), note
	layers, m, err := loadHost(dir, req)
	if err != nil {
		var nf *noHostError
		if errors.As(err, &nf) {
			o.tried = strings.Join(colonMACs(nf.macs), ",")
			for _, id := range req.ids() {
				if id.key != "" {
					o.tried += "," + id.by + ":" + id.key
				}
			}
			return http.StatusNotFound, []byte(err.Error())
		}
		var he *hostError
		if errors.As(err, &he) {
			o.host = he.host
		}
		return http.StatusInternalServerError, []byte(err.Error())
	}
	o.host, o.match = m.file, m.String()
	names := make([]string, len(layers))
	for i, l := range layers {
		names[i] = l.name
	}
	o.layers = strings.Join(names, ",")
	out, err = compose(layers, req.facts(m, rel))
	if err != nil {
		return http.StatusInternalServerError, []byte(err.Error())
	}
	return http.StatusOK, out
}

// health reports whether an answer could be composed at all: the config
// dir is readable and defaults.toml, if present, parses.
func (s *server) health(w http.ResponseWriter) int {
	status, body := http.StatusOK, `{"status":"ok"}`
	if err := checkConfigDir(s.dir); err != nil {
		msg, _ := json.Marshal("pxe-pilot: " + err.Error())
		status, body = http.StatusServiceUnavailable, `{"status":"unavailable","error":`+string(msg)+`}`
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
	return status
}
