// Tests of install tracking.

package main

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// Unit tests of install tracking (track.go) and the status and rearm
// commands built on it. The end-to-end tests with a fake installer are in
// install_test.go.

const trackHost = "hostname = \"pve1\"\n"

// trackDefaults make every host of the tracking fixture's answer compose.
const trackDefaults = `[global]
keyboard = "en-us"
country = "us"
timezone = "UTC"
domain = "example.com"
mailto = "ops@example.com"
root_password_hash = "$6$salt$hash"

[network]
dns = "10.0.0.53"
gateway = "10.0.0.1"

[disk]
filesystem = "ext4"
target = "sda"
`

// trackStore opens a state store in a fresh dir.
func trackStore(t *testing.T) *stateStore {
	t.Helper()
	st, err := openState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// trackTracker is a tracker with a fixed secret, as tests need it.
func trackTracker(secret string) *tracker {
	return &tracker{publicURL: "https://10.0.0.2:8443", secret: []byte(secret)}
}

func TestMachineKey(t *testing.T) {
	const uuid = "4c4c4544-0042-3510-8052-b4c04f4d4e31"
	tests := []struct {
		name  string
		files []string // host files
		req   request
		want  string
	}{
		{"mac_match_is_the_matched_mac", []string{"hosts/aa-bb-cc-dd-ee-02.toml"},
			request{macs: []string{"aabbccddee01", "aabbccddee02"}, serial: "S1"}, "aa-bb-cc-dd-ee-02"},
		{"serial_match_is_serial_key", []string{"hosts/serial-S1.toml"},
			request{macs: []string{"aabbccddee01"}, serial: "S1"}, "serial-S1"},
		{"uuid_match_is_lowercase_uuid_key", []string{"hosts/uuid-" + uuid + ".toml"},
			request{macs: []string{"aabbccddee01"}, uuid: strings.ToUpper(uuid)}, "uuid-" + uuid},
		{"default_match_is_first_mac", []string{"hosts/default.toml"},
			request{macs: []string{"020000000001", "020000000002"}, serial: "S1"}, "02-00-00-00-00-01"},
		{"default_match_of_another_machine_is_its_own_first_mac", []string{"hosts/default.toml"},
			request{macs: []string{"020000000003", "020000000001"}}, "02-00-00-00-00-03"},
		{"default_match_without_macs_is_empty", []string{"hosts/default.toml"},
			request{serial: "S1"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for _, f := range tc.files {
				files[f] = trackHost
			}
			_, m, err := findHost(openDir(t, writeTree(t, files)), tc.req)
			if err != nil {
				t.Fatalf("findHost(%+v) = %v", tc.req, err)
			}
			if got := machineKey(tc.req, m); got != tc.want {
				t.Errorf("machineKey(%+v, %+v) = %q; want %q", tc.req, m, got, tc.want)
			}
		})
	}
}

func TestWebhookToken(t *testing.T) {
	tr := trackTracker("0123456789abcdef0123456789abcdef")
	const key = "aa-bb-cc-dd-ee-01"
	token := tr.webhookToken(key)
	sig := token[strings.LastIndexByte(token, '.')+1:]
	flipped := []byte(sig) // sig with its last hex digit changed
	if flipped[len(flipped)-1] == '0' {
		flipped[len(flipped)-1] = '1'
	} else {
		flipped[len(flipped)-1] = '0'
	}
	tests := []struct {
		name    string
		tr      *tracker
		token   string
		wantKey string
		wantOK  bool
	}{
		{"token_as_given_names_its_machine", tr, token, key, true},
		{"serial_key_with_dots_round_trips", tr, tr.webhookToken("serial-A.B.C"), "serial-A.B.C", true},
		{"key_part_changed_is_refused", tr, "aa-bb-cc-dd-ee-02." + sig, "", false},
		{"key_part_case_changed_is_refused", tr, "AA-BB-CC-DD-EE-01." + sig, "", false},
		{"mac_part_changed_is_refused", tr, key + "." + string(flipped), "", false},
		{"mac_part_truncated_is_refused", tr, key + "." + sig[:len(sig)-2], "", false},
		{"mac_part_not_hex_is_refused", tr, key + "." + strings.Repeat("zz", 32), "", false},
		{"mac_part_empty_is_refused", tr, key + ".", "", false},
		{"another_trackers_secret_is_refused", trackTracker("fedcba9876543210fedcba9876543210"), token, "", false},
		{"empty_is_refused", tr, "", "", false},
		{"no_dot_is_refused", tr, key + sig, "", false},
		{"only_the_mac_part_is_refused", tr, "." + sig, "", false},
		{"script_signature_of_the_key_is_refused", tr, key + "." + hex.EncodeToString(tr.sign("first-boot", key)), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, ok := tc.tr.tokenKey(tc.token)
			if ok != tc.wantOK || ok && key != tc.wantKey {
				t.Errorf("tokenKey(%q) = %q, %v; want %q, %v", tc.token, key, ok, tc.wantKey, tc.wantOK)
			}
		})
	}
}

// The same machine gets the same token, from this process and from the
// next one on the same state dir, so that its answers stay byte-identical;
// another machine gets another.
func TestWebhookTokenIsStable(t *testing.T) {
	dir := t.TempDir()
	a, err := newTracker("", "https://10.0.0.2:8443", "", dir, false, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newTracker("", "https://10.0.0.2:8443", "", dir, false, false)
	if err != nil {
		t.Fatal(err)
	}
	const key = "aa-bb-cc-dd-ee-01"
	tests := []struct {
		name      string
		got, want string
		same      bool
	}{
		{"same_key_same_tracker", a.webhookToken(key), a.webhookToken(key), true},
		{"same_key_after_a_restart", b.webhookToken(key), a.webhookToken(key), true},
		{"another_key", a.webhookToken("aa-bb-cc-dd-ee-02"), a.webhookToken(key), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.got == tc.want) != tc.same {
				t.Errorf("webhookToken = %q and %q; want them equal: %v", tc.got, tc.want, tc.same)
			}
		})
	}
}

func TestHook(t *testing.T) {
	const url, fp = "https://10.0.0.2:8443", "AB:CD"
	withState := &tracker{publicURL: url, fingerprint: fp, secret: []byte("0123456789abcdef"), state: &stateStore{}}
	stateless := &tracker{publicURL: url, fingerprint: fp, secret: []byte("0123456789abcdef")}
	stateOnly := &tracker{secret: []byte("0123456789abcdef"), state: &stateStore{}}
	const key = "aa-bb-cc-dd-ee-01"
	tests := []struct {
		name     string
		tr       *tracker
		rel      release
		key      string
		want     *webhook
		wantNote string // substring; "" for none
	}{
		{"nil_tracker_is_nil", nil, r92, key, nil, ""},
		{"no_public_url_is_nil", stateOnly, r92, key, nil, ""},
		{"release_8_2_is_nil_with_a_note", withState, r82, key, nil, "ISO 8.2 has no post-installation webhook"},
		{"release_8_3_has_url_and_fingerprint_no_token", withState, r83, key, &webhook{url: url + "/installed", fingerprint: fp}, "ISO 8.3 takes no webhook auth-token (9.2 does)"},
		{"release_9_1_has_no_token", withState, r91, key, &webhook{url: url + "/installed", fingerprint: fp}, "ISO 9.1 takes no webhook auth-token (9.2 does)"},
		{"release_9_2_with_state_dir_has_token", withState, r92, key, &webhook{url: url + "/installed", fingerprint: fp, token: withState.webhookToken(key)}, ""},
		{"release_9_3_with_state_dir_has_token", withState, release{9, 3}, key, &webhook{url: url + "/installed", fingerprint: fp, token: withState.webhookToken(key)}, ""},
		{"release_9_2_without_state_dir_has_no_token", stateless, r92, key, &webhook{url: url + "/installed", fingerprint: fp}, ""},
		{"release_9_2_without_key_has_no_token", withState, r92, "", &webhook{url: url + "/installed", fingerprint: fp}, ""},
		{"plain_http_has_no_fingerprint", &tracker{publicURL: "http://10.0.0.2:8080"}, r92, key, &webhook{url: "http://10.0.0.2:8080/installed"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, note := tc.tr.hook(tc.key, tc.rel)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("hook(%q, %s) = %+v; want %+v", tc.key, tc.rel, got, tc.want)
			}
			if tc.wantNote == "" && note != "" || !strings.Contains(note, tc.wantNote) {
				t.Errorf("hook(%q, %s) note = %q; want %q", tc.key, tc.rel, note, tc.wantNote)
			}
		})
	}
}

func TestNewTracker(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const fp = "AB:CD:EF"
	tests := []struct {
		name                    string
		publicURL, fp, stateDir string // stateDir "new" is a fresh dir
		once                    bool
		wantNil                 bool
		wantURL                 string
		wantState               bool
		wantErr                 string // substring; "" for none
	}{
		{name: "no_flags_is_nil", wantNil: true},
		{name: "once_without_state_dir_is_error", once: true, wantErr: "--once needs --state-dir"},
		{name: "once_and_public_url_without_state_dir_is_error", publicURL: "https://10.0.0.2:8443", once: true, wantErr: "--once needs --state-dir"},
		{name: "public_url_alone", publicURL: "https://10.0.0.2:8443", wantURL: "https://10.0.0.2:8443"},
		{name: "public_url_trailing_slash_is_trimmed", publicURL: "https://10.0.0.2:8443/", wantURL: "https://10.0.0.2:8443"},
		{name: "public_url_with_a_path", publicURL: "https://boot.example.com/pxe/", wantURL: "https://boot.example.com/pxe"},
		{name: "https_public_url_with_tls", publicURL: "https://10.0.0.2:8443", fp: fp, wantURL: "https://10.0.0.2:8443"},
		{name: "http_public_url_without_tls", publicURL: "http://10.0.0.2:8080", wantURL: "http://10.0.0.2:8080"},
		{name: "state_dir_alone", stateDir: "new", wantState: true},
		{name: "state_dir_and_once", stateDir: "new", once: true, wantState: true},
		{name: "public_url_without_scheme_is_error", publicURL: "10.0.0.2:8443", wantErr: `--public-url "10.0.0.2:8443"`},
		{name: "ftp_public_url_is_error", publicURL: "ftp://10.0.0.2/", wantErr: `is not an http:// or https:// URL`},
		{name: "public_url_with_query_is_error", publicURL: "https://10.0.0.2:8443/?a=b", wantErr: "with no query"},
		{name: "public_url_with_fragment_is_error", publicURL: "https://10.0.0.2:8443/#x", wantErr: "with no query"},
		{name: "http_public_url_with_tls_is_error", publicURL: "http://10.0.0.2:8443", fp: fp, wantErr: "is http://, but pxe-pilot serves HTTPS"},
		{name: "uppercase_http_public_url_with_tls_is_error", publicURL: "HTTP://10.0.0.2:8443", fp: fp, wantErr: "is http://, but pxe-pilot serves HTTPS"},
		{name: "state_dir_that_is_a_file_is_error", stateDir: notADir, wantErr: "state dir:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := tc.stateDir
			if stateDir == "new" {
				stateDir = filepath.Join(t.TempDir(), "state")
			}
			got, err := newTracker("cfg", tc.publicURL, tc.fp, stateDir, tc.once, false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("newTracker(%q, %q, %q, %v) = %+v, %v; want an error containing %q", tc.publicURL, tc.fp, stateDir, tc.once, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("newTracker(%q, %q, %q, %v) = %v; want no error", tc.publicURL, tc.fp, stateDir, tc.once, err)
			}
			if tc.wantNil {
				if got != nil {
					t.Errorf("newTracker(%q, %q, %q, %v) = %+v; want nil", tc.publicURL, tc.fp, stateDir, tc.once, got)
				}
				return
			}
			if got == nil {
				t.Fatalf("newTracker(%q, %q, %q, %v) = nil; want a tracker", tc.publicURL, tc.fp, stateDir, tc.once)
			}
			if got.publicURL != tc.wantURL || got.fingerprint != tc.fp || got.once != tc.once || got.dir != "cfg" {
				t.Errorf("newTracker(%q, %q, %q, %v) = %+v; want publicURL %q, fingerprint %q, once %v, dir cfg", tc.publicURL, tc.fp, stateDir, tc.once, got, tc.wantURL, tc.fp, tc.once)
			}
			if (got.state != nil) != tc.wantState {
				t.Errorf("newTracker(%q, %q, %q, %v).state = %v; want a state store: %v", tc.publicURL, tc.fp, stateDir, tc.once, got.state, tc.wantState)
			}
			if got.state != nil && !bytes.Equal(got.secret, got.state.secret) {
				t.Errorf("newTracker(%q, %q, %q, %v).secret = %x; want the state dir's %x", tc.publicURL, tc.fp, stateDir, tc.once, got.secret, got.state.secret)
			}
			if len(got.secret) < 16 || bytes.Equal(got.secret, make([]byte, len(got.secret))) {
				t.Errorf("newTracker(%q, %q, %q, %v).secret = %x; want 16 or more random bytes", tc.publicURL, tc.fp, stateDir, tc.once, got.secret)
			}
		})
	}
}

func TestOpenState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st, err := openState(dir)
	if err != nil {
		t.Fatalf("openState(%q) = %v", dir, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "hosts"), filepath.Join(dir, "unknown")} {
		if info, err := os.Stat(d); err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 {
			t.Errorf("openState(%q) made %s: %v, %v; want a directory, mode 0700", dir, d, info, err)
		}
	}
	secretPath := filepath.Join(dir, "secret")
	info, err := os.Stat(secretPath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("openState(%q) made %s: %v, %v; want mode 0600", dir, secretPath, info, err)
	}
	data, _ := os.ReadFile(secretPath)
	if s := strings.TrimSuffix(string(data), "\n"); len(s) != 64 || hex.EncodeToString(st.secret) != s {
		t.Errorf("openState(%q): secret file %q, secret %x; want 64 hex digits and a newline, the secret in use", dir, data, st.secret)
	}
	again, err := openState(dir)
	if err != nil || !bytes.Equal(again.secret, st.secret) {
		t.Errorf("openState(%q) again = %x, %v; want the same secret %x", dir, again.secret, err, st.secret)
	}
	other := trackStore(t)
	if bytes.Equal(other.secret, st.secret) {
		t.Errorf("two state dirs have the same secret %x; want each its own", st.secret)
	}
}

