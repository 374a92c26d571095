// Tests of the command line: render, version, flags.

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// render prints exactly what the server answers, for every golden case.
func TestRenderMatchesServer(t *testing.T) {
	requests, _ := filepath.Glob(filepath.Join("testdata", "*", "*request.json"))
	for _, reqFile := range requests {
		dir := filepath.Dir(reqFile)
		t.Run(filepath.Base(dir)+"/"+filepath.Base(reqFile), func(t *testing.T) {
			config := filepath.Join(dir, "config")
			code, _, want := post(t, config, mustRead(t, reqFile))
			var out, notes bytes.Buffer
			err := run([]string{"render", "--config-dir", config, "--request", reqFile}, &out, &notes)
			if code == http.StatusOK {
				if err != nil || !bytes.Equal(out.Bytes(), want) {
					t.Errorf("render = %v\n%s\nwant the server's answer:\n%s", err, out.Bytes(), want)
				}
				return
			}
			// The server's line is "pxe-pilot: <reason>"; main prefixes the same.
			if err == nil || "pxe-pilot: "+err.Error()+"\n" != string(want) {
				t.Errorf("render = %v; want the server's error %q", err, want)
			}
		})
	}
}

// validate accepts every answer the server rendered, for its release.
func TestValidateAcceptsRenderedAnswers(t *testing.T) {
	requests, _ := filepath.Glob(filepath.Join("testdata", "*", "*request.json"))
	checked := 0
	for _, reqFile := range requests {
		body := mustRead(t, reqFile)
		code, _, answer := post(t, filepath.Join(filepath.Dir(reqFile), "config"), body)
		if code != http.StatusOK {
			continue
		}
		req, _ := parseRequest(body)
		rel, _, _ := req.release()
		dir := writeTree(t, map[string]string{"hosts/" + hostFileName(req.macs[0]): string(asConfig(t, answer))})
		if r := checkDir(dir, rel); r.errors != 0 || r.hosts != 1 {
			t.Errorf("validate --release %s of the answer to %s: %d errors:\n%s", rel, reqFile, r.errors, strings.Join(r.lines, "\n"))
		}
		checked++
	}
	if checked < 20 {
		t.Errorf("only %d golden answers checked; the golden cases went missing", checked)
	}
}

func TestRenderByMAC(t *testing.T) {
	tests := []struct {
		args    []string
		want    string // a line of the output, or of the error
		wantErr bool
	}{
		{[]string{"--mac", "AA-BB-CC-DD-EE-FF"}, "fqdn = 'pve-node-01.lab.example.com'", false},
		{[]string{"--mac", "aa:bb:cc:dd:ee:01", "--release", "8.2"}, "disk_list = ['sda', 'sdb']", false},
		{[]string{"--mac", "aa:bb:cc:dd:ee:ff", "--release", "8.2"}, "global.root_password_hash (set in defaults.toml): the 8.2 installer does not know this key", true},
		{[]string{"--mac", "02:00:00:00:00:09"}, "no host file for this machine", true},
		{[]string{"--mac", "not-a-mac"}, "--mac \"not-a-mac\": want a MAC", true},
		{[]string{"--mac", "aa:bb:cc:dd:ee:ff", "--release", "7.4"}, "--release \"7.4\": want a Proxmox VE ISO release from 8.2 on, such as 9.2", true},
		{nil, "render needs one of --mac MAC, --request FILE.json or -", true},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(append([]string{"render", "--config-dir", "examples/config"}, tt.args...), &out, &out)
		got := out.String()
		if err != nil {
			got = err.Error()
		}
		if (err != nil) != tt.wantErr || !strings.Contains(got, tt.want) {
			t.Errorf("render %v = %q, %v; want %q (error %v)", tt.args, got, err, tt.want, tt.wantErr)
		}
	}
}

