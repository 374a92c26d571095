// The fleet page: GET / for a browser and GET /status.json, each from one scan of the config and state dirs.

package main

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The page is written out as it is made, each value that came from a file,
// a request or a report escaped as html.EscapeString does, and none of them
// ever in a URL, a script or a style: there is no script at all, and the
// Content-Security-Policy says so. (html/template would escape the same
// way, but its reflection keeps the linker from dropping unused methods,
// which made the binary 1.9 MiB bigger than the 8 MiB a router allows.)

// pageRefresh is how often the page reloads itself.
const pageRefresh = 10 * time.Second

// pageStyle is the page's one style sheet. The Content-Security-Policy
// allows it by its hash, and nothing else.
const pageStyle = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 1rem; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
p, ul { margin: .25rem 0; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid #ccc; }
th { background: #eee; }
code { font: .9em ui-monospace, monospace; overflow-wrap: anywhere; }
small { color: #555; }
.why { font-weight: normal; white-space: normal; }
.state { font-weight: 600; border-left: .4rem solid #999; }
tbody th { background: none; font-weight: normal; }
.s-installed { border-left-color: #2e7d32; }
.s-answered, .s-repeated { border-left-color: #1565c0; }
.s-stalled, .s-refused { border-left-color: #c62828; color: #b71c1c; }
.s-never { border-left-color: #bbb; }
.problems { border: 2px solid #c62828; padding: .5rem .75rem; }
.summary li { display: inline-block; margin-right: 1rem; }
@media (prefers-color-scheme: dark) {
  body { color: #e6e6e6; background: #161616; } th { background: #2a2a2a; } small { color: #aaa; }
  th, td { border-color: #444; } .s-stalled, .s-refused { color: #ff8a80; }
}
@media (max-width: 50rem) {
  table, caption, tbody, tr, th, td { display: block; } thead { position: absolute; left: -9999px; }
  tr { border: 1px solid #ccc; margin: .5rem 0; } td { border: 0; }
  td::before { content: attr(data-label) ": "; font-weight: 600; }
}
`

// pagePolicy lets the page have its style sheet and nothing else: no
// script, no image, no form, no frame around it.
var pagePolicy = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// fleet reads the fleet as the page and /status.json show it, now.
func (s *server) fleet(now time.Time) (status, error) {
	return readFleet(s.dir, s.stateDir(), fleetOptions{now: now, stallAfter: s.stallAfterOrDefault(), bootDir: s.bootDir})
}

// stateDir is serve's --state-dir, or "" for none.
func (s *server) stateDir() string {
	if s.track == nil || s.track.state == nil {
		return ""
	}
	return s.track.state.dir
}

// stallAfterOrDefault is serve's --stall-after, or its default where the
// server was made without one (a test's).
func (s *server) stallAfterOrDefault() time.Duration {
	if s.stallAfter > 0 {
		return s.stallAfter
	}
	return defaultStallAfter
}

// maxPageBuilds is how many fleet pages (and /status.json) are built at
// once: each is a scan of every host and state file, half a second of CPU
// and some 20 MiB of memory for 10,000 machines, and browsers ask again
// every pageRefresh. The others wait their turn, holding no more than
// their connection, for pageWait at most; a page is built and sent within
// pageSend, or its connection is closed, so that a client that does not
// read what it asked for keeps no one else waiting for long.
const maxPageBuilds = 1

var pageWait, pageSend = 20 * time.Second, 10 * time.Second // vars for the tests

// viewer runs next for a person or a program allowed to see the fleet:
// with a token file, one of its tokens, as HTTP basic auth (the token's
// NAME as the user, its SECRET as the password) or as a bearer token;
// then in one of maxPageBuilds places, and one of --max-inflight's slots.
func (s *server) viewer(next route) route {
	return func(w http.ResponseWriter, r *http.Request, o *outcome) int {
		if status := s.checkToken(w, r, o, true); status != 0 {
			return status
		}
		wait := time.NewTimer(pageWait)
		defer wait.Stop()
		select {
		case s.pageBuilds <- struct{}{}:
			defer func() { <-s.pageBuilds }()
		case <-wait.C:
			w.Header().Set("Retry-After", strconv.Itoa(int(pageRefresh.Seconds())))
			return s.fail(w, http.StatusServiceUnavailable, o, "too busy: fleet pages are being built for others; try again")
		case <-r.Context().Done():
			return s.fail(w, http.StatusServiceUnavailable, o, "gone before a fleet page could be built for it")
		}
		// Not supported where w is no connection's (a test's recorder).
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(pageSend))
		return s.limited(next)(w, r, o)
	}
}

// basicToken is the token a browser sends as HTTP basic auth: the token
// file's NAME:SECRET line, from the user NAME and the password SECRET. A
// token line without a colon is the password alone, with no user.
func basicToken(r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" && pass == "" {
		return "", false
	}
	if user == "" {
		return pass, true
	}
	return user + ":" + pass, true
}

// fleetFailed sends a one-line error where the fleet could not be read.
func (s *server) fleetFailed(w http.ResponseWriter, o *outcome, err error) int {
	var ce *changingError
	if errors.As(err, &ce) {
		w.Header().Set("Retry-After", strconv.Itoa(int(settleTime.Seconds())))
		return s.fail(w, http.StatusServiceUnavailable, o, err.Error())
	}
	return s.fail(w, http.StatusInternalServerError, o, err.Error())
}

// statusJSON is GET /status.json: what `pxe-pilot status --json` prints.
func (s *server) statusJSON(w http.ResponseWriter, _ *http.Request, o *outcome) int {
	st, err := s.fleet(time.Now())
	if err != nil {
		return s.fleetFailed(w, o, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	writeStatusJSON(w, st)
	return http.StatusOK
}

// writeStatusJSON writes the status as JSON, its lists [] where empty.
func writeStatusJSON(w io.Writer, st status) error {
	if st.Hosts == nil {
		st.Hosts = []statusRow{}
	}
	if st.Unknown == nil {
		st.Unknown = []unknownRecord{}
	}
	if st.Problems == nil {
		st.Problems = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// page is GET /: the fleet as a web page.
func (s *server) page(w http.ResponseWriter, _ *http.Request, o *outcome) int {
	now := time.Now()
	st, err := s.fleet(now)
	if err != nil {
		return s.fleetFailed(w, o, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pagePolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	writePage(bw, st, pageInfo{now: now, tracked: s.stateDir() != "", stallAfter: s.stallAfterOrDefault(), boot: s.bootDir != ""})
	bw.Flush()
	return http.StatusOK
}

// pageInfo is what the page says besides the fleet itself.
type pageInfo struct {
	now        time.Time
	tracked    bool          // serve has a --state-dir
	stallAfter time.Duration // --stall-after
	boot       bool          // serve has a --boot-dir: show each machine's next boot
}

// stateOrder is the order the page counts the states in, each with the
// class that colours it (the state is always written out as well).
var stateOrder = []struct{ state, class string }{
	{stateStalled, "s-stalled"}, {stateRefused, "s-refused"}, {stateRepeated, "s-repeated"},
	{stateAnswered, "s-answered"}, {stateInstalled, "s-installed"}, {stateNeverSeen, "s-never"},
	{stateUntracked, "s-never"},
}

func stateClass(state string) string {
	for _, s := range stateOrder {
		if s.state == state {
			return s.class
		}
	}
	return "s-never"
}

// htmlWriter writes a page: raw for the page's own markup, text for any
// value, escaped.
type htmlWriter struct{ *bufio.Writer }

func (p htmlWriter) raw(parts ...string) {
	for _, s := range parts {
		p.WriteString(s)
	}
}

// text writes s as HTML text, quoted with Go's escapes first where a
// character of it would not print (a control character, or one that turns
// the text around), as status does in a terminal.
func (p htmlWriter) text(s string) { htmlEscaper.WriteString(p, shown(s)) }

// htmlEscaper escapes text for HTML as html.EscapeString does, with its
// table: the package html brings its table of 2,000 named entities along,
// 64 KiB of a binary that must fit a router.
var htmlEscaper = strings.NewReplacer(`&`, "&amp;", `'`, "&#39;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;")

// cell writes a table cell holding value, or a dash for none; label
// heads it where a narrow screen shows rows as cards.
func (p htmlWriter) cell(label, value string) {
	p.raw(`<td data-label="`, label, `">`)
	if value == "" {
		p.raw("&ndash;")
	} else {
		p.text(value)
	}
	p.raw("</td>")
}

// when writes a time as UTC and as how long ago it was.
func (p htmlWriter) when(t, now time.Time) {
	if t.IsZero() {
		p.raw("&ndash;")
		return
	}
	p.raw(`<time datetime="`, t.UTC().Format(time.RFC3339), `">`, t.UTC().Format("2006-01-02 15:04 UTC"), `</time> <small>(`, ago(now.Sub(t)), `)</small>`)
}

// ago is a duration as a person reads it: "just now", "5 min ago".
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future: check the clocks"
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}

// writePage writes the fleet page.
func writePage(w *bufio.Writer, st status, in pageInfo) {
	p := htmlWriter{w}
	counts := map[string]int{}
	for _, h := range st.Hosts {
		counts[h.State]++
	}
	title := "pxe-pilot: " + plural(len(st.Hosts), "machine")
	if n := counts[stateStalled] + counts[stateRefused]; n > 0 {
		title = fmt.Sprintf("pxe-pilot: %d of %d machines need a look", n, len(st.Hosts))
	}
	p.raw(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="`, strconv.Itoa(int(pageRefresh.Seconds())), `">
<title>`)
	p.text(title)
	p.raw(`</title>
<style>`, pageStyle, `</style>
</head>
<body>
<header>
<h1>pxe-pilot</h1>
<p>As of `)
	p.when(in.now, in.now)
	p.raw(`. This page reloads every `, strconv.Itoa(int(pageRefresh.Seconds())), ` seconds; <a href="/">reload now</a> &middot; <a href="/status.json">as JSON</a>.</p>
</header>
<main>
`)
	if !in.tracked {
		p.raw(`<p><strong>Tracking is off</strong>: serve was started without <code>--state-dir</code>, so pxe-pilot does not know which machines were answered or installed, and every network boot of a configured machine installs it. Start serve with <code>--state-dir</code> to see each machine's state here.</p>
`)
	}
	if len(st.Problems) > 0 {
		p.raw(`<section class="problems" aria-labelledby="problems"><h2 id="problems">Config problems (`, strconv.Itoa(len(st.Problems)), `)</h2>
<p>As <code>pxe-pilot validate</code> says them. A machine whose files have errors is refused, not installed.</p>
<ul>
`)
		for _, line := range st.Problems {
			p.raw("<li><code>")
			p.text(line)
			p.raw("</code></li>\n")
		}
		p.raw("</ul></section>\n")
	}

	p.raw(`<h2 id="machines">Machines (`, strconv.Itoa(len(st.Hosts)), `)</h2>
`)
	if in.tracked && len(st.Hosts) > 0 {
		p.raw(`<ul class="summary">`)
		for _, s := range stateOrder {
			if n := counts[s.state]; n > 0 {
				p.raw(`<li><span class="state `, s.class, `">`, strconv.Itoa(n), " ", s.state, `</span></li>`)
			}
		}
		p.raw("</ul>\n")
	}
	writeMachines(p, st.Hosts, in)
	if in.tracked {
		writeUnknown(p, st.Unknown, in.now)
	}
	if len(st.Unreadable) > 0 {
		p.raw(`<h2 id="unreadable">State files that could not be read</h2>
<p>Their machines are listed above with a question mark; the rest are shown all the same.</p>
<ul>
`)
		for _, line := range st.Unreadable {
			p.raw("<li><code>")
			p.text(line)
			p.raw("</code></li>\n")
		}
		p.raw("</ul>\n")
	}
	p.raw("</main>\n</body>\n</html>\n")
}

// writeMachines writes the table of configured machines.
func writeMachines(p htmlWriter, hosts []statusRow, in pageInfo) {
	if len(hosts) == 0 {
		p.raw("<p>No host file yet: add one under <code>hosts/</code> in the config dir, named by a MAC, serial or UUID.</p>\n")
		return
	}
	p.raw(`<table>
<caption>Every host file of the config dir, with what pxe-pilot knows of its machine</caption>
<thead><tr><th scope="col">Machine and host file</th><th scope="col">State</th><th scope="col">Planned FQDN and address</th><th scope="col">Profiles</th>`)
	if in.boot {
		p.raw(`<th scope="col">Boot image</th>`)
	}
	p.raw(`<th scope="col">Last answer</th><th scope="col">Installed as</th>`)
	if in.boot {
		p.raw(`<th scope="col">Next boot</th>`)
	}
	p.raw("</tr></thead>\n<tbody>\n")
	for _, h := range hosts {
		p.raw(`<tr><th scope="row" data-label="Machine"><code>`)
		p.text(h.Machine)
		p.raw(`</code><br><small>`)
		p.text(cmp.Or(h.HostFile, "(host file gone)"))
		if h.MatchBy != "" {
			p.raw(", by ")
			p.text(h.MatchBy)
		}
		p.raw(`</small></th>`)
		writeState(p, h, in.now)
		p.raw(`<td data-label="Planned">`)
		p.text(h.PlannedFQDN)
		p.raw("<br><small>")
		p.text(h.PlannedAddress)
		p.raw("</small></td>")
		p.cell("Profiles", strings.Join(h.Profiles, ", "))
		if in.boot {
			p.cell("Boot image", h.BootImage)
		}
		p.raw(`<td data-label="Last answer">`)
		p.when(h.LastAnswer, in.now)
		if h.Answers > 1 {
			p.raw("<br><small>", strconv.Itoa(h.Answers), " answers in all</small>")
		}
		p.raw(`</td><td data-label="Installed as">`)
		if h.Installed.IsZero() {
			p.raw("&ndash;")
		} else {
			p.text(cmp.Or(h.FQDN, "(no FQDN reported)"))
			p.raw("<br><small>")
			p.text(cmp.Or(h.Address, "(no address reported)"))
			p.raw("</small><br>")
			p.when(h.Installed, in.now)
		}
		p.raw("</td>")
		if in.boot {
			p.cell("Next boot", h.NextBoot)
		}
		p.raw("</tr>\n")
	}
	p.raw("</tbody>\n</table>\n")
}

// writeState writes a machine's state cell: the state in words, and what
// explains it (the refusal, how long it has been silent).
func writeState(p htmlWriter, h statusRow, now time.Time) {
	state, why := h.State, ""
	switch {
	case h.Machine == "*": // hosts/default.toml itself
		state, why = "default", "answers every machine no host file names; each one it answered has a row of its own"
	case h.StateError != "":
		state, why = "?", h.StateError
	case h.State == stateRefused && h.LastRefusal != nil:
		why = fmt.Sprintf("%d: %s", h.LastRefusal.Code, h.LastRefusal.Reason)
	case h.State == stateStalled:
		why = "answered " + ago(now.Sub(h.LastAnswer)) + " and no report since: the install failed, or its report was lost; its next boot installs again"
	case h.State == stateRepeated:
		why = fmt.Sprintf("answered %d times with no report between", h.Pending)
	}
	p.raw(`<td data-label="State" class="state `, stateClass(h.State), `">`)
	p.text(state)
	if why != "" {
		p.raw(`<br><small class="why">`)
		p.text(why)
		p.raw("</small>")
	}
	p.raw("</td>")
}

// The page lists the unknown machines that asked in the last
// unknownRecent, newest first, at most maxUnknownShown of them: the state
// dir keeps every one that ever asked, and `pxe-pilot status` lists them.
const (
	unknownRecent   = 7 * 24 * time.Hour
	maxUnknownShown = 100
)

// writeUnknown writes the table of machines that asked recently and
// matched no host file, each with the host file that would adopt it.
// unknown is newest first.
func writeUnknown(p htmlWriter, unknown []unknownRecord, now time.Time) {
	recent := 0
	for recent < len(unknown) && recent < maxUnknownShown && now.Sub(unknown[recent].LastSeen) < unknownRecent {
		recent++
	}
	older := len(unknown) - recent
	unknown = unknown[:recent]
	p.raw(`<h2 id="unknown">Machines no host file names (`, strconv.Itoa(len(unknown)), `)</h2>
`)
	if older > 0 {
		p.raw("<p>Those that asked in the last 7 days, newest first, ", strconv.Itoa(maxUnknownShown), " at most; <code>pxe-pilot status</code> also lists the ", strconv.Itoa(older), " left out here.</p>\n")
	}
	if len(unknown) == 0 {
		p.raw("<p>None has asked lately.</p>\n")
		return
	}
	p.raw(`<table>
<caption>Machines that asked pxe-pilot and were refused: write the host file named here to install one</caption>
<thead><tr><th scope="col">Adopt with</th><th scope="col">MACs</th><th scope="col">Serial</th><th scope="col">UUID</th><th scope="col">Model</th><th scope="col">Last asked</th><th scope="col">Requests</th></tr></thead>
<tbody>
`)
	for _, u := range unknown {
		p.raw(`<tr><th scope="row" data-label="Adopt with"><code>`)
		p.text(cmp.Or(u.Adopt, "(no MAC to name it by)"))
		p.raw(`</code></th>`)
		p.cell("MACs", strings.Join(u.MACs, ", "))
		p.cell("Serial", u.Serial)
		p.cell("UUID", u.UUID)
		p.cell("Model", u.Model)
		p.raw(`<td data-label="Last asked">`)
		p.when(u.LastSeen, now)
		p.raw("</td>")
		p.cell("Requests", strconv.Itoa(u.Requests))
		p.raw("</tr>\n")
	}
	p.raw("</tbody>\n</table>\n")
}

// plural is n things: "1 machine", "2 machines".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
