// Tests of reading the config dir: layers, profiles, which host file matches.

package main

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

const hostFile = "hosts/aa-bb-cc-dd-ee-ff.toml"

func TestParseLayerErrors(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		wantErr []string // substrings of the error, after the file name
	}{
		{"hostname_at_top_and_in_global",
			"hostname = \"pve1\"\n[global]\nhostname = \"pve2\"\n",
			[]string{"hostname", "both at the top and in [global]"}},
		{"top_level_hostname_with_global_not_a_table",
			"hostname = \"pve1\"\nglobal = \"x\"\n",
			[]string{"global", "want a table"}},
		{"disk_target_by_id_names_id_serial",
			"[disk]\ntarget = \"/dev/disk/by-id/ata-Samsung_SSD_870_S5Y1NX0R123456\"\n",
			[]string{"disk.target", "/dev/disk/by-id/ata-Samsung_SSD_870_S5Y1NX0R123456", "ID_SERIAL"}},
		{"disk_target_array_with_by_id_names_id_serial",
			"[disk]\ntarget = [\"sda\", \"/dev/disk/by-id/nvme-eui.0025\"]\n",
			[]string{"disk.target", "ID_SERIAL"}},
		{"disk_setup_disk_list_by_path_is_error",
			"[disk-setup]\ndisk-list = [\"/dev/disk/by-path/pci-0000:00:1f.2-ata-1\"]\n",
			[]string{"disk-setup.disk-list", "ID_SERIAL"}},
		{"disk_target_number",
			"[disk]\ntarget = 1\n",
			[]string{"disk.target", "the integer 1"}},
		{"disk_target_with_a_slash_inside",
			"[disk]\ntarget = \"/dev/mapper/x\"\n",
			[]string{"disk.target", "mapper/x"}},
		{"disk_not_a_table",
			"disk = \"sda\"\n",
			[]string{"disk", "want a table"}},
		{"root_password_both_spellings",
			"[global]\nroot_password = \"a\"\nroot-password = \"b\"\n",
			[]string{"global.root_password", "global.root-password", "keep root-password"}},
		{"root_password_hashed_both_spellings",
			"[global]\nroot_password_hashed = \"a\"\nroot-password-hashed = \"b\"\n",
			[]string{"global.root_password_hashed", "global.root-password-hashed"}},
		{"root_ssh_keys_both_spellings",
			"[global]\nroot_ssh_keys = []\nroot-ssh-keys = []\n",
			[]string{"global.root_ssh_keys", "global.root-ssh-keys"}},
		{"reboot_on_error_both_spellings",
			"[global]\nreboot_on_error = true\nreboot-on-error = false\n",
			[]string{"global.reboot_on_error", "global.reboot-on-error"}},
		{"disk_list_both_spellings",
			"[disk-setup]\ndisk_list = [\"sda\"]\ndisk-list = [\"sdb\"]\n",
			[]string{"disk-setup.disk_list", "disk-setup.disk-list"}},
		{"filter_match_both_spellings",
			"[disk-setup]\nfilter_match = \"any\"\nfilter-match = \"all\"\n",
			[]string{"disk-setup.filter_match", "disk-setup.filter-match"}},
		{"zfs_arc_max_both_spellings",
			"[disk-setup.zfs]\narc_max = 64\narc-max = 128\n",
			[]string{"disk-setup.zfs.arc_max", "disk-setup.zfs.arc-max"}},
		{"cert_fingerprint_both_spellings",
			"[post-installation-webhook]\ncert_fingerprint = \"a\"\ncert-fingerprint = \"b\"\n",
			[]string{"post-installation-webhook.cert_fingerprint", "post-installation-webhook.cert-fingerprint"}},
		{"disk_filter_match_both_spellings_under_friendly_disk",
			"[disk]\nfilter_match = \"any\"\nfilter-match = \"all\"\n",
			[]string{"disk.filter_match", "disk.filter-match"}},
		{"pinning_mac_listed_in_two_cases",
			"[network.interface-name-pinning.mapping]\n\"AA:BB:CC:DD:EE:FF\" = \"nic0\"\n\"aa:bb:cc:dd:ee:ff\" = \"nic1\"\n",
			[]string{"network.interface-name-pinning.mapping", "aa:bb:cc:dd:ee:ff", "listed twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLayer(hostFile, []byte(tc.toml))
			if err == nil {
				t.Fatalf("parseLayer(%q) = nil error; want one mentioning %q", tc.toml, tc.wantErr)
			}
			var ce *configError
			if !errors.As(err, &ce) {
				t.Errorf("parseLayer(%q) = %T; want a *configError", tc.toml, err)
			}
			if !strings.HasPrefix(err.Error(), hostFile+": ") {
				t.Errorf("parseLayer(%q) = %q; want it to start with %q", tc.toml, err, hostFile+": ")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("parseLayer(%q) = %q; want it to mention %q", tc.toml, err, w)
				}
			}
		})
	}
}

