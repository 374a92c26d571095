// Tests of the answer pipeline, against the installer's own accepted and rejected answers.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
	layers, m, err := loadHost(openDir(b, "examples/config"), req)
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
		c, err := openConfigDir("examples/config")
		if err != nil {
			b.Fatal(err)
		}
		layers, m, err := loadHost(c, req)
		c.close()
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

// TestProblemsNameKeysAsWritten: a problem names its key as the file that
// set it wrote it (network.address, disk.target, root_password), and a key
// written in the installer's own spelling as before.
func TestProblemsNameKeysAsWritten(t *testing.T) {
	const defaults, host = friendlyDefaults, friendlyHost
	tests := []struct {
		name     string
		defaults string // "" for defaults
		host     string
		release  release
		want     string // the problem, as answerError.lines says it
	}{
		{"network_address", "", host + "[network]\naddress = \"10.0.0.300/24\"\n", r92,
			`network.address: "10.0.0.300/24": invalid IP address with prefix length`},
		{"native_cidr", "", host + "[network]\ncidr = \"10.0.0.300/24\"\n", r92,
			`network.cidr: "10.0.0.300/24": invalid IP address with prefix length`},
		{"native_cidr_beside_address_wins", "", host + "[network]\naddress = \"10.0.0.10/24\"\ncidr = \"10.0.0.300/24\"\n", r92,
			`network.cidr: "10.0.0.300/24"`},
		{"address_in_defaults", "[network]\naddress = \"10.0.0.300/24\"\n" + defaults, host, r92,
			`network.address (set in defaults.toml): "10.0.0.300/24"`},
		{"native_cidr_in_host_over_address_in_defaults", "[network]\naddress = \"10.0.0.10/24\"\n" + defaults, host + "[network]\ncidr = \"10.0.0.300/24\"\n", r92,
			`network.cidr: "10.0.0.300/24"`},
		{"root_password", "", host + "[global]\nroot_password = \"short\"\n", r92,
			`global.root_password: must be at least 8 characters long`},
		{"native_root_password", "", host + "[global]\nroot-password = \"short\"\n", r92,
			`global.root-password: must be at least 8 characters long`},
		{"root_password_hash", "", host + "[global]\nroot_password_hash = \"plain words\"\n", r92,
			`global.root_password_hash: not a crypt(3) hash`},
		{"root_password_hash_in_defaults_too_new", "", host, r82,
			`global.root_password_hash (set in defaults.toml): the 8.2 installer does not know this key`},
		{"disk_target", "", "hostname = \"pve\"\n[disk]\ntarget = [\"sda\", \"sda\"]\nzfs.raid = \"raid1\"\n", r92,
			`disk.target: List of disks contains duplicate device sda`},
		{"native_disk_list", "", "hostname = \"pve\"\n[disk-setup]\ndisk-list = [\"sda\", \"sda\"]\nzfs.raid = \"raid1\"\n", r92,
			`disk-setup.disk-list: List of disks contains duplicate device sda`},
		{"snake_disk_list", "", "hostname = \"pve\"\n[disk-setup]\ndisk_list = [\"sda\", \"sda\"]\nzfs.raid = \"raid1\"\n", r92,
			`disk-setup.disk_list: List of disks contains duplicate device sda`},
		{"key_under_friendly_disk", "", host + "filesystem = \"ZFS\"\n", r92,
			`disk.filesystem: "ZFS" is not one of ext4, xfs, zfs, btrfs`},
		{"native_key_beside_friendly_disk_wins", "", host + "filesystem = \"ext4\"\n[disk-setup]\nfilesystem = \"ZFS\"\n", r92,
			`disk-setup.filesystem: "ZFS" is not one of`},
		{"table_under_friendly_disk_in_defaults", defaults + "zfs.raid = \"raid5\"\n", host, r92,
			`disk.zfs.raid (set in defaults.toml): "raid5" is not one of`},
		{"snake_key_under_friendly_disk", "", host + "zfs.arc_max = -1\n", r92,
			`disk.zfs.arc_max: -1 is less than 0`},
		{"snake_key_in_native_table", "", host + "[disk-setup.zfs]\narc_max = -1\n", r92,
			`disk-setup.zfs.arc_max: -1 is less than 0`},
		{"top_level_hostname", "", "hostname = 42\n[disk]\ntarget = \"sda\"\n", r92,
			`hostname: want a string, got the integer 42`},
		{"hostname_in_global", "", "[global]\nhostname = 42\n[disk]\ntarget = \"sda\"\n", r92,
			`global.hostname: want a string, got the integer 42`},
		{"first_boot_ordering", "", "first-boot-ordering = \"fully-up\"\n" + host, r92,
			`first-boot-ordering: set without first-boot-script`},
		{"legacy_snake_key_too_new", "", host + "[global]\nreboot_mode = \"power-off\"\n", r83,
			`global.reboot_mode: the 8.3 installer does not know this key`},
		{"uppercase_pinned_mac", "", host + "[network.interface-name-pinning]\nenabled = true\nmapping = { \"AA:BB:CC:DD:EE:FF\" = \"mgmt.10\" }\n", r91,
			`network.interface-name-pinning.mapping."AA:BB:CC:DD:EE:FF": interface name 'mgmt.10'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.defaults
			if d == "" {
				d = defaults
			}
			lines := problemLines(t, d, tt.host, tt.release)
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, tt.want) }) {
				t.Errorf("problems = %q; want one starting %q", lines, tt.want)
			}
		})
	}
}

// friendlyDefaults and friendlyHost make a valid answer in pxe-pilot's
// own keys, for tests to add a mistake to.
const (
	friendlyDefaults = "[global]\nkeyboard = \"de\"\ncountry = \"at\"\ndomain = \"example.com\"\nmailto = \"ops@example.com\"\n" +
		"timezone = \"Europe/Vienna\"\nroot_password_hash = \"$6$salt$hash\"\n[disk]\nfilesystem = \"zfs\"\n"
	friendlyHost = "hostname = \"pve\"\n[disk]\ntarget = \"sda\"\n"
)

// problemLines composes defaults and host for a 9.2-style request of
// release rel and returns the problems as answerError.lines says them.
func problemLines(t *testing.T, defaults, host string, rel release) []string {
	t.Helper()
	var layers []layer
	for _, f := range [][2]string{{"defaults.toml", defaults}, {hostFile, host}} {
		l, err := parseLayer(f[0], []byte(f[1]))
		if err != nil {
			t.Fatalf("parseLayer(%s) = %v", f[0], err)
		}
		layers = append(layers, l)
	}
	_, err := compose(layers, facts{mac: "aabbccddeeff", release: rel, btrfs: true})
	var ae *answerError
	if !errors.As(err, &ae) {
		t.Fatalf("compose = %v; want an answerError", err)
	}
	return ae.lines()
}
