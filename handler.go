// HTTP: routes, status codes, the token and allow list, the one log line per request.

package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

const (
	maxBody = 1 << 20 // the installer's system info is a few KiB
	maxNICs = 256     // more than any real machine has; bounds the files one request may open

	// What the bodies being read may hold, all together: room for a few
	// bodies of the biggest size, or thousands of real ones.
	answerBodies = 8 << 20
	reportBodies = 4 << 20
)

// server answers the installer. It holds no config: every request reads
// the config dir (and the token file) afresh, so an edit applies to the
// next request.
type server struct {
	dir string
	log *slog.Logger

	// Who may ask; the zero values let everyone in, as tests want.
	tokenFile string         // --token-file: "" needs no token
	allow     []netip.Prefix // --allow: nil is every address
	slots     chan struct{}  // --max-inflight: a slot per request being answered; nil is no cap

	// The memory the bodies being read may hold, all together; nil is no
	// bound. Reports need no token, so they have their own, and a flood of
	// them cannot keep an installer from being answered.
	answerBodies, reportBodies *budget
	guard                      *places[netip.Addr] // token checks under way and refusals waiting out authDelay; nil is no cap
	authDelay                  time.Duration

	track      *tracker      // --public-url, --state-dir, --once; nil keeps nothing
	stallAfter time.Duration // --stall-after: an answered machine not reported for it is stalled

	bootDir   string                // --boot-dir: "" serves no boot files
	localBoot string                // --local-boot: how /boot.ipxe boots an installed machine's disk
	downloads *places[netip.Prefix] // a place per boot file being sent, by downloadSource; nil is no cap
	pace      downloadPace          // how fast a download must go to keep its place

	muxOnce     sync.Once
	routes      *http.ServeMux // see mux
	pageBuilds  chan struct{}  // a place per fleet page being built; see viewer
	pageWaiting atomic.Int64   // fleet page requests waiting for a place, or in one
	pageSends   *budget        // the bytes of the fleet pages being sent

	counts struct { // /health's, see configCounts
		mu           sync.Mutex
		at           time.Time
		hosts, files int
	}
}

// A refused token waits a second before its 401, which slows down guessing.
// The wait holds no slot, so a flood of wrong tokens cannot crowd out a
// real install. Every token check takes a place in the guard, a refused one
// for its whole wait: at most maxWaiting at once, maxWaitingPerAddr of them
// from one address. Past either, a request is refused with a 503 before
// its token is looked at, which says nothing about the token; so guesses
// come no faster than maxWaiting a second, and an address that floods
// keeps out itself, not the installers elsewhere.
const (
	authDelay         = time.Second
	maxWaiting        = 64
	maxWaitingPerAddr = 8
)

// places counts what requests hold at once, in all and by source, under
// a cap on each: the token guard's places (by address) and the boot
// downloads' (by address or IPv6 /64).
type places[K comparable] struct {
	max, perSource int
	mu             sync.Mutex
	n              int
	bySource       map[K]int
}

func newPlaces[K comparable](max, perSource int) *places[K] {
	return &places[K]{max: max, perSource: perSource, bySource: map[K]int{}}
}

// take takes a place for source, if there is one; where there is none,
// bySource says whether the source's own cap is what stopped it.
func (p *places[K]) take(source K) (ok, bySource bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.n >= p.max:
		return false, false
	case p.bySource[source] >= p.perSource:
		return false, true
	}
	p.n++
	p.bySource[source]++
	return true, false
}

func (p *places[K]) give(source K) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n--
	if p.bySource[source]--; p.bySource[source] <= 0 {
		delete(p.bySource, source)
	}
}

// held is how many places source holds, and all sources do.
func (p *places[K]) held(source K) (bySource, all int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bySource[source], p.n
}

// outcome is what one request's log line says beyond method and path.
type outcome struct {
	status  int
	token   string // the name of the token the request showed, never its secret
	host    string // the host file that matched
	match   string // what matched it: "mac aa:bb:cc:dd:ee:ff", "serial S1", "uuid ...", "default"
	layers  string // the layers merged, lowest first
	tried   string // the MACs, serial and UUID tried when none matched
	release string
	note    string      // worth a log line of its own: the release rules were a guess
	warn    string      // worth a warning of its own: the state could not be kept
	extra   []slog.Attr // what a report says
	err     string      // the one-line error sent, if any
}

