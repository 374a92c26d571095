// Tests of the HTTP server: routes, errors, the log, tokens and the allow list.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// A config dir every handler test starts from: defaults with every key the
// installer requires, and one host, pve1, on the NIC aa:bb:cc:dd:ee:ff.
const (
	goodDefaults = `[global]
keyboard = "en-us"
country = "us"
timezone = "America/New_York"
domain = "lab.example.com"
mailto = "ops@example.com"
root_password_hash = "$6$salt$hash"

[network]
dns = "1.1.1.1"

[disk]
filesystem = "ext4"
`
	goodHost   = "hostname = \"pve1\"\n\n[disk]\ntarget = \"sda\"\n"
	brokenHost = "hostname = \"pve1\"\n[disk\ntarget = \"sda\"\n" // line 2, column 6: no ']'
)

func goodConfig() map[string]string {
	return map[string]string{"defaults.toml": goodDefaults, hostFile: goodHost}
}

// testServer is a server on a config dir holding files, logging into the
// returned buffer.
func testServer(t *testing.T, files map[string]string) (*server, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	return &server{dir: writeTree(t, files), log: slog.New(slog.NewTextHandler(&buf, nil))}, &buf
}

// send serves one request.
func send(s http.Handler, method, path string, body io.Reader) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, body))
	return rec
}

// installerBody is the installer's system info for a product, an ISO
// release and NICs, in request order.
func installerBody(product, release string, macs ...string) string {
	var nics []string
	for i, m := range macs {
		nics = append(nics, fmt.Sprintf(`{"link": "eno%d", "mac": %q}`, i+1, m))
	}
	return fmt.Sprintf(`{"product": {"fullname": "Proxmox", "product": %q, "enable_btrfs": true}, "iso": {"release": %q, "isorelease": "1"}, "network_interfaces": [%s]}`,
		product, release, strings.Join(nics, ", "))
}

// checkErrorBody checks what every error sends: one plain-text line.
func checkErrorBody(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("%s: Content-Type = %q; want %q", what, ct, "text/plain; charset=utf-8")
	}
	body := rec.Body.String()
	if !strings.HasPrefix(body, "pxe-pilot: ") || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 || strings.Contains(body, "\r") {
		t.Errorf("%s: body = %q; want one line starting \"pxe-pilot: \" and ending in one \\n", what, body)
	}
}

// answerOf decodes a 200's answer.
func answerOf(t *testing.T, what string, rec *httptest.ResponseRecorder) tree {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("%s = %d %q; want 200", what, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/toml; charset=utf-8" {
		t.Errorf("%s: Content-Type = %q; want %q", what, ct, "application/toml; charset=utf-8")
	}
	var ans tree
	if err := toml.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
		t.Fatalf("%s: the answer does not parse: %v\n%s", what, err, rec.Body)
	}
	return ans
}

// requestLine is the log's one line for the request, failing unless
// there is exactly one.
func requestLine(t *testing.T, what string, log *bytes.Buffer) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n") {
		if strings.Contains(l, " msg=request ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%s logged %d request lines; want 1:\n%s", what, len(lines), log)
	}
	return lines[0]
}

