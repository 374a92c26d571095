// The fleet page: GET / for a browser and GET /status.json, each from one scan of the config and state dirs.

package main

import (
	"bytes"
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

// The page and /status.json are each built into memory in one of
// maxPageBuilds places, and sent from there once the place is free again:
// a build is a scan of every host and state file (half a second of CPU
// and some 20 MiB of memory for 10,000 machines), while sending takes
// only as long as the client takes to read. At most maxPageWaiting
// requests wait for a place, for pageWait at most; the pages being sent
// hold at most pageBytes; and a page is sent within pageSend or its
// connection is closed. Past any of these, a 503 says to try again.
const (
	maxPageBuilds  = 1
	maxPageWaiting = 16
	pageBytes      = 16 << 20
)

var pageWait, pageSend = 20 * time.Second, 10 * time.Second // vars for the tests

// A view is what GET / or GET /status.json sends: its content type and
// extra headers, and how it is written from the fleet.
type view struct {
	contentType string
	headers     map[string]string
	write       func(b *bytes.Buffer, st status, in pageInfo)
}

var (
	pageView = view{"text/html; charset=utf-8",
		map[string]string{"Content-Security-Policy": pagePolicy, "Referrer-Policy": "no-referrer"}, writePage}
	jsonView = view{contentType: "application/json", write: func(b *bytes.Buffer, st status, _ pageInfo) { writeStatusJSON(b, st) }}
)

// viewer serves v to a person or a program allowed to see the fleet:
// with a token file, one of its tokens, as HTTP basic auth (the token's
// NAME as the user, its SECRET as the password) or as a bearer token.
func (s *server) viewer(v view) route {
	return func(w http.ResponseWriter, r *http.Request, o *outcome) int {
		if status := s.checkToken(w, r, o, true); status != 0 {
			return status
		}
		body, status := s.build(w, r, o, v)
		if status != 0 {
			return status
		}
		size := min(cap(body), pageBytes) // one page bigger than them all is sent alone
		if !s.pageSends.take(size) {
			return s.busy(w, o, fmt.Sprintf("the fleet pages being sent already hold the %d MiB pxe-pilot gives them", pageBytes>>20))
		}
		defer s.pageSends.give(size)
		h := w.Header()
		h.Set("Content-Type", v.contentType)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		for k, val := range v.headers {
			h.Set(k, val)
		}
		// Not supported where w is no connection's (a test's recorder).
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(pageSend))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
		return http.StatusOK
	}
}

// build builds v in its turn: 0 and the body, or the status sent. The
// buffer is made about the size a page of the fleet takes, so that it
// seldom grows (each growth a copy) and holds little beyond the page.
func (s *server) build(w http.ResponseWriter, r *http.Request, o *outcome, v view) ([]byte, int) {
	if s.pageWaiting.Add(1) > maxPageWaiting+maxPageBuilds {
		s.pageWaiting.Add(-1)
		return nil, s.busy(w, o, fmt.Sprintf("%d requests already wait for a fleet page", maxPageWaiting))
	}
	defer s.pageWaiting.Add(-1)
	wait := time.NewTimer(pageWait)
	defer wait.Stop()
	select {
	case s.pageBuilds <- struct{}{}:
		defer func() { <-s.pageBuilds }()
	case <-wait.C:
		return nil, s.busy(w, o, "fleet pages are being built for others")
	case <-r.Context().Done():
		return nil, s.fail(w, http.StatusServiceUnavailable, o, "gone before a fleet page could be built for it")
	}
	now := time.Now()
	st, err := readFleet(s.dir, s.stateDir(), fleetOptions{now: now, stallAfter: s.stallAfter, bootDir: s.bootDir})
	if err != nil {
		var ce *changingError
		if errors.As(err, &ce) {
			w.Header().Set("Retry-After", strconv.Itoa(int(settleTime.Seconds())))
			return nil, s.fail(w, http.StatusServiceUnavailable, o, err.Error())
		}
		return nil, s.fail(w, http.StatusInternalServerError, o, err.Error())
	}
	body := bytes.NewBuffer(make([]byte, 0, pageSize(st)))
	v.write(body, st, pageInfo{now: now, tracked: s.stateDir() != "", boot: s.bootDir != ""})
	return body.Bytes(), 0
}

// pageSize is about what the page, or its JSON, of st takes: some 500
// bytes a machine and 300 an unknown one, beside the style sheet.
func pageSize(st status) int {
	return 8<<10 + 640*len(st.Hosts) + 400*len(st.Unknown)
}

// busy is the 503 of a fleet page past one of its bounds.
func (s *server) busy(w http.ResponseWriter, o *outcome, why string) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(pageRefresh.Seconds())))
	return s.fail(w, http.StatusServiceUnavailable, o, "too busy: "+why+"; try again")
}