// A route answers one pattern of the mux and returns the status it sent;
// o is the request's log line.
type route func(w http.ResponseWriter, r *http.Request, o *outcome) int

// routeHandler is a route as the mux holds it, so that ServeHTTP can tell
// the mux's own answers (404, 405, redirects) from a match.
type routeHandler struct{ fn route }

type outcomeKey struct{}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := r.Context().Value(outcomeKey{}).(*outcome)
	o.status = h.fn(w, r, o)
}

// takes says, for a 405, what each path takes.
var takes = map[string]string{
	"/answer":      "/answer takes POST (the installer's system info as JSON)",
	"/health":      "/health takes GET",
	"/boot.ipxe":   "/boot.ipxe takes GET (iPXE's chain command)",
	"/installed":   "/installed takes POST (the installer's report as JSON)",
	"/":            "the installer posts to /answer; / is the fleet page, which takes GET",
	"/status.json": "/status.json takes GET",
}

// mux routes pxe-pilot's paths; /installed and /first-boot/ exist only
// with tracking. It is made on first use, so that a server literal works.
func (s *server) mux() *http.ServeMux {
	s.muxOnce.Do(func() {
		m := http.NewServeMux()
		s.pageBuilds, s.pageSends = make(chan struct{}, maxPageBuilds), newBudget(pageBytes)
		handle := func(pattern string, fn route) { m.Handle(pattern, &routeHandler{fn}) }
		handle("POST /answer", s.authorized(s.withBody(s.answerBodies, "request body", "the installer's system info is a few KiB", s.answer)))
		handle("GET /health", s.health)
		handle("GET /{$}", s.viewer(pageView))
		handle("GET /status.json", s.viewer(jsonView))
		if s.bootDir != "" {
			handle("GET /boot/{image}/{file}", s.bootFile)
			handle("GET /boot.ipxe", s.limited(s.bootIPXE))
		}
		switch {
		case s.track == nil:
			handle("/installed", func(w http.ResponseWriter, r *http.Request, o *outcome) int {
				return s.fail(w, http.StatusNotFound, o, `"/installed": no such path; reports are taken with serve --public-url or --state-dir`)
			})
		default:
			handle("POST /installed", s.withBody(s.reportBodies, "report body", "the installer's report is a few KiB", s.installed))
			if s.track.publicURL != "" {
				handle("GET /first-boot/{ticket...}", s.limited(s.script))
			}
		}
		s.routes = m
	})
	return s.routes
}

// ServeHTTP is what every request shares: the one log line, a 500 for a
// panic, the allow list, and pxe-pilot's own one-line 404 and 405 (the
// installer shows the body on the console) where the mux has no route.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	o := &outcome{}
	defer func() {
		// A panic must not drop the installer's connection without a word:
		// it gets a 500 it can show, and the log gets the stack.
		if p := recover(); p != nil {
			s.log.Error("panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			o.status = s.fail(w, http.StatusInternalServerError, o, "internal error; see the server's log")
		}
		s.logRequest(r, o, time.Since(start))
	}()

	if r.URL.Path != "/health" && !s.allowed(r.RemoteAddr) {
		o.status = s.fail(w, http.StatusForbidden, o, "this address may not ask pxe-pilot: "+r.RemoteAddr+" is not in --allow")
		return
	}
	mux := s.mux()
	if h, _ := mux.Handler(r); !isRoute(h) {
		s.noRoute(w, r, o, h)
		return
	}
	mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), outcomeKey{}, o)))
}

func isRoute(h http.Handler) bool {
	_, ok := h.(*routeHandler)
	return ok
}

// noRoute answers what the mux would answer with its own words: 405 (with
// the Allow header the mux sets) or else 404, also where the mux would
// redirect to a cleaned path, since an installer does not follow.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request, o *outcome, h http.Handler) {
	rec := statusRecorder{header: http.Header{}}
	h.ServeHTTP(&rec, r)
	path := shownPath(r.URL.Path)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		what, ok := takes[r.URL.Path]
		if strings.HasPrefix(r.URL.Path, "/boot/") {
			what, ok = "boot files are fetched with GET or HEAD", true
		}
		if !ok {
			what = "first-boot scripts are fetched with GET"
		}
		o.status = s.fail(w, http.StatusMethodNotAllowed, o, what+", not "+r.Method)
		return
	}
	hint := "the installer posts to /answer, and / is the fleet page"
	if s.bootDir != "" && strings.HasPrefix(path, "/boot/") {
		hint = "boot files are served as /boot/IMAGE/FILE, and only those"
	}
	o.status = s.fail(w, http.StatusNotFound, o, fmt.Sprintf("%q: no such path; %s", path, hint))
}