func TestOpenStateErrors(t *testing.T) {
	tests := []struct {
		name    string
		secret  string // the secret file's content; asDir for a directory
		wantErr string // substring
	}{
		{"secret_not_hex_is_error", "not a secret\n", "is not a secret pxe-pilot made"},
		{"secret_too_short_is_error", "0123456789abcdef\n", "is not a secret pxe-pilot made"},
		{"secret_empty_is_error", "", "is not a secret pxe-pilot made"},
		{"secret_odd_hex_digits_is_error", strings.Repeat("a", 63) + "\n", "is not a secret pxe-pilot made"},
		{"secret_is_a_directory_is_error", asDir, "reading the secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"secret": tc.secret})
			_, err := openState(dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("openState with secret %q = %v; want an error containing %q", tc.secret, err, tc.wantErr)
			}
		})
	}
}

func TestRecordAnswer(t *testing.T) {
	t1 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	mac := match{"mac", "aabbccddee01", "hosts/aa-bb-cc-dd-ee-01.toml"}
	def := match{by: "default", file: "hosts/default.toml"}
	type answer struct {
		m   match
		rel release
		at  time.Time
	}
	tests := []struct {
		name    string
		key     string
		answers []answer
		want    hostRecord
		wantErr string // substring of the last answer's error; "" for none
	}{
		{"first_answer", "aa-bb-cc-dd-ee-01", []answer{{mac, r92, t1}},
			hostRecord{Host: "aa-bb-cc-dd-ee-01", Match: "mac aa:bb:cc:dd:ee:01", HostFile: mac.file, FirstAnswer: t1, LastAnswer: t1, Answers: 1, Pending: 1, Release: "9.2"}, ""},
		{"second_answer_counts_and_keeps_the_first_time", "aa-bb-cc-dd-ee-01", []answer{{mac, r83, t1}, {mac, r92, t2}},
			hostRecord{Host: "aa-bb-cc-dd-ee-01", Match: "mac aa:bb:cc:dd:ee:01", HostFile: mac.file, FirstAnswer: t1, LastAnswer: t2, Answers: 2, Pending: 2, Release: "9.2"}, ""},
		{"default_answer", "02-00-00-00-00-09", []answer{{def, r91, t1}},
			hostRecord{Host: "02-00-00-00-00-09", Match: "default", HostFile: def.file, FirstAnswer: t1, LastAnswer: t1, Answers: 1, Pending: 1, Release: "9.1"}, ""},
		{"empty_key_is_error", "", []answer{{def, r92, t1}}, hostRecord{}, "is not a machine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := trackStore(t)
			var err error
			for _, a := range tc.answers {
				err = st.recordAnswer(tc.key, a.m, a.rel, false, a.at)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("recordAnswer(%q) = %v; want an error containing %q", tc.key, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("recordAnswer(%q) = %v", tc.key, err)
			}
			got, err := st.host(tc.key)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("after recordAnswer, host(%q) = %+v, %v; want %+v", tc.key, got, err, tc.want)
			}
		})
	}
}

