package main

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	good := mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")
	defaults := mustRead(t, "examples/config/defaults.toml")
	tests := []struct {
		name    string
		files   map[string]string
		args    []string
		wantErr bool
		want    []string // lines, in order, that the output must have
	}{
		{
			name:  "example_config_is_clean_but_warns_about_8_2",
			files: map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			want: []string{
				"warning: hosts/aa-bb-cc-dd-ee-ff.toml: global.root-password-hashed: needs an ISO of release 8.3 or later",
				"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 1 warnings",
			},
		},
		{
			name: "misnamed_host_files_get_the_name_they_need",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"hosts/AA:BB:CC:DD:EE:FF.toml": string(good),
				"hosts/aabbccddeeff.toml":      string(good),
				"hosts/pve-node-01.toml":       string(good),
				"hosts/README.md":              "not a host file",
			},
			wantErr: true,
			want: []string{
				"hosts/AA:BB:CC:DD:EE:FF.toml: never matches: name it hosts/aa-bb-cc-dd-ee-ff.toml",
				"hosts/aabbccddeeff.toml: never matches: name it hosts/aa-bb-cc-dd-ee-ff.toml",
				"hosts/pve-node-01.toml: never matches: a host file is named by a MAC",
				"0 host files checked",
			},
		},
		{
			name:    "toml_error_names_line_and_column",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": "hostname = \"x\"\n[disk\n"},
			wantErr: true,
			want:    []string{"hosts/aa-bb-cc-dd-ee-ff.toml:2:6: "},
		},
		{
			name:    "every_problem_on_a_line_of_its_own",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good) + "zfs.raid = \"raid5\"\n[global]\nkeyboard = \"us\"\n"},
			wantErr: true,
			want: []string{
				"hosts/aa-bb-cc-dd-ee-ff.toml: global.keyboard: \"us\" is not one of",
				"hosts/aa-bb-cc-dd-ee-ff.toml: disk-setup.zfs.raid: \"raid5\" is not one of",
				"2 errors",
			},
		},
		{
			name:    "release_8_2_makes_the_hash_an_error",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			args:    []string{"--release", "8.2"},
			wantErr: true,
			want:    []string{"hosts/aa-bb-cc-dd-ee-ff.toml: global.root-password-hashed (set in defaults.toml): the 8.2 installer does not know this key"},
		},
		{
			name:    "broken_defaults_is_said_once",
			files:   map[string]string{"defaults.toml": string(defaults) + "[global\n", "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			wantErr: true,
			want:    []string{"defaults.toml:", "pxe-pilot: 1 host files checked for ISO release 9.2: 1 errors, 0 warnings"},
		},
		{
			name:  "no_host_files_is_a_warning",
			files: map[string]string{"defaults.toml": string(defaults)},
			want:  []string{"warning: hosts/: missing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			var out bytes.Buffer
			err := run(append([]string{"validate", "--config-dir", dir}, tt.args...), &out, &out)
			if tt.wantErr != errors.Is(err, errValidate) {
				t.Errorf("validate = %v; want error %v\n%s", err, tt.wantErr, out.String())
			}
			rest := out.String()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("validate output lacks %q (in order):\n%s", w, out.String())
				}
				rest = rest[i+len(w):]
			}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if strings.Contains(line, "warning") && !strings.HasPrefix(line, "warning: ") && !strings.HasPrefix(line, "pxe-pilot: ") {
					t.Errorf("an error line says warning: %q", line)
				}
			}
		})
	}
}

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
		{[]string{"--mac", "aa:bb:cc:dd:ee:ff", "--release", "8.2"}, "global.root-password-hashed (set in defaults.toml): the 8.2 installer does not know this key", true},
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

// The version set at link time (-X main.version=...) wins over the build info.
func TestVersionSetAtLinkTime(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	var out bytes.Buffer
	if err := run([]string{"version"}, &out, &out); err != nil || out.String() != "pxe-pilot v1.2.3\n" {
		t.Errorf("version = %q, %v; want %q", out.String(), err, "pxe-pilot v1.2.3\n")
	}
}
