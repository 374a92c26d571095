package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// shared is the Proxmox installer's own accept/reject fixtures, present in
// the project's workspace but not in a user's clone.
const shared = "../shared/proxmox/answers"

// conformanceRequest is a 9.2 installer whose NIC is aa:bb:cc:dd:ee:ff.
const conformanceRequest = `{"product": {"product": "pve", "enable_btrfs": true}, "iso": {"release": "9.2"},
 "network_interfaces": [{"link": "eno1", "mac": "AA:BB:CC:DD:EE:FF"}]}`

// serveFixture answers conformanceRequest with a fixture as the host file.
func serveFixture(t *testing.T, fixture string) (int, string) {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "hosts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts", "aa-bb-cc-dd-ee-ff.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, body := post(t, dir, []byte(conformanceRequest))
	return code, string(body)
}

func sharedFixtures(t *testing.T, kind string) []string {
	t.Helper()
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("%s is absent (a user's clone has no installer fixtures)", shared)
	}
	files, err := filepath.Glob(filepath.Join(shared, kind, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s/%s (%v)", shared, kind, err)
	}
	return files
}

// Every answer the installer accepts (and the ones it rejects only at
// install time, for want of DHCP data) is served as written.
func TestInstallerAcceptsConformance(t *testing.T) {
	files := append(sharedFixtures(t, "valid"), sharedFixtures(t, "runtime-dependent")...)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".toml"), func(t *testing.T) {
			if code, body := serveFixture(t, f); code != http.StatusOK {
				t.Errorf("serving %s = %d %s; want 200", f, code, body)
			}
		})
	}
}

// Every answer the installer rejects is refused, for the installer's reason.
func TestInstallerRejectsConformance(t *testing.T) {
	for _, f := range sharedFixtures(t, "invalid") {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".toml"), func(t *testing.T) {
			raw, err := os.ReadFile(strings.TrimSuffix(f, ".toml") + ".expected-error.json")
			if err != nil {
				t.Fatal(err)
			}
			var expected map[string]string
			if err := json.Unmarshal(raw, &expected); err != nil {
				t.Fatal(err)
			}
			reason := expected["error"] + expected["parse-error"]
			code, body := serveFixture(t, f)
			if code != http.StatusInternalServerError || !sameReason(body, reason) {
				t.Errorf("serving %s = %d %q; want 500 for the installer's reason %q", f, code, body, reason)
			}
		})
	}
}

// sameReason reports whether pxe-pilot's message contains the installer's,
// compared without the punctuation the two set differently.
func sameReason(ours, installer string) bool {
	norm := strings.NewReplacer("`", "", ":", "", "error parsing answer.toml", "",
		"extendend", "extended", // the installer's own typo
	)
	want := strings.TrimSpace(strings.ToLower(norm.Replace(installer)))
	return want != "" && strings.Contains(strings.ToLower(norm.Replace(ours)), want)
}