// stateDir is serve's --state-dir, or "" for none.
func (s *server) stateDir() string {
	if s.track == nil || s.track.state == nil {
		return ""
	}
	return s.track.state.dir
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

// writeStatusJSON writes the status as JSON, as `pxe-pilot status --json`
// prints it.
func writeStatusJSON(w io.Writer, st status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// pageInfo is what the page says besides the fleet itself.
type pageInfo struct {
	now     time.Time
	tracked bool // serve has a --state-dir
	boot    bool // serve has a --boot-dir: show each machine's next boot
}

// stateOrder is the order the page counts the states in, each with the
// class that colours it (the state is always written out as well).
var stateOrder = []struct{ state, class string }{
	{stateStalled, "s-stalled"}, {stateRefused, "s-refused"}, {stateUnreadable, "s-refused"}, {stateRepeated, "s-repeated"},
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
type htmlWriter struct{ *bytes.Buffer }

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

// none is what the page shows for no value.
const none = "&ndash;"

// codeList writes lines as a list, each as code.
func (p htmlWriter) codeList(lines []string) {
	p.raw("<ul>\n")
	for _, line := range lines {
		p.raw("<li><code>")
		p.text(line)
		p.raw("</code></li>\n")
	}
	p.raw("</ul>\n")
}

// tableHead opens a table: its caption, and a header cell for each column.
func (p htmlWriter) tableHead(caption string, cols ...string) {
	p.raw("<table>\n<caption>", caption, "</caption>\n<thead><tr>")
	for _, c := range cols {
		p.raw(`<th scope="col">`, c, "</th>")
	}
	p.raw("</tr></thead>\n<tbody>\n")
}

// cell writes a table cell holding value, or a dash for none; label
// heads it where a narrow screen shows rows as cards.
func (p htmlWriter) cell(label, value string) {
	p.raw(`<td data-label="`, label, `">`)
	if value == "" {
		p.raw(none)
	} else {
		p.text(value)
	}
	p.raw("</td>")
}

// when writes a time as UTC and as how long ago it was.
func (p htmlWriter) when(t, now time.Time) {
	if t.IsZero() {
		p.raw(none)
		return
	}
	p.raw(`<time datetime="`, when(t), `">`, t.UTC().Format("2006-01-02 15:04 UTC"), `</time> <small>(`, ago(now.Sub(t)), `)</small>`)
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
func writePage(w *bytes.Buffer, st status, in pageInfo) {
	p := htmlWriter{w}
	counts, machines := map[string]int{}, 0
	for _, h := range st.Hosts {
		if h.Machine != "*" { // hosts/default.toml is no machine
			state, _ := shownState(h, in.now)
			counts[state]++
			machines++
		}
	}
	title := "pxe-pilot: " + plural(machines, "machine")
	if n := counts[stateStalled] + counts[stateRefused] + counts[stateUnreadable]; n > 0 {
		title = fmt.Sprintf("pxe-pilot: %d of %d machines need a look", n, machines)
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
`)
		p.codeList(st.Problems)
		p.raw("</section>\n")
	}

	p.raw(`<h2 id="machines">Machines (`, strconv.Itoa(machines), `)</h2>
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
		writeUnknown(p, st.Unknown, st.Dropped, in.now)
	}
	if len(st.Unreadable) > 0 {
		p.raw(`<h2 id="unreadable">State files that could not be read</h2>
<p>Their machines are listed above as unreadable; the rest are shown all the same.</p>
`)
		p.codeList(st.Unreadable)
	}
	p.raw("</main>\n</body>\n</html>\n")
}

// writeMachines writes the table of configured machines.
func writeMachines(p htmlWriter, hosts []statusRow, in pageInfo) {
	if len(hosts) == 0 {
		p.raw("<p>No host file yet: add one under <code>hosts/</code> in the config dir, named by a MAC, serial or UUID.</p>\n")
		return
	}
	cols := []string{"Machine and host file", "State", "Planned FQDN and address", "Profiles"}
	if in.boot {
		cols = append(cols, "Boot image")
	}
	cols = append(cols, "Last answer", "Installed as")
	if in.boot {
		cols = append(cols, "Next boot")
	}
	p.tableHead("Every host file of the config dir, with what pxe-pilot knows of its machine", cols...)
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
			p.raw(none)
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

// shownState is a machine's state as the page shows it, and what explains
// it (the refusal, how long it has been silent), if anything.
func shownState(h statusRow, now time.Time) (state, why string) {
	switch {
	case h.Machine == "*": // hosts/default.toml itself
		return "default", "answers every machine no host file names; each one it answered has a row of its own"
	case h.StateError != "":
		return stateUnreadable, h.StateError
	case h.State == stateRefused && h.LastRefusal != nil:
		return h.State, fmt.Sprintf("%d: %s", h.LastRefusal.Code, h.LastRefusal.Reason)
	case h.State == stateStalled:
		return h.State, "answered " + ago(now.Sub(h.LastAnswer)) + " and no report since: the install failed, or its report was lost; its next boot installs again"
	case h.State == stateRepeated:
		return h.State, fmt.Sprintf("answered %d times with no report between", h.Pending)
	}
	return h.State, ""
}

// stateUnreadable is the page's state of a machine whose state file
// cannot be read.
const stateUnreadable = "unreadable"

// writeState writes a machine's state cell.
func writeState(p htmlWriter, h statusRow, now time.Time) {
	state, why := shownState(h, now)
	p.raw(`<td data-label="State" class="state `, stateClass(state), `">`)
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
// dir keeps the newest maxUnknown, and `pxe-pilot status` lists them.
const (
	unknownRecent   = 7 * 24 * time.Hour
	maxUnknownShown = 100
)

// writeUnknown writes the table of machines that asked recently and
// matched no host file, each with the host file that would adopt it.
// unknown is newest first; dropped, if not nil, says how many older ones
// the state dir no longer holds.
func writeUnknown(p htmlWriter, unknown []unknownRecord, dropped *unknownDropped, now time.Time) {
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
	if dropped != nil {
		p.raw("<p>")
		p.text(dropped.String())
		p.raw("</p>\n")
	}
	if len(unknown) == 0 {
		p.raw("<p>None has asked lately.</p>\n")
		return
	}
	p.tableHead("Machines that asked pxe-pilot and were refused: write the host file named here to install one",
		"Adopt with", "MACs", "Serial", "UUID", "Model", "Last asked", "Requests")
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