// statusRecorder keeps the status and headers a handler sends, and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }

// logRequest writes the request's one log line.
func (s *server) logRequest(r *http.Request, o *outcome, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("remote", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("path", shownPath(r.URL.Path)),
		slog.Int("status", o.status),
	}
	attrs = append(attrs, o.attrs()...)
	// Milliseconds to the microsecond, a plain number in text and JSON alike.
	attrs = append(attrs, slog.Float64("duration_ms", float64(took.Microseconds())/1000))
	level := slog.LevelInfo
	if r.URL.Path == "/health" && o.status == http.StatusOK {
		level = slog.LevelDebug // polled every few seconds: only a failing one is news
	} else if o.status >= 500 {
		level = slog.LevelError
	} else if o.status >= 400 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// attrs are what the request's log line says of its outcome.
func (o *outcome) attrs() []slog.Attr {
	var attrs []slog.Attr
	for _, a := range [...]struct{ key, value string }{
		{"token_name", o.token}, {"host", o.host}, {"match", o.match},
		{"layers", o.layers}, {"tried", o.tried}, {"release", o.release},
	} {
		if a.value != "" {
			attrs = append(attrs, slog.String(a.key, a.value))
		}
	}
	attrs = append(attrs, o.extra...)
	if o.err != "" {
		attrs = append(attrs, slog.String("error", o.err))
	}
	return attrs
}

// shownPath is a request's path as the log and errors may show it: the
// rest of a first-boot script's URL is a capability, and whoever has it
// gets the script.
func shownPath(path string) string {
	if strings.HasPrefix(path, "/first-boot/") {
		return "/first-boot/..."
	}
	return path
}

// peerAddr is a request's source address, as --allow and the token guard
// see it: IPv4 for an IPv4-mapped address, and without an IPv6 zone, which
// no prefix has; the zero Addr if it cannot be read.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// allowed reports whether --allow lets the address ask.
func (s *server) allowed(remote string) bool {
	if s.allow == nil {
		return true
	}
	a := peerAddr(remote)
	if !a.IsValid() {
		return false
	}
	for _, p := range s.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// withBody reads the request's body, then runs next with it in one of
// --max-inflight's slots: a body that trickles in holds no slot, only the
// memory it has sent so far, taken from b.
func (s *server) withBody(b *budget, what, hint string, next func(w http.ResponseWriter, r *http.Request, o *outcome, body []byte) int) route {
	return func(w http.ResponseWriter, r *http.Request, o *outcome) int {
		body, status := s.readBody(w, r, o, b, what, hint)
		if status != 0 {
			return status
		}
		defer b.give(cap(body))
		return s.limited(func(w http.ResponseWriter, r *http.Request, o *outcome) int {
			return next(w, r, o, body)
		})(w, r, o)
	}
}

// readBody reads a body of at most maxBody bytes into a buffer that grows
// as the bytes arrive, each growth taken from b; 0 and the body, or the
// status sent: 413 past maxBody, 503 when b is spent, 400 when the client
// stops sending. The caller gives back cap(body).
func (s *server) readBody(w http.ResponseWriter, r *http.Request, o *outcome, b *budget, what, hint string) ([]byte, int) {
	rd := http.MaxBytesReader(w, r.Body, maxBody)
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			grow := max(cap(buf), 4<<10)
			if !b.take(grow) {
				b.give(cap(buf))
				w.Header().Set("Retry-After", "1")
				return nil, s.fail(w, http.StatusServiceUnavailable, o, fmt.Sprintf("too busy: the bodies being read already hold the %d MiB pxe-pilot gives them; try again", b.max>>20))
			}
			buf = append(make([]byte, 0, cap(buf)+grow), buf...)
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, 0
		}
		if err != nil {
			b.give(cap(buf))
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, s.fail(w, http.StatusRequestEntityTooLarge, o, fmt.Sprintf("%s is over %d bytes; %s", what, maxBody, hint))
			}
			return nil, s.fail(w, http.StatusBadRequest, o, "reading the "+what+": "+err.Error())
		}
	}
}