// BenchmarkCompose is the pure part of one answer: merge, translate,
// validate and render layers already parsed.
func BenchmarkCompose(b *testing.B) {
	req, err := parseRequest(mustRead(b, "examples/requests/pve-9.2.json"))
	if err != nil {
		b.Fatal(err)
	}
	layers, m, err := loadHost("examples/config", req)
	if err != nil {
		b.Fatal(err)
	}
	f := req.facts(m, r92)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compose(layers, f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswer is all of one answer's work but the HTTP connection:
// parse the request, read and parse the layer files, compose and render.
func BenchmarkAnswer(b *testing.B) {
	body := mustRead(b, "examples/requests/pve-9.2.json")
	b.ReportAllocs()
	for b.Loop() {
		req, err := parseRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		rel, _, _ := req.release()
		layers, m, err := loadHost("examples/config", req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := compose(layers, req.facts(m, rel)); err != nil {
			b.Fatal(err)
		}
	}
}

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// FuzzCompose feeds arbitrary defaults and host files through the whole
// pure pipeline: translate, merge, derive, validate, render. It must never
// panic, and whatever it renders must parse back and render the same.
func FuzzCompose(f *testing.F) {
	defaults := mustRead(f, "examples/config/defaults.toml")
	for _, host := range []string{"aa-bb-cc-dd-ee-ff.toml", "aa-bb-cc-dd-ee-01.toml"} {
		f.Add(defaults, mustRead(f, "examples/config/hosts/"+host), uint8(0))
	}
	cases, _ := filepath.Glob("testdata/*/config/hosts/*.toml")
	for i, c := range cases {
		d, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(c)), "defaults.toml"))
		f.Add(d, mustRead(f, c), uint8(i))
	}
	f.Fuzz(func(t *testing.T, defaults, host []byte, pick uint8) {
		rel := ruleChanges[int(pick)%len(ruleChanges)]
		fs := factsFor // so that placeholders are filled
		fs.release, fs.btrfs = rel, pick&0x80 == 0
		if pick&0x40 != 0 {
			fs.mac = "" // as if matched by serial
		}
		var layers []layer
		for _, file := range []struct {
			name string
			data []byte
		}{{"defaults.toml", defaults}, {"hosts/aa-bb-cc-dd-ee-ff.toml", host}} {
			l, err := parseLayer(file.name, file.data)
			if err != nil {
				if !strings.HasPrefix(err.Error(), file.name) {
					t.Fatalf("error %q does not name %s", err, file.name)
				}
				return
			}
			layers = append(layers, l)
		}
		out, err := compose(layers, fs)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "hosts/aa-bb-cc-dd-ee-ff.toml") {
				t.Fatalf("error is not one line naming the host file: %q", msg)
			}
			return
		}
		again, err := parseLayer("hosts/aa-bb-cc-dd-ee-ff.toml", asConfig(t, out))
		if err != nil {
			t.Fatalf("rendered answer does not parse back: %v\n%s", err, out)
		}
		out2, err := compose([]layer{again}, fs)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("rendering the answer again = %v\n%s\nwant:\n%s", err, out2, out)
		}
	})
}

// validAnswer is a complete native answer that every release from 8.4 takes.
const validAnswer = `[global]
keyboard = "de"
country = "at"
fqdn = "pve.example.com"
mailto = "ops@example.com"
timezone = "Europe/Vienna"
root-password = "12345678"

[network]
source = "from-dhcp"

[disk-setup]
filesystem = "zfs"
disk-list = ["sda", "sdb"]
zfs.raid = "raid1"
`