func TestParseLayerSyntaxErrorNamesFileLineColumn(t *testing.T) {
	tests := []struct {
		name string
		file string
		toml string
		want string // the error's prefix
	}{
		{"bare_word_value", "defaults.toml", "[global]\na = keyboard\n", "defaults.toml:2:5: "},
		{"unclosed_table_header", hostFile, "hostname = \"pve1\"\n[disk\n", hostFile + ":2:6: "},
		{"unterminated_string_on_line_three", hostFile, "[global]\nkeyboard = \"de\"\ncountry = \"de\n", hostFile + ":3:14: "},
		{"key_defined_twice", "defaults.toml", "[global]\nkeyboard = \"de\"\nkeyboard = \"fr\"\n", "defaults.toml:3:1: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLayer(tc.file, []byte(tc.toml))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("parseLayer(%q, %q) = %v; want an error starting %q", tc.file, tc.toml, err, tc.want)
			}
			if strings.Contains(err.Error(), "toml: ") {
				t.Errorf("parseLayer(%q, %q) = %q; want no \"toml: \" prefix from the parser", tc.file, tc.toml, err)
			}
		})
	}
}

// TestParseLayerSaysToQuoteBareValues: a syntax error on a line that
// gives a key a bare word says to quote it, at the value; a secret is
// never shown; other syntax errors keep the parser's own message.
func TestParseLayerSaysToQuoteBareValues(t *testing.T) {
	const quote = ": a value that is not a number, boolean or date must be quoted: write "
	const secret = ` = "..." with the value between the quotes (it is a secret, so it is not shown)`
	tests := []struct {
		name   string
		toml   string
		want   string // the whole error
		hidden string // a secret the error must not hold, not even in part
	}{
		{"gateway_address", "[network]\ndns = \"10.0.0.1\"\n\ngateway = 10.0.0.1\n",
			hostFile + ":4:11: gateway = 10.0.0.1" + quote + `gateway = "10.0.0.1"`, ""},
		{"keyboard_word", "[global]\nkeyboard = de\n",
			hostFile + ":2:12: keyboard = de" + quote + `keyboard = "de"`, ""},
		{"hostname_with_hyphen", "hostname = pve-01\n",
			hostFile + ":1:12: hostname = pve-01" + quote + `hostname = "pve-01"`, ""},
		{"address_with_prefix", "[network]\naddress = 10.0.0.10/24\n",
			hostFile + ":2:11: address = 10.0.0.10/24" + quote + `address = "10.0.0.10/24"`, ""},
		{"timezone_with_slash", "[global]\ntimezone = Europe/Vienna\n",
			hostFile + ":2:12: timezone = Europe/Vienna" + quote + `timezone = "Europe/Vienna"`, ""},
		{"mail_address", "[global]\nmailto = ops@example.com\n",
			hostFile + ":2:10: mailto = ops@example.com" + quote + `mailto = "ops@example.com"`, ""},
		{"dotted_key", "[disk]\nzfs.raid = raidz-1\n",
			hostFile + ":2:12: zfs.raid = raidz-1" + quote + `zfs.raid = "raidz-1"`, ""},
		{"word_before_a_comment", "[global]\nkeyboard = de   # German\n",
			hostFile + ":2:12: keyboard = de" + quote + `keyboard = "de"`, ""},
		{"indented_with_crlf", "[global]\r\n  keyboard   =   de\r\n",
			hostFile + ":2:18: keyboard = de" + quote + `keyboard = "de"`, ""},
		{"plain_password_is_not_shown", "[global]\nroot_password = hunter22\n",
			hostFile + ":2:17: root_password" + quote + "root_password" + secret, "hunter22"},
		{"password_with_spaces_is_not_shown", "[global]\nroot-password = correct horse battery\n",
			hostFile + ":2:17: root-password" + quote + "root-password" + secret, "correct"},
		{"hash_is_not_shown", "[global]\nroot_password_hash = $6$salt$hash\n",
			hostFile + ":2:22: root_password_hash" + quote + "root_password_hash" + secret, "$6$"},
		{"webhook_token_is_not_shown", "[post-installation-webhook]\nauth-token = t0ken.x\n",
			hostFile + ":2:14: auth-token" + quote + "auth-token" + secret, "t0ken"},
		{"words_with_spaces_keep_the_parsers_message", "[global]\nkeyboard = de ch\n",
			hostFile + ":2:12: unexpected character U+0064 'd' at start of value", ""},
		{"array_of_words_keeps_the_parsers_message", "[disk]\ntarget = [sda, sdb]\n",
			hostFile + ":2:11: unexpected character U+0073 's' at start of value", ""},
		{"key_defined_twice_keeps_the_parsers_message", "[global]\nkeyboard = \"de\"\nkeyboard = \"fr\"\n",
			hostFile + ":3:1: key keyboard is already defined", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLayer(hostFile, []byte(tc.toml))
			if err == nil || err.Error() != tc.want {
				t.Errorf("parseLayer(%q) = %v\nwant %s", tc.toml, err, tc.want)
			}
			for _, part := range []string{tc.hidden, "'" + tc.hidden[:min(1, len(tc.hidden))] + "'"} {
				if tc.hidden != "" && err != nil && strings.Contains(err.Error(), part) {
					t.Errorf("parseLayer(%q) = %q, which shows %q of the secret", tc.toml, err, part)
				}
			}
		})
	}
}