// A budget bounds the bytes that request bodies being read hold, all
// together; a nil one bounds nothing.
type budget struct {
	max  int64
	used atomic.Int64
}

func newBudget(bytes int64) *budget { return &budget{max: bytes} }

func (b *budget) take(n int) bool {
	if b == nil {
		return true
	}
	if b.used.Add(int64(n)) > b.max {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *budget) give(n int) {
	if b != nil {
		b.used.Add(-int64(n))
	}
}

// limited runs next in one of --max-inflight's slots, if one is free,
// else sends 503.
func (s *server) limited(next route) route {
	return func(w http.ResponseWriter, r *http.Request, o *outcome) int {
		if s.slots == nil {
			return next(w, r, o)
		}
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
			return next(w, r, o)
		default:
			w.Header().Set("Retry-After", "1")
			return s.fail(w, http.StatusServiceUnavailable, o, fmt.Sprintf("too busy: %d requests are being answered, the most --max-inflight allows; try again", cap(s.slots)))
		}
	}
}

// authorized runs next if the request's bearer token is in the token file,
// where there is one.
func (s *server) authorized(next route) route {
	return func(w http.ResponseWriter, r *http.Request, o *outcome) int {
		if status := s.checkToken(w, r, o, false); status != 0 {
			return status
		}
		return next(w, r, o)
	}
}