func TestRecordUnknown(t *testing.T) {
	t1 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Minute)
	long := strings.Repeat("x", 300)
	a := request{macs: []string{"020000000099", "020000000098"}, serial: "SN-X", uuid: "4c4c4544-0042-3510-8052-b4c04f4d4e31", model: "Model Y"}
	b := request{macs: []string{"020000000097"}, model: "Other"}
	tests := []struct {
		name      string
		prefill   int  // files already in DIR/unknown when the store is opened
		capped    bool // room for one machine only
		reqs      []request
		wantErr   string // substring of the last request's error; "" for none
		want      map[string]unknownRecord
		wantFiles int // in DIR/unknown, prefilled ones too; 0 is len(want)
	}{
		{name: "records_macs_serial_uuid_model", reqs: []request{a},
			want: map[string]unknownRecord{"02-00-00-00-00-99": {MACs: []string{"02:00:00:00:00:99", "02:00:00:00:00:98"}, Serial: "SN-X", UUID: a.uuid, Model: "Model Y", FirstSeen: t1, LastSeen: t1, Requests: 1}}},
		{name: "asking_again_counts_and_keeps_the_first_time", reqs: []request{a, a},
			want: map[string]unknownRecord{"02-00-00-00-00-99": {MACs: []string{"02:00:00:00:00:99", "02:00:00:00:00:98"}, Serial: "SN-X", UUID: a.uuid, Model: "Model Y", FirstSeen: t1, LastSeen: t2, Requests: 2}}},
		{name: "long_fields_are_clipped", reqs: []request{{macs: []string{"020000000099"}, serial: long, model: long}},
			want: map[string]unknownRecord{"02-00-00-00-00-99": {MACs: []string{"02:00:00:00:00:99"}, Serial: long[:128], Model: long[:128], FirstSeen: t1, LastSeen: t1, Requests: 1}}},
		{name: "no_macs_records_nothing", reqs: []request{{serial: "SN-X"}}, want: map[string]unknownRecord{}},
		{name: "new_machine_past_the_cap_takes_the_oldest_place", capped: true, reqs: []request{a, b},
			want: map[string]unknownRecord{"02-00-00-00-00-97": {MACs: []string{"02:00:00:00:00:97"}, Model: "Other", FirstSeen: t2, LastSeen: t2, Requests: 1}}},
		{name: "known_machine_at_the_cap_is_still_counted", capped: true, reqs: []request{a, a},
			want: map[string]unknownRecord{"02-00-00-00-00-99": {MACs: []string{"02:00:00:00:00:99", "02:00:00:00:00:98"}, Serial: "SN-X", UUID: a.uuid, Model: "Model Y", FirstSeen: t1, LastSeen: t2, Requests: 2}}},
		{name: "cap_counts_files_already_in_the_dir", prefill: maxUnknown, reqs: []request{a}, wantFiles: maxUnknown,
			want: map[string]unknownRecord{"02-00-00-00-00-99": {MACs: []string{"02:00:00:00:00:99", "02:00:00:00:00:98"}, Serial: "SN-X", UUID: a.uuid, Model: "Model Y", FirstSeen: t1, LastSeen: t1, Requests: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prefill > 0 {
				if err := os.MkdirAll(filepath.Join(dir, "unknown"), 0o700); err != nil {
					t.Fatal(err)
				}
				for i := range tc.prefill {
					if err := os.WriteFile(filepath.Join(dir, "unknown", "x"+strconv.Itoa(i)+".json"), nil, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			st, err := openState(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.capped {
				st.unknownCap = 1
			}
			for i, req := range tc.reqs {
				err = st.recordUnknown(req, t1.Add(time.Duration(i)*time.Minute), nil)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("recordUnknown(%+v) = %v; want an error containing %q", tc.reqs[len(tc.reqs)-1], err, tc.wantErr)
			}
			got := map[string]unknownRecord{}
			paths, _ := filepath.Glob(filepath.Join(dir, "unknown", "??-*.json"))
			for _, p := range paths {
				r, err := readRecord[unknownRecord](p)
				if err != nil {
					t.Fatal(err)
				}
				got[strings.TrimSuffix(filepath.Base(p), ".json")] = r
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("after recordUnknown(%+v), unknown/ = %+v; want %+v", tc.reqs, got, tc.want)
			}
			if all, _ := filepath.Glob(filepath.Join(dir, "unknown", "*.json")); len(all) != cmp.Or(tc.wantFiles, len(tc.want)) {
				t.Errorf("after recordUnknown(%+v), unknown/ holds %d files; want %d", tc.reqs, len(all), cmp.Or(tc.wantFiles, len(tc.want)))
			}
		})
	}
}

// A flood of made-up MACs past the cap costs the records of the machines
// that asked longest ago, never the newest: a real machine that asks after
// it is recorded, one that asked before it and again during it is kept,
// status says how many were dropped and since when, and a store opened
// again keeps to the cap.
func TestUnknownFloodKeepsTheNewest(t *testing.T) {
	config, state := writeTree(t, goodConfig()), t.TempDir()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	early := request{macs: []string{"0200000000aa"}}
	newcomer := request{macs: []string{"3cecef123456"}, serial: "REAL-1"}
	open := func() *stateStore {
		t.Helper()
		st, err := openState(state)
		if err != nil {
			t.Fatal(err)
		}
		st.unknownCap = 10
		return st
	}
	ask := func(st *stateStore, req request, at time.Time) {
		t.Helper()
		if err := st.recordUnknown(req, at, nil); err != nil {
			t.Fatalf("recordUnknown(%v) at %v = %v; want it recorded", req.macs, at, err)
		}
	}
	st := open()
	ask(st, early, t0)
	for i := range 15 {
		ask(st, request{macs: []string{fmt.Sprintf("02ff0000%04x", i)}}, t0.Add(time.Duration(i+1)*time.Minute))
		if i == 8 {
			ask(st, early, t0.Add(9*time.Minute+30*time.Second))
		}
	}
	ask(st, newcomer, t0.Add(time.Hour))

	// Kept: the real machine, the flood's last 8 (8m to 15m) and the early
	// one (9m30s) among them; dropped: the flood's first 7, from the 10th
	// record on.
	fleet := func(wantDropped int, wantSince, wantLast time.Time, want ...string) status {
		t.Helper()
		fl, err := readFleet(config, state, fleetOptions{now: t0.Add(3 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range fl.Unknown {
			got = append(got, u.MACs[0])
		}
		if !slices.Equal(got, want) {
			t.Errorf("unknown machines, newest first = %q; want %q", got, want)
		}
		if d := fl.Dropped; d == nil || d.Dropped != wantDropped || !d.Since.Equal(wantSince) || !d.Last.Equal(wantLast) {
			t.Errorf("dropped = %+v; want %d since %v, the last at %v", d, wantDropped, wantSince, wantLast)
		}
		return fl
	}
	flood := func(from, to int) []string {
		var macs []string
		for i := to; i >= from; i-- {
			macs = append(macs, fmt.Sprintf("02:ff:00:00:00:%02x", i))
		}
		return macs
	}
	kept := slices.Concat(flood(9, 14), []string{"02:00:00:00:00:aa"}, flood(7, 8))
	fl := fleet(7, t0.Add(10*time.Minute), t0.Add(time.Hour), slices.Concat([]string{"3c:ec:ef:12:34:56"}, kept)...)
	var out bytes.Buffer
	writeStatus(&out, fl, true)
	if want := "7 records of unknown machines dropped since 2026-11-25T09:10:00Z, the oldest first, to keep the newest 1000 (the last at 2026-11-25T10:00:00Z)"; !strings.Contains(out.String(), want) {
		t.Errorf("status =\n%s\nwant it to say %q", out.String(), want)
	}
	var js bytes.Buffer
	if err := writeStatusJSON(&js, fl); err != nil || !strings.Contains(js.String(), `"unknown_dropped": {`) || !strings.Contains(js.String(), `"dropped": 7,`) {
		t.Errorf("status --json =\n%s\n%v; want unknown_dropped with dropped 7", js.String(), err)
	}

	if page := renderPage(fl, pageInfo{now: t0.Add(3 * time.Hour), tracked: true}); !strings.Contains(page, "<p>7 records of unknown machines dropped since 2026-11-25T09:10:00Z, the oldest first") {
		t.Errorf("the fleet page does not say that 7 records were dropped:\n%s", page)
	}

	// Opened again, the store reads the records' times and keeps the cap:
	// a new machine takes the place of the oldest now.
	st = open()
	if len(st.unknown) != 10 {
		t.Errorf("openState read %d unknown machines; want 10", len(st.unknown))
	}
	ask(st, request{macs: []string{"3cecef654321"}}, t0.Add(2*time.Hour))
	fleet(8, t0.Add(10*time.Minute), t0.Add(2*time.Hour), slices.Concat([]string{"3c:ec:ef:65:43:21", "3c:ec:ef:12:34:56"}, kept[:len(kept)-1])...)
}

// The shape of the flood as it comes: GET /boot.ipxe with made-up MACs,
// no body and no token, past the cap; the machine that asks after it is
// recorded, and listed first.
func TestBootScriptFloodKeepsTheNewMachine(t *testing.T) {
	s, _ := scriptServer(t, goodConfig(), nil, []string{})
	s.track.state.unknownCap = 20
	for i := range 30 {
		getScript(t, s, fmt.Sprintf("mac=02:ff:00:00:%02x:%02x", i>>8, i&0xff))
	}
	getScript(t, s, "mac=3c:ec:ef:12:34:56")
	names, _ := filepath.Glob(filepath.Join(s.track.state.dir, "unknown", "*.json"))
	fl, err := readFleet(s.dir, s.track.state.dir, fleetOptions{now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 20 || len(fl.Unknown) != 20 || fl.Unknown[0].MACs[0] != "3c:ec:ef:12:34:56" || fl.Dropped == nil || fl.Dropped.Dropped != 11 {
		t.Errorf("after 30 made-up MACs and a real one: %d files, %d listed, the newest %v, dropped %+v; want 20, the real one first, 11 dropped", len(names), len(fl.Unknown), fl.Unknown[0].MACs, fl.Dropped)
	}
}

func TestRearm(t *testing.T) {
	t1 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	installedAt := t1.Add(time.Hour)
	rearmAt := t1.Add(2 * time.Hour)
	tests := []struct {
		name       string
		installed  bool // the machine reported installed before
		tokenGiven bool // its answer gave it a token
		rearms     int
		key        string
		want       hostRecord
		wantErr    string // substring; "" for none
	}{
		{name: "installed_moves_to_previous_installs", installed: true, rearms: 1, key: "aa-bb-cc-dd-ee-01",
			want: hostRecord{PreviouslyAt: []time.Time{installedAt}, RearmedAt: rearmAt}},
		{name: "rearming_twice_keeps_one_previous_install", installed: true, rearms: 2, key: "aa-bb-cc-dd-ee-01",
			want: hostRecord{PreviouslyAt: []time.Time{installedAt}, RearmedAt: rearmAt}},
		{name: "not_installed_has_no_previous_install", rearms: 1, key: "aa-bb-cc-dd-ee-01",
			want: hostRecord{RearmedAt: rearmAt}},
		{name: "token_given_is_kept", installed: true, tokenGiven: true, rearms: 1, key: "aa-bb-cc-dd-ee-01",
			want: hostRecord{PreviouslyAt: []time.Time{installedAt}, RearmedAt: rearmAt, TokenGiven: true}},
		{name: "unknown_machine_is_error", rearms: 1, key: "aa-bb-cc-dd-ee-02", wantErr: "aa-bb-cc-dd-ee-02: no such machine in the state dir"},
		{name: "not_a_machine_key_is_error", rearms: 1, key: "../secret", wantErr: `"../secret" is not a machine`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := trackStore(t)
			const key = "aa-bb-cc-dd-ee-01"
			m := match{"mac", "aabbccddee01", "hosts/aa-bb-cc-dd-ee-01.toml"}
			if err := st.recordAnswer(key, m, r92, tc.tokenGiven, t1); err != nil {
				t.Fatal(err)
			}
			if tc.installed {
				if _, err := st.updateHost(key, func(r *hostRecord) { r.Installed, r.FQDN, r.Pending = installedAt, "pve1.example.com", 0 }); err != nil {
					t.Fatal(err)
				}
			}
			var got hostRecord
			var err error
			for range tc.rearms {
				got, err = st.rearm(tc.key, rearmAt)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("rearm(%q) = %+v, %v; want an error containing %q", tc.key, got, err, tc.wantErr)
				}
				return
			}
			want := hostRecord{Host: key, Match: m.String(), HostFile: m.file, FirstAnswer: t1, LastAnswer: t1, Answers: 1, Release: "9.2",
				PreviouslyAt: tc.want.PreviouslyAt, RearmedAt: tc.want.RearmedAt, TokenGiven: tc.want.TokenGiven}
			if tc.installed {
				want.FQDN = "pve1.example.com"
			}
			stored, _ := st.host(key)
			if err != nil || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(stored, want) {
				t.Errorf("rearm(%q) = %+v, %v (stored %+v); want %+v", tc.key, got, err, stored, want)
			}
		})
	}
}

func TestHostPath(t *testing.T) {
	const uuid = "4c4c4544-0042-3510-8052-b4c04f4d4e31"
	tests := []struct {
		key    string
		wantOK bool
	}{
		{"aa-bb-cc-dd-ee-ff", true},
		{"serial-S1", true},
		{"serial-A.B_C-1", true},
		{"uuid-" + uuid, true},
		{"", false},
		{"../x", false},
		{"../hosts/aa-bb-cc-dd-ee-ff", false},
		{"default", false},
		{"uuid-" + strings.ToUpper(uuid), false},
		{"uuid-00000000-0000-0000-0000-000000000000", false},
		{"AA-BB-CC-DD-EE-FF", false},
		{"aa:bb:cc:dd:ee:ff", false},
		{"aabbccddeeff", false},
		{"aa-bb-cc-dd-ee-ff.toml", false},
		{"serial-", false},
		{"serial-../x", false},
		{"serial-a/b", false},
		{"serial-..", false},
		{"serial-a\x00b", false},
		{"uuid-", false},
		{"hosts/aa-bb-cc-dd-ee-ff", false},
	}
	st := &stateStore{dir: "/state"}
	for _, tc := range tests {
		got, err := st.hostPath(tc.key)
		want := filepath.Join("/state", "hosts", tc.key+".json")
		if tc.wantOK && (err != nil || got != want) {
			t.Errorf("hostPath(%q) = %q, %v; want %q", tc.key, got, err, want)
		}
		if !tc.wantOK && (err == nil || !strings.Contains(err.Error(), "is not a machine")) {
			t.Errorf("hostPath(%q) = %q, %v; want an error saying it is not a machine", tc.key, got, err)
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	tests := []struct {
		name    string
		old     string // the file's content before; "" for none
		perm    os.FileMode
		missing bool // the dir does not exist
	}{
		{name: "new_file_0600", perm: 0o600},
		{name: "new_file_0644", perm: 0o644},
		{name: "replaces_a_file_and_its_mode", old: "old bytes\n", perm: 0o600},
		{name: "missing_dir_is_error", perm: 0o600, missing: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "aa-bb-cc-dd-ee-01.json")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if tc.missing {
				path = filepath.Join(dir, "gone", "x.json")
			}
			data := []byte("{\"host\": \"aa-bb-cc-dd-ee-01\"}\n")
			err := writeAtomic(path, data, tc.perm)
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if tc.missing {
				if err == nil || len(names) != 0 {
					t.Errorf("writeAtomic(%q) = %v, leaving %q; want an error and nothing left", path, err, names)
				}
				return
			}
			if err != nil {
				t.Fatalf("writeAtomic(%q) = %v", path, err)
			}
			if want := []string{filepath.Base(path)}; !reflect.DeepEqual(names, want) {
				t.Errorf("writeAtomic(%q) left %q; want only %q", path, names, want)
			}
			got, _ := os.ReadFile(path)
			info, _ := os.Stat(path)
			if !bytes.Equal(got, data) || info.Mode().Perm() != tc.perm {
				t.Errorf("writeAtomic(%q) wrote %q, mode %v; want %q, mode %v", path, got, info.Mode().Perm(), data, tc.perm)
			}
		})
	}
}

// trackReport is a 9.2 installer's report, as ANSWER-FORMAT.md describes it.
const trackReport = `{
  "$schema": {"version": "1.2"},
  "debian-version": "13.2",
  "fqdn": "pve1.example.com",
  "machine-id": "0f3b1c9e5a7d4e2fb6c8a1d3e5f70912",
  "product": {"fullname": "Proxmox VE", "short": "pve", "version": "9.2.2"},
  "iso": {"release": "9.2", "isorelease": "1"},
  "dmi": {"system": {"name": "PowerEdge R650", "serial": "S1", "uuid": "4c4c4544-0042-3510-8052-b4c04f4d4e31"}},
  "filesystem": "zfs (RAID1)",
  "network-interfaces": [
    {"name": "eno1", "mac": "aa:bb:cc:dd:ee:01", "address": "10.0.0.11/24", "is-management": true, "udev-properties": {"INTERFACE": "eno1"}},
    {"name": "eno2", "mac": "aa:bb:cc:dd:ee:02", "udev-properties": {"INTERFACE": "eno2"}}
  ],
  "ssh-public-host-keys": {"ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVGGhrTZ6cA1fuV34tcanYzhA+PCIisDMivkO17Vk25 root@pve1"},
  "reboot-mode": "reboot",
  "token": "aa-bb-cc-dd-ee-01.00"
}`

func TestParseReport(t *testing.T) {
	withSchema := func(v string) string {
		return strings.Replace(trackReport, `"version": "1.2"`, `"version": `+v, 1)
	}
	tests := []struct {
		name      string
		body      string
		wantReq   request
		wantFQDN  string
		wantToken string // "-" for none
		wantErr   string // substring; "" for none
	}{
		{name: "installer_report", body: trackReport,
			wantReq: request{product: "pve", iso: "9.2", macs: []string{"aabbccddee01", "aabbccddee02"}, links: []string{"eno1", "eno2"},
				serial: "S1", uuid: "4c4c4544-0042-3510-8052-b4c04f4d4e31", model: "PowerEdge R650"},
			wantFQDN: "pve1.example.com", wantToken: "aa-bb-cc-dd-ee-01.00"},
		{name: "schema_1", body: withSchema(`"1"`),
			wantReq: request{product: "pve", iso: "9.2", macs: []string{"aabbccddee01", "aabbccddee02"}, links: []string{"eno1", "eno2"},
				serial: "S1", uuid: "4c4c4544-0042-3510-8052-b4c04f4d4e31", model: "PowerEdge R650"},
			wantFQDN: "pve1.example.com", wantToken: "aa-bb-cc-dd-ee-01.00"},
		{name: "product_product_of_another_sender", body: `{"$schema": {"version": "1.2"}, "product": {"product": "pbs"}, "network-interfaces": [{"name": "eno1", "mac": "aa:bb:cc:dd:ee:01"}]}`,
			wantReq: request{product: "pbs", macs: []string{"aabbccddee01"}, links: []string{"eno1"}}, wantToken: "-"},
		{name: "product_short_wins_over_product_product", body: `{"$schema": {"version": "1.2"}, "product": {"short": "pve", "product": "pbs"}, "network-interfaces": [{"name": "eno1", "mac": "aa:bb:cc:dd:ee:01"}]}`,
			wantReq: request{product: "pve", macs: []string{"aabbccddee01"}, links: []string{"eno1"}}, wantToken: "-"},
		{name: "without_token_has_none", body: `{"$schema": {"version": "1.0"}, "network-interfaces": [{"name": "eno1", "mac": "AA-BB-CC-DD-EE-01"}]}`,
			wantReq: request{macs: []string{"aabbccddee01"}, links: []string{"eno1"}}, wantToken: "-"},
		{name: "one_mac_twice_is_one", body: `{"$schema": {"version": "1.2"}, "network-interfaces": [{"name": "eno1", "mac": "aa:bb:cc:dd:ee:01"}, {"name": "bond0", "mac": "AA:BB:CC:DD:EE:01"}, {"name": "lo", "mac": "00:00"}]}`,
			wantReq: request{macs: []string{"aabbccddee01"}, links: []string{"eno1"}}, wantToken: "-"},
		{name: "schema_2_is_error", body: withSchema(`"2.0"`), wantErr: `$schema.version "2.0": pxe-pilot reads reports of version 1.x`},
		{name: "schema_10_is_error", body: withSchema(`"10.1"`), wantErr: `$schema.version "10.1"`},
		{name: "schema_missing_is_error", body: `{"fqdn": "pve1.example.com"}`, wantErr: `$schema.version ""`},
		{name: "schema_not_a_string_is_error", body: withSchema(`1.2`), wantErr: "report body is not the installer's report"},
		{name: "not_json_is_error", body: `fqdn=pve1`, wantErr: "report body is not the installer's report"},
		{name: "empty_is_error", body: ``, wantErr: "report body is not the installer's report"},
		{name: "array_is_error", body: `[]`, wantErr: "report body is not the installer's report"},
		{name: "cut_short_is_error", body: trackReport[:len(trackReport)/2], wantErr: "report body is not the installer's report"},
		{name: "trailing_value_is_error", body: trackReport + ` {}`, wantErr: "more than one JSON value"},
		{name: "trailing_garbage_is_error", body: trackReport + ` x`, wantErr: "report body"},
		{name: "trailing_brace_is_error", body: trackReport + `}`, wantErr: "report body"},
		{name: "too_many_nics_is_error", body: `{"$schema": {"version": "1.2"}, "network-interfaces": [` + trackNICs(maxNICs+1) + `]}`, wantErr: "more than the"},
		{name: "too_many_nics_of_one_mac_is_error", body: `{"$schema": {"version": "1.2"}, "network-interfaces": [` + strings.Repeat(`{"mac": "aa:bb:cc:dd:ee:01"}, `, maxNICs) + `{"mac": "aa:bb:cc:dd:ee:01"}]}`,
			wantErr: "network-interfaces lists 257 interfaces, more than the 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, req, err := parseReport([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("parseReport(%.60q) = %v; want an error containing %q", tc.body, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(req, tc.wantReq) {
				t.Errorf("parseReport(%.60q) = %+v, %v; want %+v", tc.body, req, err, tc.wantReq)
			}
			token := "-"
			if rep.Token != nil {
				token = *rep.Token
			}
			if rep.FQDN != tc.wantFQDN || token != tc.wantToken {
				t.Errorf("parseReport(%.60q) = fqdn %q, token %q; want %q, %q", tc.body, rep.FQDN, token, tc.wantFQDN, tc.wantToken)
			}
		})
	}
}

// trackNICs is n network-interfaces of a report, each its own MAC.
func trackNICs(n int) string {
	var nics []string
	for i := range n {
		nics = append(nics, fmt.Sprintf(`{"name": "eth%d", "mac": "02:00:00:00:%02x:%02x"}`, i, i>>8, i&0xff))
	}
	return strings.Join(nics, ", ")
}

// examples/reports/pve-9.2.json is the report of the machine whose request
// is examples/requests/pve-9.2.json: the same machine, read the same way.
func TestExampleReport(t *testing.T) {
	rep, got, err := parseReport(mustRead(t, "examples/reports/pve-9.2.json"))
	if err != nil {
		t.Fatalf("parseReport(examples/reports/pve-9.2.json) = %v", err)
	}
	want, err := parseRequest(mustRead(t, "examples/requests/pve-9.2.json"))
	if err != nil {
		t.Fatal(err)
	}
	want.btrfs = false // product.enable_btrfs is the request's alone
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the example report reads as %+v; its request as %+v", got, want)
	}
	mac, addr := rep.management()
	fps, _, dropped := rep.hostKeys()
	if rep.installed() != "pve 9.2.2" || rep.FQDN != "pve-node-01.lab.example.com" || mac != "aa:bb:cc:dd:ee:ff" || addr != "10.0.0.10/24" ||
		rep.Token == nil || *rep.Token != "TOKEN" || !reflect.DeepEqual(fps, nodeFingerprints) || dropped != nil {
		t.Errorf("the example report = %q, fqdn %q, management %s %s, token %v, host keys %v (dropped %q); want pve 9.2.2, pve-node-01's, TOKEN and the keys of pve-node-01",
			rep.installed(), rep.FQDN, mac, addr, rep.Token, fps, dropped)
	}
}

func TestReportManagement(t *testing.T) {
	tests := []struct {
		name     string
		nics     string
		wantMAC  string
		wantAddr string
	}{
		{"management_nic", `[{"name": "eno1", "mac": "aa:bb:cc:dd:ee:01"}, {"name": "eno2", "mac": "AA-BB-CC-DD-EE-02", "address": "10.0.0.12/24", "is-management": true}]`,
			"aa:bb:cc:dd:ee:02", "10.0.0.12/24"},
		{"first_management_nic_wins", `[{"name": "eno1", "mac": "aa:bb:cc:dd:ee:01", "address": "10.0.0.11/24", "is-management": true}, {"name": "eno2", "mac": "aa:bb:cc:dd:ee:02", "is-management": true}]`,
			"aa:bb:cc:dd:ee:01", "10.0.0.11/24"},
		{"no_management_nic", `[{"name": "eno1", "mac": "aa:bb:cc:dd:ee:01", "address": "10.0.0.11/24"}]`, "", ""},
		{"management_nic_with_a_bad_mac_keeps_its_address", `[{"name": "eno1", "mac": "nonsense", "address": "10.0.0.11/24", "is-management": true}]`, "", "10.0.0.11/24"},
		{"no_nics", `[]`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, _, err := parseReport([]byte(`{"$schema": {"version": "1.2"}, "network-interfaces": ` + tc.nics + `}`))
			if err != nil {
				t.Fatal(err)
			}
			mac, addr := rep.management()
			if mac != tc.wantMAC || addr != tc.wantAddr {
				t.Errorf("management() of %s = %q, %q; want %q, %q", tc.nics, mac, addr, tc.wantMAC, tc.wantAddr)
			}
		})
	}
}

func TestHostKeyFingerprints(t *testing.T) {
	// A key and its fingerprint as `ssh-keygen -lf` showed them.
	const vectorKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVGGhrTZ6cA1fuV34tcanYzhA+PCIisDMivkO17Vk25 root@pve1"
	const vectorFP = "SHA256:O4HW0K6tOZ08Ukei0bkcZPbdTju8iKBMyvdapiivdOA"
	tests := []struct {
		name string
		keys func(t *testing.T) (keys, want map[string]string)
	}{
		{"known_vector", func(*testing.T) (map[string]string, map[string]string) {
			return map[string]string{"ed25519": vectorKey}, map[string]string{"ed25519": vectorFP}
		}},
		{"keys_ssh_keygen_made", func(t *testing.T) (map[string]string, map[string]string) {
			if _, err := exec.LookPath("ssh-keygen"); err != nil {
				t.Skip("ssh-keygen is not installed")
			}
			keys, want := map[string]string{}, map[string]string{}
			for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
				path := filepath.Join(t.TempDir(), kind)
				if out, err := exec.Command("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "root@pve1", "-f", path).CombinedOutput(); err != nil {
					t.Fatalf("ssh-keygen -t %s: %v\n%s", kind, err, out)
				}
				pub, err := os.ReadFile(path + ".pub")
				if err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command("ssh-keygen", "-lf", path+".pub").Output()
				if err != nil {
					t.Fatalf("ssh-keygen -lf: %v", err)
				}
				keys[kind] = strings.TrimSpace(string(pub))
				want[kind] = strings.Fields(string(out))[1]
			}
			return keys, want
		}},
		{"malformed_keys_are_left_out", func(*testing.T) (map[string]string, map[string]string) {
			return map[string]string{"ed25519": vectorKey, "rsa": "ssh-rsa", "ecdsa": "ecdsa-sha2-nistp256 not*base64", "dsa": ""},
				map[string]string{"ed25519": vectorFP}
		}},
		{"no_keys", func(*testing.T) (map[string]string, map[string]string) {
			return nil, map[string]string{}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, want := tc.keys(t)
			got, _, _ := report{SSHHostKeys: keys}.hostKeys()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("hostKeys(%q) fingerprints = %q; want %q", keys, got, want)
			}
		})
	}
}

// A report's keys are all vetted, however many fail: the first 8 that
// fail are said, then how many more, and a good key that sorts after them
// is kept.
func TestHostKeysDroppedPastEight(t *testing.T) {
	keys := map[string]string{"ed25519": nodeHostKeys["ed25519"], "x": "ssh-x AAAA"}
	for i := range 10 {
		keys[fmt.Sprintf("a%d", i)] = "ssh-dss AAAA"
	}
	fps, pubs, dropped := report{SSHHostKeys: keys}.hostKeys()
	const why = " is not a key type pxe-pilot keeps (ecdsa, ed25519, rsa)"
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("%q", fmt.Sprintf("a%d", i))+why)
	}
	want = append(want, "and 3 more")
	if fps["ed25519"] != nodeFingerprints["ed25519"] || len(pubs) != 1 || !slices.Equal(dropped, want) {
		t.Errorf("hostKeys of 11 bad keys and ed25519 = %q, %d keys, dropped %q; want ed25519 %s kept and dropped %q", fps, len(pubs), dropped, nodeFingerprints["ed25519"], want)
	}
}

