package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pageClock is the page golden file's "now".
var pageClock = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// pageFleet is a fleet with a machine in every state, and one of each
// kind of trouble the page shows.
func pageFleet() status {
	at := func(d time.Duration) time.Time { return pageClock.Add(-d) }
	row := func(machine, state string) statusRow {
		return statusRow{Machine: machine, MatchBy: "mac " + strings.ReplaceAll(machine, "-", ":"), HostFile: "hosts/" + machine + ".toml",
			PlannedFQDN: "pve-" + machine[len(machine)-2:] + ".lab.example.com", PlannedAddress: "10.0.0." + machine[len(machine)-2:],
			Profiles: []string{"rack-a", "zfs-mirror"}, BootImage: "pve-9.2", NextBoot: "install", State: state}
	}
	never := row("aa-bb-cc-dd-ee-01", stateNeverSeen)
	answered := row("aa-bb-cc-dd-ee-02", stateAnswered)
	answered.LastAnswer, answered.Answers, answered.Pending = at(5*time.Minute), 1, 1
	installed := row("aa-bb-cc-dd-ee-03", stateInstalled)
	installed.LastAnswer, installed.Answers = at(3*time.Hour), 1
	installed.Installed, installed.FQDN, installed.Address, installed.NextBoot = at(150*time.Minute), "pve-03.lab.example.com", "10.0.0.3", "local disk"
	refused := row("aa-bb-cc-dd-ee-04", stateRefused)
	refused.LastRefusal = &refusal{At: at(time.Minute), Code: 500, Reason: `pxe-pilot: hosts/aa-bb-cc-dd-ee-04.toml: disk-setup.zfs.raid: "raid5" is not one of raid0, raid1`}
	refused.NextBoot = "refused (pxe-pilot validate says why)"
	stalled := row("aa-bb-cc-dd-ee-05", stateStalled)
	stalled.LastAnswer, stalled.Answers, stalled.Pending, stalled.StalledSince = at(95*time.Minute), 1, 1, at(35*time.Minute)
	repeated := row("aa-bb-cc-dd-ee-06", stateRepeated)
	repeated.LastAnswer, repeated.Answers, repeated.Pending, repeated.NextBoot = at(2*time.Minute), 3, 3, "install, attempt 4"
	def := statusRow{Machine: "*", MatchBy: "default", HostFile: "hosts/default.toml", PlannedFQDN: "pve-{{.Serial}}.lab.example.com", PlannedAddress: "dhcp",
		Profiles: []string{"zfs-mirror"}, BootImage: "pve-9.2", NextBoot: "install", State: stateUntracked}
	unreadable := row("aa-bb-cc-dd-ee-07", stateNeverSeen)
	unreadable.StateError = "state file hosts/aa-bb-cc-dd-ee-07.json: unexpected end of JSON input"
	return status{
		Hosts: []statusRow{never, answered, installed, refused, stalled, repeated, unreadable, def},
		Unknown: []unknownRecord{{MACs: []string{"02:00:00:00:00:09", "02:00:00:00:00:0a"}, Serial: "S-0009", UUID: "4c4c4544-0000-1010-8000-b2c04f303039",
			Model: "PowerEdge R650", FirstSeen: at(20 * time.Minute), LastSeen: at(10 * time.Minute), Requests: 2, Adopt: "hosts/02-00-00-00-00-09.toml"}},
		Unreadable: []string{unreadable.StateError},
		Problems:   []string{`hosts/aa-bb-cc-dd-ee-04.toml: disk-setup.zfs.raid: "raid5" is not one of raid0, raid1`},
	}
}

func renderPage(st status, in pageInfo) string {
	var b bytes.Buffer
	writePage(&b, st, in)
	return b.String()
}

// The page of a fleet in every state, against its golden file: review its
// diff (and open it in a browser) as you would the page.
func TestWritePageGolden(t *testing.T) {
	got := renderPage(pageFleet(), pageInfo{now: pageClock, tracked: true, boot: true})
	checkGolden(t, filepath.Join("testdata", "page", "fleet.html"), []byte(got))
}

