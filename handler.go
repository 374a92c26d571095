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
	tried   string // the MACs tried when none matched
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
	layers, mac, err := loadHost(dir, req.macs)
	if err != nil {
		var nf *noHostError
		if errors.As(err, &nf) {
			o.tried = strings.Join(colonMACs(nf.macs), ",")
			return http.StatusNotFound, []byte(err.Error())
		}
		return http.StatusInternalServerError, []byte(err.Error())
	}
	o.host = layers[len(layers)-1].name
	out, err = compose(layers, facts{mac: mac, release: rel, btrfs: req.btrfs})
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

// installerRequest is what pxe-pilot reads of the installer's system info;
// the rest ($schema, dmi, ...) is ignored.
type installerRequest struct {
	Product struct {
		Product     string `json:"product"`
		EnableBtrfs *bool  `json:"enable_btrfs"`
	} `json:"product"`
	ISO struct {
		Release string `json:"release"`
	} `json:"iso"`
	NetworkInterfaces []struct {
		Link string `json:"link"`
		MAC  string `json:"mac"`
	} `json:"network_interfaces"`
}

// request is a parsed installerRequest.
type request struct {
	product string
	iso     string   // iso.release as sent
	btrfs   bool     // product.enable_btrfs; true when absent
	macs    []string // usable MACs in request order, 12 lowercase hex digits, no repeats
}

// parseRequest reads the installer's JSON. Nothing from it becomes a path
// but the MACs, and only once normalizeMAC has vetted them.
func parseRequest(body []byte) (request, error) {
	var in installerRequest
	if err := json.Unmarshal(body, &in); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return request{}, fmt.Errorf("request body is not a JSON object but %s; POST the installer's system info", te.Value)
		case errors.As(err, &te):
			return request{}, fmt.Errorf("request body: %s: want %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return request{}, fmt.Errorf("request body is not JSON (offset %d: %s); POST the installer's system info", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		}
		return request{}, fmt.Errorf("request body is not JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	req := request{product: in.Product.Product, iso: in.ISO.Release, btrfs: in.Product.EnableBtrfs == nil || *in.Product.EnableBtrfs}
	if len(in.NetworkInterfaces) > maxNICs {
		return request{}, fmt.Errorf("request body: network_interfaces lists %d interfaces, more than the %d pxe-pilot looks at", len(in.NetworkInterfaces), maxNICs)
	}
	var bad []string
	for _, nic := range in.NetworkInterfaces {
		mac, ok := normalizeMAC(nic.MAC)
		if !ok {
			bad = append(bad, fmt.Sprintf("%q", nic.MAC))
			continue
		}
		if !containsString(req.macs, mac) {
			req.macs = append(req.macs, mac)
		}
	}
	if len(req.macs) == 0 {
		if len(bad) > 0 {
			return request{}, fmt.Errorf("request body: network_interfaces has no usable MAC (got %s)", strings.Join(bad, ", "))
		}
		return request{}, errors.New("request body: network_interfaces lists no interface, so no host file can match; POST the installer's system info")
	}
	return req, nil
}

func jsonKind(k string) string {
	switch k {
	case "struct":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// release finds the answer-format rules for the requesting ISO, in Proxmox
// VE numbering; note is worth a log line where the rules were a guess.
func (req request) release() (rel release, note string, err error) {
	if req.iso == "" {
		return newest, "request has no iso.release; answering with " + newest.String() + " rules", nil
	}
	rel, ok := parseRelease(req.iso)
	if !ok {
		return release{}, "", fmt.Errorf("request body: iso.release: %q is not a release such as \"9.2\"", req.iso)
	}
	switch req.product {
	case "pve", "":
	case "pbs":
		rel.major += 5 // Proxmox Backup Server 3.x is built on the same installer as Proxmox VE 8.x
	default:
		return newest, fmt.Sprintf("product %q %s: no release mapping known; answering with %s rules", req.product, req.iso, newest), nil
	}
	if rel.before(r82) {
		return release{}, "", fmt.Errorf("request body: iso.release %s: this installer has no automated installation (Proxmox VE 8.2 or later has)", req.iso)
	}
	if newest.before(rel) {
		return newest, fmt.Sprintf("iso.release %s is newer than the newest pxe-pilot knows; answering with %s rules", req.iso, newest), nil
	}
	return rel, "", nil
}

// normalizeMAC accepts a MAC in any usual spelling (aa:bb:cc:dd:ee:ff,
// AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff, aabbccddeeff) and returns its 12
// lowercase hex digits.
func normalizeMAC(s string) (string, bool) {
	var sep byte
	switch len(s) {
	case 12:
	case 14:
		sep = '.'
	case 17:
		sep = s[2]
		if sep != ':' && sep != '-' {
			return "", false
		}
	default:
		return "", false
	}
	var b [12]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if sep != 0 && (sep == '.' && i%5 == 4 || sep != '.' && i%3 == 2) {
			if c != sep {
				return "", false
			}
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		b[n] = c
		n++
	}
	return string(b[:]), n == 12
}

// colonMACs spells MACs of 12 hex digits as aa:bb:cc:dd:ee:ff, for people.
func colonMACs(macs []string) []string {
	out := make([]string, len(macs))
	for i, m := range macs {
		out[i] = strings.ReplaceAll(strings.TrimSuffix(hostFileName(m), ".toml"), "-", ":")
	}
	return out
}

// hostFileName is a host file's name for a MAC of 12 hex digits:
// aa-bb-cc-dd-ee-ff.toml.
func hostFileName(mac string) string {
	var b strings.Builder
	b.Grow(22)
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(mac[i : i+2])
	}
	b.WriteString(".toml")
	return b.String()
}