// render --serial and --uuid answer as a request with that serial or UUID
// and one NIC, --mac, would be answered.
func TestRenderBySerialAndUUID(t *testing.T) {
	const (
		uuidU = "4C4C4544-0042-3510-8057-B4C04F4E3532"
		uuidL = "4c4c4544-0042-3510-8057-b4c04f4e3532"
	)
	dir := writeTree(t, map[string]string{
		"defaults.toml":                 string(mustRead(t, "examples/config/defaults.toml")),
		"hosts/aa-bb-cc-dd-ee-ff.toml":  string(mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")),
		"hosts/serial-S42.toml":         "hostname = \"pve-by-serial\"\n[global]\nmailto = \"ops+{{.Serial}}-{{.MACHex}}@example.com\"\n[disk]\ntarget = \"sda\"\n",
		"hosts/uuid-" + uuidL + ".toml": "hostname = \"pve-by-uuid\"\n[disk]\ntarget = \"sda\"\n",
	})
	request := filepath.Join(dir, "request.json")
	if err := os.WriteFile(request, mustRead(t, "examples/requests/pve-9.2.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    string // a line of the output, or of the error
		wantErr bool
	}{
		{"serial_host_answers_a_mac_without_a_file",
			[]string{"--mac", "02:00:00:00:00:09", "--serial", "S42"}, "fqdn = 'pve-by-serial.lab.example.com'", false},
		{"serial_and_the_mac_fill_placeholders",
			[]string{"--mac", "02:00:00:00:00:09", "--serial", "S42"}, "mailto = 'ops+S42-020000000009@example.com'", false},
		{"mac_with_a_file_wins_over_serial",
			[]string{"--mac", "aa:bb:cc:dd:ee:ff", "--serial", "S42"}, "fqdn = 'pve-node-01.lab.example.com'", false},
		{"serial_wins_over_uuid",
			[]string{"--mac", "02:00:00:00:00:09", "--serial", "S42", "--uuid", uuidL}, "fqdn = 'pve-by-serial.lab.example.com'", false},
		{"uuid_host_answers_an_uppercase_uuid",
			[]string{"--mac", "02:00:00:00:00:09", "--uuid", uuidU}, "fqdn = 'pve-by-uuid.lab.example.com'", false},
		{"unknown_serial_names_the_files_tried",
			[]string{"--mac", "02:00:00:00:00:09", "--serial", "S43"}, "no host file for this machine: tried hosts/02-00-00-00-00-09.toml, hosts/serial-S43.toml", true},
		{"placeholder_serial_says_why_it_was_skipped",
			[]string{"--mac", "02:00:00:00:00:09", "--serial", "To be filled by O.E.M."}, `(dmi.system.serial "To be filled by O.E.M." is a firmware placeholder)`, true},
		{"serial_with_json_quotes_is_sent_as_a_string",
			[]string{"--mac", "02:00:00:00:00:09", "--serial", `S"42\`}, `dmi.system.serial "S\"42\\" has characters that cannot name a file`, true},
		{"serial_without_mac_needs_mac",
			[]string{"--serial", "S42"}, "render: --serial and --uuid need --mac too", true},
		{"uuid_without_mac_needs_mac",
			[]string{"--uuid", uuidL}, "render: --serial and --uuid need --mac too", true},
		{"serial_with_a_request_file_is_refused_naming_mac",
			[]string{"--request", request, "--serial", "S42"}, "--mac", true},
		{"serial_with_both_mac_and_request_says_to_pick_one",
			[]string{"--mac", "02:00:00:00:00:09", "--request", request, "--serial", "S42"}, "render needs one of --mac MAC, --request FILE.json or -", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(append([]string{"render", "--config-dir", dir}, tt.args...), &out, &out)
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if (err != nil) != tt.wantErr || !strings.Contains(got, tt.want) {
				t.Errorf("render %q = %q, %v; want %q (error %v)", tt.args, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// The version set at link time (-X main.version=...) wins over the build info.
func TestVersionSetAtLinkTime(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	var out bytes.Buffer
	if err := run([]string{"version"}, &out, &out); err != nil || out.String() != "pxe-pilot v1.2.3\n" {
		t.Errorf("version = %q, %v; want %q", out.String(), err, "pxe-pilot v1.2.3\n")
	}
}

func TestParseServe(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    serveConfig
		wantErr string // substring; "" for none
	}{
		{name: "defaults", want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text"}},
		{name: "env_config_dir", env: map[string]string{"CONFIG_DIR": "/etc/pxe-pilot"},
			want: serveConfig{dir: "/etc/pxe-pilot", addr: ":8080", logFormat: "text"}},
		{name: "flag_config_dir_wins_over_env", env: map[string]string{"CONFIG_DIR": "/etc/pxe-pilot"}, args: []string{"--config-dir", "/srv/cfg"},
			want: serveConfig{dir: "/srv/cfg", addr: ":8080", logFormat: "text"}},
		{name: "env_port", env: map[string]string{"PORT": "9000"},
			want: serveConfig{dir: "./config", addr: ":9000", logFormat: "text"}},
		{name: "env_listen", env: map[string]string{"LISTEN": "10.0.0.2:8081"},
			want: serveConfig{dir: "./config", addr: "10.0.0.2:8081", logFormat: "text"}},
		{name: "flag_port", args: []string{"--port", "9001"},
			want: serveConfig{dir: "./config", addr: ":9001", logFormat: "text"}},
		{name: "flag_listen", args: []string{"-listen=127.0.0.1:9002"},
			want: serveConfig{dir: "./config", addr: "127.0.0.1:9002", logFormat: "text"}},
		{name: "flag_port_wins_over_env_port", env: map[string]string{"PORT": "9000"}, args: []string{"--port", "9001"},
			want: serveConfig{dir: "./config", addr: ":9001", logFormat: "text"}},
		{name: "flag_listen_wins_over_env_listen", env: map[string]string{"LISTEN": "10.0.0.2:8081"}, args: []string{"--listen", ":9003"},
			want: serveConfig{dir: "./config", addr: ":9003", logFormat: "text"}},
		{name: "flag_port_with_env_listen_is_error", env: map[string]string{"LISTEN": "10.0.0.2:8081"}, args: []string{"--port", "9001"},
			wantErr: "LISTEN=10.0.0.2:8081 and --port 9001 are both set; keep one: LISTEN=HOST:PORT says both, --port N alone listens on every address"},
		{name: "flag_listen_with_env_port_is_error", env: map[string]string{"PORT": "9000"}, args: []string{"--listen", "127.0.0.1:9002"},
			wantErr: "--listen 127.0.0.1:9002 and PORT=9000 are both set; keep one: --listen HOST:PORT says both, PORT=N alone listens on every address"},
		{name: "flag_listen_with_env_listen_and_port_is_error", env: map[string]string{"LISTEN": "10.0.0.2:8081", "PORT": "9000"}, args: []string{"--listen", ":9003"},
			wantErr: "--listen :9003 and PORT=9000 are both set"},
		{name: "flag_port_with_env_listen_and_port_is_error", env: map[string]string{"LISTEN": "10.0.0.2:8081", "PORT": "9000"}, args: []string{"--port", "9001"},
			wantErr: "LISTEN=10.0.0.2:8081 and --port 9001 are both set"},
		{name: "env_log_format", env: map[string]string{"PXE_PILOT_LOG_FORMAT": "json"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "json"}},
		{name: "flag_log_format_wins_over_env", env: map[string]string{"PXE_PILOT_LOG_FORMAT": "json"}, args: []string{"--log-format", "text"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text"}},
		{name: "port_zero", args: []string{"--port", "0"},
			want: serveConfig{dir: "./config", addr: ":0", logFormat: "text"}},
		{name: "tls_listens_on_8443", args: []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"},
			want: serveConfig{dir: "./config", addr: ":8443", logFormat: "text", tlsCert: "c.pem", tlsKey: "k.pem"}},
		{name: "tls_from_env", env: map[string]string{"PXE_PILOT_TLS_CERT": "c.pem", "PXE_PILOT_TLS_KEY": "k.pem"},
			want: serveConfig{dir: "./config", addr: ":8443", logFormat: "text", tlsCert: "c.pem", tlsKey: "k.pem"}},
		{name: "tls_with_a_port", args: []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--port", "443"},
			want: serveConfig{dir: "./config", addr: ":443", logFormat: "text", tlsCert: "c.pem", tlsKey: "k.pem"}},
		{name: "tls_cert_without_key_is_error", args: []string{"--tls-cert", "c.pem"}, wantErr: "--tls-cert and --tls-key go together"},
		{name: "tls_key_from_env_without_cert_is_error", env: map[string]string{"PXE_PILOT_TLS_KEY": "k.pem"}, wantErr: "--tls-cert and --tls-key go together"},
		{name: "token_file", args: []string{"--token-file", "/run/credentials/tokens"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", tokenFile: "/run/credentials/tokens"}},
		{name: "token_file_from_env", env: map[string]string{"PXE_PILOT_TOKEN_FILE": "/etc/pxe-pilot/tokens"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", tokenFile: "/etc/pxe-pilot/tokens"}},
		{name: "allow_cidrs_and_addresses", args: []string{"--allow", "10.0.0.0/24, 192.168.1.7,fd00::/8,::ffff:10.2.0.0/112,fe80::1%eth0"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", allow: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("fe80::1/128")}}},
		{name: "boot_listen_without_boot_dir_is_error", args: []string{"--boot-listen", "127.0.0.1:8081"},
			wantErr: "--boot-listen serves boot files, and needs --boot-dir to say where they are"},
		{name: "boot_listen_on_serves_own_address_is_error", args: []string{"--boot-dir", "examples/boot", "--listen", "127.0.0.1:8443", "--boot-listen", "127.0.0.1:8443"},
			wantErr: "--boot-listen 127.0.0.1:8443 is the address serve listens on already"},
		{name: "allow_with_host_bits_is_error", args: []string{"--allow", "10.1.2.3/16"},
			wantErr: `--allow "10.1.2.3/16" has host bits set: write the network, 10.1.0.0/16, or the one address, 10.1.2.3/32`},
		{name: "allow_with_host_bits_in_ipv6_is_error", args: []string{"--allow", "fd00::7/8"},
			wantErr: `--allow "fd00::7/8" has host bits set: write the network, fd00::/8, or the one address, fd00::7/128`},
		{name: "allow_from_env", env: map[string]string{"PXE_PILOT_ALLOW": "10.0.0.0/24"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}},
		{name: "allow_garbage_is_error", args: []string{"--allow", "10.0.0.0/24,lan"}, wantErr: `--allow "lan": want a CIDR`},
		{name: "allow_bad_prefix_is_error", args: []string{"--allow", "10.0.0.0/33"}, wantErr: `--allow "10.0.0.0/33"`},
		{name: "max_inflight", args: []string{"--max-inflight", "64"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", maxInflight: 64}},
		{name: "max_inflight_from_env", env: map[string]string{"PXE_PILOT_MAX_INFLIGHT": "5000"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", maxInflight: 5000}},
		{name: "max_inflight_zero_is_error", args: []string{"--max-inflight", "0"}, wantErr: `--max-inflight "0": want a number of requests, 1 or more`},
		{name: "max_inflight_word_is_error", env: map[string]string{"PXE_PILOT_MAX_INFLIGHT": "lots"}, wantErr: `--max-inflight "lots"`},
		{name: "tracking", args: []string{"--public-url", "https://10.0.0.2:8443", "--state-dir", "/var/lib/pxe-pilot", "--once"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", publicURL: "https://10.0.0.2:8443", stateDir: "/var/lib/pxe-pilot", once: true}},
		{name: "tracking_from_env", env: map[string]string{"PXE_PILOT_PUBLIC_URL": "http://pxe:8080", "PXE_PILOT_STATE_DIR": "/var/lib/pxe-pilot", "PXE_PILOT_ONCE": "yes"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", publicURL: "http://pxe:8080", stateDir: "/var/lib/pxe-pilot", once: true}},
		{name: "once_env_upper_case_with_spaces", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": " TRUE "},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stateDir: "/s", once: true}},
		{name: "once_env_1", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": "1"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stateDir: "/s", once: true}},
		{name: "once_env_0_is_off", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": "0"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stateDir: "/s"}},
		{name: "once_env_false_is_off", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": "False"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stateDir: "/s"}},
		{name: "once_env_no_is_off", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": "no"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stateDir: "/s"}},
		{name: "once_env_blank_is_off", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": "  "},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stateDir: "/s"}},
		{name: "once_env_enabled_is_error", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": "enabled"},
			wantErr: `PXE_PILOT_ONCE="enabled": want 1, true or yes to turn it on, or 0, false or no to turn it off`},
		{name: "once_env_typo_is_error_with_the_flag_too", env: map[string]string{"PXE_PILOT_STATE_DIR": "/s", "PXE_PILOT_ONCE": "ture"},
			args: []string{"--once"}, wantErr: `PXE_PILOT_ONCE="ture"`},
		{name: "once_without_state_dir_is_error", args: []string{"--once"}, wantErr: "--once needs --state-dir"},
		{name: "once_from_env_without_state_dir_is_error", env: map[string]string{"PXE_PILOT_ONCE": "1"}, wantErr: "--once needs --state-dir"},
		{name: "public_url_not_http_is_error", args: []string{"--public-url", "10.0.0.2:8443"}, wantErr: `--public-url "10.0.0.2:8443"`},
		{name: "env_public_url_garbage_is_error", env: map[string]string{"PXE_PILOT_PUBLIC_URL": "pxe-pilot"}, wantErr: `--public-url "pxe-pilot"`},
		{name: "public_url_with_query_is_error", args: []string{"--public-url", "http://10.0.0.2:8080/?x=1"}, wantErr: "with no query"},
		{name: "flag_listen_and_port_is_error", args: []string{"--listen", ":8080", "--port", "8080"},
			wantErr: "--listen :8080 and --port 8080 are both set; keep one: --listen HOST:PORT says both, --port N alone listens on every address"},
		{name: "env_listen_and_port_is_error", env: map[string]string{"LISTEN": ":8080", "PORT": "8080"},
			wantErr: "LISTEN=:8080 and PORT=8080 are both set; keep one: LISTEN=HOST:PORT says both, PORT=N alone listens on every address"},
		{name: "flag_port_not_a_number_is_error", args: []string{"--port", "http"}, wantErr: `--port "http"`},
		{name: "flag_port_too_big_is_error", args: []string{"--port", "65536"}, wantErr: `--port "65536"`},
		{name: "flag_port_negative_is_error", args: []string{"--port", "-1"}, wantErr: `--port "-1"`},
		{name: "flag_port_empty_is_error", args: []string{"--port="}, wantErr: `--port ""`},
		{name: "env_port_not_a_number_is_error", env: map[string]string{"PORT": "eighty"}, wantErr: `PORT "eighty"`},
		{name: "flag_listen_without_port_is_error", args: []string{"--listen", "10.0.0.2"}, wantErr: `"10.0.0.2": want HOST:PORT`},
		{name: "env_listen_without_port_is_error", env: map[string]string{"LISTEN": "8080"}, wantErr: `"8080": want HOST:PORT`},
		{name: "bad_log_format_is_error", args: []string{"--log-format", "yaml"}, wantErr: `"yaml": want text or json`},
		{name: "bad_env_log_format_is_error", env: map[string]string{"PXE_PILOT_LOG_FORMAT": "logfmt"}, wantErr: `"logfmt": want text or json`},
		{name: "local_boot_sanboot", args: []string{"--local-boot", "sanboot"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", localBoot: "sanboot"}},
		{name: "local_boot_from_env", env: map[string]string{"PXE_PILOT_LOCAL_BOOT": "sanboot"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", localBoot: "sanboot"}},
		{name: "local_boot_other_is_error", args: []string{"--local-boot", "reboot"}, wantErr: `--local-boot "reboot": want exit`},
		{name: "stall_after_flag", args: []string{"--stall-after", "90m"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stallAfter: 90 * time.Minute}},
		{name: "stall_after_env_in_seconds", env: map[string]string{"PXE_PILOT_STALL_AFTER": "45s"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stallAfter: 45 * time.Second}},
		{name: "stall_after_flag_wins_over_env", env: map[string]string{"PXE_PILOT_STALL_AFTER": "oops"}, args: []string{"--stall-after", "2h"},
			want: serveConfig{dir: "./config", addr: ":8080", logFormat: "text", stallAfter: 2 * time.Hour}},
		{name: "stall_after_without_unit_is_error", args: []string{"--stall-after", "90"},
			wantErr: "--stall-after 90: want a Go duration over 0, such as 90m, 2h or 45s (default 60m)"},
		{name: "stall_after_zero_is_error", args: []string{"--stall-after", "0s"}, wantErr: "--stall-after 0s: want a Go duration over 0"},
		{name: "stall_after_negative_env_is_error", env: map[string]string{"PXE_PILOT_STALL_AFTER": "-5m"}, wantErr: "PXE_PILOT_STALL_AFTER=-5m: want a Go duration over 0"},
		{name: "argument_is_error", args: []string{"/etc/pxe-pilot"}, wantErr: "serve takes no arguments"},
		{name: "unknown_flag_is_error", args: []string{"--config", "x"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearServeEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := parseServe(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseServe(%q) with env %v = %+v, %v; want an error containing %q", tc.args, tc.env, got, err, tc.wantErr)
				}
				return
			}
			want := tc.want
			if want.maxInflight == 0 {
				want.maxInflight = defaultMaxInflight
			}
			if want.localBoot == "" {
				want.localBoot = "exit"
			}
			if want.stallAfter == 0 {
				want.stallAfter = defaultStallAfter
			}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("parseServe(%q) with env %v = %+v, %v; want %+v", tc.args, tc.env, got, err, want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantErr    string // substring; "" for none
		wantStdout string // prefix
		wantStderr string // substring
	}{
		{name: "version", args: []string{"version"}, wantStdout: "pxe-pilot "},
		{name: "dash_dash_version", args: []string{"--version"}, wantStdout: "pxe-pilot "},
		{name: "help", args: []string{"help"}, wantStdout: "pxe-pilot answers"},
		{name: "no_command", args: nil, wantErr: "no command given", wantStderr: "Usage:"},
		{name: "unknown_command", args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`, wantStderr: "Usage:"},
		{name: "serve_with_bad_flag", args: []string{"serve", "--port", "x"}, wantErr: `--port "x"`},
		{name: "serve_help", args: []string{"serve", "-h"}, wantErr: flag.ErrHelp.Error(), wantStdout: "Usage: pxe-pilot serve [--config-dir DIR]"},
		{name: "serve_with_missing_config_dir", args: []string{"serve", "--config-dir", "/nonexistent/pxe-pilot", "--port", "0"},
			wantErr: `config dir "/nonexistent/pxe-pilot" is missing`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"CONFIG_DIR", "PORT", "LISTEN", "PXE_PILOT_LOG_FORMAT"} {
				t.Setenv(k, "")
			}
			var stdout, stderr bytes.Buffer
			err := run(tc.args, &stdout, &stderr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("run(%q) = %v; want nil", tc.args, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("run(%q) = %v; want an error containing %q", tc.args, err, tc.wantErr)
			}
			if !strings.HasPrefix(stdout.String(), tc.wantStdout) {
				t.Errorf("run(%q) printed %q; want it to start with %q", tc.args, stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("run(%q) wrote %q to stderr; want %q in it", tc.args, stderr.String(), tc.wantStderr)
			}
		})
	}
	var stdout bytes.Buffer
	if err := run([]string{"version"}, &stdout, io.Discard); err != nil || strings.Count(stdout.String(), "\n") != 1 || !strings.HasSuffix(stdout.String(), "\n") {
		t.Errorf("run(version) = %v, printed %q; want one line", err, stdout.String())
	}
	if err := run(nil, io.Discard, io.Discard); errors.Is(err, flag.ErrHelp) {
		t.Errorf("run(nil) = %v; want an error main reports, not flag.ErrHelp", err)
	}
}

// TestRenderExplain: render --explain is the answer, byte for byte as
// comments aside, with which host file matched and by what, the layers in
// order, and the file and line that set each key, or what made it.
func TestRenderExplain(t *testing.T) {
	config := filepath.Join("testdata", "composing_example", "config")
	var out, plain bytes.Buffer
	if err := run([]string{"render", "--config-dir", config, "--mac", "aa:bb:cc:dd:ee:01", "--explain"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"render", "--config-dir", config, "--mac", "aa:bb:cc:dd:ee:01"}, &plain, io.Discard); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "composing_example", "pve-a1.explain"), out.Bytes())
	var explained, answer map[string]any
	if err := toml.Unmarshal(out.Bytes(), &explained); err != nil {
		t.Fatalf("render --explain is not TOML: %v", err)
	}
	toml.Unmarshal(plain.Bytes(), &answer)
	if !reflect.DeepEqual(explained, answer) {
		t.Errorf("render --explain reads as\n%v\nwant the answer\n%v", explained, answer)
	}
	// An 8.3 answer spells disk_list snake_case; the profile wrote it as [disk] target.
	out.Reset()
	if err := run([]string{"render", "--config-dir", config, "--mac", "aa:bb:cc:dd:ee:01", "--explain", "--release", "8.3"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if want := "disk_list = ['sda', 'sdb']  # profiles/zfs-mirror.toml:4\n"; !strings.Contains(out.String(), want) {
		t.Errorf("render --explain --release 8.3:\n%s\nwant %q", out.String(), want)
	}
}

// TestRenderNewerRelease: render takes a release newer than any pxe-pilot
// knows, as serve does, with the same note.
func TestRenderNewerRelease(t *testing.T) {
	var out, notes bytes.Buffer
	err := run([]string{"render", "--config-dir", "examples/config", "--mac", "aa:bb:cc:dd:ee:ff", "--release", "10.1"}, &out, &notes)
	if err != nil || !strings.Contains(out.String(), "[global]") {
		t.Fatalf("render --release 10.1 = %v\n%s", err, out.String())
	}
	if want := "pxe-pilot: note: iso.release 10.1 is newer than the newest pxe-pilot knows; answering with 9.2 rules\n"; notes.String() != want {
		t.Errorf("render --release 10.1 said %q; want %q", notes.String(), want)
	}
	for _, bad := range []string{"8.1", "x", "9.2;x"} {
		if err := run([]string{"render", "--config-dir", "examples/config", "--mac", "aa:bb:cc:dd:ee:ff", "--release", bad}, io.Discard, io.Discard); err == nil {
			t.Errorf("render --release %q took it; want an error", bad)
		}
	}
}

// clearServeEnv keeps the environment from steering serve in a test.
func clearServeEnv(t *testing.T) {
	for _, k := range []string{"CONFIG_DIR", "PORT", "LISTEN", "PXE_PILOT_LOG_FORMAT", "PXE_PILOT_TLS_CERT", "PXE_PILOT_TLS_KEY",
		"PXE_PILOT_TOKEN_FILE", "PXE_PILOT_ALLOW", "PXE_PILOT_MAX_INFLIGHT", "PXE_PILOT_PUBLIC_URL", "PXE_PILOT_STATE_DIR", "PXE_PILOT_ONCE", "PXE_PILOT_BOOT_DIR", "PXE_PILOT_LOCAL_BOOT", "PXE_PILOT_STALL_AFTER"} {
		t.Setenv(k, "")
	}
}

// serve's start-up log: one line on the config, each error on its own,
// and a warning where anyone who can reach it can read every answer.
func TestServeStartLog(t *testing.T) {
	clearServeEnv(t)
	tlsDir := t.TempDir()
	if err := run([]string{"cert", "--out", tlsDir, "--host", "127.0.0.1"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(tlsDir, "tokens")
	if err := os.WriteFile(tokens, []byte("rack:secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const plainHTTP = "serving plain HTTP with no token"
	// A state dir whose one machine was answered a day ago, and never reported.
	stalled := func() string {
		dir := t.TempDir()
		st, err := openState(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.lock.Close()
		if err := st.recordAnswer("aa-bb-cc-dd-ee-ff", match{"mac", "aabbccddeeff", hostFile}, r92, false, time.Now().Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name    string
		files   map[string]string // nil: examples/config
		args    []string
		want    []string // lines of the log, each in it
		notWant string   // "" for none
	}{
		{"examples_say_hosts_and_profiles", nil, []string{"--listen", "127.0.0.1:0"},
			[]string{`level=INFO msg=config config_dir=examples/config hosts=3 profiles=1 files_with_errors=0`}, "level=WARN"},
		{"each_error_on_its_own_line", map[string]string{"defaults.toml": goodDefaults, hostFile: brokenHost, "hosts/aa-bb-cc-dd-ee-01.toml": goodHost,
			"hosts/pve1.toml": goodHost, "profiles/rack.toml": "[x\n"}, []string{"--listen", "127.0.0.1:0"},
			[]string{"msg=config config_dir=", "hosts=2 profiles=1 files_with_errors=3",
				`level=WARN msg="config error, as pxe-pilot validate says it: fix it before the machines it concerns boot" error="` + hostFile + `:2:6:`,
				`level=WARN msg="config error, as pxe-pilot validate says it: fix it before the machines it concerns boot" error="hosts/pve1.toml: never matches`,
				`level=WARN msg="config error, as pxe-pilot validate says it: fix it before the machines it concerns boot" error="profiles/rack.toml:1:`}, ""},
		{"broken_defaults_is_said_and_served", map[string]string{"defaults.toml": "[global\n", hostFile: goodHost}, []string{"--listen", "127.0.0.1:0"},
			[]string{"hosts=1 profiles=0 files_with_errors=1", `error="defaults.toml:1:`, "msg=serving"}, ""},
		{"plain_http_on_every_address_warns", nil, []string{"--listen", ":0"},
			[]string{"level=WARN msg=\"" + plainHTTP, "--tls-cert and --tls-key with --token-file, or --listen 127.0.0.1:PORT behind a proxy"}, ""},
		{"boot_dir_without_state_dir_warns_once", nil, []string{"--listen", "127.0.0.1:0", "--boot-dir", bootTree(t, nil)},
			[]string{"level=WARN msg=\"--boot-dir without --state-dir: /boot.ipxe installs every configured machine at every PXE boot", "or PXE-boot each machine once from its BMC"}, ""},
		{"state_dir_without_public_url_warns", nil, []string{"--listen", "127.0.0.1:0", "--state-dir", t.TempDir()},
			[]string{"level=WARN msg=\"--state-dir without --public-url: answers carry no webhook, so no installer reports back, and no machine is ever known installed, nor stalled; add --public-url"}, "/boot.ipxe"},
		{"boot_dir_with_state_dir_and_no_public_url_warns", nil, []string{"--listen", "127.0.0.1:0", "--boot-dir", bootTree(t, nil), "--state-dir", t.TempDir()},
			[]string{"level=WARN msg=\"--state-dir without --public-url: answers carry no webhook", "add --public-url (how installers reach pxe-pilot). With --boot-dir, /boot.ipxe so installs every configured machine at every PXE boot", "or PXE-boot each machine once from its BMC"}, "--boot-dir without --state-dir"},
		{"state_dir_with_public_url_is_quiet", nil, []string{"--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "--public-url", "http://127.0.0.1:8080"},
			[]string{"msg=serving", "stall_after=1h0m0s"}, "level=WARN"},
		{"stall_logged_with_public_url", nil, []string{"--listen", "127.0.0.1:0", "--state-dir", stalled(), "--public-url", "http://127.0.0.1:8080"},
			[]string{"machine aa-bb-cc-dd-ee-ff stalled"}, ""},
		{"no_stall_without_public_url", nil, []string{"--listen", "127.0.0.1:0", "--state-dir", stalled()},
			[]string{"--state-dir without --public-url"}, "stalled: answered"},
		{"boot_dir_with_tracking_is_quiet", nil, []string{"--listen", "127.0.0.1:0", "--boot-dir", bootTree(t, nil), "--state-dir", t.TempDir(), "--public-url", "http://127.0.0.1:8080"},
			[]string{"msg=serving", "local_boot=exit"}, "level=WARN"},
		{"plain_http_on_loopback_is_quiet", nil, []string{"--listen", "[::1]:0"}, []string{"msg=serving"}, plainHTTP},
		{"plain_http_with_a_token_is_quiet", nil, []string{"--listen", ":0", "--token-file", tokens}, []string{"msg=serving"}, plainHTTP},
		{"https_without_a_token_is_quiet", nil, []string{"--listen", ":0", "--tls-cert", filepath.Join(tlsDir, certName), "--tls-key", filepath.Join(tlsDir, keyName)},
			[]string{"msg=serving"}, plainHTTP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := "examples/config"
			if tc.files != nil {
				dir = writeTree(t, tc.files)
			}
			// A cancelled context: serve starts, logs, and shuts down.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var log bytes.Buffer
			if err := serve(ctx, append([]string{"--config-dir", dir}, tc.args...), &log); err != nil {
				t.Fatalf("serve %q = %v\n%s", tc.args, err, &log)
			}
			for _, w := range tc.want {
				if !strings.Contains(log.String(), w) {
					t.Errorf("serve %q logged\n%s\nwant %q in it", tc.args, &log, w)
				}
			}
			if tc.notWant != "" && strings.Contains(log.String(), tc.notWant) {
				t.Errorf("serve %q logged\n%s\nwant no %q", tc.args, &log, tc.notWant)
			}
			if n := strings.Count(log.String(), plainHTTP); n > 1 {
				t.Errorf("serve %q warned %d times of plain HTTP; want once at most", tc.args, n)
			}
		})
	}
}

// Every command's -h and --help print its own help, on standard output:
// what it does, its flags with their variables and defaults, examples. A
// bad flag is one line that says where that help is.
func TestCommandHelp(t *testing.T) {
	clearServeEnv(t)
	tests := []struct {
		name       string
		args       []string
		wantErr    string   // "" for help, which is flag.ErrHelp
		wantStdout []string // each in it
	}{
		{"serve_h", []string{"serve", "-h"}, "", []string{"Usage: pxe-pilot serve [--config-dir DIR]", "\nServe answers: the installer POSTs",
			"  --listen HOST:PORT      listen on HOST:PORT, such as :8080 or 10.0.0.2:8080 (env LISTEN; default :8080, or :8443 with TLS)\n",
			"  --once                  refuse to answer a machine again once it reported installed (env PXE_PILOT_ONCE)\n",
			"  $ pxe-pilot serve --config-dir examples/config --listen 127.0.0.1:8080\n"}},
		{"serve_help_ignores_the_environment_in_defaults", []string{"serve", "--help"}, "", []string{"(env CONFIG_DIR; default ./config)"}},
		{"render_help", []string{"render", "--help"}, "", []string{"Usage: pxe-pilot render [--config-dir DIR] (--mac MAC",
			"\n                        [--public-url URL [--state-dir DIR] [--tls-cert FILE]] [--explain]\n",
			"  --release X.Y        the ISO release X.Y, with --mac; one newer than pxe-pilot knows gets the newest rules (default 9.2)\n",
			"  $ pxe-pilot render --config-dir examples/config --mac aa:bb:cc:dd:ee:ff\n"}},
		{"validate_h", []string{"validate", "-h"}, "", []string{"Check every file and every host's answer offline", "$ pxe-pilot validate --config-dir examples/config\n"}},
		{"status_h", []string{"status", "-h"}, "", []string{"  --json", "(env PXE_PILOT_STATE_DIR)", "  --known-hosts", "  --stalled",
			"(a Go duration: 90m, 2h, 45s) as stalled (env PXE_PILOT_STALL_AFTER; default 60m)\n"}},
		{"rearm_h_before_the_machine", []string{"rearm", "-h"}, "", []string{"Usage: pxe-pilot rearm [--state-dir DIR] MACHINE\n"}},
		{"rearm_h_after_the_machine", []string{"rearm", "aa-bb-cc-dd-ee-ff", "-h"}, "", []string{"Usage: pxe-pilot rearm [--state-dir DIR] MACHINE\n"}},
		{"cert_h", []string{"cert", "-h"}, "", []string{"  --force", "  --out DIR", "(default .)"}},
		{"fingerprint_h_has_no_flags", []string{"fingerprint", "-h"}, "", []string{"Usage: pxe-pilot fingerprint FILE\n\nPrint a certificate's SHA-256 fingerprint, as prepare-iso takes it.\n\nExamples:\n"}},
		{"healthcheck_h", []string{"healthcheck", "-h"}, "", []string{"  --cert FILE  pin HTTPS to this certificate FILE, as the installer does (env PXE_PILOT_TLS_CERT)\n"}},
		{"version_h", []string{"version", "-h"}, "", []string{"Usage: pxe-pilot version\n"}},
		{"bad_flag_is_one_line", []string{"serve", "--config", "x"}, "serve: flag provided but not defined: -config; see 'pxe-pilot serve -h'", nil},
		{"bad_value_is_one_line", []string{"status", "--json=maybe"}, `status: invalid boolean value "maybe" for -json: parse error; see 'pxe-pilot status -h'`, nil},
		{"missing_value_is_one_line", []string{"render", "--mac"}, "render: flag needs an argument: -mac; see 'pxe-pilot render -h'", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONFIG_DIR", "/etc/from-the-environment")
			var stdout, stderr bytes.Buffer
			err := run(tc.args, &stdout, &stderr)
			if tc.wantErr == "" && !errors.Is(err, flag.ErrHelp) || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("run(%q) = %v; want %q", tc.args, err, tc.wantErr)
			}
			if stderr.Len() > 0 {
				t.Errorf("run(%q) wrote to stderr %q; want nothing (main says the error)", tc.args, stderr.String())
			}
			if tc.wantErr != "" && stdout.Len() > 0 {
				t.Errorf("run(%q) printed %q; want nothing but the error", tc.args, stdout.String())
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("run(%q) printed\n%s\nwant %q in it", tc.args, stdout.String(), w)
				}
			}
		})
	}
}

// Every example line of every command's -h runs, from a copy of the
// repository's examples, and succeeds: serve starts (and stops at once),
// healthcheck asks a server of examples/config.
func TestCommandHelpExamplesRun(t *testing.T) {
	clearServeEnv(t)
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "examples"), os.DirFS("examples")); err != nil {
		t.Fatal(err)
	}
	health := httptest.NewServer(&server{dir: filepath.Join(root, "examples", "config"), log: slog.New(slog.DiscardHandler)})
	defer health.Close()
	t.Chdir(root)
	// In this order: cert makes what fingerprint reads, serve the state
	// dir that status and rearm read.
	order := []string{"cert", "fingerprint", "validate", "render", "serve", "status", "rearm", "healthcheck", "version"}
	if len(order) != len(commands) {
		t.Fatalf("the test runs the examples of %d commands; there are %d", len(order), len(commands))
	}
	for _, name := range order {
		if name == "rearm" {
			// rearm is for a machine serve answered: let one ask, as it
			// would of the serve --state-dir state above.
			tr, err := newTracker("examples/config", "http://10.0.0.2:8080", "", "state", true, false)
			if err != nil {
				t.Fatal(err)
			}
			s := &server{dir: "examples/config", log: slog.New(slog.DiscardHandler), track: tr}
			if rec := send(s, "POST", "/answer", bytes.NewReader(mustRead(t, "examples/requests/pve-9.2.json"))); rec.Code != http.StatusOK {
				t.Fatalf("POST /answer with --state-dir state = %d %s", rec.Code, rec.Body)
			}
		}
		var help bytes.Buffer
		if err := run([]string{name, "-h"}, &help, io.Discard); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s -h = %v; want flag.ErrHelp", name, err)
		}
		var examples []string
		for _, line := range strings.Split(help.String(), "\n") {
			if ex, ok := strings.CutPrefix(strings.TrimSpace(line), "$ "); ok {
				examples = append(examples, ex)
			}
		}
		if len(examples) == 0 {
			t.Errorf("%s -h shows no example:\n%s", name, &help)
		}
		for i, ex := range examples {
			t.Run(fmt.Sprintf("%s_%d", name, i+1), func(t *testing.T) {
				args := strings.Fields(ex)
				if args[0] != "pxe-pilot" || args[1] != name {
					t.Fatalf("%s -h shows %q; want an example of pxe-pilot %s", name, ex, name)
				}
				for i, a := range args {
					switch {
					case i > 0 && args[i-1] == "--listen":
						args[i] = "127.0.0.1:0"
					case name == "healthcheck":
						args[i] = strings.Replace(a, "127.0.0.1:8080", health.Listener.Addr().String(), 1)
					}
				}
				var out bytes.Buffer
				var err error
				if name == "serve" {
					ctx, cancel := context.WithCancel(context.Background())
					cancel() // it starts, then stops at once
					err = serve(ctx, args[2:], &out)
				} else {
					err = run(args[1:], &out, &out)
				}
				if err != nil {
					t.Errorf("%s = %v\n%s", ex, err, &out)
				}
			})
		}
	}
}

// contrib/pxe-pilot.env, the unit's settings, names every variable
// main.go reads, with the default shown: a setting missing there is one
// the operator of the unit never learns of.
func TestEnvFileNamesEveryVariable(t *testing.T) {
	env := string(mustRead(t, "contrib/pxe-pilot.env"))
	vars := regexp.MustCompile(`PXE_PILOT_[A-Z_]*[A-Z]`).FindAllString(string(mustRead(t, "main.go")), -1)
	if len(vars) == 0 {
		t.Fatal("main.go reads no PXE_PILOT_ variable; want the ones serve takes")
	}
	slices.Sort(vars)
	for _, v := range append(slices.Compact(vars), "CONFIG_DIR", "LISTEN", "PORT") {
		if !regexp.MustCompile(`(?m)^#?` + v + `=`).MatchString(env) {
			t.Errorf("contrib/pxe-pilot.env has no %s= line; main.go reads it", v)
		}
	}
}