// Each state is written out in words in its row, with what explains it,
// never left to a colour alone.
func TestWritePageStates(t *testing.T) {
	got := renderPage(pageFleet(), pageInfo{now: pageClock, tracked: true, boot: true})
	rows := map[string][]string{
		"aa-bb-cc-dd-ee-01": {`class="state s-never">never seen<`},
		"aa-bb-cc-dd-ee-02": {`>answered<`, "5 min ago"},
		"aa-bb-cc-dd-ee-03": {`>installed<`, "pve-03.lab.example.com", "10.0.0.3", "local disk"},
		"aa-bb-cc-dd-ee-04": {`>refused<`, `500: pxe-pilot: hosts/aa-bb-cc-dd-ee-04.toml: disk-setup.zfs.raid: &#34;raid5&#34; is not one of`},
		"aa-bb-cc-dd-ee-05": {`>stalled<`, "answered 1 h ago and no report since", "its next boot installs again"},
		"aa-bb-cc-dd-ee-06": {`>repeated<`, "answered 3 times with no report between", "install, attempt 4"},
		"aa-bb-cc-dd-ee-07": {`>unreadable<`, "unexpected end of JSON input"},
		"*":                 {`>default<`, "answers every machine no host file names", "hosts/default.toml"},
	}
	for machine, wants := range rows {
		row := rowOf(t, got, machine)
		for _, want := range wants {
			if !strings.Contains(row, want) {
				t.Errorf("row of %s lacks %q:\n%s", machine, want, row)
			}
		}
	}
	for _, want := range []string{
		`<title>pxe-pilot: 3 of 7 machines need a look</title>`,
		`<h2 id="machines">Machines (7)</h2>`, // hosts/default.toml is no machine
		`<h2 id="problems">Config problems (1)</h2>`,
		`<code>hosts/02-00-00-00-00-09.toml</code>`, // the file that adopts the unknown machine
		`02:00:00:00:00:09, 02:00:00:00:00:0a`,
		`<th scope="col">Next boot</th>`,
		`<meta http-equiv="refresh" content="10">`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// rowOf is the table row of a machine.
func rowOf(t *testing.T, page, machine string) string {
	t.Helper()
	i := strings.Index(page, "<code>"+machine+"</code>")
	if i < 0 {
		t.Fatalf("no row for %s", machine)
	}
	start := strings.LastIndex(page[:i], "<tr>")
	end := strings.Index(page[i:], "</tr>")
	return page[start : i+end]
}

// Without a state dir the page lists the configured machines and says
// that tracking is off; without boot images it has no boot columns.
func TestWritePageUntracked(t *testing.T) {
	st := pageFleet()
	for i := range st.Hosts {
		st.Hosts[i].State, st.Hosts[i].hostRecord = stateUntracked, hostRecord{}
	}
	got := renderPage(st, pageInfo{now: pageClock})
	for _, want := range []string{"<strong>Tracking is off</strong>", `>not tracked<`, "<code>aa-bb-cc-dd-ee-06</code>"} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"Next boot", "Boot image", "Machines no host file names"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("page without tracking or boot images has %q", unwanted)
		}
	}
}

// markup is what the escaping tests put in every field a request or a
// report can fill: an element, a closing tag, a broken-out attribute and
// an entity.
const markup = `<script>alert(1)</script><img src=x onerror=alert(2)>"><b>&amp;`

// Every value from a file, a request or a report is text on the page: no
// tag it holds reaches the page as a tag, and the page's only markup is
// its own.
func TestWritePageEscapesEveryValue(t *testing.T) {
	// The fleet with value in every field; hosts/default.toml's row keeps
	// its name, which the page reads.
	with := func(value string) string {
		st := pageFleet()
		for i := range st.Hosts {
			h := &st.Hosts[i]
			if h.Machine != "*" {
				h.Machine = value
			}
			h.MatchBy, h.HostFile, h.PlannedFQDN, h.PlannedAddress, h.BootImage, h.NextBoot = value, value, value, value, value, value
			h.Profiles, h.FQDN, h.Address = []string{value}, value, value
			if h.LastRefusal != nil {
				h.LastRefusal.Reason = value
			}
			if h.StateError != "" {
				h.StateError = value
			}
		}
		u := &st.Unknown[0]
		u.MACs, u.Serial, u.UUID, u.Model, u.Adopt = []string{value}, value, value, value, value
		st.Problems, st.Unreadable = []string{value}, []string{value}
		return renderPage(st, pageInfo{now: pageClock, tracked: true, boot: true})
	}
	got, plain := with(markup), with("plain")
	for _, tag := range []string{"<script", "<img", "<b>", `">`, "<"} {
		if n, want := strings.Count(got, tag), strings.Count(plain, tag); n != want {
			t.Errorf("%q appears %d times, %d with plain values: a value reached the page as markup", tag, n, want)
		}
	}
	if want := "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&#34;&gt;&lt;b&gt;&amp;amp;"; !strings.Contains(got, want) {
		t.Errorf("page lacks the escaped markup %q", want)
	}
}

