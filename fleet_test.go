// Tests of the fleet view: each machine's state, readFleet's one scan, stalls and known_hosts.

package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMachineState(t *testing.T) {
	t0 := trackT1
	refused := func(at time.Time, code int) *refusal { return &refusal{At: at, Code: code, Reason: "why"} }
	tests := []struct {
		name      string
		rec       hostRecord
		now       time.Time
		want      string
		wantSince time.Time
	}{
		{"never_answered", hostRecord{}, t0, stateNeverSeen, time.Time{}},
		{"answered_within_stall_after", hostRecord{LastAnswer: t0, Pending: 1}, t0.Add(59 * time.Minute), stateAnswered, time.Time{}},
		{"answered_stalls_at_stall_after", hostRecord{LastAnswer: t0, Pending: 1}, t0.Add(time.Hour), stateStalled, t0.Add(time.Hour)},
		{"answered_twice_is_repeated", hostRecord{LastAnswer: t0, Pending: 2}, t0.Add(10 * time.Minute), stateRepeated, time.Time{}},
		{"repeated_and_silent_is_stalled", hostRecord{LastAnswer: t0, Pending: 2}, t0.Add(2 * time.Hour), stateStalled, t0.Add(time.Hour)},
		{"installed", hostRecord{LastAnswer: t0, Installed: t0.Add(10 * time.Minute)}, t0.Add(5 * time.Hour), stateInstalled, time.Time{}},
		{"installed_and_answered_again_without_once", hostRecord{LastAnswer: t0.Add(time.Hour), Installed: t0.Add(10 * time.Minute), Pending: 1},
			t0.Add(65 * time.Minute), stateAnswered, time.Time{}},
		{"reported_with_the_clock_stepped_back_since_its_answer", hostRecord{LastAnswer: t0.Add(time.Hour), Installed: t0.Add(10 * time.Minute)},
			t0.Add(5 * time.Hour), stateInstalled, time.Time{}},
		{"answered_again_with_the_clock_stepped_back_since_its_report", hostRecord{LastAnswer: t0, Installed: t0.Add(10 * time.Minute), Pending: 1},
			t0.Add(20 * time.Minute), stateAnswered, time.Time{}},
		{"refused_after_its_answer_is_not_stalled", hostRecord{LastAnswer: t0, Pending: 1, LastRefusal: refused(t0.Add(5*time.Minute), 500)},
			t0.Add(2 * time.Hour), stateRefused, time.Time{}},
		{"refused_before_any_answer", hostRecord{LastRefusal: refused(t0, 500)}, t0, stateRefused, time.Time{}},
		{"answered_after_a_refusal", hostRecord{LastAnswer: t0.Add(time.Minute), Pending: 1, LastRefusal: refused(t0, 500)},
			t0.Add(2 * time.Minute), stateAnswered, time.Time{}},
		{"409_of_an_installed_machine", hostRecord{LastAnswer: t0, Installed: t0.Add(10 * time.Minute), LastRefusal: refused(t0.Add(time.Hour), 409)},
			t0.Add(2 * time.Hour), stateRefused, time.Time{}},
		{"rearmed_since_its_409", hostRecord{LastAnswer: t0, RearmedAt: t0.Add(2 * time.Hour), LastRefusal: refused(t0.Add(time.Hour), 409)},
			t0.Add(3 * time.Hour), stateNeverSeen, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, since := machineState(tc.rec, tc.now, time.Hour)
			if got != tc.want || !since.Equal(tc.wantSince) {
				t.Errorf("machineState(%+v, %v) = %q, %v; want %q, %v", tc.rec, tc.now, got, since, tc.want, tc.wantSince)
			}
		})
	}
}

func TestStallCheckEvery(t *testing.T) {
	for _, tc := range []struct{ stallAfter, want time.Duration }{
		{4 * time.Hour, time.Minute}, {time.Hour, time.Minute}, {2 * time.Minute, 30 * time.Second}, {2 * time.Second, time.Second}, {time.Second, time.Second},
	} {
		if got := stallCheckEvery(tc.stallAfter); got != tc.want {
			t.Errorf("stallCheckEvery(%v) = %v; want %v", tc.stallAfter, got, tc.want)
		}
	}
}