// writeTree writes files (path relative to the root, "/"-separated) into a
// fresh temporary dir; content asDir makes a directory in the file's place.
// TestMain runs the tests with no settle time: they write a config dir and
// ask it at once, which a server would take for a deploy under way. The
// tests of that rule, and those of deploys, set it back.
func TestMain(m *testing.M) {
	settleTime = 0
	os.Exit(m.Run())
}

// withSettleTime sets the settle time for one test.
func withSettleTime(t *testing.T, d time.Duration) {
	old := settleTime
	settleTime = d
	t.Cleanup(func() { settleTime = old })
}

// openDir opens a config dir for the test, closed when it ends.
func openDir(t testing.TB, dir string) *configDir {
	t.Helper()
	c, err := openConfigDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if content == asDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// asDir, as a file's content for writeTree, makes a directory in its place:
// a file that exists but cannot be read.
const asDir = "\x00dir"

// asFIFO, as a file's content in a test table, makes it a FIFO.
const asFIFO = "\x00fifo"

func TestReadLayer(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		read    string
		wantOK  bool
		wantErr string // prefix of the error; "" for none
	}{
		{"missing_file_is_not_ok_and_no_error", map[string]string{}, hostFile, false, ""},
		{"missing_hosts_dir_is_not_ok_and_no_error", map[string]string{"defaults.toml": ""}, hostFile, false, ""},
		{"good_file_is_ok", map[string]string{hostFile: "hostname = \"pve1\"\n"}, hostFile, true, ""},
		{"empty_file_is_ok", map[string]string{"defaults.toml": ""}, "defaults.toml", true, ""},
		{"directory_in_place_of_file_is_error", map[string]string{hostFile: asDir}, hostFile, false, hostFile + ": cannot read: "},
		{"broken_file_is_error", map[string]string{"defaults.toml": "[global\n"}, "defaults.toml", false, "defaults.toml:1:"},
		{"translation_error_is_error", map[string]string{hostFile: "[disk]\ntarget = \"/dev/disk/by-id/x\"\n"}, hostFile, false, hostFile + ": disk.target: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			l, ok, err := readLayer(openDir(t, dir), tc.read)
			if ok != tc.wantOK {
				t.Errorf("readLayer(%q) ok = %v; want %v", tc.read, ok, tc.wantOK)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("readLayer(%q) = %v; want no error", tc.read, err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Errorf("readLayer(%q) = %v; want an error starting %q", tc.read, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), dir) {
				t.Errorf("readLayer(%q) = %q; want the relative name, not the config dir %s", tc.read, err, dir)
			}
			if ok && l.name != tc.read {
				t.Errorf("readLayer(%q).name = %q; want %q", tc.read, l.name, tc.read)
			}
		})
	}
}

const (
	macA  = "aabbccddee01"
	macB  = "aabbccddee02"
	macC  = "aabbccddee03"
	hostA = "hosts/aa-bb-cc-dd-ee-01.toml"
	hostB = "hosts/aa-bb-cc-dd-ee-02.toml"
	hostC = "hosts/aa-bb-cc-dd-ee-03.toml"
)