// TestValidateRules pins each rule the installer enforces with an answer
// that breaks it: the answer is refused, for that reason, at that key.
// (Each edit is applied to validAnswer with strings.Replace.)
func TestValidateRules(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // the edit; old "" appends new
		release  release
		want     string
	}{
		{"valid_answer_passes", "", "", r92, ""},
		{"unknown_table", "", "\n[disk_setup]\nx = 1\n", r92, `disk_setup: unknown table; did you mean disk-setup?`},
		{"unknown_key_suggestion", `zfs.raid = "raid1"`, `zfs.raid = "raid1"` + "\nzfs.ashfit = 12", r92, `disk-setup.zfs.ashfit: unknown key; did you mean ashift?`},
		{"key_too_new_for_release", `timezone`, "reboot-mode = \"power-off\"\ntimezone", r83, `global.reboot-mode: the 8.3 installer does not know this key (it needs 8.4 or later)`},
		{"keyboard_enum", `keyboard = "de"`, `keyboard = "german"`, r92, `global.keyboard: "german" is not one of de, de-ch`},
		{"country_enum", `country = "at"`, `country = "AT"`, r92, `global.country: "AT" is not a country code the installer knows`},
		{"timezone_suggestion", `Europe/Vienna`, `Europe/Viena`, r92, `did you mean Europe/Vienna?`},
		{"timezone_utc_is_fine", `Europe/Vienna`, `UTC`, r92, ""},
		{"filesystem_enum", `filesystem = "zfs"`, `filesystem = "ZFS"`, r92, `disk-setup.filesystem: "ZFS" is not one of ext4, xfs, zfs, btrfs`},
		{"raid_uppercase_is_fine", `"raid1"`, `"RAID1"`, r92, ""},
		{"raid_mixed_case_refused", `"raid1"`, `"Raid1"`, r92, `disk-setup.zfs.raid: "Raid1" is not one of`},
		{"reboot_mode_enum", `timezone`, "reboot-mode = \"halt\"\ntimezone", r92, `global.reboot-mode: "halt" is not one of reboot, power-off`},
		{"filter_match_enum", `disk-list = ["sda", "sdb"]`, "filter.ID_SERIAL = \"*x*\"\nfilter-match = \"some\"", r92, `disk-setup.filter-match: "some" is not one of any, all`},
		{"zfs_checksum_enum", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.checksum = \"md5\"", r92, `disk-setup.zfs.checksum: "md5" is not one of on, fletcher4, sha256`},
		{"zfs_compress_enum", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.compress = \"brotli\"", r92, `disk-setup.zfs.compress: "brotli" is not one of`},
		{"ashift_range", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.ashift = 17", r92, `disk-setup.zfs.ashift: 17 is not between 9 and 16`},
		{"copies_range", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.copies = 0", r92, `disk-setup.zfs.copies: 0 is not between 1 and 3`},
		{"arc_max_minimum", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 32", r92, `disk-setup.zfs.arc-max: 32 is less than 64`},
		{"arc_max_float_refused", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 2048.0", r92, `disk-setup.zfs.arc-max: want a whole number, got the float 2048`},
		{"zfs_hdsize_minimum", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.hdsize = 1.5", r92, `disk-setup.zfs.hdsize: 1.5 is less than 2`},
		{"size_nan_refused", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.hdsize = nan", r92, `disk-setup.zfs.hdsize: want a size in GiB`},
		{"bool_type", `timezone`, "reboot-on-error = \"yes\"\ntimezone", r92, `global.reboot-on-error: want true or false, got the string "yes"`},
		{"ssh_keys_type", `timezone`, "root-ssh-keys = \"ssh-ed25519 AAAA\"\ntimezone", r92, `global.root-ssh-keys: want an array of strings`},
		{"fqdn_needs_a_dot", `pve.example.com`, `pve`, r92, `global.fqdn: "pve" is not fully qualified`},
		{"fqdn_label_characters", `pve.example.com`, `pve_01.example.com`, r92, `label "pve_01" may hold only letters, digits and inner hyphens`},
		{"fqdn_label_hyphen_edge", `pve.example.com`, `-pve.example.com`, r92, `label "-pve" may hold only`},
		{"fqdn_label_length", `pve.example.com`, strings.Repeat("a", 64) + ".example.com", r92, `must be 1 to 63 characters`},
		{"fqdn_total_length", `pve.example.com`, strings.Repeat("abcdefgh.", 28) + "com", r92, `is longer than 253 characters`},
		{"fqdn_host_all_digits", `pve.example.com`, `1234.example.com`, r92, `the host name must not be all digits`},
		{"fqdn_dhcp_table_before_8_4", `fqdn = "pve.example.com"`, `fqdn = { source = "from-dhcp" }`, r83, `global.fqdn: the 8.3 installer takes fqdn only as a name`},
		{"fqdn_dhcp_table_source", `fqdn = "pve.example.com"`, `fqdn = { source = "from-answer" }`, r92, `global.fqdn.source: the string "from-answer" is not from-dhcp`},
		{"mailto_form", `ops@example.com`, `ops.example.com`, r92, `global.mailto: "ops.example.com" is not an e-mail address`},
		{"mailto_placeholder", `ops@example.com`, `mail@example.invalid`, r92, `the installer's placeholder`},
		{"password_bytes", `"12345678"`, `"1234567"`, r92, `global.root-password: must be at least 8 characters long`},
		{"password_counted_in_bytes", `"12345678"`, `"ääää"`, r92, ""},
		{"hash_form", `root-password = "12345678"`, `root-password-hashed = "secret-password"`, r92, `global.root-password-hashed: not a crypt(3) hash`},
		{"no_password", `root-password = "12345678"`, ``, r92, "One of `global.root-password` or `global.root-password-hashed` must be set"},
		{"required_key_missing", `mailto = "ops@example.com"`, ``, r92, `global.mailto: missing`},
		{"dhcp_allows_no_static_keys", `source = "from-dhcp"`, "source = \"from-dhcp\"\ndns = \"10.0.0.1\"", r92, `network.dns: not allowed with source = "from-dhcp"`},
		{"static_needs_all_four", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/24\"", r92, `network.dns: missing`},
		{"cidr_prefix_range", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/33\"\ndns = \"10.0.0.1\"\ngateway = \"10.0.0.1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, `network.cidr: "10.0.0.10/33": invalid IP address`},
		{"ip_form", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/24\"\ndns = \"10.0.0.256\"\ngateway = \"10.0.0.1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, `network.dns: "10.0.0.256" is not an IP address`},
		{"static_ipv6_is_fine", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"2001:db8::10/64\"\ndns = \"2001:db8::1\"\ngateway = \"2001:db8::1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, ""},
		{"empty_filter", `disk-list = ["sda", "sdb"]`, `filter = {}`, r92, `disk-setup.filter: empty`},
		{"disk_list_duplicate", `["sda", "sdb"]`, `["sda", "sdb", "sda"]`, r92, `List of disks contains duplicate device sda`},
		{"disk_list_and_filter_together", `disk-list = ["sda", "sdb"]`, "disk-list = [\"sda\", \"sdb\"]\nfilter.ID_SERIAL = \"*x*\"", r92, `disk-setup.disk-list and disk-setup.filter cannot be set at the same time`},
		{"filter_match_without_filter", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nfilter-match = \"any\"", r92, `disk-setup.filter-match: set without disk-setup.filter`},
		{"raid10_disk_count", `zfs.raid = "raid1"`, `zfs.raid = "raid10"`, r92, `ZFS RAID10 needs at least 4 disks, got 2`},
		{"raid10_even_count", "disk-list = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"", "disk-list = [\"sda\", \"sdb\", \"sdc\", \"sdd\", \"sde\"]\nzfs.raid = \"raid10\"", r92, `ZFS RAID10 needs an even number of disks, got 5`},
		{"raidz2_disk_count", `zfs.raid = "raid1"`, `zfs.raid = "raidz-2"`, r92, `ZFS RAIDZ-2 needs at least 4 disks, got 2`},
		{"raidz3_disk_count", `zfs.raid = "raid1"`, `zfs.raid = "RAIDZ-3"`, r92, `ZFS RAIDZ-3 needs at least 5 disks, got 2`},
		{"btrfs_raid_enum", `filesystem = "zfs"`, "filesystem = \"btrfs\"\nbtrfs.raid = \"raidz-1\"", r92, `disk-setup.btrfs.raid: "raidz-1" is not one of raid0, raid1, raid10`},
		{"btrfs_compress_before_8_3", `filesystem = "zfs"`, "filesystem = \"btrfs\"\nbtrfs.raid = \"raid1\"\nbtrfs.compress = \"zstd\"", r82, `disk-setup.btrfs.compress: the 8.2 installer does not know this key`},
		{"options_of_another_filesystem", `filesystem = "zfs"`, "filesystem = \"ext4\"\nlvm.swapsize = 4", r92, `disk-setup.zfs: options for zfs, but filesystem is ext4`},
		{"ext4_one_disk", `filesystem = "zfs"`, `filesystem = "xfs"`, r92, `disk-setup.disk-list: xfs installs on one disk, got 2`},
		{"swap_at_most_half", "filesystem = \"zfs\"\ndisk-list = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"", "filesystem = \"ext4\"\ndisk-list = [\"sda\"]\nlvm.hdsize = 32\nlvm.swapsize = 16.01", r92, `Swap size 16.01 GiB cannot be greater than 16 GiB (hard disk size / 2)`},
		{"webhook_url_form", "", "\n[post-installation-webhook]\nurl = \"ftp://10.0.0.2/x\"\n", r92, `post-installation-webhook.url: "ftp://10.0.0.2/x" is not an http:// or https:// URL`},
		{"webhook_fingerprint_form", "", "\n[post-installation-webhook]\nurl = \"https://10.0.0.2/x\"\ncert-fingerprint = \"abcd\"\n", r92, `is not a SHA-256 fingerprint`},
		{"webhook_token_before_9_2", "", "\n[post-installation-webhook]\nurl = \"https://10.0.0.2/x\"\nauth-token = \"t\"\n", r91, `post-installation-webhook.auth-token: the 9.1 installer does not know this key`},
		{"first_boot_from_url_needs_url", "", "\n[first-boot]\nsource = \"from-url\"\n", r92, `first-boot.url: missing`},
		{"first_boot_ordering_enum", "", "\n[first-boot]\nsource = \"from-iso\"\nordering = \"late\"\n", r92, `first-boot.ordering: "late" is not one of before-network, network-online, fully-up`},
		{"pinning_before_9_1", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true", r84, `network.interface-name-pinning: the 8.4 installer does not know this key`},
		{"pinning_name_length", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"nameoverfifteenchars\"", r92, `interface name 'nameoverfifteenchars' for 'ab:cd:ef:12:34:56' cannot be longer than 15 characters`},
		{"pinning_name_form", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"lan-0\"", r92, `interface name 'lan-0' for 'ab:cd:ef:12:34:56': want 2 to 15 letters`},
		{"pinning_names_unique", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"lan0\"\n\"ab:cd:ef:12:34:57\" = \"lan0\"", r92, `interface name 'lan0' is given to both`},
		{"pinning_uppercase_name_on_9_1", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"LAN0\"", r91, `interface name 'LAN0': some 9.1 installers take only lowercase names`},
		{"pinning_uppercase_name_on_9_2", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"LAN0\"", r92, ``},
		{"pinning_mac_form", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"eno1\" = \"lan0\"", r92, `"eno1" is not a MAC address`},
		{"secret_values_never_echoed", `root-password = "12345678"`, `root-password = 87654321`, r92, `global.root-password: want a string, got a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := validAnswer + tt.new
			if tt.old != "" {
				if !strings.Contains(validAnswer, tt.old) {
					t.Fatalf("validAnswer has no %q to replace", tt.old)
				}
				answer = strings.Replace(validAnswer, tt.old, tt.new, 1)
			}
			l, err := parseLayer("hosts/aa-bb-cc-dd-ee-ff.toml", []byte(answer))
			if err == nil {
				_, err = compose([]layer{l}, facts{mac: "aabbccddeeff", release: tt.release, btrfs: true})
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("compose = %v; want it served", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("compose = %v; want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "87654321") {
				t.Errorf("error echoes a password: %v", err)
			}
		})
	}
}

// factsFor are the facts of a 9.2 request from a machine whose second NIC
// matched its host file.
var factsFor = request{product: "pve", iso: "9.2", btrfs: true,
	macs: []string{"aabbccddee01", "aabbccddeeff"}, links: []string{"eno1", "enp1s0f0np0"},
	serial: "S424170X1A21345", uuid: "4C4C4544-0042-3510-8057-B4C04F4E3532",
}.facts(match{by: "mac", key: "aabbccddeeff"}, r92)

func TestExpand(t *testing.T) {
	noSerial := factsFor
	noSerial.serial = request{serial: "To be filled by O.E.M."}.ids()[0]
	tests := []struct {
		name     string
		f        facts
		hostname any // global.hostname; nil for none
		value    any // global.mailto
		want     any
		wantErr  string // the problem at global.mailto, or at global.hostname
	}{
		{"plain_text_untouched", factsFor, "pve1", "ops@example.com", "ops@example.com", ""},
		{"closing_braces_alone_untouched", factsFor, "pve1", "a}}b", "a}}b", ""},
		{"single_braces_untouched", factsFor, "pve1", "{.Serial}", "{.Serial}", ""},
		{"every_fact", factsFor, "pve-{{.Serial}}",
			"{{.Hostname}} {{.MAC}} {{.MACHex}} {{.Link}} {{.Serial}} {{.UUID}} {{.Product}} {{.Release}}",
			"pve-S424170X1A21345 aa:bb:cc:dd:ee:ff aabbccddeeff enp1s0f0np0 S424170X1A21345 4c4c4544-0042-3510-8057-b4c04f4e3532 pve 9.2", ""},
		{"spaces_inside_braces", factsFor, "pve1", "{{ .MACHex }}", "aabbccddeeff", ""},
		{"literal_braces", factsFor, "pve1", `a{{"{{"}}b}}`, "a{{b}}", ""},
		{"placeholder_at_both_ends", factsFor, "pve1", "{{.Product}}{{.Release}}", "pve9.2", ""},
		{"hostname_is_the_first_label", factsFor, "pve7.other.example.org", "{{.Hostname}}", "pve7", ""},
		{"array_elements", factsFor, "pve1", []any{"a-{{.MACHex}}", "b", int64(3)}, []any{"a-aabbccddeeff", "b", int64(3)}, ""},
		{"tables_in_arrays", factsFor, "pve1", []any{map[string]any{"k": "{{.Link}}"}}, []any{map[string]any{"k": "enp1s0f0np0"}}, ""},
		{"non_strings_untouched", factsFor, "pve1", int64(7), int64(7), ""},
		{"unknown_gets_a_suggestion", factsFor, "pve1", "{{.Serail}}", nil, "{{.Serail}}: no such placeholder (did you mean {{.Serial}}?); the placeholders are {{.Hostname}}, {{.MAC}}"},
		{"case_matters", factsFor, "pve1", "{{.serial}}", nil, "{{.serial}}: no such placeholder (did you mean {{.Serial}}?)"},
		{"without_the_dot", factsFor, "pve1", "{{Serial}}", nil, "{{Serial}}: no such placeholder (did you mean {{.Serial}}?)"},
		{"template_logic_is_not_a_placeholder", factsFor, "pve1", "{{if .Serial}}x{{end}}", nil, "{{if .Serial}}: no such placeholder"},
		{"unclosed", factsFor, "pve1", "ops+{{.Hostname@example.com", nil, `"{{.Hostname@example.com" opens a placeholder with {{ but never closes it with }}`},
		{"missing_fact", noSerial, "pve1", "{{.Serial}}", nil, `{{.Serial}}: nothing to fill in: dmi.system.serial "To be filled by O.E.M." is a firmware placeholder`},
		{"no_hostname_anywhere", factsFor, nil, "{{.Hostname}}", nil, "{{.Hostname}}: nothing to fill in: no hostname or global.fqdn is set"},
		{"hostname_cannot_use_itself", factsFor, "{{.Hostname}}-2", "x", nil, "global.hostname: {{.Hostname}}: the host's name is what {{.Hostname}} is filled from"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := map[string]any{"mailto": tc.value}
			if tc.hostname != nil {
				g["hostname"] = tc.hostname
			}
			layerTree := map[string]any{"global": g}
			before := deepCopy(layerTree)
			ans := mergeLayers([]layer{{name: hostFile, tree: layerTree}})
			f := tc.f
			ps := expand(ans, f)
			if !reflect.DeepEqual(layerTree, before) {
				t.Errorf("expand changed the layer it merged from: %v; want %v", layerTree, before)
			}
			if tc.wantErr != "" {
				if len(ps) != 1 || !strings.Contains(ps[0].key()+": "+ps[0].msg, tc.wantErr) {
					t.Fatalf("expand(%q) = %v; want one problem with %q", tc.value, ps, tc.wantErr)
				}
				return
			}
			if len(ps) != 0 {
				t.Fatalf("expand(%q) = %v; want no problem", tc.value, ps)
			}
			if got := lookup(ans, "global", "mailto"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("expand(%q) = %#v; want %#v", tc.value, got, tc.want)
			}
		})
	}
}

// A fact is text, never a placeholder: a request cannot make pxe-pilot
// fill in what the operator did not write.
func TestExpandDoesNotReadFactsAgain(t *testing.T) {
	f := factsFor
	f.link = "{{.Serial}}"
	ans := map[string]any{"global": map[string]any{"hostname": "pve1", "mailto": "{{.Link}}"}, "network": map[string]any{"x": "{{.Link}}"}}
	if ps := expand(ans, f); len(ps) != 0 {
		t.Fatalf("expand = %v", ps)
	}
	for _, path := range [][]string{{"global", "mailto"}, {"network", "x"}} {
		if got := lookup(ans, path...); got != "{{.Serial}}" {
			t.Errorf("%s = %q; want the link as sent, {{.Serial}}", keyPath(path), got)
		}
	}
}

// Layers are cached and shared between requests: two machines composed
// from the same layers get each their own facts.
func TestComposeFillsEachMachinesOwnFacts(t *testing.T) {
	host, err := parseLayer("hosts/default.toml", []byte(strings.Replace(validAnswer, `disk-list = ["sda", "sdb"]`, `filter.ID_SERIAL = "*{{.Serial}}*"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	host.tree["global"].(map[string]any)["root-ssh-keys"] = []any{"ssh-ed25519 AAAA {{.Serial}}"}
	var outs []string
	for _, serial := range []string{"SERIAL1", "SERIAL2", "SERIAL1"} {
		f := factsFor
		f.serial = id{by: "serial", key: serial}
		out, err := compose([]layer{host}, f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "*"+serial+"*") || !strings.Contains(string(out), "AAAA "+serial) {
			t.Errorf("answer for serial %s:\n%s\nwant it filled with that serial", serial, out)
		}
		outs = append(outs, string(out))
	}
	if outs[0] != outs[2] {
		t.Errorf("the same machine's answer changed after another's:\n%s\nthen\n%s", outs[0], outs[2])
	}
}