func TestAnswerMatchesEveryMACSpelling(t *testing.T) {
	for _, mac := range []string{"aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF", "AA-BB-CC-DD-EE-FF", "aa-bb-cc-dd-ee-ff", "aabb.ccdd.eeff", "AABB.CCDD.EEFF", "AABBCCDDEEFF", "aabbccddeeff"} {
		t.Run(mac, func(t *testing.T) {
			s, log := testServer(t, goodConfig())
			what := fmt.Sprintf("POST /answer with MAC %q", mac)
			ans := answerOf(t, what, send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", mac))))
			if got := lookup(ans, "global", "fqdn"); got != "pve1.lab.example.com" {
				t.Errorf("%s: global.fqdn = %v; want pve1.lab.example.com", what, got)
			}
			if got := lookup(ans, "network", "source"); got != "from-dhcp" {
				t.Errorf("%s: network.source = %v; want from-dhcp", what, got)
			}
			if line := requestLine(t, what, log); !strings.Contains(line, " host="+hostFile+" ") {
				t.Errorf("%s logged %q; want host=%s", what, line, hostFile)
			}
		})
	}
}

func TestAnswerFirstNICWithAFileWins(t *testing.T) {
	files := map[string]string{
		"defaults.toml": goodDefaults,
		hostA:           "hostname = \"pve-a\"\n[disk]\ntarget = \"sda\"\n",
		hostB:           "hostname = \"pve-b\"\n[disk]\ntarget = \"sda\"\n",
	}
	tests := []struct {
		name string
		macs []string
		want string // the answer's fqdn
	}{
		{"a_first", []string{"aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"}, "pve-a.lab.example.com"},
		{"b_first", []string{"aa:bb:cc:dd:ee:02", "aa:bb:cc:dd:ee:01"}, "pve-b.lab.example.com"},
		{"nic_without_file_first", []string{"11:22:33:44:55:66", "aa:bb:cc:dd:ee:02", "aa:bb:cc:dd:ee:01"}, "pve-b.lab.example.com"},
		{"unusable_mac_first", []string{"not-a-mac", "aa:bb:cc:dd:ee:02"}, "pve-b.lab.example.com"},
		{"same_mac_twice_in_two_spellings", []string{"AA-BB-CC-DD-EE-02", "aa:bb:cc:dd:ee:02"}, "pve-b.lab.example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testServer(t, files)
			what := fmt.Sprintf("POST /answer with NICs %q", tc.macs)
			ans := answerOf(t, what, send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", tc.macs...))))
			if got := lookup(ans, "global", "fqdn"); got != tc.want {
				t.Errorf("%s: global.fqdn = %v; want %s", what, got, tc.want)
			}
		})
	}
}

func TestAnswerOK(t *testing.T) {
	const fullBody = `{
  "$schema": {"version": "1.0"},
  "product": {"fullname": "Proxmox VE", "product": "pve", "enable_btrfs": true},
  "iso": {"release": "9.2", "isorelease": "1"},
  "dmi": {
    "system": {"name": "Example Server", "serial": "EXAMPLE0001", "sku": "", "uuid": "5f0b9c2e-8d1a-4c3e-9b7a-1e2d3c4b5a60"},
    "baseboard": {"asset_tag": "", "name": "Example Board", "serial": "BOARD0001"}
  },
  "extra": [1, "two", {"three": null}],
  "network_interfaces": [
    {"link": "eno1", "mac": "AA:BB:CC:DD:EE:FF", "driver": "ixgbe"}
  ]
}`
	padded := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	padded += strings.Repeat(" ", maxBody-len(padded))

	tests := []struct {
		name       string
		body       string
		wantKeys   [][]string // paths the answer has
		wantNoKeys [][]string // paths it has not
		wantLog    []string   // in the log, besides the request line
	}{
		{name: "pve_9_2_is_kebab_case", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantKeys:   [][]string{{"global", "root-password-hashed"}, {"disk-setup", "disk-list"}},
			wantNoKeys: [][]string{{"global", "root_password_hashed"}, {"disk-setup", "disk_list"}}},
		{name: "pbs_3_3_maps_to_8_3_and_is_snake_case", body: installerBody("pbs", "3.3", "aa:bb:cc:dd:ee:ff"),
			wantKeys:   [][]string{{"global", "root_password_hashed"}, {"disk-setup", "disk_list"}},
			wantNoKeys: [][]string{{"global", "root-password-hashed"}, {"disk-setup", "disk-list"}}},
		{name: "pve_8_3_is_snake_case", body: installerBody("pve", "8.3", "aa:bb:cc:dd:ee:ff"),
			wantKeys: [][]string{{"global", "root_password_hashed"}, {"disk-setup", "disk_list"}}},
		{name: "release_10_0_answers_with_9_2_rules_and_says_so", body: installerBody("pve", "10.0", "aa:bb:cc:dd:ee:ff"),
			wantKeys:   [][]string{{"global", "root-password-hashed"}, {"disk-setup", "disk-list"}},
			wantNoKeys: [][]string{{"global", "root_password_hashed"}},
			wantLog:    []string{"iso.release 10.0 is newer", "9.2 rules"}},
		{name: "pbs_5_0_answers_with_9_2_rules_and_says_so", body: installerBody("pbs", "5.0", "aa:bb:cc:dd:ee:ff"),
			wantKeys: [][]string{{"global", "root-password-hashed"}},
			wantLog:  []string{"iso.release 5.0 is newer"}},
		{name: "unknown_fields_are_ignored", body: fullBody,
			wantKeys: [][]string{{"global", "fqdn"}}},
		{name: "body_of_exactly_1MiB_is_read", body: padded,
			wantKeys: [][]string{{"global", "fqdn"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, log := testServer(t, goodConfig())
			what := "POST /answer " + tc.name
			ans := answerOf(t, what, send(s, "POST", "/answer", strings.NewReader(tc.body)))
			for _, p := range tc.wantKeys {
				if lookup(ans, p...) == nil {
					t.Errorf("%s: the answer has no %s:\n%v", what, keyPath(p), ans)
				}
			}
			for _, p := range tc.wantNoKeys {
				if lookup(ans, p...) != nil {
					t.Errorf("%s: the answer has %s; want it spelled for the release:\n%v", what, keyPath(p), ans)
				}
			}
			requestLine(t, what, log)
			for _, w := range tc.wantLog {
				if !strings.Contains(log.String(), w) {
					t.Errorf("%s logged:\n%s\nwant a line mentioning %q", what, log, w)
				}
			}
		})
	}
}

func TestAnswerErrors(t *testing.T) {
	manyNICs := make([]string, maxNICs+1)
	for i := range manyNICs {
		manyNICs[i] = fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)
	}
	tests := []struct {
		name      string
		files     map[string]string // nil for goodConfig()
		method    string
		path      string
		body      string
		wantCode  int
		wantBody  []string // substrings of the body
		wantAllow string
	}{
		{name: "body_not_json_is_400", method: "POST", path: "/answer", body: "{not json",
			wantCode: 400, wantBody: []string{"not JSON"}},
		{name: "empty_body_is_400", method: "POST", path: "/answer", body: "",
			wantCode: 400, wantBody: []string{"not JSON"}},
		{name: "json_array_is_400", method: "POST", path: "/answer", body: `[{"mac": "aa:bb:cc:dd:ee:ff"}]`,
			wantCode: 400, wantBody: []string{"not a JSON object but array"}},
		{name: "json_string_is_400", method: "POST", path: "/answer", body: `"aa:bb:cc:dd:ee:ff"`,
			wantCode: 400, wantBody: []string{"not a JSON object but string"}},
		{name: "json_null_is_400", method: "POST", path: "/answer", body: `null`,
			wantCode: 400, wantBody: []string{"network_interfaces lists no interface"}},
		{name: "multi_line_json_error_is_one_line", method: "POST", path: "/answer", body: "{\n\"iso\":\n\n}",
			wantCode: 400, wantBody: []string{"not JSON"}},
		{name: "no_network_interfaces_is_400", method: "POST", path: "/answer", body: `{"iso": {"release": "9.2"}}`,
			wantCode: 400, wantBody: []string{"network_interfaces lists no interface"}},
		{name: "empty_network_interfaces_is_400", method: "POST", path: "/answer", body: installerBody("pve", "9.2"),
			wantCode: 400, wantBody: []string{"network_interfaces lists no interface"}},
		{name: "network_interfaces_not_an_array_is_400", method: "POST", path: "/answer", body: `{"network_interfaces": {"mac": "aa:bb:cc:dd:ee:ff"}}`,
			wantCode: 400, wantBody: []string{"network_interfaces", "want array"}},
		{name: "only_unusable_macs_is_400", method: "POST", path: "/answer", body: installerBody("pve", "9.2", "zz:zz:zz:zz:zz:zz", "", "../../etc/passwd"),
			wantCode: 400, wantBody: []string{"no usable MAC", `"zz:zz:zz:zz:zz:zz"`, `""`, `"../../etc/passwd"`}},
		{name: "unusable_mac_with_newline_stays_one_line", method: "POST", path: "/answer", body: installerBody("pve", "9.2", "aa:bb\ncc:dd:ee:ff"),
			wantCode: 400, wantBody: []string{"no usable MAC"}},
		{name: "more_nics_than_looked_at_is_400", method: "POST", path: "/answer", body: installerBody("pve", "9.2", manyNICs...),
			wantCode: 400, wantBody: []string{"257 interfaces", "256"}},
		{name: "release_abc_is_400", method: "POST", path: "/answer", body: installerBody("pve", "abc", "aa:bb:cc:dd:ee:ff"),
			wantCode: 400, wantBody: []string{`iso.release: "abc" is not a release`}},
		{name: "release_8_1_is_400", method: "POST", path: "/answer", body: installerBody("pve", "8.1", "aa:bb:cc:dd:ee:ff"),
			wantCode: 400, wantBody: []string{"iso.release 8.1", "8.2 or later"}},
		{name: "pbs_3_1_maps_to_8_1_is_400", method: "POST", path: "/answer", body: installerBody("pbs", "3.1", "aa:bb:cc:dd:ee:ff"),
			wantCode: 400, wantBody: []string{"iso.release 3.1", "8.2 or later"}},
		{name: "unknown_host_is_404", method: "POST", path: "/answer", body: installerBody("pve", "9.2", "11:22:33:44:55:66"),
			wantCode: 404, wantBody: []string{"no host file for this machine", "tried hosts/11-22-33-44-55-66.toml;", "create hosts/11-22-33-44-55-66.toml"}},
		{name: "unknown_host_with_two_nics_is_404_naming_both", method: "POST", path: "/answer", body: installerBody("pve", "9.2", "11:22:33:44:55:66", "11:22:33:44:55:67"),
			wantCode: 404, wantBody: []string{"tried hosts/11-22-33-44-55-66.toml, hosts/11-22-33-44-55-67.toml;", "create hosts/11-22-33-44-55-66.toml"}},
		{name: "unknown_host_with_one_mac_in_two_spellings_names_it_once", method: "POST", path: "/answer", body: installerBody("pve", "9.2", "11:22:33:44:55:66", "11-22-33-44-55-66", "112233445566"),
			wantCode: 404, wantBody: []string{"tried hosts/11-22-33-44-55-66.toml;"}},
		{name: "hostname_with_a_newline_stays_one_line",
			files:  map[string]string{"defaults.toml": strings.Replace(goodDefaults, "domain = \"lab.example.com\"\n", "", 1), hostFile: "hostname = \"pve\\nnode\"\n[disk]\ntarget = \"sda\"\n"},
			method: "POST", path: "/answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 500, wantBody: []string{"pxe-pilot: " + hostFile + ": ", "has no domain"}},
		{name: "get_answer_is_405", method: "GET", path: "/answer",
			wantCode: 405, wantBody: []string{"/answer takes POST"}, wantAllow: "POST"},
		{name: "put_answer_is_405", method: "PUT", path: "/answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 405, wantAllow: "POST"},
		{name: "post_health_is_405", method: "POST", path: "/health", body: "{}",
			wantCode: 405, wantBody: []string{"/health takes GET"}, wantAllow: "GET, HEAD"},
		{name: "body_over_1MiB_is_413", method: "POST", path: "/answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff") + strings.Repeat(" ", maxBody),
			wantCode: 413, wantBody: []string{"over 1048576 bytes"}},
		{name: "unknown_path_is_404", method: "GET", path: "/answer.toml",
			wantCode: 404, wantBody: []string{`"/answer.toml": no such path`}},
		{name: "answer_with_trailing_slash_is_404", method: "POST", path: "/answer/", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 404, wantBody: []string{"no such path"}},
		{name: "unknown_path_is_404", method: "GET", path: "/index.html",
			wantCode: 404, wantBody: []string{`"/index.html": no such path`}},
		{name: "post_to_the_page_is_405", method: "POST", path: "/",
			wantCode: 405, wantBody: []string{"the installer posts to /answer; / is the fleet page, which takes GET, not POST"}, wantAllow: "GET, HEAD"},
		{name: "unclean_path_is_404_not_a_redirect", method: "POST", path: "//answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 404, wantBody: []string{`"//answer": no such path`}},
		{name: "dot_segment_is_404_not_a_redirect", method: "POST", path: "/x/../answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 404, wantBody: []string{"no such path"}},
		{name: "installed_without_tracking_is_404_saying_so", method: "POST", path: "/installed", body: "{}",
			wantCode: 404, wantBody: []string{"reports are taken with serve --public-url or --state-dir"}},
		{name: "first_boot_without_tracking_is_404", method: "GET", path: "/first-boot/x",
			wantCode: 404, wantBody: []string{`"/first-boot/...": no such path`}},
		{name: "broken_host_file_is_500_naming_line_and_column",
			files:  map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost},
			method: "POST", path: "/answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 500, wantBody: []string{"pxe-pilot: " + hostFile + ":2:6: "}},
		{name: "broken_defaults_is_500_naming_it",
			files:  map[string]string{"defaults.toml": "[global]\nkeyboard = de\n", hostFile: goodHost},
			method: "POST", path: "/answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 500, wantBody: []string{"pxe-pilot: defaults.toml:2:12: "}},
		{name: "invalid_host_is_500_naming_host_and_key",
			files:  map[string]string{"defaults.toml": goodDefaults, hostFile: goodHost + "[disk.zfs]\nraid = \"raid5\"\n"},
			method: "POST", path: "/answer", body: installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 500, wantBody: []string{"pxe-pilot: " + hostFile + ": ", "disk.zfs"}},
		{name: "hash_for_8_2_installer_is_500",
			method: "POST", path: "/answer", body: installerBody("pve", "8.2", "aa:bb:cc:dd:ee:ff"),
			wantCode: 500, wantBody: []string{"global.root_password_hash (set in defaults.toml)", "8.3 or later"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := tc.files
			if files == nil {
				files = goodConfig()
			}
			s, _ := testServer(t, files)
			rec := send(s, tc.method, tc.path, strings.NewReader(tc.body))
			what := fmt.Sprintf("%s %s", tc.method, tc.path)
			if rec.Code != tc.wantCode {
				t.Fatalf("serve(%s, %.80q) = %d %q; want %d", what, tc.body, rec.Code, rec.Body, tc.wantCode)
			}
			checkErrorBody(t, what, rec)
			for _, w := range tc.wantBody {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("serve(%s) body = %q; want it to contain %q", what, rec.Body, w)
				}
			}
			if got := rec.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("serve(%s) Allow = %q; want %q", what, got, tc.wantAllow)
			}
		})
	}
}

// TestAnswerWithoutANetworkTableIsDHCP: README's "no network.address and
// no source" gives source = "from-dhcp", with or without a [network] table.
func TestAnswerWithoutANetworkTableIsDHCP(t *testing.T) {
	defaults := strings.Replace(goodDefaults, "[network]\ndns = \"1.1.1.1\"\n", "", 1)
	s, _ := testServer(t, map[string]string{"defaults.toml": defaults, hostFile: goodHost})
	ans := answerOf(t, "POST /answer with no [network] anywhere", send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"))))
	if got := lookup(ans, "network", "source"); got != "from-dhcp" {
		t.Errorf("POST /answer with no [network] anywhere: network.source = %v; want from-dhcp", got)
	}
}

// TestBrokenHostDoesNotAffectOthers: the config dir is read afresh per
// request, and one file's mistake is its host's alone.
func TestBrokenHostDoesNotAffectOthers(t *testing.T) {
	const other = "hosts/11-22-33-44-55-66.toml"
	tests := []struct {
		name     string
		files    map[string]string
		mac      string
		wantCode int
	}{
		{"other_host_answers",
			map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost, other: goodHost},
			"11:22:33:44:55:66", 200},
		{"broken_host_fails",
			map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost, other: goodHost},
			"aa:bb:cc:dd:ee:ff", 500},
		{"invalid_host_does_not_affect_other",
			map[string]string{"defaults.toml": goodDefaults, hostFile: "hostname = 7\n", other: goodHost},
			"11:22:33:44:55:66", 200},
		{"unreadable_host_does_not_affect_other",
			map[string]string{"defaults.toml": goodDefaults, hostFile: asDir, other: goodHost},
			"11:22:33:44:55:66", 200},
		{"broken_default_toml_does_not_affect_a_host_with_a_file",
			map[string]string{"defaults.toml": goodDefaults, "hosts/default.toml": "[x\n", other: goodHost},
			"11:22:33:44:55:66", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testServer(t, tc.files)
			rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", tc.mac)))
			if rec.Code != tc.wantCode {
				t.Errorf("serve(POST /answer for %s) = %d %q; want %d", tc.mac, rec.Code, rec.Body, tc.wantCode)
			}
			if rec := send(s, "GET", "/health", nil); rec.Code != http.StatusOK {
				t.Errorf("serve(GET /health) = %d %q; want 200: a host file is not the whole config", rec.Code, rec.Body)
			}
		})
	}
}

// TestConfigIsReadAfreshOnEveryRequest: an edit applies to the next
// request, with no reload, whatever was read and parsed before.
func TestConfigIsReadAfreshOnEveryRequest(t *testing.T) {
	s, _ := testServer(t, goodConfig())
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(s.dir, filepath.FromSlash(name)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name     string
		edit     func()
		wantCode int
		wantBody string
	}{
		{"as_written", func() {}, 200, "fqdn = 'pve1.lab.example.com'"},
		{"same_again", func() {}, 200, "fqdn = 'pve1.lab.example.com'"},
		{"host_renamed", func() { write(hostFile, strings.Replace(goodHost, "pve1", "pve2", 1)) }, 200, "fqdn = 'pve2.lab.example.com'"},
		{"same_length_edit", func() { write(hostFile, strings.Replace(goodHost, "pve1", "pve3", 1)) }, 200, "fqdn = 'pve3.lab.example.com'"},
		{"defaults_domain_changed", func() { write("defaults.toml", strings.Replace(goodDefaults, "lab.example.com", "dc2.example.com", 1)) }, 200, "fqdn = 'pve3.dc2.example.com'"},
		{"host_broken", func() { write(hostFile, brokenHost) }, 500, hostFile + ":2:6: "},
		{"host_fixed", func() { write(hostFile, goodHost) }, 200, "fqdn = 'pve1.dc2.example.com'"},
		{"host_removed", func() { os.Remove(filepath.Join(s.dir, filepath.FromSlash(hostFile))) }, 404, "tried " + hostFile},
		{"default_toml_added", func() { write("hosts/default.toml", strings.Replace(goodHost, "pve1", "anyhost", 1)) }, 200, "fqdn = 'anyhost.dc2.example.com'"},
	}
	for _, st := range steps {
		st.edit()
		rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")))
		if rec.Code != st.wantCode || !strings.Contains(rec.Body.String(), st.wantBody) {
			t.Errorf("%s: serve(POST /answer) = %d %q; want %d with %q", st.name, rec.Code, rec.Body, st.wantCode, st.wantBody)
		}
	}
}

// TestAnswersDoNotChangeEachOther: what composing one answer derives (a
// static host's source and NIC filter, snake_case keys for an old
// installer) never reaches the next answer through the layers they share.
func TestAnswersDoNotChangeEachOther(t *testing.T) {
	const static = "hosts/11-22-33-44-55-66.toml"
	files := goodConfig()
	files["defaults.toml"] = strings.Replace(goodDefaults, "[network]\n", "[network]\ngateway = \"10.0.0.1\"\n", 1)
	files[static] = "hostname = \"pve9\"\n[network]\naddress = \"10.0.0.9/24\"\n[disk]\ntarget = \"sda\"\n"
	s, _ := testServer(t, files)
	want := func(mac, release string) string {
		t.Helper()
		rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", release, mac)))
		if rec.Code != http.StatusOK {
			t.Fatalf("serve(POST /answer %s on %s) = %d %q; want 200", mac, release, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	dhcp92, dhcp83, static92 := want("aa:bb:cc:dd:ee:ff", "9.2"), want("aa:bb:cc:dd:ee:ff", "8.3"), want("11:22:33:44:55:66", "9.2")
	for i := range 3 {
		for _, c := range []struct{ mac, release, want string }{
			{"11:22:33:44:55:66", "9.2", static92},
			{"aa:bb:cc:dd:ee:ff", "8.3", dhcp83},
			{"aa:bb:cc:dd:ee:ff", "9.2", dhcp92},
		} {
			if got := want(c.mac, c.release); got != c.want {
				t.Errorf("round %d: serve(POST /answer %s on %s) =\n%s\nwant the same as the first time:\n%s", i, c.mac, c.release, got, c.want)
			}
		}
	}
	if strings.Contains(dhcp92, "from-answer") || strings.Contains(dhcp92, "ID_NET_NAME_MAC") || strings.Contains(dhcp92, "gateway") {
		t.Errorf("the DHCP host's answer holds the static host's network:\n%s", dhcp92)
	}
	if !strings.Contains(static92, "ID_NET_NAME_MAC = '*112233445566'") {
		t.Errorf("the static host's answer pins no NIC:\n%s", static92)
	}
	if !strings.Contains(dhcp83, "root_password_hashed") || strings.Contains(dhcp92, "root_password_hashed") {
		t.Errorf("answers for 8.3 and 9.2 are not each spelled for their release:\n%s\n%s", dhcp83, dhcp92)
	}
}

// TestConcurrentAnswersAreEachTheirHosts: answers composed at the same
// time never mix (run it with -race).
func TestConcurrentAnswersAreEachTheirHosts(t *testing.T) {
	files := map[string]string{"defaults.toml": goodDefaults}
	for i := range 8 {
		files[fmt.Sprintf("hosts/02-00-00-00-00-%02x.toml", i)] = fmt.Sprintf("hostname = \"pve%d\"\n[disk]\ntarget = \"sd%c\"\n", i, 'a'+i)
	}
	s, _ := testServer(t, files)
	var wg sync.WaitGroup
	errs := make(chan string, 8*25)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", fmt.Sprintf("02:00:00:00:00:%02x", i))))
				want := fmt.Sprintf("fqdn = 'pve%d.lab.example.com'", i)
				wantDisk := fmt.Sprintf("'sd%c'", 'a'+i)
				if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) || !strings.Contains(rec.Body.String(), wantDisk) {
					errs <- fmt.Sprintf("host %d: %d %q; want 200 with %s and %s", i, rec.Code, rec.Body, want, wantDisk)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// healthOK is /health's body for a usable config dir.
func healthOK(hosts, filesWithErrors int) string {
	return fmt.Sprintf(`{"status":"ok","hosts":%d,"files_with_errors":%d}`+"\n", hosts, filesWithErrors)
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		dir      string // overrides the written dir, relative to it
		method   string
		wantCode int
		wantBody string // exact body, or a substring of the error for a 503
	}{
		{"good_dir_is_200", goodConfig(), "", "GET", 200, healthOK(1, 0)},
		{"head_is_200", goodConfig(), "", "HEAD", 200, healthOK(1, 0)},
		{"dir_without_defaults_is_200_with_the_host_in_error", map[string]string{hostFile: goodHost}, "", "GET", 200, healthOK(1, 1)},
		{"empty_dir_is_200_with_hosts_in_error", map[string]string{}, "", "GET", 200, healthOK(0, 1)}, // hosts/ is missing
		{"broken_host_file_is_200_with_it_in_error", map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost}, "", "GET", 200, healthOK(1, 1)},
		{"hosts_with_errors_are_counted_once_each", map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost,
			"hosts/aa-bb-cc-dd-ee-01.toml": goodHost, "hosts/aa-bb-cc-dd-ee-02.toml": "hostname = \"pve2\"\n[disk]\ntarget = 1\n"}, "", "GET", 200, healthOK(3, 2)},
		{"a_broken_profile_is_one_file_for_all_its_hosts", map[string]string{"defaults.toml": goodDefaults, "profiles/rack.toml": "[x\n",
			hostFile: "profiles = [\"rack\"]\n" + goodHost, "hosts/aa-bb-cc-dd-ee-01.toml": "profiles = [\"rack\"]\n" + goodHost}, "", "GET", 200, healthOK(2, 1)},
		{"a_host_file_that_never_matches_is_an_error_not_a_host", map[string]string{"defaults.toml": goodDefaults, hostFile: goodHost,
			"hosts/pve1.toml": goodHost}, "", "GET", 200, healthOK(1, 1)},
		{"missing_dir_is_503", goodConfig(), "missing", "GET", 503, "no such file or directory"},
		{"dir_that_is_a_file_is_503", map[string]string{"file": "x"}, "file", "GET", 503, "not a directory"},
		{"broken_defaults_is_503_naming_it", map[string]string{"defaults.toml": "[global]\nkeyboard = de\n"}, "", "GET", 503, "pxe-pilot: defaults.toml:2:12: "},
		{"invalid_defaults_is_503_naming_it", map[string]string{"defaults.toml": "[disk]\ntarget = 1\n"}, "", "GET", 503, "pxe-pilot: defaults.toml: disk.target"},
		{"unreadable_defaults_is_503_naming_it", map[string]string{"defaults.toml": asDir}, "", "GET", 503, "pxe-pilot: defaults.toml: cannot read"},
		{"missing_profile_of_defaults_is_503", map[string]string{"defaults.toml": "profiles = [\"site\"]\n"}, "", "GET", 503,
			`pxe-pilot: defaults.toml: profiles: "site": profiles/site.toml does not exist`},
		{"broken_profile_of_defaults_is_503", map[string]string{"defaults.toml": "profiles = [\"site\"]\n", "profiles/site.toml": "[x\n"}, "", "GET", 503,
			"pxe-pilot: profiles/site.toml:1:"},
		{"profiles_of_defaults_are_200", map[string]string{"defaults.toml": "profiles = [\"site\"]\n", "profiles/site.toml": goodDefaults}, "", "GET", 200, healthOK(0, 1)}, // and no hosts/
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testServer(t, tc.files)
			if tc.dir != "" {
				s.dir = filepath.Join(s.dir, tc.dir)
			}
			rec := send(s, tc.method, "/health", nil)
			what := tc.method + " /health"
			if rec.Code != tc.wantCode {
				t.Fatalf("serve(%s) = %d %q; want %d", what, rec.Code, rec.Body, tc.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("serve(%s) Content-Type = %q; want application/json", what, ct)
			}
			if tc.wantCode == 200 {
				if rec.Body.String() != tc.wantBody {
					t.Errorf("serve(%s) body = %q; want %q", what, rec.Body, tc.wantBody)
				}
				return
			}
			var got struct{ Status, Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("serve(%s) body %q is not JSON: %v", what, rec.Body, err)
			}
			if got.Status != "unavailable" || !strings.Contains(got.Error, tc.wantBody) {
				t.Errorf("serve(%s) = %+v; want status unavailable and an error containing %q", what, got, tc.wantBody)
			}
		})
	}
}

func TestRequestLog(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string // nil for goodConfig()
		method    string
		path      string
		body      string
		wantLine  []string // in the request's log line
		wantLines int      // lines logged in all
	}{
		{"answer_logs_host", nil, "POST", "/answer", installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			[]string{"level=INFO", "status=200", "host=" + hostFile, "release=9.2", "method=POST", "path=/answer", "duration_ms="}, 1},
		{"unknown_host_logs_tried_macs", nil, "POST", "/answer", installerBody("pve", "9.2", "11:22:33:44:55:66", "11:22:33:44:55:67"),
			[]string{"level=WARN", "status=404", "tried=11:22:33:44:55:66,11:22:33:44:55:67", `error="pxe-pilot: no host file`}, 1},
		{"invalid_host_logs_host_and_error", map[string]string{"defaults.toml": goodDefaults, hostFile: "hostname = \"pve1\"\n"},
			"POST", "/answer", installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			[]string{"level=ERROR", "status=500", "host=" + hostFile, "disk-setup.disk-list"}, 1},
		{"broken_host_logs_the_file", map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost},
			"POST", "/answer", installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"),
			[]string{"level=ERROR", "status=500", hostFile + ":2:6"}, 1},
		{"answer_logs_match_and_layers_in_order", map[string]string{
			"defaults.toml": "profiles = [\"site\"]\n" + goodDefaults, "profiles/site.toml": "", "profiles/role.toml": "",
			"hosts/serial-S42.toml": "profiles = [\"role\"]\n" + goodHost,
		}, "POST", "/answer", `{"iso":{"release":"9.2"},"dmi":{"system":{"serial":"S42"}},"network_interfaces":[{"link":"eno1","mac":"11:22:33:44:55:66"}]}`,
			[]string{"status=200", "host=hosts/serial-S42.toml", `match="serial S42"`,
				"layers=profiles/site.toml,defaults.toml,profiles/role.toml,hosts/serial-S42.toml"}, 1},
		{"missing_profile_logs_host_and_match", map[string]string{"defaults.toml": goodDefaults, "hosts/serial-S42.toml": "profiles = [\"gone\"]\n" + goodHost},
			"POST", "/answer", `{"iso":{"release":"9.2"},"dmi":{"system":{"serial":"S42"}},"network_interfaces":[{"mac":"11:22:33:44:55:66"}]}`,
			[]string{"status=500", "host=hosts/serial-S42.toml", `match="serial S42"`, "profiles/gone.toml does not exist"}, 1},
		{"answer_by_mac_logs_the_mac", nil, "POST", "/answer", installerBody("pve", "9.2", "11:22:33:44:55:66", "AA:BB:CC:DD:EE:FF"),
			[]string{"status=200", `match="mac aa:bb:cc:dd:ee:ff"`, "layers=defaults.toml," + hostFile}, 1},
		{"unknown_host_logs_tried_serial_and_uuid", nil, "POST", "/answer",
			`{"iso":{"release":"9.2"},"dmi":{"system":{"serial":"S42","uuid":"4C4C4544-0042-3510-8057-B4C04F4E3532"}},"network_interfaces":[{"mac":"11:22:33:44:55:66"}]}`,
			[]string{"status=404", "tried=11:22:33:44:55:66,serial:S42,uuid:4c4c4544-0042-3510-8057-b4c04f4e3532"}, 1},
		{"bad_request_logs_400", nil, "POST", "/answer", "[]",
			[]string{"level=WARN", "status=400", "not a JSON object"}, 1},
		{"newer_release_logs_a_note_and_the_request", nil, "POST", "/answer", installerBody("pve", "10.0", "aa:bb:cc:dd:ee:ff"),
			[]string{"status=200", "release=9.2"}, 2},
		{"health_200_logs_at_debug", nil, "GET", "/health", "",
			[]string{"level=DEBUG", "status=200", "path=/health", "duration_ms="}, 1},
		{"health_503_logs_at_error", map[string]string{"defaults.toml": "[global\n"}, "GET", "/health", "",
			[]string{"level=ERROR", "status=503", "path=/health"}, 1},
		{"wrong_method_logs_405", nil, "GET", "/answer", "",
			[]string{"level=WARN", "status=405"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := tc.files
			if files == nil {
				files = goodConfig()
			}
			s, log := testServer(t, files)
			s.log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
			send(s, tc.method, tc.path, strings.NewReader(tc.body))
			what := tc.method + " " + tc.path + " " + tc.name
			line := requestLine(t, what, log)
			for _, w := range tc.wantLine {
				if !strings.Contains(line, w) {
					t.Errorf("%s logged %q; want %q in it", what, line, w)
				}
			}
			if n := strings.Count(log.String(), "\n"); n != tc.wantLines {
				t.Errorf("%s logged %d lines; want %d:\n%s", what, n, tc.wantLines, log)
			}
		})
	}
}