// A value with a character that would not print, or one that turns the
// text around, is shown quoted with Go's escapes, as status shows it.
func TestWritePageQuotesUnprintable(t *testing.T) {
	st := pageFleet()
	st.Unknown[0].Model = "Evil\u202eRight-To-Left\x1b[2J"
	got := renderPage(st, pageInfo{now: pageClock, tracked: true})
	if want := `&#34;Evil\u202eRight-To-Left\x1b[2J&#34;`; !strings.Contains(got, want) {
		t.Errorf("page lacks %s", want)
	}
	if strings.ContainsAny(got, "\u202e\x1b") {
		t.Error("page holds the raw control characters")
	}
}

// The fleet page and /status.json through the real routes: machines
// answered, installed, refused and unknown, made by the installer's own
// requests and reports.
func TestFleetPageThroughTheRoutes(t *testing.T) {
	broken := "aa-bb-cc-dd-ee-04"
	s := startTracked(t, map[string]string{
		"hosts/" + broken + ".toml": "[disk-setup]\nfilesystem = \"zfs\"\nzfs.raid = \"raid5\"\n",
	})
	installedReq := mustRead(t, "examples/requests/pve-9.2.json")
	_, ans := s.answer(t, installedReq)
	s.reportInstalled(t, ans, "pve-node-01.lab.example.com", "10.0.0.10/24")
	s.answer(t, mustRead(t, "examples/requests/pve-9.2-serial.json"))
	s.answer(t, mustRead(t, "examples/requests/pve-9.2-serial.json"))
	if code, body := s.post(t, "/answer", systemInfo("9.2", "S4", "", "aa:bb:cc:dd:ee:04")); code != http.StatusInternalServerError && code != http.StatusUnprocessableEntity {
		t.Fatalf("answer of %s = %d %q; want a refusal", broken, code, body)
	}
	if code, _ := s.post(t, "/answer", mustRead(t, "examples/requests/unknown-host.json")); code != http.StatusNotFound {
		t.Fatalf("answer of the unknown host = %d; want 404", code)
	}

	code, page := s.do(t, http.MethodGet, s.url+"/", nil)
	if code != http.StatusOK {
		t.Fatalf("GET / = %d; want 200\n%s", code, page)
	}
	for machine, want := range map[string]string{
		"aa-bb-cc-dd-ee-ff":  ">installed<",
		"serial-EXAMPLE0042": ">repeated<",
		"aa-bb-cc-dd-ee-01":  ">never seen<",
		broken:               ">refused<",
	} {
		if row := rowOf(t, page, machine); !strings.Contains(row, want) {
			t.Errorf("row of %s lacks %q:\n%s", machine, want, row)
		}
	}
	if !strings.Contains(page, "<code>hosts/02-00-00-00-00-01.toml</code>") {
		t.Errorf("the unknown machine's row lacks the host file that would adopt it:\n%s", page)
	}

	code, body := s.do(t, http.MethodGet, s.url+"/status.json", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /status.json = %d; want 200\n%s", code, body)
	}
	var st status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status.json does not parse: %v\n%s", err, body)
	}
	states := map[string]string{}
	for _, h := range st.Hosts {
		states[h.Machine] = h.State
	}
	want := map[string]string{"aa-bb-cc-dd-ee-ff": stateInstalled, "serial-EXAMPLE0042": stateRepeated, "aa-bb-cc-dd-ee-01": stateNeverSeen, broken: stateRefused}
	for m, w := range want {
		if states[m] != w {
			t.Errorf("/status.json: %s is %q; want %q", m, states[m], w)
		}
	}
	// The same data as status --json.
	var out bytes.Buffer
	if err := run([]string{"status", "--json", "--config-dir", s.config, "--state-dir", s.state}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var cli status
	if err := json.Unmarshal(out.Bytes(), &cli); err != nil {
		t.Fatal(err)
	}
	for _, h := range cli.Hosts {
		if states[h.Machine] != h.State {
			t.Errorf("status --json: %s is %q; /status.json says %q", h.Machine, h.State, states[h.Machine])
		}
	}
}