func TestLoadHost(t *testing.T) {
	const good = "hostname = \"pve1\"\n"
	tests := []struct {
		name       string
		files      map[string]string
		macs       []string
		wantLayers []string // layer names, lowest first
		wantMAC    string
		wantErr    string // prefix of the error; "" for none
	}{
		{"only_nic_with_a_file",
			map[string]string{"defaults.toml": "", hostA: good},
			[]string{macA}, []string{"defaults.toml", hostA}, macA, ""},
		{"first_nic_with_a_file_wins",
			map[string]string{hostB: good, hostC: good},
			[]string{macA, macB, macC}, []string{hostB}, macB, ""},
		{"request_order_decides_not_file_order",
			map[string]string{hostA: good, hostB: good},
			[]string{macB, macA}, []string{hostB}, macB, ""},
		{"broken_file_of_earlier_nic_is_error_not_fallthrough",
			map[string]string{hostA: "[disk\n", hostB: good},
			[]string{macA, macB}, nil, "", hostA + ":1:"},
		{"invalid_file_of_earlier_nic_is_error_not_fallthrough",
			map[string]string{hostA: "[disk]\ntarget = 7\n", hostB: good},
			[]string{macA, macB}, nil, "", hostA + ": disk.target"},
		{"unreadable_file_of_earlier_nic_is_error_not_fallthrough",
			map[string]string{hostA: asDir, hostB: good},
			[]string{macA, macB}, nil, "", hostA + ": cannot read"},
		{"broken_file_of_later_nic_is_not_read",
			map[string]string{hostA: good, hostB: "[disk\n"},
			[]string{macA, macB}, []string{hostA}, macA, ""},
		{"default_toml_when_no_nic_matches",
			map[string]string{"defaults.toml": "", "hosts/default.toml": good},
			[]string{macA, macB}, []string{"defaults.toml", "hosts/default.toml"}, "", ""},
		{"default_toml_not_used_when_a_nic_matches",
			map[string]string{"hosts/default.toml": good, hostB: good},
			[]string{macA, macB}, []string{hostB}, macB, ""},
		{"broken_default_toml_is_not_read_when_a_nic_matches",
			map[string]string{"hosts/default.toml": "[x\n", hostA: good},
			[]string{macA}, []string{hostA}, macA, ""},
		{"broken_default_toml_is_error_when_used",
			map[string]string{"hosts/default.toml": "[x\n"},
			[]string{macA}, nil, "", "hosts/default.toml:1:"},
		{"defaults_toml_is_optional",
			map[string]string{hostA: good},
			[]string{macA}, []string{hostA}, macA, ""},
		{"broken_defaults_toml_is_error",
			map[string]string{"defaults.toml": "[global\n", hostA: good},
			[]string{macA}, nil, "", "defaults.toml:1:"},
		{"no_file_and_no_default_toml",
			map[string]string{"defaults.toml": ""},
			[]string{macA, macB}, nil, "", "no host file for this machine"},
		{"files_not_ending_in_toml_are_ignored",
			map[string]string{
				hostA + ".bak": good, "hosts/aa-bb-cc-dd-ee-01": good, hostA + "~": good,
				"hosts/default.toml.disabled": good, "hosts/default": good,
			},
			[]string{macA}, nil, "", "no host file for this machine"},
		{"other_spellings_of_the_file_name_are_ignored",
			map[string]string{"hosts/aabbccddee01.toml": good, "hosts/aa:bb:cc:dd:ee:01.toml": good, "hosts/AA-BB-CC-DD-EE-01.toml": good},
			[]string{macA}, nil, "", "no host file for this machine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			layers, m, err := loadHost(openDir(t, dir), request{macs: tc.macs})
			mac := m.key
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("loadHost(%q) = %v; want an error starting %q", tc.macs, err, tc.wantErr)
				}
				if layers != nil || mac != "" {
					t.Errorf("loadHost(%q) = %d layers, mac %q with an error; want none", tc.macs, len(layers), mac)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadHost(%q) = %v", tc.macs, err)
			}
			var names []string
			for _, l := range layers {
				names = append(names, l.name)
			}
			if !reflect.DeepEqual(names, tc.wantLayers) {
				t.Errorf("loadHost(%q) layers = %q; want %q", tc.macs, names, tc.wantLayers)
			}
			if mac != tc.wantMAC {
				t.Errorf("loadHost(%q) mac = %q; want %q", tc.macs, mac, tc.wantMAC)
			}
		})
	}
}

func TestLoadHostWithoutAFileIsNoHostError(t *testing.T) {
	dir := writeTree(t, map[string]string{"defaults.toml": "", "hosts/README": "not a host"})
	macs := []string{macB, macA, macC}
	_, _, err := loadHost(openDir(t, dir), request{macs: macs})
	var nf *noHostError
	if !errors.As(err, &nf) {
		t.Fatalf("loadHost(%q) = %v (%T); want a *noHostError", macs, err, err)
	}
	if !reflect.DeepEqual(nf.macs, macs) {
		t.Errorf("noHostError.macs = %q; want %q", nf.macs, macs)
	}
	msg := err.Error()
	for _, f := range []string{hostB, hostA, hostC} {
		if !strings.Contains(msg, f) {
			t.Errorf("loadHost(%q) = %q; want it to name %s", macs, msg, f)
		}
	}
	if want := "create " + hostB; !strings.Contains(msg, want) {
		t.Errorf("loadHost(%q) = %q; want it to suggest %q (the first MAC's file)", macs, msg, want)
	}
	if strings.Contains(msg, dir) {
		t.Errorf("loadHost(%q) = %q; want relative names, not the config dir %s", macs, msg, dir)
	}
}

func TestNoHostErrorWithoutMACs(t *testing.T) {
	dir := writeTree(t, map[string]string{})
	_, _, err := loadHost(openDir(t, dir), request{})
	if err == nil {
		t.Fatal("loadHost(nil) = nil error; want a no-host error")
	}
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("loadHost(nil) error's Error() panicked: %v", p)
		}
	}()
	if msg := err.Error(); !strings.Contains(msg, "no host file") {
		t.Errorf("loadHost(nil) = %q; want it to say there is no host file", msg)
	}
}

