// Tests of the command line: render, version, flags.

package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// render prints exactly what the server answers, for every golden case.
func TestRenderMatchesServer(t *testing.T) {
	requests, _ := filepath.Glob(filepath.Join("testdata", "*", "*request.json"))
	for _, reqFile := range requests {
		dir := filepath.Dir(reqFile)
		t.Run(filepath.Base(dir)+"/"+filepath.Base(reqFile), func(t *testing.T) {
			config := filepath.Join(dir, "config")
			code, _, want := post(t, config, mustRead(t, reqFile))
			var out bytes.Buffer
			err := run([]string{"render", "--config-dir", config, "--request", reqFile}, &out, &out)
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
		{[]string{"--mac", "aa:bb:cc:dd:ee:ff", "--release", "7.4"}, "--release \"7.4\": want a Proxmox VE ISO release from 8.2 to 9.2", true},
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
		{name: "flag_port_wins_over_env_listen", env: map[string]string{"LISTEN": "10.0.0.2:8081"}, args: []string{"--port", "9001"},
			want: serveConfig{dir: "./config", addr: ":9001", logFormat: "text"}},
		{name: "flag_listen_wins_over_env_port", env: map[string]string{"PORT": "9000"}, args: []string{"--listen", "127.0.0.1:9002"},
			want: serveConfig{dir: "./config", addr: "127.0.0.1:9002", logFormat: "text"}},
		{name: "flag_listen_wins_over_env_listen_and_port", env: map[string]string{"LISTEN": "10.0.0.2:8081", "PORT": "9000"}, args: []string{"--listen", ":9003"},
			want: serveConfig{dir: "./config", addr: ":9003", logFormat: "text"}},
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
		{name: "once_without_state_dir_is_error", args: []string{"--once"}, wantErr: "--once needs --state-dir"},
		{name: "once_from_env_without_state_dir_is_error", env: map[string]string{"PXE_PILOT_ONCE": "1"}, wantErr: "--once needs --state-dir"},
		{name: "public_url_not_http_is_error", args: []string{"--public-url", "10.0.0.2:8443"}, wantErr: `--public-url "10.0.0.2:8443"`},
		{name: "env_public_url_garbage_is_error", env: map[string]string{"PXE_PILOT_PUBLIC_URL": "pxe-pilot"}, wantErr: `--public-url "pxe-pilot"`},
		{name: "public_url_with_query_is_error", args: []string{"--public-url", "http://10.0.0.2:8080/?x=1"}, wantErr: "with no query"},
		{name: "flag_listen_and_port_is_error", args: []string{"--listen", ":8080", "--port", "8080"}, wantErr: "--listen and --port"},
		{name: "env_listen_and_port_is_error", env: map[string]string{"LISTEN": ":8080", "PORT": "8080"}, wantErr: "LISTEN and PORT"},
		{name: "flag_port_not_a_number_is_error", args: []string{"--port", "http"}, wantErr: `--port "http"`},
		{name: "flag_port_too_big_is_error", args: []string{"--port", "65536"}, wantErr: `--port "65536"`},
		{name: "flag_port_negative_is_error", args: []string{"--port", "-1"}, wantErr: `--port "-1"`},
		{name: "flag_port_empty_is_error", args: []string{"--port="}, wantErr: `--port ""`},
		{name: "env_port_not_a_number_is_error", env: map[string]string{"PORT": "eighty"}, wantErr: `PORT "eighty"`},
		{name: "flag_listen_without_port_is_error", args: []string{"--listen", "10.0.0.2"}, wantErr: `"10.0.0.2": want HOST:PORT`},
		{name: "env_listen_without_port_is_error", env: map[string]string{"LISTEN": "8080"}, wantErr: `"8080": want HOST:PORT`},
		{name: "bad_log_format_is_error", args: []string{"--log-format", "yaml"}, wantErr: `"yaml": want text or json`},
		{name: "bad_env_log_format_is_error", env: map[string]string{"PXE_PILOT_LOG_FORMAT": "logfmt"}, wantErr: `"logfmt": want text or json`},
		{name: "argument_is_error", args: []string{"/etc/pxe-pilot"}, wantErr: "serve takes no arguments"},
		{name: "unknown_flag_is_error", args: []string{"--config", "x"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"CONFIG_DIR", "PORT", "LISTEN", "PXE_PILOT_LOG_FORMAT", "PXE_PILOT_TLS_CERT", "PXE_PILOT_TLS_KEY",
				"PXE_PILOT_TOKEN_FILE", "PXE_PILOT_ALLOW", "PXE_PILOT_MAX_INFLIGHT", "PXE_PILOT_PUBLIC_URL", "PXE_PILOT_STATE_DIR", "PXE_PILOT_ONCE"} {
				t.Setenv(k, tc.env[k])
			}
			got, err := parseServe(tc.args, io.Discard)
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
		{name: "serve_help", args: []string{"serve", "-h"}, wantErr: flag.ErrHelp.Error(), wantStderr: "Usage:"},
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