// reportInstalled posts pve-node-01's report, with the token its answer
// gave it, as installed with this FQDN and address.
func (s *trackedServer) reportInstalled(t *testing.T, ans map[string]any, fqdn, address string) {
	t.Helper()
	token, _ := answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	r := node01Report(&token)
	r.fqdn, r.nics[0].address = fqdn, address
	if code, body := s.post(t, "/installed", r.body()); code != http.StatusOK {
		t.Fatalf("POST /installed = %d %q; want 200", code, body)
	}
}

// Markup in every field of a request and a report the page shows stays
// text on the page: the request's serial, model and UUID (of an unknown
// machine), the report's FQDN and address.
func TestFleetPageEscapesRequestsAndReports(t *testing.T) {
	s := startTracked(t, nil)
	unknown := fmt.Sprintf(`{"network_interfaces":[{"link":"eno1","mac":"02:00:00:00:00:07"}],
		"dmi":{"system":{"serial":%q,"uuid":%q,"name":%q}},"product":{"product":"pve"},"iso":{"release":"9.2"}}`,
		markup, markup, strings.NewReplacer(`"`, "", `'`, "").Replace(markup))
	if code, body := s.post(t, "/answer", []byte(unknown)); code != http.StatusNotFound {
		t.Fatalf("answer of the unknown machine = %d %q; want 404, and the machine recorded", code, body)
	}
	req := mustRead(t, "examples/requests/pve-9.2.json")
	_, ans := s.answer(t, req)
	s.reportInstalled(t, ans, markup, markup)

	_, page := s.do(t, http.MethodGet, s.url+"/", nil)
	for _, tag := range []string{"<script", "<img", "<b>"} {
		if strings.Contains(page, tag) {
			t.Errorf("page holds %q: a value reached it as markup", tag)
		}
	}
	escaped := "&lt;script&gt;alert(1)&lt;/script&gt;"
	if row := rowOf(t, page, "aa-bb-cc-dd-ee-ff"); !strings.Contains(row, escaped) {
		t.Errorf("the installed machine's row lacks the escaped markup of its report's FQDN:\n%s", row)
	}
	i := strings.Index(page, "<code>hosts/02-00-00-00-00-07.toml</code>")
	if i < 0 || !strings.Contains(page[i:], escaped) {
		t.Errorf("the unknown machine's row lacks the escaped markup of its serial:\n%s", page)
	}
}

// The page and /status.json carry headers that keep a browser from
// running or framing anything, and nothing of a secret.
func TestFleetPageHeaders(t *testing.T) {
	s := startTracked(t, withFirstBootScript(t))
	_, ans := s.answer(t, mustRead(t, "examples/requests/pve-9.2.json"))
	// What an answer holds that no one else may see.
	secrets := []string{
		answerTable(ans, "post-installation-webhook")["auth-token"].(string),
		answerTable(ans, "first-boot")["url"].(string),
		answerTable(ans, "global")["root-password-hashed"].(string),
	}
	for _, path := range []string{"/", "/status.json"} {
		resp, err := s.client.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d; want 200\n%s", path, resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Errorf("GET %s: headers %v", path, h)
		}
		for _, secret := range secrets {
			if strings.Contains(string(body), secret) {
				t.Errorf("GET %s shows %q", path, secret)
			}
		}
		if path != "/" {
			continue
		}
		// The policy allows the style sheet the page holds, by its hash,
		// and nothing else.
		_, style, _ := strings.Cut(string(body), "<style>")
		style, _, _ = strings.Cut(style, "</style>")
		sum := sha256.Sum256([]byte(style))
		want := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
		if got := h.Get("Content-Security-Policy"); got != want {
			t.Errorf("GET /: Content-Security-Policy %q; want %q", got, want)
		}
	}
	code, body := s.post(t, "/", nil)
	if code != http.StatusMethodNotAllowed || !strings.Contains(body, "/ is the fleet page, which takes GET") {
		t.Errorf("POST / = %d %q; want 405 saying the page takes GET", code, body)
	}
}