// TestTakeProfiles reads a layer's profiles key; a name that is not plain
// is refused where it is stacked, with the chain that reached it.
func TestTakeProfiles(t *testing.T) {
	tests := []struct {
		name    string
		value   any // the profiles key; nil for none
		want    []string
		wantErr string
	}{
		{"none", nil, nil, ""},
		{"names_in_order", []any{"zfs-mirror", "rack_a", "site.eu", "R2"}, []string{"zfs-mirror", "rack_a", "site.eu", "R2"}, ""},
		{"empty_list", []any{}, []string{}, ""},
		{"a_string_is_not_a_list", "zfs-mirror", nil, `profiles: want a list of profile names such as ["zfs-mirror", "rack-a"], got the string "zfs-mirror"`},
		{"a_number_is_not_a_name", []any{int64(1)}, nil, "profiles: want profile names, got the integer 1"},
		{"a_path_is_not_a_name", []any{"../hosts/x"}, nil, `profiles: "../hosts/x" is not a profile name: a name is letters, digits, '-', '_' and '.', and names the file profiles/<name>.toml (` + hostFile + `)`},
		{"a_subdirectory_is_not_a_name", []any{"racks/a"}, nil, `profiles: "racks/a" is not a profile name`},
		{"hidden_file_is_not_a_name", []any{".a"}, nil, `profiles: ".a" is not a profile name`},
		{"empty_name", []any{""}, nil, `profiles: "" is not a profile name`},
		{"spaces", []any{"rack a"}, nil, `profiles: "rack a" is not a profile name`},
		{"with_toml_suffix_says_drop_it", []any{"zfs.toml"}, nil, `profiles: "zfs.toml" is not a profile name: name the profile without .toml: "zfs"`},
		{"listed_twice", []any{"a", "b", "a"}, nil, `profiles: "a" is listed twice`},
		{"too_long", []any{strings.Repeat("a", 65)}, nil, "is not a profile name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := tree{"global": tree{"keyboard": "de"}}
			if tc.value != nil {
				tr["profiles"] = tc.value
			}
			got, err := takeProfiles(hostFile, tr)
			if err == nil && tc.wantErr != "" {
				s := stacker{cfg: openDir(t, t.TempDir())}
				err = s.add(layer{name: hostFile, profiles: got}, []string{hostFile})
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), hostFile+": ") {
					t.Fatalf("takeProfiles(%v) = %q, %v; want an error naming %s with %q", tc.value, got, err, hostFile, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("takeProfiles(%v) = %q, %v; want %q", tc.value, got, err, tc.want)
			}
			if _, ok := tr["profiles"]; ok {
				t.Errorf("takeProfiles(%v) left the profiles key in the tree, where validate would refuse it", tc.value)
			}
		})
	}
}