// checkToken checks the request's token against the token file, if there
// is one: 0 lets the request through, else the status sent. The installer
// sends a bearer token; a browser (browser is true for the fleet page and
// /status.json) sends HTTP basic auth instead, which is taken as well.
func (s *server) checkToken(w http.ResponseWriter, r *http.Request, o *outcome, browser bool) int {
	if s.tokenFile == "" {
		return 0
	}
	tokens, err := readTokens(s.tokenFile)
	if err != nil {
		// Fail closed: no token file, no answers.
		return s.fail(w, http.StatusInternalServerError, o, err.Error())
	}
	if s.guard != nil {
		from := peerAddr(r.RemoteAddr)
		if ok, _ := s.guard.take(from); !ok {
			w.Header().Set("Retry-After", "1")
			return s.fail(w, http.StatusServiceUnavailable, o, "too busy: too many requests are waiting for their token to be checked; try again")
		}
		defer s.guard.give(from)
	}
	got, sent := bearer(r.Header.Get("Authorization"))
	if browser && !sent {
		got, sent = basicToken(r)
	}
	if name, ok := tokens.match(got); sent && ok {
		o.token = name
		return 0
	}
	// A browser's first request carries no password: it is no guess, and
	// its prompt need not wait.
	if s.guard != nil && (sent || !browser) {
		t := time.NewTimer(s.authDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	if browser {
		w.Header().Add("WWW-Authenticate", `Basic realm="pxe-pilot", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="pxe-pilot"`)
		if !sent {
			return s.fail(w, http.StatusUnauthorized, o, "log in with a token of the token file: its NAME as the user, its SECRET as the password")
		}
		return s.fail(w, http.StatusUnauthorized, o, "that is not a token of the token file: the user is the token's NAME, the password its SECRET")
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="pxe-pilot"`)
	if !sent {
		return s.fail(w, http.StatusUnauthorized, o, "this ISO sent no token, and pxe-pilot requires one: prepare the ISO (9.2 or later) with --answer-auth-token NAME:SECRET from the token file")
	}
	return s.fail(w, http.StatusUnauthorized, o, "the token this ISO sent is not in the token file; prepare the ISO with --answer-auth-token NAME:SECRET from it")
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

func (s *server) answer(w http.ResponseWriter, r *http.Request, o *outcome, body []byte) int {
	status, out := respond(s.dir, body, o, s.track, time.Now())
	if o.note != "" {
		s.log.Info(o.note, "remote", r.RemoteAddr)
	}
	if o.warn != "" {
		s.log.Warn(o.warn, "remote", r.RemoteAddr)
	}
	if o.host != "" {
		w.Header().Set("X-PXE-Pilot-Host", o.host)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(settleTime.Seconds())))
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
//
// t adds what tracking adds (nil for none): the webhook and first-boot
// script an answer gets, the record of each answer and unknown machine,
// and --once's refusal.
func respond(dir string, body []byte, o *outcome, t *tracker, now time.Time) (status int, out []byte) {
	req, err := parseRequest(body)
	if err != nil {
		return http.StatusBadRequest, []byte(err.Error())
	}
	rel, note, err := req.release()
	if err != nil {
		return http.StatusBadRequest, []byte(err.Error())
	}
	o.release, o.note = rel.String(), note
	c, err := openConfigDir(dir)
	if err != nil {
		var ce *changingError
		if errors.As(err, &ce) {
			return http.StatusServiceUnavailable, []byte(err.Error())
		}
		return http.StatusInternalServerError, []byte(err.Error())
	}
	defer c.close()
	return respondIn(c, req, rel, o, t, now)
}

// respondIn is respond for a request already read, from a config dir
// already open: /boot.ipxe composes the answer a machine will ask for from
// the dir it chose the machine's image from.
//
// With a state dir, a refusal is kept, as an answer is, in one write (see
// keepRefusal), so that status shows why a machine is not installing.
func respondIn(c *configDir, req request, rel release, o *outcome, t *tracker, now time.Time) (status int, out []byte) {
	status, out, m, key := answerIn(c, req, rel, o, t, now)
	if t == nil || t.state == nil || t.dry {
		return status, out
	}
	if err := t.state.keepRefusal(req, key, m, status, out, now); err != nil {
		o.warn = "not recorded: " + err.Error()
	}
	return status, out
}

// answerIn is respondIn without the refusals kept: it returns, beside the
// status and answer or reason, the host file that matched, if one did,
// and, with tracking, the machine's key.
func answerIn(c *configDir, req request, rel release, o *outcome, t *tracker, now time.Time) (status int, out []byte, m match, key string) {
	layers, m, err := loadHost(c, req)
	if err != nil {
		if o.loadError(req, err) {
			return http.StatusNotFound, []byte(err.Error()), match{}, ""
		}
		var he *hostError
		if errors.As(err, &he) {
			m = he.match
			if t != nil {
				key = machineKey(req, m)
			}
		}
		status, out = c.configStatus(err)
		return status, out, m, key
	}
	o.host, o.match = m.file, m.String()
	names := make([]string, len(layers))
	for i, l := range layers {
		names[i] = l.name
	}
	o.layers = strings.Join(names, ",")
	f := req.facts(m, rel)
	if t != nil {
		f.key = machineKey(req, m)
		if t.once && !t.dry {
			rec, err := t.state.host(f.key)
			if err != nil {
				return http.StatusInternalServerError, []byte(err.Error()), match{}, "" // its record cannot keep the refusal either
			}
			if !rec.Installed.IsZero() {
				return http.StatusConflict, fmt.Appendf(nil, "%s was installed at %s; run '%s' to install it again",
					f.key, rec.Installed.UTC().Format(time.RFC3339), t.state.rearmLine(f.key)), m, f.key
			}
		}
		var note string
		if f.hook, note = t.hook(f.key, rel); note != "" {
			o.note = strings.TrimPrefix(o.note+"; "+note, "; ")
		}
		if t.publicURL != "" {
			f.scripts, f.dir = t, c
		}
	}
	out, err = compose(layers, f)
	if err != nil {
		status, out = c.configStatus(err)
		return status, out, m, f.key
	}
	if t != nil && t.state != nil && !t.dry {
		// The token was given if pxe-pilot's webhook went out, not the
		// operator's own.
		tokenGiven := f.hook != nil && f.hook.token != "" && origin(layers, "post-installation-webhook") == ""
		if err := t.state.recordAnswer(f.key, m, rel, tokenGiven, now); err != nil {
			o.warn = "answer not recorded: " + err.Error()
		}
	}
	return http.StatusOK, out, m, f.key
}

// loadError notes in the log line what loadHost's error says of the
// machine: the host file that matched, or, where none did (the result is
// true), the MACs, serial and UUID tried.
func (o *outcome) loadError(req request, err error) (noHost bool) {
	var he *hostError
	if errors.As(err, &he) {
		o.host, o.match = he.match.file, he.match.String()
	}
	var nf *noHostError
	if !errors.As(err, &nf) {
		return false
	}
	o.tried = strings.Join(colonMACs(req.macs), ",")
	for _, id := range req.ids() {
		if id.key != "" {
			o.tried = strings.TrimPrefix(o.tried+","+id.by+":"+id.key, ",")
		}
	}
	return true
}

// installed takes the installer's report of a finished install: it finds
// the machine, by the token its answer gave it where it was given one,
// else by the host files its MACs, serial or UUID match, records it and
// logs what the operator may want to pin (its SSH host keys).
func (s *server) installed(w http.ResponseWriter, r *http.Request, o *outcome, body []byte) int {
	rep, req, err := parseReport(body)
	if err != nil {
		return s.fail(w, http.StatusBadRequest, o, err.Error())
	}
	t := s.track
	var key string
	switch {
	case rep.Token != nil && t.state != nil:
		k, ok := t.tokenKey(*rep.Token)
		if !ok {
			return s.fail(w, http.StatusUnauthorized, o, "the report's token is not one pxe-pilot gave; it cannot say which machine this is")
		}
		key = k
		if _, m, err := s.findHost(req); err == nil {
			o.host, o.match = m.file, m.String()
		}
	default:
		if len(req.macs) == 0 && req.serial == "" && req.uuid == "" {
			return s.fail(w, http.StatusBadRequest, o, "report body: names no MAC in network-interfaces, and no dmi serial or UUID, so it cannot say which machine it is")
		}
		_, m, err := s.findHost(req)
		if err != nil {
			var nf *noHostError
			if errors.As(err, &nf) {
				return s.fail(w, http.StatusNotFound, o, "report of a machine no host file names: "+err.Error())
			}
			return s.fail(w, http.StatusInternalServerError, o, err.Error())
		}
		o.host, o.match = m.file, m.String()
		key = machineKey(req, m)
		if m.by == "default" && t.state != nil {
			// Answered by its first MAC; the report may list its NICs in
			// another order, so take the one that was answered.
			for _, mac := range req.macs {
				k := strings.TrimSuffix(hostFileName(mac), ".toml")
				if rec, err := t.state.host(k); err == nil && rec.Answers > 0 {
					key = k
					break
				}
			}
		}
		if key == "" {
			return s.fail(w, http.StatusBadRequest, o, "report body: names no MAC in network-interfaces, and a machine answered by hosts/default.toml is known by its first MAC")
		}
		// A machine whose answer carried a token must show it: what a
		// report says of itself (its release) proves nothing. And a
		// machine pxe-pilot never answered cannot have been installed
		// by it.
		if t.state != nil {
			rec, err := t.state.host(key)
			switch {
			case err != nil:
				return s.fail(w, http.StatusInternalServerError, o, err.Error())
			case rec.TokenGiven:
				return s.fail(w, http.StatusUnauthorized, o, "the report carries no token, but this machine's answer gave it one")
			case rec.Answers == 0:
				return s.fail(w, http.StatusNotFound, o, "report of "+key+", which pxe-pilot never answered")
			}
		}
	}
	mac, addr := rep.management()
	keys, pubs, dropped := rep.hostKeys()
	o.extra = append(o.extra, slog.String("machine", key), slog.String("fqdn", rep.FQDN),
		slog.String("management_mac", mac), slog.String("management_address", addr),
		slog.String("ssh_host_keys", sortedHostKeys(keys)), slog.String("machine_id", rep.MachineID), slog.String("product", rep.installed()))
	if len(dropped) > 0 {
		o.extra = append(o.extra, slog.String("ssh_host_keys_dropped", strings.Join(dropped, "; ")))
	}
	if t.state != nil {
		now := time.Now()
		_, err := t.state.updateHost(key, func(h *hostRecord) {
			h.Installed, h.FQDN, h.MachineID, h.Pending = now, rep.FQDN, rep.MachineID, 0
			h.MAC, h.Address, h.SSHHostKeys, h.SSHPublicKeys, h.ReportRelease, h.Product = mac, addr, keys, pubs, rep.ISO.Release, rep.installed()
		})
		if err != nil {
			return s.fail(w, http.StatusInternalServerError, o, "the report could not be recorded: "+err.Error())
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, `{"status":"recorded"}`+"\n")
	return http.StatusOK
}

// findHost finds the host file of a machine that reports.
func (s *server) findHost(req request) (layer, match, error) {
	c, err := openConfigDir(s.dir)
	if err != nil {
		return layer{}, match{}, err
	}
	defer c.close()
	return findHost(c, req)
}

// script serves a first-boot script by the signed ticket of its URL.
func (s *server) script(w http.ResponseWriter, r *http.Request, o *outcome) int {
	st, ok := s.track.ticket(r.PathValue("ticket"))
	if !ok {
		return s.fail(w, http.StatusNotFound, o, "no such first-boot script: its URL is not one pxe-pilot signed (or pxe-pilot was restarted without --state-dir since)")
	}
	o.extra = append(o.extra, slog.String("machine", st.Key), slog.String("script", st.Path))
	c, err := openConfigDir(s.dir)
	if err != nil {
		return s.fail(w, http.StatusInternalServerError, o, err.Error())
	}
	defer c.close()
	data, msg := fillScript(c, st.Path, st.facts(), st.Host)
	if msg != "" {
		return s.fail(w, http.StatusInternalServerError, o, "first-boot-script "+msg)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
	return http.StatusOK
}

// health reports whether an answer could be composed at all: the config
// dir is readable and defaults.toml, if present, parses. Then it says how
// many host files there are and how many files have errors, as validate
// finds them; those are still a 200, so that a typo in one host file does
// not get the server restarted.
func (s *server) health(w http.ResponseWriter, _ *http.Request, _ *outcome) int {
	var status int
	var body string
	if err := checkConfigDir(s.dir); err != nil {
		msg, _ := json.Marshal("pxe-pilot: " + err.Error())
		status, body = http.StatusServiceUnavailable, `{"status":"unavailable","error":`+string(msg)+`}`
	} else {
		hosts, files := s.configCounts(time.Now())
		status, body = http.StatusOK, fmt.Sprintf(`{"status":"ok","hosts":%d,"files_with_errors":%d}`, hosts, files)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
	return status
}

// healthTTL is how long /health reuses its count of hosts and files with
// errors: counting checks every host's answer, which for thousands of
// hosts is a tenth of a second or more, and /health answers anyone.
const healthTTL = 5 * time.Second

// configCounts counts the host files and the files with errors, at most
// once per healthTTL however many ask: the others wait for that count.
func (s *server) configCounts(now time.Time) (hosts, files int) {
	c := &s.counts
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || now.Sub(c.at) >= healthTTL || now.Before(c.at) {
		r := checkConfig(s.dir, checkOptions{release: newest})
		c.hosts, c.files, c.at = r.hosts, r.filesWithErrors(), now
	}
	return c.hosts, c.files
}

// A tokenSet is the tokens of a token file: one per line, as prepare-iso
// --answer-auth-token NAME:SECRET takes it and as the installer sends it
// (Authorization: Bearer NAME:SECRET); blank lines and # comments are
// skipped. Only SHA-256 sums are kept, so that comparing takes the same
// time whatever the lengths.
type tokenSet struct {
	names []string // NAME of each, for the log
	sums  [][sha256.Size]byte
}

// readTokens reads a token file. No token in it is an error: a file that
// was meant to lock the door must not leave it open by being empty.
func readTokens(path string) (tokenSet, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	data, err := readFile(path, (*bp)[:0])
	*bp = data[:0]
	if err != nil {
		return tokenSet{}, fmt.Errorf("token file: %w", err)
	}
	if missing, ok := standIn(data); ok {
		return tokenSet{}, fmt.Errorf("token file %s: %s", path, missing)
	}
	var ts tokenSet
	n := 0
	text := strings.TrimPrefix(string(data), "\uFEFF") // a byte-order mark some editors write
	for line := range strings.Lines(text) {
		n++
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.ContainsFunc(line, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return tokenSet{}, fmt.Errorf("token file %s line %d: a token has no spaces in it; a comment goes on a line of its own, starting with #", path, n)
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok {
			name = fmt.Sprintf("line %d", n)
		}
		ts.names = append(ts.names, name)
		ts.sums = append(ts.sums, sha256.Sum256([]byte(line)))
	}
	if len(ts.names) == 0 {
		return tokenSet{}, fmt.Errorf("token file %s has no token in it; add one per line, NAME:SECRET, as prepare-iso --answer-auth-token takes it", path)
	}
	return ts, nil
}

// match finds got among the tokens, comparing with every one of them in
// constant time, and returns the name of the token it is.
func (ts tokenSet) match(got string) (name string, ok bool) {
	sum := sha256.Sum256([]byte(got))
	found := -1
	for i := range ts.sums {
		if subtle.ConstantTimeCompare(sum[:], ts.sums[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return ts.names[found], true
}

// bearer is the token of an Authorization: Bearer header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