// With a token file the page asks a browser to log in with a token (its
// NAME as the user, its SECRET as the password); a wrong one waits, as the
// answer route's does. /status.json takes the bearer token too.
func TestFleetPageLogin(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("lab:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A refused guess waits authDelay, here an hour: it ends when its
	// client gives up, which the rows that must wait do after a moment,
	// and the rows that must not never do.
	s := &server{dir: "examples/config", log: slog.New(slog.NewTextHandler(io.Discard, nil)), tokenFile: tokens, guard: newPlaces[netip.Addr](maxWaiting, maxWaitingPerAddr), authDelay: time.Hour}
	const giveUp = 50 * time.Millisecond
	for _, c := range []struct {
		name, path string
		auth       func(*http.Request)
		want       int
		waits      bool
	}{
		{"no login", "/", func(*http.Request) {}, http.StatusUnauthorized, false},
		{"the token", "/", func(r *http.Request) { r.SetBasicAuth("lab", "s3cret") }, http.StatusOK, false},
		{"a wrong password", "/", func(r *http.Request) { r.SetBasicAuth("lab", "guess") }, http.StatusUnauthorized, true},
		{"another user", "/", func(r *http.Request) { r.SetBasicAuth("root", "s3cret") }, http.StatusUnauthorized, true},
		{"json, bearer", "/status.json", func(r *http.Request) { r.Header.Set("Authorization", "Bearer lab:s3cret") }, http.StatusOK, false},
		{"json, basic", "/status.json", func(r *http.Request) { r.SetBasicAuth("lab", "s3cret") }, http.StatusOK, false},
		{"json, wrong bearer", "/status.json", func(r *http.Request) { r.Header.Set("Authorization", "Bearer lab:guess") }, http.StatusUnauthorized, true},
		{"json, no token", "/status.json", func(*http.Request) {}, http.StatusUnauthorized, false},
	} {
		ctx := context.Background()
		if c.waits {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, giveUp)
			defer cancel()
		}
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, c.path, nil)
		c.auth(req)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); s.ServeHTTP(rec, req) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("%s: GET %s waits: only a wrong token does", c.name, c.path)
		}
		if rec.Code != c.want {
			t.Errorf("%s: GET %s = %d %q; want %d", c.name, c.path, rec.Code, rec.Body, c.want)
			continue
		}
		if c.want == http.StatusUnauthorized && !strings.Contains(strings.Join(rec.Header().Values("WWW-Authenticate"), "\n"), `Basic realm="pxe-pilot"`) {
			t.Errorf("%s: no basic auth challenge, so a browser cannot log in: %v", c.name, rec.Header())
		}
		if c.waits && ctx.Err() == nil {
			t.Errorf("%s: refused before its client gave up; a wrong token waits", c.name)
		}
	}
	// Without its token file the page is refused, not shown.
	os.Remove(tokens)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "token file") {
		t.Errorf("GET / without the token file = %d %q; want 500 naming it", rec.Code, rec.Body)
	}
}

// chromium is the headless browser the page is tested in, or a skip (a
// failure where PXE_PILOT_REQUIRE_CHROMIUM=1, as in CI) where there is none.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("PXE_PILOT_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium on PATH, and PXE_PILOT_REQUIRE_CHROMIUM=1")
	}
	t.Skip("no chromium on PATH: install Debian's chromium to run the page in a browser (.ci/run does)")
	return ""
}

// browse runs headless Chromium on url with args (--dump-dom,
// --screenshot=FILE) and returns what it printed.
func browse(t *testing.T, browser, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, browser, append(args, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", browser, args, err, &stderr)
	}
	return string(out)
}