// trackScriptFacts are the facts of a 9.2 machine matched by its MAC.
func trackScriptFacts() facts {
	req := request{product: "pve", iso: "9.2", macs: []string{"aabbccddee01"}, links: []string{"eno1"},
		serial: "S1", uuid: "4c4c4544-0042-3510-8052-b4c04f4d4e31"}
	f := req.facts(match{"mac", "aabbccddee01", "hosts/aa-bb-cc-dd-ee-01.toml"}, r92)
	f.key = "aa-bb-cc-dd-ee-01"
	return f
}

func TestScriptTicket(t *testing.T) {
	dir := writeTree(t, map[string]string{"scripts/setup.sh": "#!/bin/sh\necho {{.MAC}} {{.Hostname}}\n"})
	tr := trackTracker("0123456789abcdef0123456789abcdef")
	tr.dir = dir
	f := trackScriptFacts()
	url, msg := tr.scriptURL("scripts/setup.sh", f, "pve1")
	prefix := "https://10.0.0.2:8443/first-boot/"
	if msg != "" || !strings.HasPrefix(url, prefix) {
		t.Fatalf("scriptURL = %q, %q; want a URL starting %q", url, msg, prefix)
	}
	ticket := strings.TrimPrefix(url, prefix)
	payload, sig, _ := strings.Cut(ticket, ".")
	g := trackScriptFacts()
	g.key, g.nic = "aa-bb-cc-dd-ee-02", "aabbccddee02"
	otherURL, _ := tr.scriptURL("scripts/setup.sh", g, "pve2")
	otherPayload, _, _ := strings.Cut(strings.TrimPrefix(otherURL, prefix), ".")
	// change replaces the byte at i with another of the base64url alphabet.
	change := func(s string, i int) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		b := []byte(s)
		b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+1)%64]
		return string(b)
	}
	want := scriptTicket{Key: "aa-bb-cc-dd-ee-01", Path: "scripts/setup.sh", Host: "pve1", NIC: "aabbccddee01", Link: "eno1",
		Serial: "S1", UUID: "4c4c4544-0042-3510-8052-b4c04f4d4e31", Product: "pve", Release: "9.2"}
	tests := []struct {
		name   string
		tr     *tracker
		ticket string
		wantOK bool
	}{
		{"ticket_as_signed", tr, ticket, true},
		{"payload_first_char_changed_is_refused", tr, change(payload, 0), false},
		{"payload_last_char_changed_is_refused", tr, change(payload, len(payload)-1), false},
		{"another_machines_payload_is_refused", tr, otherPayload + "." + sig, false},
		{"signature_first_char_changed_is_refused", tr, payload + "." + change(sig, 0), false},
		{"signature_last_char_changed_is_refused", tr, payload + "." + change(sig, len(sig)-1), false},
		{"signature_truncated_is_refused", tr, payload + "." + sig[:len(sig)-4], false},
		{"signature_empty_is_refused", tr, payload + ".", false},
		{"signature_padded_is_refused", tr, payload + "." + sig + "=", false},
		{"second_dot_is_refused", tr, ticket + ".x", false},
		{"no_dot_is_refused", tr, payload + sig, false},
		{"empty_is_refused", tr, "", false},
		{"another_secret_is_refused", trackTracker("fedcba9876543210fedcba9876543210"), ticket, false},
		{"webhook_signature_is_refused", tr, payload + "." + base64.RawURLEncoding.EncodeToString(tr.sign("webhook", payload)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.tr.ticket(tc.ticket)
			if ok != tc.wantOK || ok && got != want {
				t.Errorf("ticket(%q) = %+v, %v; want %+v, %v", tc.ticket, got, ok, want, tc.wantOK)
			}
		})
	}
	// What the ticket carries fills the script as the facts did.
	st, _ := tr.ticket(ticket)
	direct, _ := fillScript(openDir(t, dir), "scripts/setup.sh", f, "pve1")
	served, msg := fillScript(openDir(t, dir), st.Path, st.facts(), st.Host)
	if msg != "" || string(served) != string(direct) || string(served) != "#!/bin/sh\necho aa:bb:cc:dd:ee:01 pve1\n" {
		t.Errorf("fillScript of the ticket = %q, %q; want %q", served, msg, direct)
	}
}