// profilesOf writes a layer that lists profiles, and sets global.mailto to
// its own name, so that the merged result shows which layer came last.
func profilesOf(name string, profiles ...string) string {
	var b strings.Builder
	if len(profiles) > 0 {
		fmt.Fprintf(&b, "profiles = [%q", profiles[0])
		for _, p := range profiles[1:] {
			fmt.Fprintf(&b, ", %q", p)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "[global]\nmailto = %q\n", name)
	return b.String()
}

func TestLoadHostStacksProfiles(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		wantLayers []string // lowest first
		wantErr    string
	}{
		{"host_profiles_below_the_host_above_defaults",
			map[string]string{"defaults.toml": profilesOf("d"), hostA: profilesOf("h", "a", "b"),
				"profiles/a.toml": profilesOf("a"), "profiles/b.toml": profilesOf("b")},
			[]string{"defaults.toml", "profiles/a.toml", "profiles/b.toml", hostA}, ""},
		{"defaults_profiles_below_the_defaults",
			map[string]string{"defaults.toml": profilesOf("d", "site"), hostA: profilesOf("h", "role"),
				"profiles/site.toml": profilesOf("site"), "profiles/role.toml": profilesOf("role")},
			[]string{"profiles/site.toml", "defaults.toml", "profiles/role.toml", hostA}, ""},
		{"nested_each_below_the_one_that_lists_it",
			map[string]string{hostA: profilesOf("h", "a", "d"),
				"profiles/a.toml": profilesOf("a", "b"), "profiles/b.toml": profilesOf("b", "c"),
				"profiles/c.toml": profilesOf("c"), "profiles/d.toml": profilesOf("d")},
			[]string{"profiles/c.toml", "profiles/b.toml", "profiles/a.toml", "profiles/d.toml", hostA}, ""},
		{"diamond_merged_once_where_first_reached",
			map[string]string{"defaults.toml": profilesOf("d", "base"), hostA: profilesOf("h", "x", "y"),
				"profiles/x.toml": profilesOf("x", "base"), "profiles/y.toml": profilesOf("y", "base"),
				"profiles/base.toml": profilesOf("base")},
			[]string{"profiles/base.toml", "defaults.toml", "profiles/x.toml", "profiles/y.toml", hostA}, ""},
		{"without_defaults",
			map[string]string{hostA: profilesOf("h", "a"), "profiles/a.toml": profilesOf("a")},
			[]string{"profiles/a.toml", hostA}, ""},
		{"missing_profile_names_the_asker_and_the_chain",
			map[string]string{hostA: profilesOf("h", "a"), "profiles/a.toml": profilesOf("a", "gone")},
			nil, `profiles/a.toml: profiles: "gone": profiles/gone.toml does not exist (` + hostA + ` -> profiles/a.toml -> profiles/gone.toml)`},
		{"cycle_names_the_chain",
			map[string]string{hostA: profilesOf("h", "a"), "profiles/a.toml": profilesOf("a", "b"), "profiles/b.toml": profilesOf("b", "a")},
			nil, `profiles/b.toml: profiles: "a" makes a cycle: ` + hostA + ` -> profiles/a.toml -> profiles/b.toml -> profiles/a.toml`},
		{"profile_listing_itself_is_a_cycle",
			map[string]string{hostA: profilesOf("h", "a"), "profiles/a.toml": profilesOf("a", "a")},
			nil, `profiles/a.toml: profiles: "a" makes a cycle: ` + hostA + ` -> profiles/a.toml -> profiles/a.toml`},
		{"broken_profile_names_its_line",
			map[string]string{hostA: profilesOf("h", "a"), "profiles/a.toml": "[global\n"},
			nil, "profiles/a.toml:1:"},
		{"a_profile_dir_is_not_a_profile",
			map[string]string{hostA: profilesOf("h", "a"), "profiles/a.toml": asDir},
			nil, "profiles/a.toml: cannot read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			layers, _, err := loadHost(openDir(t, dir), request{macs: []string{macA}})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr && !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("loadHost = %v; want error %q", err, tc.wantErr)
				}
				var he *hostError
				if !errors.As(err, &he) || he.match.file != hostA {
					t.Errorf("loadHost = %v; want it to remember the host file %s for the log", err, hostA)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadHost = %v", err)
			}
			var names []string
			for _, l := range layers {
				names = append(names, l.name)
			}
			if !reflect.DeepEqual(names, tc.wantLayers) {
				t.Fatalf("loadHost layers = %q; want %q", names, tc.wantLayers)
			}
			if got := lookup(mergeLayers(layers), "global", "mailto"); got != "h" {
				t.Errorf("merged global.mailto = %v; want the host file's", got)
			}
		})
	}
}

func TestLoadHostMatchOrder(t *testing.T) {
	const (
		good   = "hostname = \"pve1\"\n"
		serial = "hosts/serial-S42.toml"
		uuid   = "hosts/uuid-4c4c4544-0042-3510-8057-b4c04f4e3532.toml"
		dflt   = "hosts/default.toml"
		upper  = "4C4C4544-0042-3510-8057-B4C04F4E3532"
	)
	tests := []struct {
		name     string
		files    []string // host files, each good unless listed in broken
		broken   string
		serial   string
		uuid     string
		wantFile string
		wantBy   string
		wantErr  string
	}{
		{"mac_before_serial", []string{hostB, serial, uuid, dflt}, "", "S42", upper, hostB, "mac", ""},
		{"serial_before_uuid", []string{serial, uuid, dflt}, "", "S42", upper, serial, "serial", ""},
		{"uuid_before_default", []string{uuid, dflt}, "", "S42", upper, uuid, "uuid", ""},
		{"uuid_in_lowercase_matches", []string{uuid}, "", "", "4c4c4544-0042-3510-8057-b4c04f4e3532", uuid, "uuid", ""},
		{"default_last", []string{dflt}, "", "S42", upper, dflt, "default", ""},
		{"serial_matched_as_given", []string{serial}, "", "s42", "", "", "", "no host file for this machine: tried hosts/aa-bb-cc-dd-ee-01.toml, hosts/aa-bb-cc-dd-ee-02.toml, hosts/serial-s42.toml;"},
		{"serial_with_spaces_is_skipped", []string{"hosts/serial-S 42.toml", dflt}, "", "S 42", "", dflt, "default", ""},
		{"placeholder_serial_is_skipped", []string{"hosts/serial-Default.toml", dflt}, "", "Default", "", dflt, "default", ""},
		{"zero_uuid_is_skipped", []string{"hosts/uuid-00000000-0000-0000-0000-000000000000.toml", dflt}, "", "", "00000000-0000-0000-0000-000000000000", dflt, "default", ""},
		{"broken_serial_file_stops_the_search", []string{serial, uuid, dflt}, serial, "S42", upper, "", "", serial + ":1:"},
		{"broken_uuid_file_stops_the_search", []string{uuid, dflt}, uuid, "S42", upper, "", "", uuid + ":1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for _, f := range tc.files {
				files[f] = good
			}
			if tc.broken != "" {
				files[tc.broken] = "[x\n"
			}
			dir := writeTree(t, files)
			req := request{macs: []string{macA, macB}, serial: tc.serial, uuid: tc.uuid}
			layers, m, err := loadHost(openDir(t, dir), req)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("loadHost(%+v) = %v; want an error starting %q", req, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadHost(%+v) = %v", req, err)
			}
			if got := layers[len(layers)-1].name; got != tc.wantFile || m.file != tc.wantFile || m.by != tc.wantBy {
				t.Errorf("loadHost(%+v) = %s, matched %+v; want %s by %s", req, got, m, tc.wantFile, tc.wantBy)
			}
		})
	}
}