// duration_ms is milliseconds with microseconds as decimals, a number in
// text and JSON alike; a /health that answers 200 is not logged at the
// default level, which is info.
func TestRequestLogDurationAndLevel(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		took   time.Duration
		status int
		want   string // the line at the default level, in JSON; "" for none
	}{
		{"answer_in_microseconds", "/answer", 137 * time.Microsecond, 200, `"duration_ms":0.137}`},
		{"answer_in_seconds", "/answer", 1500 * time.Millisecond, 200, `"duration_ms":1500}`},
		{"answer_under_a_microsecond", "/answer", 999 * time.Nanosecond, 200, `"duration_ms":0}`},
		{"health_200_is_quiet", "/health", time.Millisecond, 200, ""},
		{"health_503_is_said", "/health", time.Millisecond, 503, `"level":"ERROR"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := &server{log: slog.New(slog.NewJSONHandler(&buf, nil))}
			s.logRequest(httptest.NewRequest("GET", tc.path, nil), &outcome{status: tc.status}, tc.took)
			got := strings.TrimSpace(buf.String())
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("logRequest(%s, %d, %v) logged %q; want %q in it", tc.path, tc.status, tc.took, got, tc.want)
			}
		})
	}
}

// The host file that answered is in a header, for the operator's curl and
// for the request's console; a machine nobody named gets none.
func TestHostHeader(t *testing.T) {
	files := goodConfig()
	files["hosts/uuid-4c4c4544-0042-3510-8057-b4c04f4e3532.toml"] = brokenHost
	s, _ := testServer(t, files)
	for _, tc := range []struct {
		body       string
		code       int
		wantHeader string
	}{
		{installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"), 200, hostFile},
		{`{"dmi":{"system":{"uuid":"4C4C4544-0042-3510-8057-B4C04F4E3532"}},"network_interfaces":[{"mac":"11:22:33:44:55:66"}]}`, 500,
			"hosts/uuid-4c4c4544-0042-3510-8057-b4c04f4e3532.toml"},
		{installerBody("pve", "9.2", "11:22:33:44:55:66"), 404, ""},
	} {
		rec := send(s, "POST", "/answer", strings.NewReader(tc.body))
		if rec.Code != tc.code || rec.Header().Get("X-PXE-Pilot-Host") != tc.wantHeader {
			t.Errorf("POST /answer %.60s = %d, X-PXE-Pilot-Host %q; want %d, %q", tc.body, rec.Code, rec.Header().Get("X-PXE-Pilot-Host"), tc.code, tc.wantHeader)
		}
	}
}

// TestRequestLogNamesHostOnLoadErrors: a request whose host file (or the
// defaults under it) is broken should be as findable in the log by host=
// as one that composed.
func TestRequestLogNamesHostOnLoadErrors(t *testing.T) {
	for _, files := range []map[string]string{
		{"defaults.toml": goodDefaults, hostFile: brokenHost},
		{"defaults.toml": "[global\n", hostFile: goodHost},
	} {
		s, log := testServer(t, files)
		send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")))
		if line := requestLine(t, "POST /answer", log); !strings.Contains(line, " host="+hostFile) {
			t.Errorf("POST /answer logged %q; want host=%s", line, hostFile)
		}
	}
}

// Secrets that must never reach the log: each is distinctive so that a
// search for it cannot match anything else.
const (
	canaryPassword = "RootPwCanary-4f9e2a"
	canaryHash     = "$6$CanarySalt$HashCanary7c1d0b3e5a"
	canarySubKey   = "pve4s-SubKeyCanary93"
	canaryToken    = "AuthTokenCanary-61bd"
)

func TestLogNeverHoldsSecrets(t *testing.T) {
	defaults := `[global]
keyboard = "en-us"
country = "us"
timezone = "America/New_York"
domain = "lab.example.com"
mailto = "ops@example.com"
root_password_hash = "` + canaryHash + `"
subscription-key = "` + canarySubKey + `"

[network]

[disk]
filesystem = "ext4"

[post-installation-webhook]
url = "https://hooks.example.com/installed"
auth-token = "` + canaryToken + `"
`
	host := func(extra string) string { return "hostname = \"pve1\"\n[disk]\ntarget = \"sda\"\n" + extra }
	hosts := []struct {
		name    string
		file    string
		canary  string // a secret of this host file alone; "" for none
		release string
		want    int
	}{
		{"plain_password", host("[global]\nroot_password = \"" + canaryPassword + "\"\n"), canaryPassword, "9.2", 200},
		{"hash_from_defaults", host(""), "", "9.2", 200},
		{"secrets_unknown_to_9_1", host("[global]\nroot_password = \"" + canaryPassword + "\"\n"), canaryPassword, "9.1", 500},
		{"hash_unknown_to_8_2", host(""), "", "8.2", 500},
		{"password_too_short", host("[global]\nroot_password = \"Shrt7q\"\n"), "Shrt7q", "9.2", 500},
		{"password_is_a_number", host("[global]\nroot_password = 918273645501\n"), "918273645501", "9.2", 500},
		{"password_is_an_array", host("[global]\nroot_password = [\"ArrayPwCanary55\"]\n"), "ArrayPwCanary55", "9.2", 500},
		{"password_is_a_float", host("[global]\nroot_password = 3.14159265358\n"), "14159265358", "9.2", 500},
		{"hash_is_a_plain_password", host("[global]\nroot_password_hash = \"PlainNotHashCanary8\"\n"), "PlainNotHashCanary8", "9.2", 500},
		{"password_and_hash_in_one_file", host("[global]\nroot_password = \"BothPwCanary0042\"\nroot_password_hash = \"$6$x$BothHashCanary\"\n"), "BothPwCanary0042", "9.2", 500},
		{"password_under_a_misspelled_key", host("[global]\nroot_pasword = \"TypoPwCanary0077\"\n"), "TypoPwCanary0077", "9.2", 500},
		{"password_in_the_wrong_table", host("[network]\nroot_password = \"MisplacedPwCanary9\"\n"), "MisplacedPwCanary9", "9.2", 500},
		{"subscription_key_is_a_number", host("[global]\nsubscription-key = 5550123987\n"), "5550123987", "9.2", 500},
		{"auth_token_is_a_number", host("[post-installation-webhook]\nauth-token = 4440987123\n"), "4440987123", "9.2", 500},
		{"subscription_key_is_a_table", host("[global.subscription-key]\nkey = \"SubTableCanary31\"\n"), "SubTableCanary31", "9.2", 500},
		{"auth_token_is_empty_and_password_short", host("[global]\nroot_password = \"Tiny9z\"\n[post-installation-webhook]\nauth-token = \" \"\n"), "Tiny9z", "9.2", 500},
		{"broken_toml_after_a_password", "[global]\nroot_password = \"BrokenFileCanary12\" trailing\n", "BrokenFileCanary12", "9.2", 500},
		{"unterminated_password", "[global]\nroot_password = \"UnterminatedCanary3\n", "UnterminatedCanary3", "9.2", 500},
	}
	files := map[string]string{"defaults.toml": defaults}
	for i, h := range hosts {
		files[fmt.Sprintf("hosts/02-00-00-00-00-%02x.toml", i)] = h.file
	}
	canaries := []string{canaryPassword, canaryHash, "HashCanary7c1d0b3e5a", canarySubKey, canaryToken}
	for _, h := range hosts {
		if h.canary != "" {
			canaries = append(canaries, h.canary)
		}
	}

	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var log bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			s := &server{dir: writeTree(t, files), log: slog.New(slog.NewTextHandler(&log, opts))}
			if format == "json" {
				s.log = slog.New(slog.NewJSONHandler(&log, opts))
			}
			var answers []string
			for i, h := range hosts {
				rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", h.release, fmt.Sprintf("02:00:00:00:00:%02x", i))))
				if rec.Code != h.want {
					t.Errorf("serve(POST /answer %s on %s) = %d %q; want %d", h.name, h.release, rec.Code, rec.Body, h.want)
				}
				if rec.Code == http.StatusOK {
					answers = append(answers, rec.Body.String())
					continue
				}
				for _, c := range canaries {
					if strings.Contains(rec.Body.String(), c) {
						t.Errorf("serve(POST /answer %s) sent %q, which holds the secret %q", h.name, rec.Body, c)
					}
				}
			}
			send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "11:22:33:44:55:66")))
			send(s, "GET", "/health", nil)

			// The secrets did reach the answers, so their absence from the log means something.
			all := strings.Join(answers, "\n")
			for _, c := range []string{canaryPassword, canaryHash, canarySubKey, canaryToken} {
				if !strings.Contains(all, c) {
					t.Errorf("no answer holds %q; the test config is not what this test needs:\n%s", c, all)
				}
			}
			if n := strings.Count(log.String(), "\n"); n != len(hosts)+2 {
				t.Errorf("logged %d lines for %d requests; want one each:\n%s", n, len(hosts)+2, log.String())
			}
			for _, c := range canaries {
				if strings.Contains(log.String(), c) {
					t.Errorf("the log holds the secret %q:\n%s", c, log.String())
				}
			}
			for _, a := range answers {
				if strings.Contains(log.String(), a) {
					t.Errorf("the log holds an answer body:\n%s", log.String())
				}
			}
			for _, table := range []string{"[global]", "[disk-setup]", "[network]", "[post-installation-webhook]"} {
				if strings.Contains(log.String(), table) {
					t.Errorf("the log holds %s of an answer:\n%s", table, log.String())
				}
			}
		})
	}
}

// panicReader is a request body whose reading panics, standing for any
// bug in handling.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("panicReader: boom") }

func TestPanicIsA500(t *testing.T) {
	s, log := testServer(t, goodConfig())
	rec := send(s, "POST", "/answer", panicReader{})
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("serve(POST /answer, body that panics) = %d %q; want 500", rec.Code, rec.Body)
	}
	checkErrorBody(t, "POST /answer with a body that panics", rec)
	if want := "pxe-pilot: internal error; see the server's log\n"; rec.Body.String() != want {
		t.Errorf("serve(POST /answer, body that panics) body = %q; want %q", rec.Body, want)
	}
	line := requestLine(t, "POST /answer with a body that panics", log)
	if !strings.Contains(line, "status=500") || !strings.Contains(line, "level=ERROR") {
		t.Errorf("POST /answer with a body that panics logged %q; want level=ERROR status=500", line)
	}
	if !strings.Contains(log.String(), "panicReader: boom") || !strings.Contains(log.String(), "stack=") {
		t.Errorf("POST /answer with a body that panics logged:\n%s\nwant the panic and its stack", log)
	}
}

// sendFrom serves one request from a source address, with headers.
func sendFrom(s http.Handler, remote, method, path, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestAllow(t *testing.T) {
	s, log := testServer(t, goodConfig())
	allow, err := parseAllow("10.0.0.0/24,fd00::/8,192.168.1.7,::ffff:172.16.0.0/112,fe80::/10")
	if err != nil {
		t.Fatal(err)
	}
	s.allow = allow
	body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	for _, tc := range []struct {
		remote, method, path string
		want                 int
	}{
		{"10.0.0.7:40000", "POST", "/answer", 200},
		{"[fd00::7]:40000", "POST", "/answer", 200},
		{"192.168.1.7:40000", "POST", "/answer", 200},
		{"[::ffff:10.0.0.9]:40000", "POST", "/answer", 200}, // IPv4 on a dual-stack socket
		{"172.16.3.4:40000", "POST", "/answer", 200},        // by the IPv4-mapped prefix
		{"[::ffff:172.16.3.4]:40000", "POST", "/answer", 200},
		{"172.17.0.1:40000", "POST", "/answer", 403},
		{"[fe80::1%eth0]:40000", "POST", "/answer", 200}, // a link-local peer has a zone; the prefix has none
		{"[fe80::1]:40000", "POST", "/answer", 200},
		{"10.0.1.7:40000", "POST", "/answer", 403},
		{"192.168.1.8:40000", "POST", "/answer", 403},
		{"[2001:db8::1]:40000", "POST", "/answer", 403},
		{"10.0.1.7:40000", "GET", "/answer", 403}, // before anything else is said
		{"10.0.1.7:40000", "GET", "/nowhere", 403},
		{"not an address", "POST", "/answer", 403},
		{"10.0.1.7:40000", "GET", "/health", 200}, // for monitoring, from anywhere
		{"10.0.1.7:40000", "GET", "/", 403},       // the fleet page
		{"10.0.1.7:40000", "GET", "/status.json", 403},
		{"10.0.0.7:40000", "GET", "/", 200},
		{"10.0.0.7:40000", "GET", "/status.json", 200},
	} {
		rec := sendFrom(s, tc.remote, tc.method, tc.path, body)
		if rec.Code != tc.want {
			t.Errorf("%s %s from %s = %d %q; want %d", tc.method, tc.path, tc.remote, rec.Code, rec.Body, tc.want)
		}
		if tc.want == 403 {
			checkErrorBody(t, tc.method+" "+tc.path+" from "+tc.remote, rec)
			if !strings.Contains(rec.Body.String(), "is not in --allow") {
				t.Errorf("%s %s from %s = %q; want it to name --allow", tc.method, tc.path, tc.remote, rec.Body)
			}
		}
	}
	if !strings.Contains(log.String(), "status=403") {
		t.Errorf("refusals were not logged:\n%s", log)
	}
}

// tokenFile writes a token file and returns its path.
func tokenFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const tokens = `# one token per ISO
rack-a:BearerSecretA-5d1f

  rack-b:BearerSecretB-77c0  
no-colon-token-9a8b
`

func TestToken(t *testing.T) {
	s, log := testServer(t, goodConfig())
	s.tokenFile = tokenFile(t, tokens)
	body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	for _, tc := range []struct {
		name, auth string
		want       int
		wantLog    string
	}{
		{"first_token", "Bearer rack-a:BearerSecretA-5d1f", 200, "token_name=rack-a"},
		{"indented_token", "Bearer rack-b:BearerSecretB-77c0", 200, "token_name=rack-b"},
		{"token_without_a_name", "Bearer no-colon-token-9a8b", 200, `token_name="line 5"`},
		{"scheme_in_any_case", "bearer rack-a:BearerSecretA-5d1f", 200, "token_name=rack-a"},
		{"no_header", "", 401, "sent no token"},
		{"wrong_secret", "Bearer rack-a:BearerSecretA-5d1e", 401, "not in the token file"},
		{"prefix_of_a_token", "Bearer rack-a:BearerSecretA", 401, "not in the token file"},
		{"token_with_more", "Bearer rack-a:BearerSecretA-5d1fX", 401, "not in the token file"},
		{"the_comment", "Bearer # one token per ISO", 401, "not in the token file"},
		{"basic_auth", "Basic cmFjay1hOkJlYXJlclNlY3JldEEtNWQxZg==", 401, "sent no token"},
		{"empty_bearer", "Bearer ", 401, "sent no token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log.Reset()
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			rec := sendFrom(s, "10.0.0.7:40000", "POST", "/answer", body, hdr...)
			if rec.Code != tc.want {
				t.Fatalf("POST /answer with %q = %d %q; want %d", tc.auth, rec.Code, rec.Body, tc.want)
			}
			if tc.want == 401 {
				checkErrorBody(t, "POST /answer", rec)
				if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="pxe-pilot"` {
					t.Errorf("WWW-Authenticate = %q; want Bearer", got)
				}
			}
			if line := requestLine(t, "POST /answer", log); !strings.Contains(line, tc.wantLog) {
				t.Errorf("logged %q; want %q in it", line, tc.wantLog)
			}
		})
	}
	// /health needs no token.
	if rec := send(s, "GET", "/health", nil); rec.Code != 200 {
		t.Errorf("GET /health with a token file = %d; want 200", rec.Code)
	}
}