func TestScriptURLProblems(t *testing.T) {
	dir := writeTree(t, map[string]string{"scripts/setup.sh": "echo {{.Nope}}\n"})
	tests := []struct {
		name    string
		tr      *tracker
		path    string
		wantMsg string // substring
	}{
		{"nil_tracker_needs_public_url", nil, "scripts/setup.sh", "needs pxe-pilot serve --public-url"},
		{"no_public_url_needs_it", &tracker{dir: dir, secret: []byte("0123456789abcdef")}, "scripts/setup.sh", "needs pxe-pilot serve --public-url"},
		{"bad_script_says_why", &tracker{publicURL: "https://10.0.0.2:8443", dir: dir, secret: []byte("0123456789abcdef")}, "scripts/setup.sh", "{{.Nope}}: no such placeholder"},
		{"missing_script_says_why", &tracker{publicURL: "https://10.0.0.2:8443", dir: dir, secret: []byte("0123456789abcdef")}, "scripts/nope.sh", `"scripts/nope.sh": no such file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, msg := tc.tr.scriptURL(tc.path, trackScriptFacts(), "pve1")
			if url != "" || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("scriptURL(%q) = %q, %q; want no URL and a problem containing %q", tc.path, url, msg, tc.wantMsg)
			}
		})
	}
}

func TestFillScript(t *testing.T) {
	script := "#!/bin/sh\necho {{.MAC}} {{.MACHex}} {{.Link}} {{.Serial}} {{.UUID}} {{.Product}} {{.Release}} {{.Hostname}} {{\"{{\"}}x}}\n"
	filled := "#!/bin/sh\necho aa:bb:cc:dd:ee:01 aabbccddee01 eno1 S1 4c4c4544-0042-3510-8052-b4c04f4d4e31 pve 9.2 pve1 {{x}}\n"
	noSerial := trackScriptFacts()
	noSerial.serial = id{why: "the request has no dmi.system.serial"}
	tests := []struct {
		name    string
		files   map[string]string
		path    string
		f       facts
		host    string
		want    string
		wantMsg string // substring; "" for none
		fifo    bool   // path is a FIFO
		link    string // the NIC's link, if not the usual
	}{
		{name: "placeholders_filled", files: map[string]string{"scripts/setup.sh": script}, path: "scripts/setup.sh", host: "pve1", want: filled},
		{name: "script_without_placeholders_as_is", files: map[string]string{"setup.sh": "#!/bin/sh\necho ${HOST}\n"}, path: "setup.sh", want: "#!/bin/sh\necho ${HOST}\n"},
		{name: "exactly_1_mib_is_served", files: map[string]string{"big.sh": strings.Repeat("#", maxLayer)}, path: "big.sh", want: strings.Repeat("#", maxLayer)},
		{name: "over_1_mib_is_refused", files: map[string]string{"big.sh": strings.Repeat("#", maxLayer+1)}, path: "big.sh",
			wantMsg: `"big.sh": over 1 MiB, and the installer would cut it short`},
		{name: "unknown_placeholder_is_refused", files: map[string]string{"s.sh": "echo {{.Mac}}\n"}, path: "s.sh",
			wantMsg: `"s.sh": {{.Mac}}: no such placeholder (did you mean {{.MAC}}?)`},
		{name: "unclosed_placeholder_is_refused", files: map[string]string{"s.sh": "echo {{.MAC\n"}, path: "s.sh",
			wantMsg: `never closes it with }}`},
		{name: "missing_fact_is_refused", files: map[string]string{"s.sh": "echo {{.Serial}}\n"}, path: "s.sh", f: noSerial,
			wantMsg: `"s.sh": {{.Serial}}: nothing to fill in: the request has no dmi.system.serial`},
		{name: "hostname_without_host_is_refused", files: map[string]string{"s.sh": "echo {{.Hostname}}\n"}, path: "s.sh",
			wantMsg: "the host has no hostname or fqdn"},
		{name: "parent_path_is_refused", files: map[string]string{"s.sh": "x"}, path: "../x",
			wantMsg: `"../x": want a path inside the config dir, such as "scripts/setup.sh"`},
		{name: "inner_parent_path_is_refused", files: map[string]string{"s.sh": "x"}, path: "scripts/../../x",
			wantMsg: `"scripts/../../x": want a path inside the config dir`},
		{name: "absolute_path_is_refused", files: map[string]string{"s.sh": "x"}, path: "/etc/passwd",
			wantMsg: `"/etc/passwd": want a path inside the config dir`},
		{name: "backslash_path_is_refused", files: map[string]string{`a\b`: "x"}, path: `a\b`,
			wantMsg: `"a\\b": want a path inside the config dir`},
		{name: "empty_path_is_refused", files: map[string]string{"s.sh": "x"}, path: "",
			wantMsg: `"": want a path inside the config dir`},
		{name: "directory_is_refused", files: map[string]string{"scripts/s.sh": "x"}, path: "scripts",
			wantMsg: `"scripts": not a regular file but a directory`},
		{name: "fifo_is_refused_at_once", files: map[string]string{"s.sh": "x"}, path: "pipe.sh", fifo: true,
			wantMsg: `"pipe.sh": not a regular file but a FIFO`},
		{name: "fact_that_needs_quoting_is_refused", files: map[string]string{"s.sh": "echo {{.Link}}\n"}, path: "s.sh", link: "eno1;reboot",
			wantMsg: `"s.sh": {{.Link}}: "eno1;reboot" would need quoting in a shell script`},
		{name: "missing_file_is_refused", files: map[string]string{"s.sh": "x"}, path: "scripts/nope.sh",
			wantMsg: `"scripts/nope.sh": no such file in the config dir`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			if f.key == "" {
				f = trackScriptFacts()
			}
			if tc.link != "" {
				f.link = tc.link
			}
			dir := writeTree(t, tc.files)
			if tc.fifo {
				if err := syscall.Mkfifo(filepath.Join(dir, tc.path), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, msg := fillScript(openDir(t, dir), tc.path, f, tc.host)
			if tc.wantMsg != "" {
				if got != nil || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("fillScript(%q) = %.40q, %q; want a problem containing %q", tc.path, got, msg, tc.wantMsg)
				}
				return
			}
			if msg != "" || string(got) != tc.want {
				t.Errorf("fillScript(%q) = %.80q, %q; want %.80q", tc.path, got, msg, tc.want)
			}
		})
	}
}

var (
	trackT1 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	trackT2 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	trackT3 = time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	trackT4 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
)

const trackUUID = "4c4c4544-0042-3510-8052-b4c04f4d4e31"

// trackFixture is a config dir and a state dir as serve leaves them:
//
//	aa-bb-cc-dd-ee-01  its own file, answered and installed
//	aa-bb-cc-dd-ee-02  its own file, never answered
//	aa-bb-cc-dd-ee-03  answered by default.toml, then given its own file
//	ee-ee-ee-ee-ee-01  the same, its file's name sorting after default.toml
//	02-00-00-00-00-09  answered by default.toml
//	serial-S1          its own file by serial, answered and installed
//	uuid-...           its own file by UUID, installed
//	aa-bb-cc-dd-ee-77  answered, its file since removed
//	02:00:00:00:00:99  asked twice and matched nothing
func trackFixture(t *testing.T) (configDir, stateDir string) {
	t.Helper()
	configDir = writeTree(t, map[string]string{
		"defaults.toml":                     trackDefaults,
		"hosts/aa-bb-cc-dd-ee-01.toml":      trackHost + "[network]\naddress = \"10.0.0.11/24\"\n",
		"hosts/aa-bb-cc-dd-ee-02.toml":      "hostname = \"pve-{{.MACHex}}\"\n",
		"hosts/aa-bb-cc-dd-ee-03.toml":      trackHost,
		"hosts/ee-ee-ee-ee-ee-01.toml":      trackHost,
		"hosts/serial-S1.toml":              "hostname = \"pve-{{.Serial}}\"\n",
		"hosts/uuid-" + trackUUID + ".toml": "hostname = \"pve-{{.Serial}}\"\n",
		"hosts/default.toml":                "hostname = \"pve-{{.MACHex}}\"\n",
		"hosts/README.md":                   "not a host file",
		"hosts/Not-A-Host.toml":             trackHost,
	})
	stateDir = t.TempDir()
	st, err := openState(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(hex12 string) match {
		return match{"mac", hex12, "hosts/" + hostFileName(hex12)}
	}
	def := match{by: "default", file: "hosts/default.toml"}
	answers := []struct {
		key string
		m   match
		at  time.Time
	}{
		{"aa-bb-cc-dd-ee-01", mac("aabbccddee01"), trackT1},
		{"aa-bb-cc-dd-ee-03", def, trackT1},
		{"ee-ee-ee-ee-ee-01", def, trackT1},
		{"02-00-00-00-00-09", def, trackT3},
		{"serial-S1", match{"serial", "S1", "hosts/serial-S1.toml"}, trackT1},
		{"uuid-" + trackUUID, match{"uuid", trackUUID, "hosts/uuid-" + trackUUID + ".toml"}, trackT1},
		{"aa-bb-cc-dd-ee-77", mac("aabbccddee77"), trackT1},
	}
	for _, a := range answers {
		if err := st.recordAnswer(a.key, a.m, r92, false, a.at); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"aa-bb-cc-dd-ee-01", "serial-S1", "uuid-" + trackUUID} {
		if _, err := st.updateHost(key, func(r *hostRecord) {
			r.Installed, r.FQDN, r.Pending = trackT2, "pve1.example.com", 0 // as a report does
			r.SSHHostKeys = map[string]string{"ed25519": "SHA256:O4HW0K6tOZ08Ukei0bkcZPbdTju8iKBMyvdapiivdOA"}
		}); err != nil {
			t.Fatal(err)
		}
	}
	unknown := request{macs: []string{"020000000099", "020000000098"}, serial: "SN-X", model: "Model Y"}
	for _, at := range []time.Time{trackT3, trackT4} {
		if err := st.recordUnknown(unknown, at, nil); err != nil {
			t.Fatal(err)
		}
	}
	return configDir, stateDir
}

// trackRows splits a table printed by writeStatus into rows of cells.
func trackRows(table string) [][]string {
	var rows [][]string
	sep := regexp.MustCompile(`\s{2,}`)
	for line := range strings.Lines(table) {
		if line = strings.TrimSpace(line); line != "" {
			rows = append(rows, sep.Split(line, -1))
		}
	}
	return rows
}

func TestStatusCommand(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	configDir, stateDir := trackFixture(t)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"status", "--config-dir", configDir, "--state-dir", stateDir}, &stdout, &stderr); err != nil {
		t.Fatalf("status = %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	problems, hosts, _ := strings.Cut(out, "\n\n")
	wantProblems := "Config problems, as pxe-pilot validate says them:\n" +
		"hosts/Not-A-Host.toml: never matches: a host file is named by a MAC in lowercase with hyphens (aa-bb-cc-dd-ee-ff.toml), serial-<serial>.toml, uuid-<uuid>.toml, or is default.toml\n" +
		"hosts/aa-bb-cc-dd-ee-01.toml and hosts/aa-bb-cc-dd-ee-03.toml and hosts/ee-ee-ee-ee-ee-01.toml: all give the same fqdn, pve1.example.com: two machines would be installed under one fqdn"
	if problems != wantProblems {
		t.Errorf("status begins\n%s\nwant\n%s", problems, wantProblems)
	}
	hosts, unknown, _ := strings.Cut(hosts, "\nMachines that asked and matched no host file (name one by a MAC: hosts/<mac>.toml):\n")
	rows := trackRows(hosts)
	t1, t2, t3, t4 := trackT1.Format(time.RFC3339), trackT2.Format(time.RFC3339), trackT3.Format(time.RFC3339), trackT4.Format(time.RFC3339)
	tests := []struct {
		name    string
		machine string
		want    []string // the machine's one row
	}{
		{"header", "MACHINE", []string{"MACHINE", "HOST FILE", "PLANNED FQDN", "ADDRESS", "STATE", "WHEN", "REPORTED", "NEXT BOOT"}},
		{"installed_host_with_its_static_address", "aa-bb-cc-dd-ee-01", []string{"aa-bb-cc-dd-ee-01", "hosts/aa-bb-cc-dd-ee-01.toml", "pve1.example.com", "10.0.0.11", "installed", t2, "pve1.example.com", "local disk"}},
		{"host_never_answered_its_mac_filled_in", "aa-bb-cc-dd-ee-02", []string{"aa-bb-cc-dd-ee-02", "hosts/aa-bb-cc-dd-ee-02.toml", "pve-aabbccddee02.example.com", "dhcp", "never seen", "-", "-", "install"}},
		{"serial_host_its_serial_filled_in", "serial-S1", []string{"serial-S1", "hosts/serial-S1.toml", "pve-S1.example.com", "dhcp", "installed", t2, "pve1.example.com", "local disk"}},
		{"uuid_host_with_a_serial_it_cannot_know", "uuid-" + trackUUID, []string{"uuid-" + trackUUID, "hosts/uuid-" + trackUUID + ".toml", "pve-{{.Serial}}.example.com", "dhcp", "installed", t2, "pve1.example.com", "local disk"}},
		{"default_toml_itself_as_written", "*", []string{"*", "hosts/default.toml", "pve-{{.MACHex}}.example.com", "dhcp", "not tracked", "-", "-", "install"}},
		{"machine_answered_by_default_toml_stalled_since", "02-00-00-00-00-09", []string{"02-00-00-00-00-09", "hosts/default.toml", "pve-{{.MACHex}}.example.com", "dhcp", "stalled", t3, "-", "install, attempt 2"}},
		{"machine_answered_by_default_then_given_its_own_file", "aa-bb-cc-dd-ee-03", []string{"aa-bb-cc-dd-ee-03", "hosts/aa-bb-cc-dd-ee-03.toml", "pve1.example.com", "dhcp", "stalled", t1, "-", "install, attempt 2"}},
		{"machine_answered_by_default_then_given_its_own_file_sorting_after_default", "ee-ee-ee-ee-ee-01", []string{"ee-ee-ee-ee-ee-01", "hosts/ee-ee-ee-ee-ee-01.toml", "pve1.example.com", "dhcp", "stalled", t1, "-", "install, attempt 2"}},
		{"host_file_gone", "aa-bb-cc-dd-ee-77", []string{"aa-bb-cc-dd-ee-77", "(gone)", "-", "-", "stalled", t1, "-", "-"}},
		{"misnamed_host_file_is_not_listed", "Not-A-Host", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]string
			for _, r := range rows {
				if r[0] == tc.machine {
					got = append(got, r)
				}
			}
			want := [][]string{tc.want}
			if tc.want == nil {
				want = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("status rows of %s = %q; want %q\n%s", tc.machine, got, want, out)
			}
		})
	}
	if len(rows) != len(tests)-1 {
		t.Errorf("status printed %d rows; want %d, the header and one per machine\n%s", len(rows), len(tests)-1, out)
	}
	wantUnknown := [][]string{{"MACS", "SERIAL", "UUID", "MODEL", "LAST ASKED", "REQUESTS", "ADOPT WITH"}, {"02:00:00:00:00:99,02:00:00:00:00:98", "SN-X", "-", "Model Y", t4, "2", "hosts/02-00-00-00-00-99.toml"}}
	if got := trackRows(unknown); !reflect.DeepEqual(got, wantUnknown) {
		t.Errorf("status unknown machines = %q; want %q\n%s", got, wantUnknown, out)
	}
}

func TestStatusCommandWithoutStateDir(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	configDir, _ := trackFixture(t)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"status", "--config-dir", configDir}, &stdout, &stderr); err != nil {
		t.Fatalf("status = %v", err)
	}
	out := stdout.String()
	_, table, _ := strings.Cut(out, "\n\n") // the config's problems, as TestStatusCommand has them
	table, note, _ := strings.Cut(table, "\n(")
	want := [][]string{
		{"MACHINE", "HOST FILE", "PLANNED FQDN", "ADDRESS", "STATE", "WHEN", "REPORTED", "NEXT BOOT"},
		{"aa-bb-cc-dd-ee-01", "hosts/aa-bb-cc-dd-ee-01.toml", "pve1.example.com", "10.0.0.11", "not tracked", "-", "-", "install"},
		{"aa-bb-cc-dd-ee-02", "hosts/aa-bb-cc-dd-ee-02.toml", "pve-aabbccddee02.example.com", "dhcp", "not tracked", "-", "-", "install"},
		{"aa-bb-cc-dd-ee-03", "hosts/aa-bb-cc-dd-ee-03.toml", "pve1.example.com", "dhcp", "not tracked", "-", "-", "install"},
		{"ee-ee-ee-ee-ee-01", "hosts/ee-ee-ee-ee-ee-01.toml", "pve1.example.com", "dhcp", "not tracked", "-", "-", "install"},
		{"serial-S1", "hosts/serial-S1.toml", "pve-S1.example.com", "dhcp", "not tracked", "-", "-", "install"},
		{"uuid-" + trackUUID, "hosts/uuid-" + trackUUID + ".toml", "pve-{{.Serial}}.example.com", "dhcp", "not tracked", "-", "-", "install"},
		{"*", "hosts/default.toml", "pve-{{.MACHex}}.example.com", "dhcp", "not tracked", "-", "-", "install"}, // then the machines it answered
	}
	if got := trackRows(table); !reflect.DeepEqual(got, want) {
		t.Errorf("status without --state-dir = %q; want %q\n%s", got, want, out)
	}
	if wantNote := "no --state-dir: what was answered and installed is not known)\n"; note != wantNote {
		t.Errorf("status without --state-dir ends %q; want %q", note, wantNote)
	}
}

func TestStatusCommandJSON(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	type host struct {
		Machine     string            `json:"machine"`
		Match       string            `json:"match"`
		HostFile    string            `json:"host_file"`
		LastAnswer  time.Time         `json:"last_answer"`
		Installed   time.Time         `json:"installed"`
		FQDN        string            `json:"fqdn"`
		Answers     int               `json:"answers"`
		SSHHostKeys map[string]string `json:"ssh_host_keys"`
	}
	type unknown struct {
		MACs     []string  `json:"macs"`
		Serial   string    `json:"serial"`
		Model    string    `json:"model"`
		LastSeen time.Time `json:"last_seen"`
		Requests int       `json:"requests"`
	}
	type out struct {
		Hosts   []host    `json:"hosts"`
		Unknown []unknown `json:"unknown"`
	}
	configDir, stateDir := trackFixture(t)
	emptyState := t.TempDir()
	tests := []struct {
		name      string
		args      []string
		wantHosts map[string]host // by machine, of those checked
		wantCount int
		wantUnk   []unknown
		wantRaw   string // substring of the output
	}{
		{name: "state", args: []string{"--config-dir", configDir, "--state-dir", stateDir},
			wantHosts: map[string]host{
				"aa-bb-cc-dd-ee-01": {Machine: "aa-bb-cc-dd-ee-01", Match: "mac aa:bb:cc:dd:ee:01", HostFile: "hosts/aa-bb-cc-dd-ee-01.toml",
					LastAnswer: trackT1, Installed: trackT2, FQDN: "pve1.example.com", Answers: 1,
					SSHHostKeys: map[string]string{"ed25519": "SHA256:O4HW0K6tOZ08Ukei0bkcZPbdTju8iKBMyvdapiivdOA"}},
				"02-00-00-00-00-09": {Machine: "02-00-00-00-00-09", Match: "default", HostFile: "hosts/default.toml", LastAnswer: trackT3, Answers: 1},
				"aa-bb-cc-dd-ee-77": {Machine: "aa-bb-cc-dd-ee-77", Match: "mac aa:bb:cc:dd:ee:77", LastAnswer: trackT1, Answers: 1},
			},
			wantCount: 9,
			wantUnk:   []unknown{{MACs: []string{"02:00:00:00:00:99", "02:00:00:00:00:98"}, Serial: "SN-X", Model: "Model Y", LastSeen: trackT4, Requests: 2}}},
		{name: "empty_is_empty_lists", args: []string{"--config-dir", t.TempDir(), "--state-dir", emptyState},
			wantHosts: map[string]host{}, wantUnk: []unknown{}, wantRaw: "\"hosts\": [],\n  \"unknown\": []\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"status", "--json"}, tc.args...)
			if err := run(args, &stdout, &stderr); err != nil {
				t.Fatalf("run(%q) = %v", args, err)
			}
			var got out
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("run(%q) printed %q: %v; want JSON", args, stdout.String(), err)
			}
			byMachine := map[string]host{}
			for _, h := range got.Hosts {
				if _, ok := tc.wantHosts[h.Machine]; ok {
					byMachine[h.Machine] = h
				}
			}
			if !reflect.DeepEqual(byMachine, tc.wantHosts) || len(got.Hosts) != tc.wantCount {
				t.Errorf("run(%q) hosts = %+v (%d); want %+v among %d", args, byMachine, len(got.Hosts), tc.wantHosts, tc.wantCount)
			}
			if !reflect.DeepEqual(got.Unknown, tc.wantUnk) {
				t.Errorf("run(%q) unknown = %+v; want %+v", args, got.Unknown, tc.wantUnk)
			}
			if !strings.Contains(stdout.String(), tc.wantRaw) {
				t.Errorf("run(%q) = %q; want it to contain %q", args, stdout.String(), tc.wantRaw)
			}
		})
	}
}

func TestStatusCommandErrors(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring
	}{
		{"missing_state_dir_is_error", []string{"--state-dir", "/nonexistent/pxe-pilot-state"}, "state dir:"},
		{"argument_is_error", []string{"aa-bb-cc-dd-ee-01"}, `status: unexpected argument "aa-bb-cc-dd-ee-01"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"status", "--config-dir", t.TempDir()}, tc.args...)
			err := run(args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("run(%q) = %v; want an error containing %q", args, err, tc.wantErr)
			}
		})
	}
}