// TestUnreadableFiles: a host file (or defaults.toml, or a profile) that
// exists but cannot be read is a 500 naming it, at once, and never a fall
// through to the machine's serial file or hosts/default.toml; a symlink to
// a regular file in the config dir is read as that file.
func TestUnreadableFiles(t *testing.T) {
	const serialHost = "hostname = \"by-serial\"\n[disk]\ntarget = \"sda\"\n"
	tests := []struct {
		name     string
		file     string                  // the file made unreadable
		make     func(path string) error // makes it so
		wantCode int
		wantBody string
	}{
		{"dangling_symlink", hostFile, func(p string) error { return os.Symlink("gone.toml", p) },
			500, hostFile + ": cannot read: a symlink to a file that does not exist"},
		{"fifo", hostFile, func(p string) error { return syscall.Mkfifo(p, 0o644) },
			500, hostFile + ": cannot read: not a regular file but a FIFO"},
		{"directory", hostFile, func(p string) error { return os.Mkdir(p, 0o755) },
			500, hostFile + ": cannot read: not a regular file but a directory"},
		{"symlink_loop", hostFile, func(p string) error { return os.Symlink(filepath.Base(p), p) },
			500, hostFile + ": cannot read: too many levels of symbolic links"},
		{"defaults_fifo", "defaults.toml", func(p string) error { return syscall.Mkfifo(p, 0o644) },
			500, "defaults.toml: cannot read: not a regular file but a FIFO"},
		{"profile_fifo", "profiles/base.toml", func(p string) error { return syscall.Mkfifo(p, 0o644) },
			500, "profiles/base.toml: cannot read: not a regular file but a FIFO"},
		{"symlink_to_a_file_in_the_config_dir_works", hostFile, func(p string) error {
			if err := os.WriteFile(filepath.Join(filepath.Dir(p), "..", "shared-host.toml"), []byte(goodHost), 0o644); err != nil {
				return err
			}
			return os.Symlink("../shared-host.toml", p)
		}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"defaults.toml":         "profiles = [\"base\"]\n" + goodDefaults,
				"profiles/base.toml":    "[global]\nreboot-on-error = true\n",
				hostFile:                goodHost,
				"hosts/serial-S42.toml": serialHost,
				"hosts/default.toml":    serialHost,
			}
			s, _ := testServer(t, files)
			path := filepath.Join(s.dir, filepath.FromSlash(tc.file))
			os.Remove(path)
			if err := tc.make(path); err != nil {
				t.Fatal(err)
			}
			body := `{"product":{"product":"pve"},"iso":{"release":"9.2"},"dmi":{"system":{"serial":"S42"}},"network_interfaces":[{"link":"eno1","mac":"aa:bb:cc:dd:ee:ff"}]}`
			done := make(chan *httptest.ResponseRecorder, 1)
			go func() { done <- send(s, "POST", "/answer", strings.NewReader(body)) }()
			var rec *httptest.ResponseRecorder
			select {
			case rec = <-done:
			case <-time.After(10 * time.Second): // a hang, not a slow answer
				t.Fatal("POST /answer did not return: reading the file blocked")
			}
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("POST /answer = %d %q; want %d containing %q", rec.Code, rec.Body, tc.wantCode, tc.wantBody)
			}
			if strings.Contains(rec.Body.String(), "by-serial") || rec.Header().Get("X-PXE-Pilot-Host") == "hosts/serial-S42.toml" {
				t.Errorf("POST /answer fell through to the serial's host file: %q", rec.Body)
			}
			if strings.Contains(rec.Body.String(), s.dir) {
				t.Errorf("POST /answer = %q; want names relative to the config dir", rec.Body)
			}
		})
	}
}

// TestNoSuchHostInAReplacedDir: "no host file" is said of a config dir
// that is still the one at the config path, changed a moment ago or not;
// of one replaced or removed while the request read it, it is a 503.
func TestNoSuchHostInAReplacedDir(t *testing.T) {
	withSettleTime(t, time.Hour)
	req := request{macs: []string{"aabbccddeeff"}}
	dir := writeTree(t, map[string]string{"defaults.toml": goodDefaults})
	var nf *noHostError
	if _, _, err := findHost(openDir(t, dir), req); !errors.As(err, &nf) {
		t.Errorf("findHost in a dir just made = %v; want no such host", err)
	}
	for _, tc := range []struct {
		name   string
		change func() error
		want   string
	}{
		{"replaced", func() error {
			if err := os.Rename(dir, dir+".old"); err != nil {
				return err
			}
			return os.Mkdir(dir, 0o755)
		}, "the config dir was replaced while this request read it"},
		{"removed", func() error { return os.RemoveAll(dir) }, "the config dir was removed while this request read it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(dir + ".old")
			os.MkdirAll(dir, 0o755)
			c := openDir(t, dir)
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			_, _, err := findHost(c, req)
			var ce *changingError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("findHost in a dir %s meanwhile = %v; want a changingError saying %q", tc.name, err, tc.want)
			}
		})
	}
}