// The built server's page, opened in headless Chromium, for a fleet put
// in every state through the real routes: the installer's answers and
// reports, a broken host file, an unknown machine. Markup sent in every
// field a request and a report can fill stays text, and runs nothing.
// A screenshot is saved in the test's temp dir; go test -update -run
// Chromium also writes it to docs/fleet-page.png for the README.
func TestFleetPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a browser")
	}
	browser := chromium(t)
	root := t.TempDir()
	bin, config, state := filepath.Join(root, "pxe-pilot"), filepath.Join(root, "config"), filepath.Join(root, "state")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.CopyFS(config, os.DirFS("examples/config")); err != nil {
		t.Fatal(err)
	}
	extra := map[string]string{
		"hosts/aa-bb-cc-dd-ee-04.toml": "# A mistake: ZFS has no raid5.\nprofiles = [\"zfs-mirror\"]\nhostname = \"pve-node-04\"\n\n[disk.zfs]\nraid = \"raid5\"\n",
		"hosts/aa-bb-cc-dd-ee-05.toml": "profiles = [\"zfs-mirror\"]\nhostname = \"pve-node-05\"\n",
		"hosts/aa-bb-cc-dd-ee-06.toml": "profiles = [\"zfs-mirror\"]\nhostname = \"pve-node-06\"\n",
		"hosts/aa-bb-cc-dd-ee-07.toml": "profiles = [\"zfs-mirror\"]\nhostname = \"pve-node-07\"\n",
		"hosts/aa-bb-cc-dd-ee-08.toml": "profiles = [\"zfs-mirror\"]\nhostname = \"pve-node-08\"\n",
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(config, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Written a minute ago, so that serve does not wait for a deploy to settle.
	past := time.Now().Add(-time.Minute)
	filepath.WalkDir(config, func(path string, _ os.DirEntry, _ error) error { return os.Chtimes(path, past, past) })

	addr := freePort(t)
	url := "http://" + addr
	var log syncBuffer
	srv := exec.Command(bin, "serve", "--config-dir", config, "--state-dir", state, "--listen", addr, "--public-url", url, "--stall-after", "5s")
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	s := &trackedServer{url: url, config: config, state: state, log: &log, client: &http.Client{Timeout: 10 * time.Second}}
	for i := 0; ; i++ {
		if code, _, err := s.send(http.MethodGet, url+"/health", nil); err == nil && code == http.StatusOK {
			break
		}
		if i == 200 {
			t.Fatalf("serve never answered /health:\n%s", &log)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// ee-05 is answered first and never reports: once it is stalled, the
	// others are put in their states.
	s.answer(t, systemInfo("9.2", "S5", "", "aa:bb:cc:dd:ee:05"))
	for i := 0; fleetState(t, s, "aa-bb-cc-dd-ee-05") != stateStalled; i++ {
		if i == 600 {
			t.Fatalf("aa-bb-cc-dd-ee-05 never stalled:\n%s", &log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	req := mustRead(t, "examples/requests/pve-9.2.json")
	_, ans := s.answer(t, req)
	s.reportInstalled(t, ans, "pve-node-01.lab.example.com", "10.0.0.10/24")
	s.answer(t, mustRead(t, "examples/requests/pve-9.2-serial.json"))
	s.answer(t, systemInfo("9.2", "S6", "", "aa:bb:cc:dd:ee:06"))
	s.answer(t, systemInfo("9.2", "S6", "", "aa:bb:cc:dd:ee:06"))
	if code, body := s.post(t, "/answer", systemInfo("9.2", "S4", "", "aa:bb:cc:dd:ee:04")); code < 400 {
		t.Fatalf("the broken host file's machine was answered: %d\n%s", code, body)
	}
	s.post(t, "/answer", mustRead(t, "examples/requests/unknown-host.json"))

	shot := filepath.Join(t.TempDir(), "fleet-page.png")
	browse(t, browser, url+"/", "--window-size=1280,1400", "--hide-scrollbars", "--screenshot="+shot)
	t.Logf("screenshot of the page: %s", shot)
	if *update {
		png, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("docs", "fleet-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dom := browse(t, browser, url+"/", "--dump-dom")
	for machine, want := range map[string]string{
		"aa-bb-cc-dd-ee-ff":  "installed",
		"aa-bb-cc-dd-ee-01":  "never seen",
		"serial-EXAMPLE0042": "answered",
		"aa-bb-cc-dd-ee-04":  "refused",
		"aa-bb-cc-dd-ee-05":  "stalled",
		"aa-bb-cc-dd-ee-06":  "repeated",
		"aa-bb-cc-dd-ee-07":  "never seen",
	} {
		row := rowOf(t, dom, machine)
		if !strings.Contains(row, `class="state `) || !strings.Contains(row, ">"+want+"<") {
			t.Errorf("the browser shows the row of %s without %q:\n%s", machine, want, row)
		}
	}
	for _, want := range []string{"pve-node-01.lab.example.com", "hosts/02-00-00-00-00-01.toml", `raid5`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the browser shows no %q", want)
		}
	}

	// Markup that would mark the page if it ran, in every field a request
	// and a report can fill.
	const evil = `<img src=x onerror=document.body.dataset.pwned=1><script>document.body.dataset.pwned=2</script><b>bold</b>`
	s.post(t, "/answer", fmt.Appendf(nil, `{"network_interfaces":[{"link":"eno1","mac":"02:00:00:00:00:66"}],"dmi":{"system":{"serial":%q,"uuid":%q,"name":%q}},"product":{"product":"pve"},"iso":{"release":"9.2"}}`, evil, evil, evil))
	_, ans = s.answer(t, systemInfo("9.2", "S8", "", "aa:bb:cc:dd:ee:08"))
	token, _ := answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	r := installReport{release: "9.2", fqdn: evil, machineID: evil, serial: evil, uuid: evil, token: &token,
		nics: []reportNIC{{"eno1", "aa:bb:cc:dd:ee:08", evil}}}
	if code, body := s.post(t, "/installed", r.body()); code != http.StatusOK {
		t.Fatalf("POST /installed with markup = %d %q", code, body)
	}
	dom = browse(t, browser, url+"/", "--dump-dom")
	if strings.Contains(dom, "data-pwned") { // what the markup sets on <body> if it runs
		t.Error("the markup ran")
	}
	for _, tag := range []string{"<img", "<script", "<b>"} {
		if strings.Contains(dom, tag) {
			t.Errorf("the browser's DOM holds %s: markup from a request or report became an element", tag)
		}
	}
	if n := strings.Count(dom, "&lt;img src=x onerror=document.body.dataset.pwned=1&gt;"); n < 2 {
		t.Errorf("the markup is shown as text %d times; want the unknown machine's and the report's", n)
	}
	if rowOf(t, dom, "aa-bb-cc-dd-ee-08") == "" || !strings.Contains(rowOf(t, dom, "aa-bb-cc-dd-ee-08"), "&lt;b&gt;bold&lt;/b&gt;") {
		t.Errorf("the report's FQDN is not shown as text:\n%s", rowOf(t, dom, "aa-bb-cc-dd-ee-08"))
	}
}

// fleetState is a machine's state as /status.json says it.
func fleetState(t *testing.T, s *trackedServer, machine string) string {
	t.Helper()
	code, body := s.do(t, http.MethodGet, s.url+"/status.json", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /status.json = %d\n%s", code, body)
	}
	var st status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status.json: %v", err)
	}
	for _, h := range st.Hosts {
		if h.Machine == machine {
			return h.State
		}
	}
	t.Fatalf("/status.json has no %s", machine)
	return ""
}

// BenchmarkFleetPage10k is GET / of a fleet of 10,000 machines, each
// with a host file and a state record: the server's time per page.
func BenchmarkFleetPage10k(b *testing.B) {
	config, state, _ := bigFleet(b, 10000)
	tr, err := newTracker(config, "", "", state, false, false)
	if err != nil {
		b.Fatal(err)
	}
	s := &server{dir: config, log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "pve9999.lab.example.com") {
			b.Fatalf("GET / = %d", rec.Code)
		}
	}
}

// The page lists the unknown machines that asked lately, newest first and
// at most maxUnknownShown, and says how many more status lists.
func TestWritePageRecentUnknownMachines(t *testing.T) {
	st := pageFleet()
	st.Unknown = nil
	for i := range maxUnknownShown + 5 {
		st.Unknown = append(st.Unknown, unknownRecord{MACs: []string{fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff)},
			LastSeen: pageClock.Add(-time.Duration(i) * time.Hour), Adopt: fmt.Sprintf("hosts/02-00-00-00-%02x-%02x.toml", i>>8, i&0xff)})
	}
	got := renderPage(st, pageInfo{now: pageClock, tracked: true})
	// 168 hours is 7 days: the machines that asked at most 167 hours ago.
	for i, want := range map[int]bool{0: true, maxUnknownShown - 1: true, maxUnknownShown: false, maxUnknownShown + 4: false} {
		adopt := fmt.Sprintf("<code>hosts/02-00-00-00-%02x-%02x.toml</code>", i>>8, i&0xff)
		if strings.Contains(got, adopt) != want {
			t.Errorf("the machine that asked %d hours ago is shown: %v; want %v", i, !want, want)
		}
	}
	if want := "<code>pxe-pilot status</code> also lists the 5 left out here."; !strings.Contains(got, want) {
		t.Errorf("page lacks %q", want)
	}
	st.Unknown = st.Unknown[:1]
	st.Unknown[0].LastSeen = pageClock.Add(-8 * 24 * time.Hour)
	got = renderPage(st, pageInfo{now: pageClock, tracked: true})
	for _, want := range []string{"Machines no host file names (0)", "None has asked lately.", "also lists the 1 left out here."} {
		if !strings.Contains(got, want) {
			t.Errorf("page with an unknown machine of 8 days ago lacks %q", want)
		}
	}
}

// A FIFO, a directory or an oversized file planted in the state dir, as a
// machine's record or an unknown machine's, is said to be unreadable: the
// page and /status.json are still built, promptly, with every other machine.
func TestFleetPageSurvivesOddStateFiles(t *testing.T) {
	s := startTracked(t, nil)
	s.answer(t, mustRead(t, "examples/requests/pve-9.2.json"))
	plant := map[string]func(string) error{
		"hosts/aa-bb-cc-dd-ee-01.json":  func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"hosts/serial-EXAMPLE0042.json": func(p string) error { return os.Mkdir(p, 0o700) },
		"unknown/02-00-00-00-00-09.json": func(p string) error {
			return os.WriteFile(p, bytes.Repeat([]byte(" "), 2<<20), 0o600)
		},
	}
	for name, make := range plant {
		p := filepath.Join(s.state, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := make(p); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, page, err := s.send(http.MethodGet, s.url+"/", nil)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET / = %d, %v\n%s", code, err, page)
			return
		}
		for _, want := range []string{`hosts/aa-bb-cc-dd-ee-01.json`, "not a regular file but a FIFO", `hosts/serial-EXAMPLE0042.json`, "unknown/02-00-00-00-00-09.json", `>answered<`} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("GET / hangs on a FIFO in the state dir")
	}
}

// A page request that finds the page being built for others waits its
// turn, for pageWait at most, then gets a 503 that says to try again; so
// does one that finds the most requests waiting, or the most bytes of
// pages being sent.
func TestFleetPageWaitsItsTurn(t *testing.T) {
	old := pageWait
	pageWait = 50 * time.Millisecond
	t.Cleanup(func() { pageWait = old })
	s := &server{dir: "examples/config", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.mux()
	get := func(what, want string) {
		t.Helper()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if want == "" && rec.Code != http.StatusOK {
			t.Errorf("GET / %s = %d %q; want 200", what, rec.Code, rec.Body)
		}
		if want != "" && (rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), want)) {
			t.Errorf("GET / %s = %d %q %v; want 503 saying %q, with Retry-After", what, rec.Code, rec.Body, rec.Header(), want)
		}
	}
	s.pageBuilds <- struct{}{} // a build under way
	get("while a page is built for another", "fleet pages are being built for others")
	s.pageWaiting.Add(maxPageWaiting + maxPageBuilds) // and as many waiting as may
	get("while the most wait", "16 requests already wait for a fleet page")
	s.pageWaiting.Add(-maxPageWaiting - maxPageBuilds)
	<-s.pageBuilds
	s.pageSends.take(pageBytes) // pages being sent to clients that read slowly
	get("while the pages being sent hold all they may", "the fleet pages being sent already hold the 16 MiB")
	s.pageSends.give(pageBytes)
	get("once all that is done", "")
}