// The 409 of --once names the command that rearms the machine, with the
// state dir serve was given, as one word to a shell whatever its name.
func TestRearmLine(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the line with")
	}
	base := t.TempDir()
	t.Chdir(base)
	tests := []struct {
		name     string
		dir, key string
		wantLine string
		wantDir  string // the word the shell gets
	}{
		{"plain_path_as_it_is", "/var/lib/pxe-pilot", "aa-bb-cc-dd-ee-ff",
			"pxe-pilot rearm --state-dir /var/lib/pxe-pilot aa-bb-cc-dd-ee-ff", "/var/lib/pxe-pilot"},
		{"relative_path_made_absolute", "state", "serial-S1",
			"pxe-pilot rearm --state-dir " + filepath.Join(base, "state") + " serial-S1", filepath.Join(base, "state")},
		{"space_is_quoted", "/srv/pxe pilot/state", "aa-bb-cc-dd-ee-ff",
			"pxe-pilot rearm --state-dir '/srv/pxe pilot/state' aa-bb-cc-dd-ee-ff", "/srv/pxe pilot/state"},
		{"quote_and_dollar_are_quoted", "/srv/it's $HOME", "aa-bb-cc-dd-ee-ff",
			`pxe-pilot rearm --state-dir '/srv/it'\''s $HOME' aa-bb-cc-dd-ee-ff`, "/srv/it's $HOME"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := (&stateStore{dir: tc.dir}).rearmLine(tc.key)
			if line != tc.wantLine {
				t.Errorf("rearmLine(%q) with state dir %q = %q; want %q", tc.key, tc.dir, line, tc.wantLine)
			}
			// What a shell makes of it: the words rearm gets.
			args, ok := strings.CutPrefix(line, "pxe-pilot ")
			if !ok {
				t.Fatalf("%q does not start with pxe-pilot", line)
			}
			out, err := exec.Command(sh, "-c", `printf '%s\n' `+args).Output()
			if err != nil {
				t.Fatalf("sh -c %q: %v", args, err)
			}
			want := "rearm\n--state-dir\n" + tc.wantDir + "\n" + tc.key + "\n"
			if string(out) != want {
				t.Errorf("sh reads %q as %q; want %q", line, out, want)
			}
		})
	}
}

func TestRearmCommand(t *testing.T) {
	installed := trackT2.Format(time.RFC3339)
	tests := []struct {
		name       string
		args       []string // DIR is the state dir
		env        string   // PXE_PILOT_STATE_DIR; DIR is the state dir
		wantKey    string   // the machine rearmed
		wantStdout string
		wantErr    string // substring; "" for none
	}{
		{name: "host_file_spelling", args: []string{"--state-dir", "DIR", "aa-bb-cc-dd-ee-01"}, wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "mac_with_colons", args: []string{"--state-dir", "DIR", "aa:bb:cc:dd:ee:01"}, wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "mac_in_uppercase_with_dashes", args: []string{"--state-dir", "DIR", "AA-BB-CC-DD-EE-01"}, wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "mac_with_dots", args: []string{"--state-dir", "DIR", "aabb.ccdd.ee01"}, wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "mac_bare_uppercase", args: []string{"--state-dir", "DIR", "AABBCCDDEE01"}, wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "host_file_name_with_toml", args: []string{"--state-dir", "DIR", "aa-bb-cc-dd-ee-01.toml"}, wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "serial", args: []string{"--state-dir", "DIR", "serial-S1"}, wantKey: "serial-S1",
			wantStdout: "serial-S1 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "uuid_in_uppercase", args: []string{"--state-dir", "DIR", "uuid-" + strings.ToUpper(trackUUID)}, wantKey: "uuid-" + trackUUID,
			wantStdout: "uuid-" + trackUUID + " rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "flag_after_the_machine", args: []string{"aa:bb:cc:dd:ee:01", "--state-dir", "DIR"}, wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "state_dir_from_env", args: []string{"aa:bb:cc:dd:ee:01"}, env: "DIR", wantKey: "aa-bb-cc-dd-ee-01",
			wantStdout: "aa-bb-cc-dd-ee-01 rearmed: installed at " + installed + ", it will be answered again\n"},
		{name: "machine_not_installed", args: []string{"--state-dir", "DIR", "02-00-00-00-00-09"}, wantKey: "02-00-00-00-00-09",
			wantStdout: "02-00-00-00-00-09 was not marked installed; it is answered as before\n"},
		{name: "unknown_machine_is_error", args: []string{"--state-dir", "DIR", "aa:bb:cc:dd:ee:55"},
			wantErr: "aa-bb-cc-dd-ee-55: no such machine in the state dir"},
		{name: "not_a_machine_is_error", args: []string{"--state-dir", "DIR", "../secret"}, wantErr: `"../secret" is not a machine`},
		{name: "default_is_error", args: []string{"--state-dir", "DIR", "default"}, wantErr: `"default" is not a machine`},
		{name: "without_state_dir_is_error", args: []string{"aa:bb:cc:dd:ee:01"}, wantErr: "rearm needs --state-dir DIR"},
		{name: "missing_state_dir_is_error", args: []string{"--state-dir", "/nonexistent/pxe-pilot-state", "aa:bb:cc:dd:ee:01"},
			wantErr: "state dir /nonexistent/pxe-pilot-state: no such file or directory"},
		{name: "without_machine_is_error", args: []string{"--state-dir", "DIR"}, wantErr: "rearm needs the machine"},
		{name: "two_machines_is_error", args: []string{"--state-dir", "DIR", "aa:bb:cc:dd:ee:01", "serial-S1"}, wantErr: "rearm one machine at a time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stateDir := trackFixture(t)
			t.Setenv("PXE_PILOT_STATE_DIR", strings.ReplaceAll(tc.env, "DIR", stateDir))
			args := []string{"rearm"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DIR", stateDir))
			}
			var stdout, stderr bytes.Buffer
			err := run(args, &stdout, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("run(%q) = %v; want an error containing %q", args, err, tc.wantErr)
				}
				return
			}
			if err != nil || stdout.String() != tc.wantStdout {
				t.Fatalf("run(%q) = %q, %v; want %q", args, stdout.String(), err, tc.wantStdout)
			}
			rec, err := readRecord[hostRecord](filepath.Join(stateDir, "hosts", tc.wantKey+".json"))
			if err != nil || !rec.Installed.IsZero() || rec.RearmedAt.IsZero() || rec.Host != tc.wantKey {
				t.Errorf("after run(%q), %s's record = %+v, %v; want it not installed, rearmed", args, tc.wantKey, rec, err)
			}
			if tc.wantStdout != "" && strings.Contains(tc.wantStdout, "rearmed") && !reflect.DeepEqual(rec.PreviouslyAt, []time.Time{trackT2}) {
				t.Errorf("after run(%q), %s's previous installs = %v; want [%v]", args, tc.wantKey, rec.PreviouslyAt, trackT2)
			}
		})
	}
}