// TestUnsettledConfigDir: in a config dir that changed a moment ago, the
// fall-through to hosts/default.toml, a missing defaults.toml or profile,
// and an empty file are refused with a 503 and Retry-After; once settled,
// each is taken as the operator's own choice.
func TestUnsettledConfigDir(t *testing.T) {
	const body = `{"product":{"product":"pve"},"iso":{"release":"9.2"},"network_interfaces":[{"link":"eno1","mac":"aa:bb:cc:dd:ee:ff"}]}`
	tests := []struct {
		name         string
		files        map[string]string
		wantSettled  int
		wantChanging string // in the 503's body
	}{
		{"falls_through_to_default_toml",
			map[string]string{"defaults.toml": goodDefaults, "hosts/default.toml": goodHost},
			200, "no host file names this machine"},
		{"no_defaults_toml",
			map[string]string{hostFile: "hostname = \"pve1\"\n" + strings.NewReplacer("[disk]\n", "[disk]\ntarget = \"sda\"\n", "[network]\ndns = \"1.1.1.1\"\n", "").Replace(goodDefaults)},
			200, "defaults.toml does not exist"},
		{"empty_host_file",
			map[string]string{"defaults.toml": "hostname = \"pve-{{.MACHex}}\"\n" + strings.Replace(goodDefaults, "[disk]\n", "[disk]\ntarget = \"sda\"\n", 1), hostFile: ""},
			200, hostFile + " is empty"},
		{"no_such_profile",
			map[string]string{"defaults.toml": goodDefaults, hostFile: "profiles = [\"zfs\"]\n" + goodHost},
			500, "profiles/zfs.toml does not exist"},

		{"broken_host_file",
			map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost},
			500, hostFile + ":2:6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testServer(t, tc.files)
			withSettleTime(t, time.Hour) // every dir just made is changing
			rec := send(s, "POST", "/answer", strings.NewReader(body))
			if rec.Code != 503 || !strings.Contains(rec.Body.String(), "config dir is being changed") || !strings.Contains(rec.Body.String(), tc.wantChanging) {
				t.Errorf("changing: POST /answer = %d %q; want 503 saying %q", rec.Code, rec.Body, tc.wantChanging)
			}
			if got := rec.Header().Get("Retry-After"); got == "" {
				t.Error("changing: the 503 has no Retry-After")
			}
			settleTime = 0
			if rec := send(s, "POST", "/answer", strings.NewReader(body)); rec.Code != tc.wantSettled {
				t.Errorf("settled: POST /answer = %d %q; want %d", rec.Code, rec.Body, tc.wantSettled)
			}
		})
	}
}

// TestNoHostNamesNearMisses: a 404 names a file meant for the machine that
// pxe-pilot never reads, with the name that would be.
func TestNoHostNamesNearMisses(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"hosts/AA-BB-CC-DD-EE-FF.toml", "hosts/AA-BB-CC-DD-EE-FF.toml exists, but names are lowercase: name it hosts/aa-bb-cc-dd-ee-ff.toml"},
		{"hosts/aa:bb:cc:dd:ee:ff.toml", "hosts/aa:bb:cc:dd:ee:ff.toml exists, but is never read: name it hosts/aa-bb-cc-dd-ee-ff.toml"},
		{"hosts/aabbccddeeff.TOML", "hosts/aabbccddeeff.TOML exists, but is never read: name it hosts/aa-bb-cc-dd-ee-ff.toml"},
		{"hosts/aa-bb-cc-dd-ee-ff", "hosts/aa-bb-cc-dd-ee-ff exists, but is never read: name it hosts/aa-bb-cc-dd-ee-ff.toml"},
		{"hosts/aa-bb-cc-dd-ee-ff.tml", "hosts/aa-bb-cc-dd-ee-ff.tml exists, but is never read: name it hosts/aa-bb-cc-dd-ee-ff.toml"},
	} {
		s, _ := testServer(t, map[string]string{"defaults.toml": goodDefaults, tc.file: goodHost, "hosts/aa-bb-cc-dd-ee-01.TOML": goodHost})
		rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")))
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), tc.want) || strings.Contains(rec.Body.String(), "ee-01") {
			t.Errorf("POST /answer with %s = %d %q; want 404 saying %q, and nothing of another machine's file", tc.file, rec.Code, rec.Body, tc.want)
		}
	}
}