func TestTokenFileProblems(t *testing.T) {
	body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	for _, tc := range []struct {
		name, file string // file "" is a path that does not exist
		want       string
	}{
		{"missing", "", "token file: open "},
		{"empty", "", "has no token in it"},
		{"only_comments", "# rack-a:x\n\n   \n", "has no token in it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens")
			if tc.name != "missing" {
				path = tokenFile(t, tc.file)
			}
			// At start, serve refuses; while serving, answers fail closed.
			err := serve(context.Background(), []string{"--config-dir", "examples/config", "--token-file", path, "--listen", "127.0.0.1:0"}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve --token-file (%s) = %v; want an error containing %q", tc.name, err, tc.want)
			}
			s, _ := testServer(t, goodConfig())
			s.tokenFile = path
			rec := sendFrom(s, "10.0.0.7:40000", "POST", "/answer", body, "Authorization", "Bearer rack-a:x")
			if rec.Code != 500 || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("POST /answer with a token file that is %s = %d %q; want 500 with %q", tc.name, rec.Code, rec.Body, tc.want)
			}
		})
	}
}

// A flood of wrong tokens waits out its delay without holding a slot: a
// real installer still gets its answer with every slot but its own free.
// Past maxWaitingPerAddr from one address, or maxWaiting in all, a request
// gets a 503 before its token is looked at, whether it is right or not, so
// the refusal says nothing about the token and guesses stay slow.
func TestWrongTokensStaySlow(t *testing.T) {
	s, _ := testServer(t, goodConfig())
	s.tokenFile = tokenFile(t, tokens)
	s.slots = make(chan struct{}, 1)
	s.guard = newPlaces[netip.Addr](maxWaiting, maxWaitingPerAddr)
	s.authDelay = time.Minute // released by the end of the test, not by time
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	const right, wrong = "Bearer rack-a:BearerSecretA-5d1f", "Bearer rack-a:guess"
	var waiters sync.WaitGroup
	codes := make(chan int, 2*maxWaiting)
	guess := func(from, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/answer", strings.NewReader(body)).WithContext(ctx)
		req.RemoteAddr = from
		req.Header.Set("Authorization", token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	// One address floods: its first maxWaitingPerAddr wrong tokens wait.
	for range maxWaitingPerAddr {
		waiters.Go(func() { codes <- guess("192.0.2.1:1", wrong).Code })
	}
	for waiting(s.guard, "192.0.2.1") < maxWaitingPerAddr {
		time.Sleep(time.Millisecond)
	}
	for _, token := range []string{wrong, right} {
		if rec := guess("192.0.2.1:2", token); rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Errorf("the flooding address, token %q, got %d %q; want 503 with Retry-After, whatever the token", token, rec.Code, rec.Body)
		}
	}
	rec := sendFrom(s, "10.0.0.7:40000", "POST", "/answer", body, "Authorization", right)
	if rec.Code != 200 {
		t.Errorf("a real installer elsewhere during the flood got %d %q; want 200", rec.Code, rec.Body)
	}
	// Many addresses fill the guard: then every token check is a 503.
	for i := range maxWaiting/maxWaitingPerAddr - 1 {
		for range maxWaitingPerAddr {
			waiters.Go(func() { codes <- guess(fmt.Sprintf("192.0.2.%d:1", i+2), wrong).Code })
		}
	}
	for waiting(s.guard, "") < maxWaiting {
		time.Sleep(time.Millisecond)
	}
	if rec := sendFrom(s, "10.0.0.7:40000", "POST", "/answer", body, "Authorization", right); rec.Code != 503 {
		t.Errorf("with the guard full, the right token got %d %q; want 503", rec.Code, rec.Body)
	}
	cancel() // the waiting ones give up with their clients
	waiters.Wait()
	close(codes)
	for code := range codes {
		if code != 401 {
			t.Errorf("a waiting wrong token got %d; want 401", code)
		}
	}
	if n := waiting(s.guard, ""); n != 0 {
		t.Errorf("%d requests still counted in the guard; want 0", n)
	}
}

// Past --max-inflight, a request gets 503 with Retry-After at once, and
// the next after a slot frees is answered; monitoring is not capped.
func TestMaxInflight(t *testing.T) {
	s, _ := testServer(t, goodConfig())
	s.slots = make(chan struct{}, 2)
	body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	s.slots <- struct{}{} // two requests being answered
	s.slots <- struct{}{}
	rec := send(s, "POST", "/answer", strings.NewReader(body))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.HasPrefix(rec.Body.String(), "pxe-pilot: too busy") {
		t.Errorf("POST /answer past the cap = %d, Retry-After %q, %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if rec := send(s, "GET", "/health", nil); rec.Code != 200 {
		t.Errorf("GET /health past the cap = %d; want 200", rec.Code)
	}
	<-s.slots
	if rec := send(s, "POST", "/answer", strings.NewReader(body)); rec.Code != 200 {
		t.Errorf("POST /answer once a slot is free = %d %q; want 200", rec.Code, rec.Body)
	}
	if len(s.slots) != 1 {
		t.Errorf("%d slots taken after the answer; want the 1 still held", len(s.slots))
	}
}

// Bodies that trickle in hold no slot and only the memory they have sent:
// with one slot, and a thousand slow bodies open on both routes, an
// installer is answered; a body that would take the budget past its bound
// is refused with a 503 until memory is given back.
func TestSlowBodiesHoldNoSlot(t *testing.T) {
	config := writeTree(t, goodConfig())
	tr, err := newTracker(config, "http://127.0.0.1:8080", "", t.TempDir(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{dir: config, log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr,
		slots: make(chan struct{}, 1), answerBodies: newBudget(answerBodies), reportBodies: newBudget(reportBodies)}
	body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
	const slow = 1000
	var pipes []*io.PipeWriter
	var wg sync.WaitGroup
	for i := range slow {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		path := []string{"/answer", "/installed"}[i%2]
		wg.Go(func() { send(s, "POST", path, pr) })
		pw.Write([]byte(`{"network_interfaces": [`)) // and no more, for now
	}
	if rec := send(s, "POST", "/answer", strings.NewReader(body)); rec.Code != 200 {
		t.Errorf("an installer among %d slow bodies got %d %q; want 200", slow, rec.Code, rec.Body)
	}
	if n := len(s.slots); n != 0 {
		t.Errorf("%d slots held by bodies still being sent; want 0", n)
	}
	if used, max := s.answerBodies.used.Load(), int64(slow/2*4<<10); used > max {
		t.Errorf("the slow bodies hold %d bytes of the budget; want at most %d (4 KiB each)", used, max)
	}
	for _, pw := range pipes {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	wg.Wait()
	if used := s.answerBodies.used.Load() + s.reportBodies.used.Load(); used != 0 {
		t.Errorf("%d bytes of the budgets still held once every request ended; want 0", used)
	}

	// A budget spent by bodies being read refuses the next, which then
	// goes through once they are done.
	s = &server{dir: config, log: s.log, answerBodies: newBudget(64 << 10)}
	pr, pw := io.Pipe()
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- send(s, "POST", "/answer", pr) }()
	pw.Write(bytes.Repeat([]byte(" "), 40<<10)) // blanks before the JSON: 40 KiB, held as 64
	for s.answerBodies.used.Load() < 64<<10 {
		time.Sleep(time.Millisecond)
	}
	rec := send(s, "POST", "/answer", strings.NewReader(body))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "too busy: the bodies being read") || rec.Header().Get("Retry-After") == "" {
		t.Errorf("POST /answer with the budget spent = %d %q; want 503 with Retry-After", rec.Code, rec.Body)
	}
	pw.Write([]byte(body))
	pw.Close()
	if rec := <-done; rec.Code != 200 {
		t.Errorf("the big body = %d %q; want 200", rec.Code, rec.Body)
	}
	if rec := send(s, "POST", "/answer", strings.NewReader(body)); rec.Code != 200 {
		t.Errorf("POST /answer once the budget is free = %d %q; want 200", rec.Code, rec.Body)
	}
}

// Tokens are secrets: the log names a token, never shows one, at any level.
func TestLogNeverHoldsBearerTokens(t *testing.T) {
	const right, wrong = "BearerSecretA-5d1f", "GuessedSecret-0e2c"
	for _, format := range []string{"text", "json"} {
		var log bytes.Buffer
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		s := &server{dir: writeTree(t, goodConfig()), log: slog.New(slog.NewTextHandler(&log, opts)), tokenFile: tokenFile(t, tokens)}
		if format == "json" {
			s.log = slog.New(slog.NewJSONHandler(&log, opts))
		}
		body := installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")
		for _, auth := range []string{"Bearer rack-a:" + right, "Bearer rack-a:" + wrong, "Bearer " + wrong, wrong} {
			sendFrom(s, "10.0.0.7:40000", "POST", "/answer", body, "Authorization", auth)
		}
		for _, secret := range []string{right, wrong, "BearerSecretB-77c0", "no-colon-token-9a8b"} {
			if strings.Contains(log.String(), secret) {
				t.Errorf("%s log holds the token secret %q:\n%s", format, secret, log.String())
			}
		}
		if !strings.Contains(log.String(), "rack-a") {
			t.Errorf("%s log does not name the token rack-a:\n%s", format, log.String())
		}
	}
}

// TestTrackingRoutes: /installed and /first-boot/ are mux patterns of their
// own with tracking on; the mux's 405 keeps its Allow header and gets
// pxe-pilot's one-line body, and no path is answered with a redirect.
func TestTrackingRoutes(t *testing.T) {
	config := writeTree(t, goodConfig())
	tr, err := newTracker(config, "http://127.0.0.1:8080", "", t.TempDir(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{dir: config, log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr}
	for _, tc := range []struct {
		method, path string
		wantCode     int
		wantBody     string
		wantAllow    string
	}{
		{"GET", "/installed", 405, "/installed takes POST (the installer's report as JSON), not GET", "POST"},
		{"POST", "/installed", 400, "report body", ""},
		{"POST", "/first-boot/abc", 405, "first-boot scripts are fetched with GET, not POST", "GET, HEAD"},
		{"GET", "/first-boot/abc", 404, "no such first-boot script", ""},
		{"HEAD", "/first-boot/abc", 404, "", ""},
		{"GET", "/first-boot", 404, `"/first-boot": no such path`, ""},
		{"GET", "/first-boot/../health", 404, "no such path", ""},
	} {
		rec := send(s, tc.method, tc.path, strings.NewReader(""))
		what := tc.method + " " + tc.path
		if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
			t.Errorf("%s = %d %q; want %d containing %q", what, rec.Code, rec.Body, tc.wantCode, tc.wantBody)
		}
		if got := rec.Header().Get("Allow"); got != tc.wantAllow {
			t.Errorf("%s: Allow = %q; want %q", what, got, tc.wantAllow)
		}
		if loc := rec.Header().Get("Location"); loc != "" {
			t.Errorf("%s: Location = %q; want no redirect", what, loc)
		}
	}
}

// BenchmarkHealth2000Hosts is one poll of /health on a config dir of 2,000
// host files, half of them listing a profile, like examples/config's.
func BenchmarkHealth2000Hosts(b *testing.B) {
	files := map[string]string{
		"defaults.toml":            string(mustRead(b, "examples/config/defaults.toml")),
		"profiles/zfs-mirror.toml": string(mustRead(b, "examples/config/profiles/zfs-mirror.toml")),
	}
	for i := range 2000 {
		host := fmt.Sprintf("hostname = \"pve%d\"\n[disk]\ntarget = \"sda\"\n", i)
		if i%2 == 1 {
			host = fmt.Sprintf("hostname = \"pve%d\"\nprofiles = [\"zfs-mirror\"]\n", i)
		}
		files[fmt.Sprintf("hosts/02-00-00-00-%02x-%02x.toml", i/256, i%256)] = host
	}
	s := &server{dir: writeTree(b, files), log: slog.New(slog.DiscardHandler)}
	if rec := send(s, "GET", "/health", nil); rec.Body.String() != healthOK(2000, 0) {
		b.Fatalf("GET /health = %d %s; want %s", rec.Code, rec.Body, healthOK(2000, 0))
	}
	b.ReportAllocs()
	for b.Loop() {
		send(s, "GET", "/health", nil)
	}
}

// TestHealthCountsAtMostOncePerTTL: /health counts the config dir's hosts
// at most once per healthTTL, whoever asks; after it, an edit shows.
func TestHealthCountsAtMostOncePerTTL(t *testing.T) {
	s, _ := testServer(t, goodConfig())
	t0 := time.Now()
	if hosts, files := s.configCounts(t0); hosts != 1 || files != 0 {
		t.Fatalf("configCounts = %d, %d; want 1 host, 0 files with errors", hosts, files)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "hosts", "aa-bb-cc-dd-ee-01.toml"), []byte(brokenHost), 0o644); err != nil {
		t.Fatal(err)
	}
	if hosts, files := s.configCounts(t0.Add(healthTTL / 2)); hosts != 1 || files != 0 {
		t.Errorf("configCounts within the TTL = %d, %d; want the count before, 1 and 0", hosts, files)
	}
	if hosts, files := s.configCounts(t0.Add(healthTTL)); hosts != 2 || files != 1 {
		t.Errorf("configCounts after the TTL = %d, %d; want 2 hosts, 1 file with errors", hosts, files)
	}
}

// waiting is how many of the guard's places requests from addr hold, or
// all do for "".
func waiting(g *places[netip.Addr], addr string) int {
	if addr == "" {
		_, all := g.held(netip.Addr{})
		return all
	}
	n, _ := g.held(netip.MustParseAddr(addr))
	return n
}