// FuzzInstalled posts any body to /installed: never a panic, never a 500,
// and only a report with a token pxe-pilot gave, or naming a configured
// machine, is taken.
func FuzzInstalled(f *testing.F) {
	f.Add(mustRead(f, "examples/reports/pve-9.2.json"))
	f.Add([]byte(`{"$schema":{"version":"1.0"},"network-interfaces":[{"mac":"aa:bb:cc:dd:ee:ff"}]}`))
	f.Add([]byte(`{"$schema":{"version":"1.2"},"dmi":{"system":{"serial":"EXAMPLE0042"}},"token":"aa-bb-cc-dd-ee-ff.00"}`))
	f.Add([]byte(`{"$schema":{"version":"1.2"},"ssh-public-host-keys":{"rsa":"ssh-rsa !!!"},"network-interfaces":[{"mac":"AA-BB-CC-DD-EE-01","is-management":true}]} `))
	config := writeTree(f, map[string]string{
		"defaults.toml":                 string(mustRead(f, "examples/config/defaults.toml")),
		"hosts/aa-bb-cc-dd-ee-ff.toml":  string(mustRead(f, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")),
		"hosts/serial-EXAMPLE0042.toml": string(mustRead(f, "examples/config/hosts/serial-EXAMPLE0042.toml")),
	})
	tr, err := newTracker(config, "http://127.0.0.1:8080", "", f.TempDir(), true, false)
	if err != nil {
		f.Fatal(err)
	}
	s := &server{dir: config, log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/installed", bytes.NewReader(body)))
		switch rec.Code {
		case 200, 400, 401, 404, 413:
		default:
			t.Fatalf("POST /installed %q = %d %q", body, rec.Code, rec.Body)
		}
	})
}

// A report cannot mark a machine installed that pxe-pilot never answered,
// nor, without its token, one whose answer ever carried a token: not even
// after an answer for an older release, which carries none.
func TestReportForgeryGuards(t *testing.T) {
	config := writeTree(t, map[string]string{
		"defaults.toml":                string(mustRead(t, "examples/config/defaults.toml")),
		"hosts/aa-bb-cc-dd-ee-ff.toml": string(mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")),
		"hosts/aa-bb-cc-dd-ee-01.toml": string(mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")),
		"hosts/default.toml":           "hostname = \"pve-{{.MACHex}}\"\n[disk]\ntarget = \"sda\"\n",
	})
	state := t.TempDir()
	tr, err := newTracker(config, "http://127.0.0.1:8080", "", state, true, false)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{dir: config, log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr}
	post := func(path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
		return rec
	}
	report := func(mac string) string {
		return `{"$schema":{"version":"1.2"},"iso":{"release":"9.1"},"network-interfaces":[{"mac":"` + mac + `","is-management":true}]}`
	}
	for _, step := range []struct {
		name, path, body string
		want             int
	}{
		{"never_answered_is_404", "/installed", report("aa:bb:cc:dd:ee:01"), 404},
		{"answered_as_9_2_gets_a_token", "/answer", installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"), 200},
		{"then_answered_as_9_1", "/answer", installerBody("pve", "9.1", "aa:bb:cc:dd:ee:ff"), 200},
		{"tokenless_report_claiming_9_1_is_401", "/installed", report("aa:bb:cc:dd:ee:ff"), 401},
		{"no_mac_for_default_toml_is_400", "/installed", `{"$schema":{"version":"1.2"},"dmi":{"system":{"serial":"NOFILE123"}}}`, 400},
		{"still_answered", "/answer", installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"), 200},
	} {
		if rec := post(step.path, step.body); rec.Code != step.want {
			t.Errorf("%s: POST %s = %d %q; want %d", step.name, step.path, rec.Code, rec.Body, step.want)
		}
	}
	for _, key := range []string{"aa-bb-cc-dd-ee-ff", "aa-bb-cc-dd-ee-01"} {
		if r, err := tr.state.host(key); err != nil || !r.Installed.IsZero() {
			t.Errorf("%s = %+v, %v; want it not installed", key, r, err)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "hosts", "aa-bb-cc-dd-ee-01.json")); err == nil {
		t.Error("a report of a machine never answered created its state file")
	}
}

func TestPublicURLWithAPath(t *testing.T) {
	for _, tc := range []struct {
		url, wantErr string
	}{
		{"https://10.0.0.2:8443", ""},
		{"https://10.0.0.2:8443/", ""},
		{"https://boot.example.com/pxe", ""}, // behind a proxy that strips /pxe
		{"https://10.0.0.2:8443/answer", "without /answer"},
		{"https://10.0.0.2:8443/pxe/answer/", "without /answer"},
		{"https://10.0.0.2:8443/installed", "without /installed"},
	} {
		err := checkPublicURL(tc.url)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("checkPublicURL(%q) = %v; want %q", tc.url, err, tc.wantErr)
		}
	}
}

// render --public-url shows what serve adds, with the token serve would
// give, and writes nothing to the state dir.
func TestRenderWithTracking(t *testing.T) {
	for _, k := range []string{"PXE_PILOT_PUBLIC_URL", "PXE_PILOT_STATE_DIR", "PXE_PILOT_TLS_CERT"} {
		t.Setenv(k, "")
	}
	state := t.TempDir()
	st, err := openState(state)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracker{secret: st.secret}
	render := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"render", "--config-dir", "examples/config", "--mac", "aa:bb:cc:dd:ee:ff"}, args...), &out, io.Discard)
		return out.String(), err
	}
	out, err := render("--public-url", "http://10.0.0.2:8080", "--state-dir", state)
	want := "[post-installation-webhook]\nauth-token = '" + tr.webhookToken("aa-bb-cc-dd-ee-ff") + "'\nurl = 'http://10.0.0.2:8080/installed'\n"
	if err != nil || !strings.HasSuffix(out, want) {
		t.Errorf("render --public-url --state-dir = %v\n%s\nwant it to end with\n%s", err, out, want)
	}
	if files, _ := os.ReadDir(filepath.Join(state, "hosts")); len(files) != 0 {
		t.Errorf("render wrote %d state files; want none", len(files))
	}
	out, err = render("--public-url", "http://10.0.0.2:8080", "--release", "8.3")
	if err != nil || !strings.Contains(out, "[post-installation-webhook]\nurl = 'http://10.0.0.2:8080/installed'\n") || strings.Contains(out, "auth-token") {
		t.Errorf("render --public-url --release 8.3 = %v\n%s\nwant a webhook with no token", err, out)
	}
	if out, err = render(); err != nil || strings.Contains(out, "webhook") {
		t.Errorf("render without --public-url = %v\n%s\nwant no webhook", err, out)
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--public-url", "http://10.0.0.2:8080", "--state-dir", t.TempDir()}, "serve makes it at its first start"},
		{[]string{"--public-url", "http://10.0.0.2:8080/answer"}, "without /answer"},
	} {
		if _, err := render(tc.args...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("render %q = %v; want an error containing %q", tc.args, err, tc.wantErr)
		}
	}
}

// manyNICsReport is a report just under maxBody that lists as many NICs
// as fit, some 45,000: each its own MAC, or all one MAC, or none a MAC.
func manyNICsReport(macs string) []byte {
	body := []byte(`{"$schema":{"version":"1.2"},"network-interfaces":[`)
	for i := 0; len(body) < maxBody-64; i++ {
		mac := map[string]string{"distinct": fmt.Sprintf("0200%08x", i), "one": "020000000001", "none": "not-a-mac"}[macs]
		body = fmt.Appendf(body, `{"mac":%q},`, mac)
	}
	return append(body[:len(body)-1], "]}"...)
}

// A report of nearly 1 MiB listing tens of thousands of NICs is refused by
// the NIC cap, however many MACs it names; BenchmarkInstalledManyNICs
// shows how long that takes.
func TestInstalledRefusesManyNICs(t *testing.T) {
	tr, err := newTracker(t.TempDir(), "http://127.0.0.1:8080", "", t.TempDir(), true, false)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{dir: t.TempDir(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr}
	for _, tc := range []struct{ name, macs string }{
		{"each_nic_its_own_mac_is_400", "distinct"},
		{"every_nic_one_mac_is_400", "one"},
		{"no_nic_a_mac_is_400", "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := manyNICsReport(tc.macs)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("POST", "/installed", bytes.NewReader(body)))
			want := fmt.Sprintf("pxe-pilot: report body: network-interfaces lists %d interfaces, more than the 256 pxe-pilot looks at\n", strings.Count(string(body), "{\"mac\""))
			if rec.Code != 400 || rec.Body.String() != want {
				t.Errorf("POST /installed of %d bytes = %d %q; want 400 %q", len(body), rec.Code, rec.Body, want)
			}
		})
	}
}

// BenchmarkInstalledManyNICs posts a report of nearly 1 MiB listing some
// 45,000 NICs to /installed, which refuses it by the NIC cap.
func BenchmarkInstalledManyNICs(b *testing.B) {
	tr, err := newTracker(b.TempDir(), "http://127.0.0.1:8080", "", b.TempDir(), true, false)
	if err != nil {
		b.Fatal(err)
	}
	s := &server{dir: b.TempDir(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr}
	body := manyNICsReport("distinct")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/installed", bytes.NewReader(body)))
		if rec.Code != 400 {
			b.Fatalf("POST /installed of %d bytes = %d %q; want 400", len(body), rec.Code, rec.Body)
		}
	}
}