// A stall is logged once: not before stall-after, once at the tick that
// finds it, never at the ticks after, nor after a restart; a new answer
// that stalls in turn is logged anew. An installed machine never is.
func TestStallLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	st, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	const key = "aa-bb-cc-dd-ee-01"
	m := match{"mac", "aabbccddee01", "hosts/aa-bb-cc-dd-ee-01.toml"}
	other := match{"mac", "aabbccddee02", "hosts/aa-bb-cc-dd-ee-02.toml"}
	for _, a := range []struct {
		key string
		m   match
	}{{key, m}, {"aa-bb-cc-dd-ee-02", other}} {
		if err := st.recordAnswer(a.key, a.m, r92, false, trackT1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.updateHost("aa-bb-cc-dd-ee-02", func(r *hostRecord) { r.Installed, r.Pending = trackT1.Add(10*time.Minute), 0 }); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	line := func(answered time.Time) string {
		return fmt.Sprintf("hosts/aa-bb-cc-dd-ee-01.toml: machine aa-bb-cc-dd-ee-01 stalled: answered %s and no report after 1h0m0s; its next network boot installs it again",
			answered.Format(time.RFC3339))
	}
	steps := []struct {
		name string
		do   func() // before the tick
		at   time.Time
		want []string // the stall lines logged so far
	}{
		{"before_stall_after", nil, trackT1.Add(59 * time.Minute), nil},
		{"the_tick_that_finds_it", nil, trackT1.Add(61 * time.Minute), []string{line(trackT1)}},
		{"the_next_tick", nil, trackT1.Add(62 * time.Minute), []string{line(trackT1)}},
		{"after_a_restart", func() {
			if st, err = openState(dir); err != nil {
				t.Fatal(err)
			}
		}, trackT1.Add(3 * time.Hour), []string{line(trackT1)}},
		{"a_new_answer_stalls_anew", func() {
			if err := st.recordAnswer(key, m, r92, false, trackT1.Add(4*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, trackT1.Add(5 * time.Hour), []string{line(trackT1), line(trackT1.Add(4 * time.Hour))}},
	}
	for _, step := range steps {
		if step.do != nil {
			step.do()
		}
		logStalls(logger, st, step.at, time.Hour)
		var got []string
		for l := range strings.Lines(log.String()) {
			if strings.Contains(l, "stalled") {
				got = append(got, l)
			}
		}
		if len(got) != len(step.want) {
			t.Fatalf("%s: the log has %d stall lines; want %d:\n%s", step.name, len(got), len(step.want), log.String())
		}
		for i, want := range step.want {
			if !strings.Contains(got[i], "level=WARN msg=\""+want+"\" machine="+key+" host=hosts/aa-bb-cc-dd-ee-01.toml") {
				t.Errorf("%s: stall line %d = %s; want %q in it", step.name, i, got[i], want)
			}
		}
	}
	if rec, _ := st.host(key); !rec.StallLogged.Equal(trackT1.Add(4 * time.Hour)) {
		t.Errorf("stall_logged = %v; want the last answer's time, %v", rec.StallLogged, trackT1.Add(4*time.Hour))
	}
}

// status --stalled lists the stalled machines alone, as status lists
// them; --stall-after says when an answered machine is.
func TestStatusStalled(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	t.Setenv("PXE_PILOT_STALL_AFTER", "")
	configDir, stateDir := trackFixture(t)
	header := []string{"MACHINE", "HOST FILE", "PLANNED FQDN", "ADDRESS", "STATE", "WHEN", "REPORTED", "NEXT BOOT"}
	t1, t3 := trackT1.Format(time.RFC3339), trackT3.Format(time.RFC3339)
	tests := []struct {
		name string
		args []string
		env  string // PXE_PILOT_STALL_AFTER
		want [][]string
	}{
		{"answered_an_hour_ago_and_more", nil, "", [][]string{header,
			{"aa-bb-cc-dd-ee-03", "hosts/aa-bb-cc-dd-ee-03.toml", "pve1.example.com", "dhcp", "stalled", t1, "-", "install, attempt 2"},
			{"ee-ee-ee-ee-ee-01", "hosts/ee-ee-ee-ee-ee-01.toml", "pve1.example.com", "dhcp", "stalled", t1, "-", "install, attempt 2"},
			{"02-00-00-00-00-09", "hosts/default.toml", "pve-{{.MACHex}}.example.com", "dhcp", "stalled", t3, "-", "install, attempt 2"},
			{"aa-bb-cc-dd-ee-77", "(gone)", "-", "-", "stalled", t1, "-", "-"}}},
		{"none_within_a_long_stall_after", []string{"--stall-after", "1000000h"}, "", [][]string{header}},
		{"stall_after_from_the_environment", nil, "1000000h", [][]string{header}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PXE_PILOT_STALL_AFTER", tc.env)
			var out bytes.Buffer
			args := append([]string{"status", "--stalled", "--config-dir", configDir, "--state-dir", stateDir}, tc.args...)
			if err := run(args, &out, io.Discard); err != nil {
				t.Fatalf("run(%q) = %v", args, err)
			}
			if got := trackRows(out.String()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("run(%q) = %q; want %q\n%s", args, got, tc.want, out.String())
			}
		})
	}
	var out bytes.Buffer
	if err := run([]string{"status", "--stalled", "--json", "--config-dir", configDir, "--state-dir", stateDir}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var st status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Hosts) != 4 || len(st.Unknown) != 0 || len(st.Problems) != 0 {
		t.Errorf("status --stalled --json = %+v; want 4 stalled hosts and nothing else", st)
	}
	for _, h := range st.Hosts {
		if h.State != stateStalled || !h.StalledSince.Equal(h.LastAnswer.Add(time.Hour)) {
			t.Errorf("status --stalled --json: %s is %q since %v; want stalled since %v", h.Machine, h.State, h.StalledSince, h.LastAnswer.Add(time.Hour))
		}
	}
}

func TestStatusFlagErrors(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	configDir, stateDir := trackFixture(t)
	tests := []struct {
		name    string
		args    []string
		env     string // PXE_PILOT_STALL_AFTER
		wantErr string
	}{
		{"stall_after_not_a_duration", []string{"--state-dir", stateDir, "--stall-after", "an hour"}, "",
			"--stall-after an hour: want a Go duration over 0, such as 90m, 2h or 45s (default 60m)"},
		{"stall_after_env_zero", []string{"--state-dir", stateDir}, "0", "PXE_PILOT_STALL_AFTER=0: want a Go duration over 0, such as 90m, 2h or 45s (default 60m)"},
		{"stalled_without_state_dir", []string{"--stalled"}, "",
			"status --stalled needs --state-dir DIR (or PXE_PILOT_STATE_DIR): only serve's state dir knows which machines were answered"},
		{"known_hosts_without_state_dir", []string{"--known-hosts"}, "",
			"status --known-hosts needs --state-dir DIR (or PXE_PILOT_STATE_DIR): the host keys are those the installers reported to serve"},
		{"known_hosts_with_json", []string{"--state-dir", stateDir, "--known-hosts", "--json"}, "",
			"status --known-hosts prints known_hosts lines, and goes with neither --json nor --stalled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PXE_PILOT_STALL_AFTER", tc.env)
			args := append([]string{"status", "--config-dir", configDir}, tc.args...)
			if err := run(args, io.Discard, io.Discard); err == nil || err.Error() != tc.wantErr {
				t.Errorf("run(%q) = %v; want %q", args, err, tc.wantErr)
			}
		})
	}
}

// Every state, driven through the real routes: a machine whose host file
// is broken (500), one installed and then refused (409), one answered
// twice, one once, one never, and one no host file names (404); status
// --json then says each, with the refusals' lines as the installers got
// them, and no secret of any answer.
func TestFleetStatesThroughTheRoutes(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	t.Setenv("PXE_PILOT_STALL_AFTER", "")
	srv := startTracked(t, map[string]string{
		"hosts/aa-bb-cc-dd-ee-02.toml": "hostname = pve-node-03\n",
		"hosts/aa-bb-cc-dd-ee-04.toml": "hostname = \"pve-node-04\"\n[disk]\ntarget = \"sda\"\n",
	}, "--once")
	post := func(body []byte, want int) string {
		t.Helper()
		code, got := srv.post(t, "/answer", body)
		if code != want {
			t.Fatalf("POST /answer = %d %q; want %d", code, got, want)
		}
		return strings.TrimSuffix(strings.TrimPrefix(got, "pxe-pilot: "), "\n")
	}
	broken := post(systemInfo("9.2", "", "", "aa:bb:cc:dd:ee:02"), http.StatusInternalServerError)
	_, ans := srv.answer(t, mustRead(t, "examples/requests/pve-9.2.json"))
	token, _ := answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	if code, body := srv.post(t, "/installed", node01Report(&token).body()); code != http.StatusOK {
		t.Fatalf("POST /installed = %d %q", code, body)
	}
	conflict := post(mustRead(t, "examples/requests/pve-9.2.json"), http.StatusConflict)
	srv.answer(t, systemInfo("9.2", "", "", "aa:bb:cc:dd:ee:01"))
	srv.answer(t, systemInfo("9.2", "", "", "aa:bb:cc:dd:ee:01"))
	srv.answer(t, systemInfo("9.2", "EXAMPLE0042", "", "02:00:00:00:00:42"))
	unknown := post(mustRead(t, "examples/requests/unknown-host.json"), http.StatusNotFound)

	var out bytes.Buffer
	if err := run([]string{"status", "--json", "--config-dir", srv.config, "--state-dir", srv.state}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"changeme123", "$6$", "/first-boot/", token[strings.IndexByte(token, '.')+1:]} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("status --json holds %q:\n%s", secret, out.String())
		}
	}
	var st status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	type row struct {
		state    string
		refusal  *refusal // code and reason
		profiles []string
	}
	got := map[string]row{}
	for _, h := range st.Hosts {
		r := row{state: h.State, profiles: h.Profiles}
		if h.LastRefusal != nil {
			r.refusal = &refusal{Code: h.LastRefusal.Code, Reason: h.LastRefusal.Reason}
		}
		got[h.Machine] = r
	}
	want := map[string]row{
		"aa-bb-cc-dd-ee-01":  {stateRepeated, nil, []string{"zfs-mirror"}},
		"aa-bb-cc-dd-ee-02":  {stateRefused, &refusal{Code: 500, Reason: broken}, []string{}},
		"aa-bb-cc-dd-ee-04":  {stateNeverSeen, nil, []string{}},
		"aa-bb-cc-dd-ee-ff":  {stateRefused, &refusal{Code: 409, Reason: conflict}, []string{}},
		"serial-EXAMPLE0042": {stateAnswered, nil, []string{"zfs-mirror"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status --json states = %+v; want %+v", got, want)
	}
	if !strings.HasPrefix(broken, "hosts/aa-bb-cc-dd-ee-02.toml:1:12: hostname = pve-node-03: ") || !slices.Contains(st.Problems, broken) {
		t.Errorf("config_problems = %q; want the broken host file's line, as its 500 said it: %q", st.Problems, broken)
	}
	if len(st.Unknown) != 1 || st.Unknown[0].Adopt != "hosts/02-00-00-00-00-01.toml" || st.Unknown[0].LastRefusal == nil ||
		st.Unknown[0].LastRefusal.Code != 404 || st.Unknown[0].LastRefusal.Reason != unknown {
		t.Errorf("status --json unknown = %+v; want 02:00:00:00:00:01, adopted by hosts/02-00-00-00-00-01.toml, its 404's line %q", st.Unknown, unknown)
	}

	// Its file mended, the broken machine is answered: no longer refused,
	// its refusal kept.
	if err := os.WriteFile(filepath.Join(srv.config, "hosts", "aa-bb-cc-dd-ee-02.toml"), []byte("hostname = \"pve-node-03\"\n[disk]\ntarget = \"sda\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.answer(t, systemInfo("9.2", "", "", "aa:bb:cc:dd:ee:02"))
	st = statusJSON(t, srv.config, srv.state)
	i := slices.IndexFunc(st.Hosts, func(h statusRow) bool { return h.Machine == "aa-bb-cc-dd-ee-02" })
	if h := st.Hosts[i]; h.State != stateAnswered || h.LastRefusal == nil || h.LastRefusal.Code != 500 || len(st.Problems) != 0 {
		t.Errorf("after its file is mended: %s %q, refusal %+v, problems %q; want answered, the 500 kept, no problems", h.Machine, h.State, h.LastRefusal, st.Problems)
	}
}

// A report's SSH host keys are vetted one by one: what passes is kept for
// status --known-hosts; what fails is dropped, and the log says why.
func TestKnownHostsFromReports(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	srv := startTracked(t, nil)
	_, ans := srv.answer(t, mustRead(t, "examples/requests/pve-9.2.json"))
	token01, _ := answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	_, ans = srv.answer(t, systemInfo("9.2", "", "", "aa:bb:cc:dd:ee:01"))
	token02, _ := answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	ed := strings.Fields(nodeHostKeys["ed25519"])[1]
	rsa := strings.Fields(nodeHostKeys["rsa"])[1]
	withKeys := func(r installReport, keys map[string]string) []byte {
		var body map[string]any
		json.Unmarshal(r.body(), &body)
		body["ssh-public-host-keys"] = keys
		data, _ := json.Marshal(body)
		return data
	}
	node01 := withKeys(node01Report(&token01), map[string]string{
		"ed25519": nodeHostKeys["ed25519"],                                       // kept, without its comment
		"rsa":     "ssh-rsa " + rsa + "\nevil.example.com ssh-rsa " + rsa + "\n", // a second line
		"ecdsa":   "ecdsa-sha2-nistp256 " + ed + " root@pve-node-01",             // an ed25519 key said to be ECDSA
		"dsa":     "ssh-dss AAAAB3NzaC1kc3MAAACBAP",                              // no type pxe-pilot keeps
	})
	node02 := withKeys(installReport{release: "9.2", fqdn: "pve-node-02.lab.example.com", token: &token02,
		nics: []reportNIC{{"eno1", "aa:bb:cc:dd:ee:01", "10.0.0.12/24"}}}, map[string]string{
		"ed25519": "ssh-ed25519 " + ed + "#,evil.example.com", // a comment glued to the key
	})
	for _, body := range [][]byte{node01, node02} {
		if code, got := srv.post(t, "/installed", body); code != http.StatusOK {
			t.Fatalf("POST /installed = %d %q; want 200", code, got)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"status", "--known-hosts", "--config-dir", srv.config, "--state-dir", srv.state}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := "pve-node-01.lab.example.com,10.0.0.10 ssh-ed25519 " + ed + "\n" +
		"# aa-bb-cc-dd-ee-01 (pve-node-02.lab.example.com,10.0.0.12): installed, but no SSH host key of its report was kept: it carried none that passed vetting, or reported before pxe-pilot kept them\n"
	if out.String() != want {
		t.Errorf("status --known-hosts =\n%s\nwant\n%s", out.String(), want)
	}
	for _, dropped := range []string{
		`\"dsa\" is not a key type pxe-pilot keeps (ecdsa, ed25519, rsa)`,
		`\"ecdsa\" says it is ecdsa-sha2-nistp256, but its key is of type \"ssh-ed25519\"`,
		`\"rsa\" holds a line break or a control character`,
	} {
		if lines := srv.logLines("machine=aa-bb-cc-dd-ee-ff", dropped); len(lines) != 1 {
			t.Errorf("the log says %d times %s of pve-node-01's report; want once:\n%s", len(lines), dropped, srv.log)
		}
	}
	if lines := srv.logLines("machine=aa-bb-cc-dd-ee-01", `ssh_host_keys_dropped="\"ed25519\" is not base64 of a key"`); len(lines) != 1 {
		t.Errorf("the log does not say once that pve-node-02's glued comment was dropped:\n%s", srv.log)
	}
}

// A state file edited by hand is vetted again as status --known-hosts
// prints it, as strictly as the report was: Go's base64 decoder skips
// line breaks, so a blob "KEY\nKEY" would otherwise print a line of its
// own.
func TestKnownHostsVetsTheStateDir(t *testing.T) {
	ed := strings.Fields(nodeHostKeys["ed25519"])[1]
	const names = "pve1.lab.example.com,10.0.0.10"
	const machine = "# aa-bb-cc-dd-ee-ff (" + names + "): "
	const noKey = machine + "installed, but no SSH host key of its report was kept: it carried none that passed vetting, or reported before pxe-pilot kept them\n"
	tests := []struct {
		name string
		keys map[string]string
		want string
		fqdn string // "" for pve1.lab.example.com
	}{
		{"key_as_reported", map[string]string{"ssh-ed25519": ed}, names + " ssh-ed25519 " + ed + "\n", ""},
		{"fqdn_with_an_empty_label_is_left_out", map[string]string{"ssh-ed25519": ed}, "10.0.0.10 ssh-ed25519 " + ed + "\n", "pve1..lab.example.com"},
		{"fqdn_with_a_label_ending_in_a_hyphen_is_left_out", map[string]string{"ssh-ed25519": ed}, "10.0.0.10 ssh-ed25519 " + ed + "\n", "pve1-.lab.example.com"},
		{"line_break_in_the_blob", map[string]string{"ssh-ed25519": ed + "\n" + ed},
			noKey + machine + `the key "ssh-ed25519" of its state file is not base64 of a key; left out` + "\n", ""},
		{"carriage_return_in_the_blob", map[string]string{"ssh-ed25519": ed + "\r"},
			noKey + machine + `the key "ssh-ed25519" of its state file is not base64 of a key; left out` + "\n", ""},
		{"line_break_in_the_type", map[string]string{"ssh-ed25519\nevil.example.com ssh-ed25519": ed},
			noKey + machine + `the key "ssh-ed25519\nevil.example.com ssh-ed25519" of its state file is of type "ssh-ed25519\nevil.example.com ssh-ed25519", not one pxe-pilot keeps; left out` + "\n", ""},
		{"one_bad_key_beside_a_good_one", map[string]string{"ssh-ed25519": ed, "ssh-rsa": ed},
			names + " ssh-ed25519 " + ed + "\n" + machine + `the key "ssh-rsa" of its state file says it is ssh-rsa, but its key is of type "ssh-ed25519"; left out` + "\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			config, state := writeTree(t, goodConfig()), t.TempDir()
			rec := hostRecord{Host: "aa-bb-cc-dd-ee-ff", Match: "mac aa:bb:cc:dd:ee:ff", HostFile: hostFile, LastAnswer: trackT1, Answers: 1,
				Installed: trackT1.Add(10 * time.Minute), FQDN: cmp.Or(tc.fqdn, "pve1.lab.example.com"), Address: "10.0.0.10/24", SSHPublicKeys: tc.keys}
			data, _ := json.Marshal(rec)
			if err := os.MkdirAll(filepath.Join(state, "hosts"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(state, "hosts", "aa-bb-cc-dd-ee-ff.json"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := run([]string{"status", "--known-hosts", "--config-dir", config, "--state-dir", state}, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("status --known-hosts of %q =\n%s\nwant\n%s", tc.keys, out.String(), tc.want)
			}
		})
	}
}

func TestVetHostKey(t *testing.T) {
	ed := strings.Fields(nodeHostKeys["ed25519"])[1]
	tests := []struct {
		name, kind, line string
		wantType         string // "" where dropped
		wantWhy          string
	}{
		{"key_with_comment_and_newline", "ed25519", "ssh-ed25519 " + ed + " root@pve1\n", "ssh-ed25519", ""},
		{"key_alone", "ed25519", "ssh-ed25519 " + ed, "ssh-ed25519", ""},
		{"crlf_ending", "ed25519", "ssh-ed25519 " + ed + "\r\n", "ssh-ed25519", ""},
		{"second_line", "ed25519", "ssh-ed25519 " + ed + "\nevil ssh-ed25519 " + ed, "", "holds a line break or a control character"},
		{"escape_in_comment", "ed25519", "ssh-ed25519 " + ed + " \x1b[2J", "", "holds a line break or a control character"},
		{"unknown_kind", "dsa", "ssh-dss AAAA", "", "is not a key type pxe-pilot keeps (ecdsa, ed25519, rsa)"},
		{"type_of_another_kind", "rsa", "ssh-ed25519 " + ed, "", `is of type "ssh-ed25519", not one of ssh-rsa`},
		{"blob_of_another_type", "ecdsa", "ecdsa-sha2-nistp384 " + ed, "", `says it is ecdsa-sha2-nistp384, but its key is of type "ssh-ed25519"`},
		{"not_base64", "ed25519", "ssh-ed25519 not*base64", "", "is not base64 of a key"},
		{"comment_glued_on", "ed25519", "ssh-ed25519 " + ed + "#x", "", "is not base64 of a key"},
		{"type_alone", "ed25519", "ssh-ed25519", "", "is not TYPE BASE64, as a .pub file has it"},
		{"huge_blob", "rsa", "ssh-rsa " + strings.Repeat("A", maxKeyBlob+4), "", "is over 8192 bytes of base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, blob, why := vetHostKey(tc.kind, tc.line)
			if typ != tc.wantType || why != tc.wantWhy || (why == "" && blob != ed) {
				t.Errorf("vetHostKey(%q, %q) = %q, %q, %q; want %q, the blob, %q", tc.kind, tc.line, typ, blob, why, tc.wantType, tc.wantWhy)
			}
		})
	}
}

// BenchmarkReadFleet10k is one status of a fleet of 10,000 host files,
// half of them listing a profile, every one with a state record: what
// status and its page do per request.
func BenchmarkReadFleet10k(b *testing.B) {
	const n = 10000
	config, state, now := bigFleet(b, n)
	o := fleetOptions{now: now, stallAfter: time.Hour}
	st, err := readFleet(config, state, o)
	if err != nil || len(st.Hosts) != n || len(st.Problems) != 0 {
		b.Fatalf("readFleet = %d hosts, problems %q, %v; want %d hosts and none", len(st.Hosts), st.Problems, err, n)
	}
	b.ReportAllocs()
	for b.Loop() {
		readFleet(config, state, o)
	}
}

// bigFleet is a config dir of n host files, half of them with a profile,
// and a state dir with a record of each, a third of them installed; now
// is half an hour after their answers.
func bigFleet(b *testing.B, n int) (config, state string, now time.Time) {
	files := map[string]string{
		"defaults.toml":            string(mustRead(b, "examples/config/defaults.toml")),
		"profiles/zfs-mirror.toml": string(mustRead(b, "examples/config/profiles/zfs-mirror.toml")),
	}
	for i := range n {
		host := fmt.Sprintf("hostname = \"pve%d\"\n[disk]\ntarget = \"sda\"\n", i)
		if i%2 == 1 {
			host = fmt.Sprintf("hostname = \"pve%d\"\nprofiles = [\"zfs-mirror\"]\n", i)
		}
		files[fmt.Sprintf("hosts/02-00-00-00-%02x-%02x.toml", i/256, i%256)] = host
	}
	config, state = writeTree(b, files), b.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "hosts"), 0o700); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for i := range n {
		key := fmt.Sprintf("02-00-00-00-%02x-%02x", i/256, i%256)
		r := hostRecord{Host: key, Match: "mac " + key, HostFile: "hosts/" + key + ".toml", FirstAnswer: t0, LastAnswer: t0, Answers: 1, Pending: 1, Release: "9.2"}
		if i%3 == 0 {
			r.Installed, r.Pending, r.FQDN, r.Address = t0.Add(10*time.Minute), 0, fmt.Sprintf("pve%d.example.com", i), "10.0.0.10/24"
			r.SSHPublicKeys = map[string]string{"ssh-ed25519": "AAAAC3NzaC1lZDI1NTE5AAAAIEVGGhrTZ6cA1fuV34tcanYzhA+PCIisDMivkO17Vk25"}
		}
		data, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(filepath.Join(state, "hosts", key+".json"), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return config, state, t0.Add(30 * time.Minute)
}

// A refusal of the machine is kept; a 503 (the config is being deployed)
// and a 400 (the request names no machine) refuse no machine, and leave
// the state dir as it was.
func TestRefusalsKeptAndNot(t *testing.T) {
	s, _ := testServer(t, map[string]string{"defaults.toml": goodDefaults, hostFile: "profiles = [\"gone\"]\n" + goodHost})
	stateDir := t.TempDir()
	tr, err := newTracker(s.dir, "", "", stateDir, false, false)
	if err != nil {
		t.Fatal(err)
	}
	s.track = tr
	body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	before := stateSnapshot(t, stateDir)
	tests := []struct {
		name       string
		settle     time.Duration
		body       string
		wantStatus int
		wantKept   bool
	}{
		{"not_json_is_400", 0, "{", http.StatusBadRequest, false},
		{"deploy_under_way_is_503", time.Hour, body, http.StatusServiceUnavailable, false},
		{"missing_profile_is_500", 0, body, http.StatusInternalServerError, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withSettleTime(t, tc.settle)
			rec := send(s, "POST", "/answer", strings.NewReader(tc.body))
			if rec.Code != tc.wantStatus {
				t.Fatalf("POST /answer = %d %q; want %d", rec.Code, rec.Body, tc.wantStatus)
			}
			if !tc.wantKept {
				if got := stateSnapshot(t, stateDir); !reflect.DeepEqual(got, before) {
					t.Errorf("POST /answer's %d changed the state dir: %v; want %v", rec.Code, got, before)
				}
				return
			}
			r, err := tr.state.host("aa-bb-cc-dd-ee-ff")
			want := strings.TrimSuffix(strings.TrimPrefix(rec.Body.String(), "pxe-pilot: "), "\n")
			if err != nil || r.LastRefusal == nil || r.LastRefusal.Code != tc.wantStatus || r.LastRefusal.Reason != want || r.HostFile != hostFile || r.Answers != 0 {
				t.Errorf("state = %+v (refusal %+v), %v; want the %d and its line %q, no answer", r, r.LastRefusal, err, tc.wantStatus, want)
			}
		})
	}
}

func TestRefusalOf(t *testing.T) {
	now := trackT1
	long := "x" + strings.Repeat("é", maxReason) // two bytes each: byte maxReason is within one
	tests := []struct{ name, reason, want string }{
		{"one_line_as_it_is", "hosts/x.toml: boom", "hosts/x.toml: boom"},
		{"control_characters_become_spaces", "a\nb\tc\x1bd", "a b c d"},
		{"invalid_utf8_is_replaced", "a\xffb", "a?b"},
		{"long_is_clipped_on_a_character", long, long[:maxReason-1] + "..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := refusalOf(500, []byte(tc.reason), now)
			if got != (refusal{At: now, Code: 500, Reason: tc.want}) {
				t.Errorf("refusalOf(500, %q) = %+v; want reason %q", tc.reason, got, tc.want)
			}
		})
	}
}

// With boot images served, each machine shows the image its next boot
// installs with: the boot-image its layers name, or the only image; a
// choice /boot.ipxe refuses is a config problem, and its next boot is
// refused.
func TestFleetBootImages(t *testing.T) {
	image := func(name string) map[string]string {
		return map[string]string{name + "/boot.ipxe": realBootScript, name + "/vmlinuz": "k", name + "/initrd.img": "i", name + "/" + realISO: "iso"}
	}
	config := writeTree(t, map[string]string{
		"defaults.toml":                goodDefaults,
		"profiles/new.toml":            "boot-image = \"pve-9.2\"\n",
		"hosts/aa-bb-cc-dd-ee-01.toml": "profiles = [\"new\"]\n" + goodHost,
		"hosts/aa-bb-cc-dd-ee-02.toml": "boot-image = \"pve\"\nhostname = \"pve2\"\n[disk]\ntarget = \"sda\"\n",
		"hosts/aa-bb-cc-dd-ee-03.toml": "hostname = \"pve3\"\n[disk]\ntarget = \"sda\"\n",
		"hosts/aa-bb-cc-dd-ee-04.toml": "boot-image = \"pve-8\"\nhostname = \"pve4\"\n[disk]\ntarget = \"sda\"\n",
	})
	twoImages, oneImage := bootTree(t, image("pve-9.2")), bootTree(t, nil)
	type row struct{ image, next string }
	const refused = "refused (pxe-pilot validate says why)"
	tests := []struct {
		name         string
		bootDir      string
		want         map[string]row
		wantProblems []string
	}{
		{"no_boot_dir", "", map[string]row{
			"aa-bb-cc-dd-ee-01": {"", "install"}, "aa-bb-cc-dd-ee-02": {"", "install"}, "aa-bb-cc-dd-ee-03": {"", "install"}, "aa-bb-cc-dd-ee-04": {"", "install"},
		}, nil},
		{"two_images", twoImages, map[string]row{
			"aa-bb-cc-dd-ee-01": {"pve-9.2", "install"},
			"aa-bb-cc-dd-ee-02": {"pve", "install"},
			"aa-bb-cc-dd-ee-03": {"", refused},
			"aa-bb-cc-dd-ee-04": {"", refused},
		}, []string{
			`hosts/aa-bb-cc-dd-ee-03.toml: no boot-image, and --boot-dir has 2 images (pve, pve-9.2): say which one this machine installs with boot-image = "pve" in its host file, a profile or defaults.toml`,
			`hosts/aa-bb-cc-dd-ee-04.toml: boot-image: "pve-8" is not an image in --boot-dir; there are: pve, pve-9.2`,
		}},
		{"one_image", oneImage, map[string]row{
			"aa-bb-cc-dd-ee-01": {"", refused},
			"aa-bb-cc-dd-ee-02": {"pve", "install"},
			"aa-bb-cc-dd-ee-03": {"pve", "install"},
			"aa-bb-cc-dd-ee-04": {"", refused},
		}, []string{
			`profiles/new.toml: boot-image: "pve-9.2" is not an image in --boot-dir; there are: pve`,
			`hosts/aa-bb-cc-dd-ee-04.toml: boot-image: "pve-8" is not an image in --boot-dir; there are: pve`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := readFleet(config, "", fleetOptions{now: trackT1, bootDir: tc.bootDir})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]row{}
			for _, h := range st.Hosts {
				got[h.Machine] = row{h.BootImage, h.NextBoot}
			}
			if !reflect.DeepEqual(got, tc.want) || !slices.Equal(st.Problems, tc.wantProblems) {
				t.Errorf("readFleet with --boot-dir %q = %+v, problems %q; want %+v, %q", tc.bootDir, got, st.Problems, tc.want, tc.wantProblems)
			}
		})
	}
	var out bytes.Buffer
	if err := run([]string{"status", "--config-dir", config, "--boot-dir", twoImages}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := []string{"aa-bb-cc-dd-ee-01", "hosts/aa-bb-cc-dd-ee-01.toml", "pve1.lab.example.com", "dhcp", "not", "tracked", "-", "-", "install", "(pve-9.2)"}
	var got []string
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "aa-bb-cc-dd-ee-01" {
			got = f
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("status --boot-dir row of aa-bb-cc-dd-ee-01 = %q; want %q, its next boot with its image:\n%s", got, want, out.String())
	}
}

// serve looks for stalled machines as it starts, and logs each once.
func TestServeLogsStallsAtStart(t *testing.T) {
	clearServeEnv(t)
	config, state := t.TempDir(), t.TempDir()
	if err := os.CopyFS(config, os.DirFS("examples/config")); err != nil {
		t.Fatal(err)
	}
	st, err := openState(state)
	if err != nil {
		t.Fatal(err)
	}
	m := match{"mac", "aabbccddeeff", "hosts/aa-bb-cc-dd-ee-ff.toml"}
	if err := st.recordAnswer("aa-bb-cc-dd-ee-ff", m, r92, false, trackT1); err != nil {
		t.Fatal(err)
	}
	_, log := startServe(t, "http://ADDR/health", "--config-dir", config, "--state-dir", state, "--public-url", "http://127.0.0.1:8080", "--stall-after", "90m")
	want := "hosts/aa-bb-cc-dd-ee-ff.toml: machine aa-bb-cc-dd-ee-ff stalled: answered " + trackT1.Format(time.RFC3339) + " and no report after 1h30m0s"
	for range 250 {
		if strings.Contains(log.String(), want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(log.String(), want); n != 1 {
		t.Errorf("serve logged %q %d times; want once:\n%s", want, n, log)
	}
}