// A report body over maxBody is a 413, as an answer request's is; a field
// of a report, however long, is quoted in a reply or a log line, and kept
// in the state dir, as a short excerpt at most.
func TestInstalledQuotesShortExcerpts(t *testing.T) {
	config := writeTree(t, map[string]string{"hosts/aa-bb-cc-dd-ee-01.toml": trackHost})
	tr, err := newTracker(config, "http://127.0.0.1:8080", "", t.TempDir(), true, false)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	s := &server{dir: config, log: slog.New(slog.NewTextHandler(&log, nil)), track: tr}
	long := strings.Repeat("9", maxBody-200)
	token := tr.webhookToken("aa-bb-cc-dd-ee-01")
	for _, tc := range []struct {
		name string
		body string
		code int
		want string // the start of the reply
	}{
		{"body_over_1_MiB_is_413", trackReport + strings.Repeat(" ", maxBody), 413,
			"pxe-pilot: report body is over 1048576 bytes; the installer's report is a few KiB\n"},
		{"long_schema_version_is_400_quoting_40_bytes", `{"$schema": {"version": "` + long + `"}}`, 400,
			`pxe-pilot: report body: $schema.version "` + long[:40] + `...": pxe-pilot reads reports of version 1.x` + "\n"},
		{"long_number_for_fqdn_is_400", `{"$schema": {"version": "1.2"}, "fqdn": ` + long + `}`, 400,
			"pxe-pilot: report body is not the installer's report: "},
		{"long_number_for_a_host_key_is_400", `{"$schema": {"version": "1.2"}, "ssh-public-host-keys": {"` + long + `": 5}}`, 400,
			"pxe-pilot: report body is not the installer's report: "},
		{"long_token_is_401", `{"$schema": {"version": "1.2"}, "token": "` + long + `"}`, 401,
			"pxe-pilot: the report's token is not one pxe-pilot gave"},
		{"long_serial_is_404_quoting_20_bytes", `{"$schema": {"version": "1.2"}, "dmi": {"system": {"serial": "` + long + `"}}}`, 404,
			"pxe-pilot: report of a machine no host file names: "},
		{"long_fqdn_machine_id_address_and_release_are_200", `{"$schema": {"version": "1.2"}, "fqdn": "` + long[:maxBody/4] + `", "machine-id": "` + long[:maxBody/4] +
			`", "iso": {"release": "` + long[:maxBody/4] + `"}, "network-interfaces": [{"mac": "aa:bb:cc:dd:ee:01", "is-management": true, "address": "` + long[:maxBody/8] +
			`"}], "token": "` + token + `"}`, 200, `{"status":"recorded"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log.Reset()
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("POST", "/installed", strings.NewReader(tc.body)))
			if got := rec.Body.String(); rec.Code != tc.code || !strings.HasPrefix(got, tc.want) || len(got) > 400 {
				t.Errorf("POST /installed = %d %.500q (%d bytes); want %d, at most 400 bytes, starting %q", rec.Code, got, len(got), tc.code, tc.want)
			}
			if log.Len() > 1500 {
				t.Errorf("POST /installed logged %d bytes: %.500q...; want one short line", log.Len(), log.String())
			}
		})
	}
	if data := mustRead(t, filepath.Join(tr.state.dir, "hosts", "aa-bb-cc-dd-ee-01.json")); len(data) > 2000 {
		t.Errorf("the state file holds %d bytes of the report; want its fields clipped: %.300q...", len(data), data)
	}
}

// openState counts the state files of hosts/ and unknown/ against the
// caps, and removes the temporary files a crash left (writeAtomic's
// .<name>.tmp-*), which take no room.
func TestOpenStateCountsStateFiles(t *testing.T) {
	many := func(dir, format string, n int) map[string]string {
		files := map[string]string{}
		for i := range n {
			files[dir+"/"+fmt.Sprintf(format, i)] = "{}"
		}
		return files
	}
	tests := []struct {
		name        string
		files       map[string]string // in the state dir
		wantHosts   int
		wantUnknown int
		wantLeft    []string // of files, those left
	}{
		{name: "state_files_are_counted",
			files:     map[string]string{"hosts/aa-bb-cc-dd-ee-01.json": "{}", "hosts/serial-S1.json": "{}", "unknown/02-00-00-00-00-99.json": "{}"},
			wantHosts: 2, wantUnknown: 1, wantLeft: []string{"hosts/aa-bb-cc-dd-ee-01.json", "hosts/serial-S1.json", "unknown/02-00-00-00-00-99.json"}},
		{name: "temp_files_of_a_crash_are_removed_and_not_counted",
			files: map[string]string{"hosts/aa-bb-cc-dd-ee-01.json": "{}", "hosts/.aa-bb-cc-dd-ee-01.json.tmp-123": "{", "hosts/.serial-S1.json.tmp-456": "",
				"unknown/.02-00-00-00-00-99.json.tmp-789": "{"},
			wantHosts: 1, wantLeft: []string{"hosts/aa-bb-cc-dd-ee-01.json"}},
		{name: "other_files_are_neither_counted_nor_removed",
			files:    map[string]string{"hosts/README": "notes", "hosts/.hidden.json": "{}", "unknown/notes.txt": "x"},
			wantLeft: []string{"hosts/README", "hosts/.hidden.json", "unknown/notes.txt"}},
		{name: "temp_files_as_many_as_the_cap_take_no_room",
			files: many("unknown", ".02-00-00-00-%02x.json.tmp-1", maxUnknown)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			st, err := openState(dir)
			if err != nil {
				t.Fatal(err)
			}
			if st.hosts != tc.wantHosts || len(st.unknown) != tc.wantUnknown {
				t.Errorf("openState counted %d hosts and %d unknown; want %d and %d", st.hosts, len(st.unknown), tc.wantHosts, tc.wantUnknown)
			}
			var left []string
			for name := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					left = append(left, name)
				}
			}
			slices.Sort(left)
			slices.Sort(tc.wantLeft)
			if !slices.Equal(left, tc.wantLeft) {
				t.Errorf("openState left %q; want %q", left, tc.wantLeft)
			}
			if err := st.recordUnknown(request{macs: []string{"020000000042"}}, trackT1, nil); err != nil {
				t.Errorf("recordUnknown of a new machine = %v; want it recorded", err)
			}
		})
	}
}

// Writes that fail, as on a full disk, take no room under the caps: new
// machines are recorded again once the disk has room, up to the caps and
// no further; --once refuses the installed machine throughout; a failed
// write of a report is a 500 naming the state file as the state dir holds
// it; and no temporary file is left.
func TestFailedWritesTakeNoRoom(t *testing.T) {
	files := map[string]string{
		"defaults.toml":                string(mustRead(t, "examples/config/defaults.toml")),
		"hosts/aa-bb-cc-dd-ee-ff.toml": string(mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")),
	}
	mac := func(i int) string { return fmt.Sprintf("02:00:00:00:00:%02x", i) }
	for i := 1; i <= 5; i++ {
		files["hosts/"+hostFileName(strings.ReplaceAll(mac(i), ":", ""))] = fmt.Sprintf("hostname = \"node-%d\"\n\n[disk]\ntarget = \"sda\"\n", i)
	}
	config, state := writeTree(t, files), t.TempDir()
	tr, err := newTracker(config, "http://127.0.0.1:8080", "", state, true, false)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	s := &server{dir: config, log: slog.New(slog.NewTextHandler(&log, nil)), track: tr}
	tr.state.hosts, tr.state.unknownCap = maxHosts-3, 1 // room for three machines and one unknown
	full := func(string, []byte, fs.FileMode) error { return syscall.ENOSPC }

	a := mustRead(t, "examples/requests/pve-9.2.json")
	token := tr.webhookToken("aa-bb-cc-dd-ee-ff")
	reportA := node01Report(&token).body()
	answer := func(i int) []byte { return systemInfo("9.2", "", "", mac(i)) }
	for _, step := range []struct {
		name     string
		path     string
		body     []byte
		diskFull bool
		code     int
		want     string // in the reply
		file     string // a state file that must exist, or with !, must not
	}{
		{"A_answered", "/answer", a, false, 200, "", "hosts/aa-bb-cc-dd-ee-ff.json"},
		{"A_reports", "/installed", reportA, false, 200, "recorded", ""},
		{"B_answered_on_a_full_disk_is_not_recorded", "/answer", answer(1), true, 200, "", "!hosts/02-00-00-00-00-01.json"},
		{"C_answered_on_a_full_disk_is_not_recorded", "/answer", answer(2), true, 200, "", "!hosts/02-00-00-00-00-02.json"},
		{"unknown_machine_on_a_full_disk_is_not_recorded", "/answer", answer(0x91), true, 404, "no host file", "!unknown/02-00-00-00-00-91.json"},
		{"A_is_refused_on_a_full_disk", "/answer", a, true, 409, "rearm --state-dir " + state + " aa-bb-cc-dd-ee-ff'", ""},
		{"A_reporting_on_a_full_disk_is_500_naming_the_state_file", "/installed", reportA, true, 500,
			"pxe-pilot: the report could not be recorded: writing state file hosts/aa-bb-cc-dd-ee-ff.json: no space left on device\n", ""},
		{"D_answered_with_room_again_is_recorded", "/answer", answer(3), false, 200, "", "hosts/02-00-00-00-00-03.json"},
		{"E_answered_is_recorded", "/answer", answer(4), false, 200, "", "hosts/02-00-00-00-00-04.json"},
		{"F_answered_past_the_cap_is_not_recorded", "/answer", answer(5), false, 200, "", "!hosts/02-00-00-00-00-05.json"},
		{"unknown_machine_with_room_again_is_recorded", "/answer", answer(0x92), false, 404, "no host file", "unknown/02-00-00-00-00-92.json"},
		{"unknown_machine_past_the_cap_takes_the_oldest_place", "/answer", answer(0x93), false, 404, "no host file", "unknown/02-00-00-00-00-93.json"},
		{"the_oldest_unknown_machine_is_dropped", "/answer", a, false, 409, "rearm --state-dir " + state + " aa-bb-cc-dd-ee-ff'", "!unknown/02-00-00-00-00-92.json"},
		{"A_is_still_refused", "/answer", a, false, 409, "rearm --state-dir " + state + " aa-bb-cc-dd-ee-ff'", ""},
	} {
		tr.state.replace = nil
		if step.diskFull {
			tr.state.replace = full
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", step.path, bytes.NewReader(step.body)))
		// Only the 409 names the state dir: in the command that rearms the machine.
		if rec.Code != step.code || !strings.Contains(rec.Body.String(), step.want) || strings.Contains(rec.Body.String(), state) != (step.code == 409) {
			t.Errorf("%s: POST %s = %d %q; want %d containing %q, and the state dir's path only in a 409's rearm command", step.name, step.path, rec.Code, rec.Body, step.code, step.want)
		}
		if name, absent := strings.CutPrefix(step.file, "!"); step.file != "" {
			if _, err := os.Stat(filepath.Join(state, name)); (err == nil) == absent {
				t.Errorf("%s: %s exists: %v; want %v", step.name, name, err == nil, !absent)
			}
		}
	}
	if tr.state.hosts != maxHosts || len(tr.state.unknown) != 1 {
		t.Errorf("the store counts %d hosts and %d unknown; want the caps, %d and 1", tr.state.hosts, len(tr.state.unknown), maxHosts)
	}
	if warn := "answer not recorded: writing state file hosts/02-00-00-00-00-01.json: no space left on device"; !strings.Contains(log.String(), warn) {
		t.Errorf("the log lacks %q:\n%s", warn, log.String())
	}
	for name := range stateSnapshot(t, state) {
		if strings.Contains(name, ".tmp-") {
			t.Errorf("a temporary file is left: %s", name)
		}
	}
}

// One state file that cannot be read breaks neither status nor rearm:
// both name it and go on with the rest. A request that needs it gets a
// 500 naming it as the state dir holds it, never by the server's path.
func TestCorruptStateFile(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	const fix = "; remove it, and pxe-pilot forgets the machine: serve --once answers it again"
	tests := []struct {
		name    string
		file    string // in the state dir
		content string // asDir for a directory
		wantErr string // the one line said of it
	}{
		{"truncated_json", "hosts/aa-bb-cc-dd-ee-01.json", `{"host": "aa-bb-cc-dd-ee-01", "answ`,
			"state file hosts/aa-bb-cc-dd-ee-01.json is not a record pxe-pilot can read (unexpected end of JSON input)" + fix},
		{"garbage", "hosts/aa-bb-cc-dd-ee-01.json", "\x00\xffgarbage",
			"state file hosts/aa-bb-cc-dd-ee-01.json is not a record pxe-pilot can read (invalid character '\\x00' looking for beginning of value)" + fix},
		{"wrong_type", "hosts/aa-bb-cc-dd-ee-01.json", `{"answers": "many"}`,
			"state file hosts/aa-bb-cc-dd-ee-01.json is not a record pxe-pilot can read (cannot unmarshal string into Go struct field hostRecord.answers of type int)" + fix},
		{"directory", "hosts/aa-bb-cc-dd-ee-01.json", asDir,
			"state file hosts/aa-bb-cc-dd-ee-01.json cannot be read (not a regular file but a directory)" + fix},
		{"fifo", "hosts/aa-bb-cc-dd-ee-01.json", asFIFO,
			"state file hosts/aa-bb-cc-dd-ee-01.json cannot be read (not a regular file but a FIFO)" + fix},
		{"unknown_machine_garbage", "unknown/02-00-00-00-00-99.json", "garbage",
			"state file unknown/02-00-00-00-00-99.json is not a record pxe-pilot can read (invalid character 'g' looking for beginning of value); remove it; the machine is recorded anew when it asks again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			configDir, stateDir := trackFixture(t)
			path := filepath.Join(stateDir, filepath.FromSlash(tc.file))
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			var err error
			switch tc.content {
			case asDir:
				err = os.Mkdir(path, 0o700)
			case asFIFO:
				err = syscall.Mkfifo(path, 0o600)
			default:
				err = os.WriteFile(path, []byte(tc.content), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			corruptHost := strings.HasPrefix(tc.file, "hosts/")

			// status: the rest, and the line.
			var out bytes.Buffer
			if err := run([]string{"status", "--config-dir", configDir, "--state-dir", stateDir}, &out, io.Discard); err != nil {
				t.Fatalf("status = %v", err)
			}
			rows := map[string][]string{}
			for _, r := range trackRows(out.String()) {
				rows[r[0]] = r
			}
			t2 := trackT2.Format(time.RFC3339)
			if r := rows["serial-S1"]; len(r) != 8 || r[4] != "installed" || r[5] != t2 || r[7] != "local disk" {
				t.Errorf("status row of serial-S1 = %q; want it installed at %s\n%s", r, t2, out.String())
			}
			wantRow := []string{"aa-bb-cc-dd-ee-01", "hosts/aa-bb-cc-dd-ee-01.toml", "pve1.example.com", "10.0.0.11", "?", "?", "?", "?"}
			if !corruptHost {
				wantRow = []string{"aa-bb-cc-dd-ee-01", "hosts/aa-bb-cc-dd-ee-01.toml", "pve1.example.com", "10.0.0.11", "installed", t2, "pve1.example.com", "local disk"}
			}
			if r := rows["aa-bb-cc-dd-ee-01"]; !slices.Equal(r, wantRow) {
				t.Errorf("status row of aa-bb-cc-dd-ee-01 = %q; want %q\n%s", r, wantRow, out.String())
			}
			if want := "\nState files that could not be read (? above), the rest listed all the same:\n" + tc.wantErr + "\n"; !strings.HasSuffix(out.String(), want) {
				t.Errorf("status =\n%s\nwant it to end with\n%s", out.String(), want)
			}
			st := statusJSON(t, configDir, stateDir)
			if !slices.Equal(st.Unreadable, []string{tc.wantErr}) || len(st.Hosts) != 9 {
				t.Errorf("status --json = %d hosts, unreadable %q; want 9 hosts and %q", len(st.Hosts), st.Unreadable, tc.wantErr)
			}

			// rearm: another machine as ever; this one says what to do.
			if err := run([]string{"rearm", "--state-dir", stateDir, "serial-S1"}, io.Discard, io.Discard); err != nil {
				t.Errorf("rearm serial-S1 = %v; want it rearmed", err)
			}
			err = run([]string{"rearm", "--state-dir", stateDir, "aa-bb-cc-dd-ee-01"}, io.Discard, io.Discard)
			if want := "state dir " + stateDir + ": " + tc.wantErr; corruptHost && (err == nil || err.Error() != want) {
				t.Errorf("rearm aa-bb-cc-dd-ee-01 = %v; want %q", err, want)
			}

			// serve: the machine's answer under --once, and its report.
			tr, err := newTracker(configDir, "http://127.0.0.1:8080", "", stateDir, true, false)
			if err != nil {
				t.Fatal(err)
			}
			s := &server{dir: configDir, log: slog.New(slog.NewTextHandler(io.Discard, nil)), track: tr}
			token := tr.webhookToken("aa-bb-cc-dd-ee-01")
			for _, req := range []struct{ path, body string }{
				{"/answer", string(systemInfo("9.2", "", "", "aa:bb:cc:dd:ee:01"))},
				{"/installed", `{"$schema": {"version": "1.2"}, "network-interfaces": [{"mac": "aa:bb:cc:dd:ee:01"}]}`},
				{"/installed", `{"$schema": {"version": "1.2"}, "network-interfaces": [{"mac": "aa:bb:cc:dd:ee:01"}], "token": "` + token + `"}`},
			} {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, httptest.NewRequest("POST", req.path, strings.NewReader(req.body)))
				if !corruptHost {
					continue
				}
				if rec.Code != 500 || !strings.Contains(rec.Body.String(), tc.wantErr+"\n") || strings.Contains(rec.Body.String(), stateDir) {
					t.Errorf("POST %s %s = %d %q; want 500 naming the file, not the state dir's path %s", req.path, req.body, rec.Code, rec.Body, stateDir)
				}
			}
		})
	}
}

// status prints what requests and reports said (a model, a serial, an
// fqdn) so that no terminal escape of theirs reaches the operator's
// terminal: plain text as it is, anything else quoted with Go's escapes;
// status --json stays JSON that gives the values back.
func TestStatusEscapesWhatMachinesSaid(t *testing.T) {
	t.Setenv("PXE_PILOT_STATE_DIR", "")
	tests := []struct {
		name, value, want string
	}{
		{"clear_screen_and_colour", "\x1b[2J\x1b[31mred", `"\x1b[2J\x1b[31mred"`},
		{"window_title_and_bell", "pve\x1b]0;owned\x07", `"pve\x1b]0;owned\a"`},
		{"carriage_return", "ok\rEVIL", `"ok\rEVIL"`},
		{"tab", "a\tb", `"a\tb"`},
		{"c1_control", "x\u009b2J", `"x\u009b2J"`},
		{"right_to_left_override", "abc\u202edef", `"abc\u202edef"`},
		{"invalid_utf8_is_stored_as_a_replacement_character", "ab\xff", "ab\uFFFD"},
		{"leading_quote", `"quoted"`, `"\"quoted\""`},
		{"plain_text_with_spaces_as_it_is", "Model Y 2U", "Model Y 2U"},
		{"letters_of_any_script_as_they_are", "Modèle Ünï 型号", "Modèle Ünï 型号"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			configDir := writeTree(t, map[string]string{"hosts/aa-bb-cc-dd-ee-01.toml": trackHost})
			stateDir := t.TempDir()
			st, err := openState(stateDir)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.recordUnknown(request{macs: []string{"020000000099"}, serial: tc.value, model: tc.value}, trackT1, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := st.updateHost("aa-bb-cc-dd-ee-01", func(r *hostRecord) { r.Installed, r.FQDN, r.Pending = trackT2, tc.value, 0 }); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := run([]string{"status", "--config-dir", configDir, "--state-dir", stateDir}, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			if got := strings.Count(text, tc.want); got != 3 {
				t.Errorf("status shows %q %d times; want 3 (fqdn, serial, model):\n%s", tc.want, got, text)
			}
			if !utf8.ValidString(text) || strings.ContainsFunc(text, func(r rune) bool { return r != '\n' && !strconv.IsPrint(r) }) {
				t.Errorf("status printed a control character or invalid UTF-8: %q", text)
			}
			out.Reset()
			if err := run([]string{"status", "--json", "--config-dir", configDir, "--state-dir", stateDir}, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			var got status
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("status --json is not JSON: %v\n%s", err, out.String())
			}
			want := strings.ToValidUTF8(tc.value, "\uFFFD")
			if len(got.Hosts) != 1 || got.Hosts[0].FQDN != want || len(got.Unknown) != 1 || got.Unknown[0].Model != want || got.Unknown[0].Serial != want {
				t.Errorf("status --json = %+v; want fqdn, serial and model %q", got, want)
			}
		})
	}
}
