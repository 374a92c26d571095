// End-to-end tests of tracking with a fake installer: answer, script, report, --once, rearm.

package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// These tests play the Proxmox installer against the real server (serve,
// on a loopback port, with --public-url pointing at itself): it asks for
// its answer, fetches its first-boot script, and reports back when the
// install is done, as ANSWER-FORMAT.md says the installer does.

// trackedServer is a running serve with install tracking on a copy of
// examples/config.
type trackedServer struct {
	url    string // where it listens, which is also its --public-url
	config string // its --config-dir
	state  string // its --state-dir
	log    *syncBuffer
	client *http.Client
}

// startTracked copies examples/config, writes files over the copy and
// serves it with --public-url (its own URL) and --state-dir, plus flags.
func startTracked(t *testing.T, files map[string]string, flags ...string) *trackedServer {
	t.Helper()
	root := t.TempDir()
	config, state := filepath.Join(root, "config"), filepath.Join(root, "state")
	if err := os.CopyFS(config, os.DirFS("examples/config")); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(config, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// startServe listens where --listen says; the last --listen wins, so
	// the server listens on the address its --public-url names.
	addr := freePort(t)
	url := "http://" + addr
	args := append([]string{"--listen", addr, "--config-dir", config, "--public-url", url, "--state-dir", state}, flags...)
	_, log := startServe(t, url+"/health", args...)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	return &trackedServer{url: url, config: config, state: state, log: log, client: client}
}

// setupScript is a first-boot script using every placeholder.
const setupScript = `#!/bin/sh
# pxe-pilot's first-boot script for {{.Hostname}}
echo "{{.Hostname}} {{.MAC}} {{.MACHex}} {{.Link}} {{.Serial}} {{.UUID}} {{.Product}} {{.Release}}" > /root/first-boot.txt
`

// withFirstBootScript is examples/config with scripts/setup.sh, which
// defaults.toml gives every host.
func withFirstBootScript(t *testing.T) map[string]string {
	return map[string]string{
		"scripts/setup.sh": setupScript,
		"defaults.toml":    "first-boot-script = \"scripts/setup.sh\"\n\n" + string(mustRead(t, "examples/config/defaults.toml")),
	}
}

// send makes one request; goroutines other than the test's call it, as
// they may not end the test.
func (s *trackedServer) send(method, url string, body []byte) (int, string, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: reading the body: %w", method, url, err)
	}
	return resp.StatusCode, string(got), nil
}

func (s *trackedServer) do(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	code, got, err := s.send(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, got
}

func (s *trackedServer) post(t *testing.T, path string, body []byte) (int, string) {
	t.Helper()
	return s.do(t, http.MethodPost, s.url+path, body)
}

// answer asks for an answer, failing unless it is a 200, and returns it
// as sent and as parsed.
func (s *trackedServer) answer(t *testing.T, request []byte) (string, map[string]any) {
	t.Helper()
	code, body := s.post(t, "/answer", request)
	if code != http.StatusOK {
		t.Fatalf("POST /answer = %d %q; want 200", code, body)
	}
	var ans map[string]any
	if err := toml.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatalf("the answer does not parse: %v\n%s", err, body)
	}
	return body, ans
}

// logLines are the server's log lines holding every one of parts.
func (s *trackedServer) logLines(parts ...string) []string {
	var out []string
	for line := range strings.Lines(s.log.String()) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return out
}

// host reads a machine's state file, failing if it is missing.
func (s *trackedServer) host(t *testing.T, key string) hostRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.state, "hosts", key+".json"))
	if err != nil {
		t.Fatalf("state of %s: %v", key, err)
	}
	var r hostRecord
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("state of %s does not parse: %v\n%s", key, err, data)
	}
	return r
}

// stateSnapshot is every file of a dir and its bytes.
func stateSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		files[strings.TrimPrefix(path, dir)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// answerTable is a table of the answer, or nil.
func answerTable(ans map[string]any, name string) map[string]any {
	m, _ := ans[name].(map[string]any)
	return m
}

// systemInfo is the request of an installer, as examples/requests has them.
func systemInfo(release, serial, uuid string, macs ...string) []byte {
	var nics []string
	for i, m := range macs {
		nics = append(nics, fmt.Sprintf(`{"link": "eno%d", "mac": %q}`, i+1, m))
	}
	return fmt.Appendf(nil, `{"$schema": {"version": "1.0"}, "product": {"fullname": "Proxmox VE", "product": "pve", "enable_btrfs": true}, "iso": {"release": %q, "isorelease": "1"}, "dmi": {"system": {"name": "Example Server", "serial": %q, "sku": "", "uuid": %q}}, "network_interfaces": [%s]}`,
		release, serial, uuid, strings.Join(nics, ", "))
}

// The SSH host keys of pve-node-01, and their fingerprints as
// `ssh-keygen -lf` printed them.
var (
	nodeHostKeys = map[string]string{
		"ecdsa":   "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAOc1eepav/5glTNTd8jI/3zLboQekGAK7n4G6X52GMwPHfjkYT7UHgGc0evjJOU60UyQ6td1KJTuCmfqSWl4VU= root@pve-node-01\n",
		"ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGOszmebgM23+OSZpsjLgAP4AX4fryt/u2bp5EoF2BDu root@pve-node-01\n",
		"rsa":     "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCnQ41WdXvx9fhogLKVpaM/MTzOhUqMhJE0Ly8ncuaP1fZLXhYeh2XdevNFh+z3hGU7OlOk0lv4HnDyLSPyUygDGU3ZEdnw+K9JKxoRzwhBu89Cpr28JK19mKeC8mRhs4nBpbJmON8ilfqe5m/g8j6j6qgmjjKy+ANJrDPwIpvDEGAS6XxbN9Q+J3d4Wad2CWxfwwS9zDbxq5tZIZ7P4egzjfswTswcB8Zh73/YIt9GrjQGxtMtakpAGT95BJlqPpJhSEgtLnOJkNVgJoC4ZG7mW6MduS11N8788sdAC3a1dOsls1jadUldUqP8ri+7WLoYg3itn5JfpWjzZ7vtOJ0V root@pve-node-01\n",
	}
	nodeFingerprints = map[string]string{
		"ecdsa":   "SHA256:9mX5h1VS02kjPa4+2fMV5aU1qrMSPC2WeOXoE0ILqEM",
		"ed25519": "SHA256:MxcSIyJRim/3dJgRVptM6VIWvlFrbzCVekj0KlyIkUE",
		"rsa":     "SHA256:qp+YweKyqlYN7LzrC8sn0MfuPi0ZGasxcE7b+nxJN2Y",
	}
)

// installReport is the report the installer POSTs to the webhook after
// an install (ANSWER-FORMAT.md, [post-installation-webhook]).
type installReport struct {
	release, schema string
	fqdn, machineID string
	serial, uuid    string
	nics            []reportNIC
	token           *string // nil: no "token" field, as before 9.2
}

type reportNIC struct {
	name, mac, address string // address: on the management NIC alone
}

// body is the report as the installer sends it (schema 1.2): kebab-case
// JSON, with the parts pxe-pilot does not read too; false flags and
// absent addresses left out.
func (r installReport) body() []byte {
	var nics []map[string]any
	for i, n := range r.nics {
		nic := map[string]any{"name": n.name, "mac": n.mac, "udev-properties": map[string]any{"INTERFACE": n.name, "ID_NET_DRIVER": "igb"}}
		if i == 0 {
			nic["is-management"] = true
		}
		if n.address != "" {
			nic["address"] = n.address
		}
		nics = append(nics, nic)
	}
	schema := r.schema
	if schema == "" {
		schema = "1.2"
	}
	body := map[string]any{
		"$schema":        map[string]any{"version": schema},
		"debian-version": "13.2",
		"fqdn":           r.fqdn,
		"machine-id":     r.machineID,
		"product":        map[string]any{"fullname": "Proxmox VE", "short": "pve", "version": r.release + ".2"},
		"iso":            map[string]any{"release": r.release, "isorelease": "1"},
		"dmi": map[string]any{
			"system":    map[string]any{"name": "Example Server", "serial": r.serial, "sku": "", "uuid": r.uuid},
			"baseboard": map[string]any{"name": "Example Board", "serial": "BOARD0001"},
			"chassis":   map[string]any{"serial": "CHASSIS0001"},
		},
		"filesystem":           "zfs (RAID0)",
		"disks":                []any{map[string]any{"size": 1000204886016, "is-bootdisk": true, "udev-properties": map[string]any{"DEVNAME": "/dev/nvme0n1"}}},
		"boot-info":            map[string]any{"mode": "efi"},
		"cpu-info":             map[string]any{"cores": 8, "cpus": 16, "flags": "fpu vme de pse", "hvm": true, "model": "Example CPU 8-Core Processor", "sockets": 1},
		"kernel-version":       map[string]any{"machine": "x86_64", "release": "6.17.2-1-pve", "sysname": "Linux", "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1"},
		"network-interfaces":   nics,
		"ssh-public-host-keys": nodeHostKeys,
		"reboot-mode":          "reboot",
	}
	if r.token != nil {
		body["token"] = *r.token
	}
	data, _ := json.Marshal(body)
	return data
}

// node01Report is the report of pve-node-01 (examples/requests/pve-9.2.json).
func node01Report(token *string) installReport {
	return installReport{release: "9.2", fqdn: "pve-node-01.lab.example.com", machineID: "f4bf9711783248b7aaffe3ccbca3e3dc",
		serial: "EXAMPLE0001", uuid: "5f0b9c2e-8d1a-4c3e-9b7a-1e2d3c4b5a60",
		nics: []reportNIC{{"eno1", "aa:bb:cc:dd:ee:ff", "10.0.0.10/24"}, {"eno2", "aa:bb:cc:dd:ee:fe", ""}}, token: token}
}

// statusRowOf is the fields of the status table's row for a machine.
func statusRowOf(t *testing.T, config, state, machine string) []string {
	t.Helper()
	var out bytes.Buffer
	if err := run([]string{"status", "--config-dir", config, "--state-dir", state}, &out, io.Discard); err != nil {
		t.Fatalf("status = %v", err)
	}
	for _, row := range trackRows(out.String()) {
		if row[0] == machine {
			return row
		}
	}
	t.Fatalf("status has no row for %s:\n%s", machine, out.String())
	return nil
}

// statusJSON is status --json.
func statusJSON(t *testing.T, config, state string) status {
	t.Helper()
	var out bytes.Buffer
	if err := run([]string{"status", "--config-dir", config, "--state-dir", state, "--json"}, &out, io.Discard); err != nil {
		t.Fatalf("status --json = %v", err)
	}
	var st status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status --json does not parse: %v\n%s", err, out.String())
	}
	return st
}

// The whole life of a machine under --once: its answer carries the
// webhook and its script's URL, the script comes with its facts, its
// report is recorded and logged, a second install is refused until
// rearm, and status shows each step.
func TestFakeInstallerAnswerReportOnceRearm(t *testing.T) {
	srv := startTracked(t, withFirstBootScript(t), "--once")
	const key = "aa-bb-cc-dd-ee-ff"
	request := mustRead(t, "examples/requests/pve-9.2.json")

	answer, ans := srv.answer(t, request)
	hook := answerTable(ans, "post-installation-webhook")
	token, _ := hook["auth-token"].(string)
	if hook["url"] != srv.url+"/installed" || !strings.HasPrefix(token, key+".") || len(hook) != 2 {
		t.Fatalf("[post-installation-webhook] = %v; want url %s/installed and an auth-token naming %s, nothing else over http", hook, srv.url, key)
	}
	firstBoot := answerTable(ans, "first-boot")
	scriptURL, _ := firstBoot["url"].(string)
	if firstBoot["source"] != "from-url" || !strings.HasPrefix(scriptURL, srv.url+"/first-boot/") {
		t.Fatalf("[first-boot] = %v; want source from-url and a url under %s/first-boot/", firstBoot, srv.url)
	}
	if again, _ := srv.answer(t, request); again != answer {
		t.Errorf("the second answer differs from the first:\n%s\nfirst:\n%s", again, answer)
	}

	code, script := srv.do(t, http.MethodGet, scriptURL, nil)
	wantScript := strings.NewReplacer("{{.Hostname}}", "pve-node-01", "{{.MAC}}", "aa:bb:cc:dd:ee:ff", "{{.MACHex}}", "aabbccddeeff",
		"{{.Link}}", "eno1", "{{.Serial}}", "EXAMPLE0001", "{{.UUID}}", "5f0b9c2e-8d1a-4c3e-9b7a-1e2d3c4b5a60",
		"{{.Product}}", "pve", "{{.Release}}", "9.2").Replace(setupScript)
	if code != http.StatusOK || script != wantScript {
		t.Errorf("GET the first-boot script = %d\n%s\nwant 200\n%s", code, script, wantScript)
	}

	before := time.Now()
	if code, body := srv.post(t, "/installed", node01Report(&token).body()); code != http.StatusOK {
		t.Fatalf("POST /installed = %d %q; want 200", code, body)
	}
	after := time.Now()
	rec := srv.host(t, key)
	if rec.Installed.Before(before) || rec.Installed.After(after) || rec.FQDN != "pve-node-01.lab.example.com" ||
		rec.MachineID != "f4bf9711783248b7aaffe3ccbca3e3dc" || rec.MAC != "aa:bb:cc:dd:ee:ff" || rec.Address != "10.0.0.10/24" ||
		!reflect.DeepEqual(rec.SSHHostKeys, nodeFingerprints) || rec.Answers != 2 || rec.HostFile != "hosts/aa-bb-cc-dd-ee-ff.toml" || rec.Product != "pve 9.2.2" {
		t.Errorf("state after the report = %+v\nwant installed between %v and %v, its fqdn, machine-id, management NIC, 2 answers, pve 9.2.2 and the fingerprints %v",
			rec, before, after, nodeFingerprints)
	}
	reports := srv.logLines("path=/installed")
	if len(reports) != 1 {
		t.Fatalf("the report logged %d lines; want 1:\n%s", len(reports), srv.log)
	}
	for _, want := range []string{"status=200", "host=hosts/aa-bb-cc-dd-ee-ff.toml", "machine=aa-bb-cc-dd-ee-ff",
		"fqdn=pve-node-01.lab.example.com", "management_mac=aa:bb:cc:dd:ee:ff", "management_address=10.0.0.10/24",
		`ssh_host_keys="ecdsa=SHA256:9mX5h1VS02kjPa4+2fMV5aU1qrMSPC2WeOXoE0ILqEM,ed25519=SHA256:MxcSIyJRim/3dJgRVptM6VIWvlFrbzCVekj0KlyIkUE,rsa=SHA256:qp+YweKyqlYN7LzrC8sn0MfuPi0ZGasxcE7b+nxJN2Y"`,
		"machine_id=f4bf9711783248b7aaffe3ccbca3e3dc", `product="pve 9.2.2"`} {
		if !strings.Contains(reports[0], want) {
			t.Errorf("the report's log line\n%s\nlacks %s", reports[0], want)
		}
	}
	_, mac, _ := strings.Cut(token, ".")
	if strings.Contains(srv.log.String(), mac) {
		t.Errorf("the log holds the webhook token's secret part:\n%s", srv.log)
	}

	installedAt := rec.Installed.UTC().Format(time.RFC3339)
	code, refusal := srv.post(t, "/answer", request)
	want := "pxe-pilot: aa-bb-cc-dd-ee-ff was installed at " + installedAt + "; run 'pxe-pilot rearm --state-dir " + srv.state + " aa-bb-cc-dd-ee-ff' to install it again\n"
	if code != http.StatusConflict || refusal != want {
		t.Errorf("POST /answer after the report = %d %q; want 409 %q", code, refusal, want)
	}
	if got := srv.host(t, key).Answers; got != 2 {
		t.Errorf("a refused answer was counted: answers = %d; want 2", got)
	}

	// status, with a machine that asked and matched nothing.
	if code, body := srv.post(t, "/answer", mustRead(t, "examples/requests/unknown-host.json")); code != http.StatusNotFound {
		t.Fatalf("POST /answer of an unknown machine = %d %q; want 404", code, body)
	}
	// The 409 is the last thing that happened to it: it sits at the
	// installer's error console.
	rec = srv.host(t, key)
	if rec.LastRefusal == nil || rec.LastRefusal.Code != http.StatusConflict || !strings.HasPrefix(rec.LastRefusal.Reason, key+" was installed at "+installedAt) {
		t.Fatalf("last refusal = %+v; want the 409 and its line", rec.LastRefusal)
	}
	refusedAt := rec.LastRefusal.At.UTC().Format(time.RFC3339)
	wantRow := []string{key, "hosts/aa-bb-cc-dd-ee-ff.toml", "pve-node-01.lab.example.com", "10.0.0.10", "refused (409)", refusedAt, "pve-node-01.lab.example.com 10.0.0.10/24", "local disk"}
	if row := statusRowOf(t, srv.config, srv.state, key); !slices.Equal(row, wantRow) {
		t.Errorf("status row = %q; want %q", row, wantRow)
	}
	if row := statusRowOf(t, srv.config, srv.state, "02:00:00:00:00:01"); len(row) != 7 || row[1] != "To be filled by O.E.M." || row[5] != "1" || row[6] != "hosts/02-00-00-00-00-01.toml" {
		t.Errorf("status row of the unknown machine = %q; want its MAC, serial, 1 request and the file that adopts it", row)
	}
	st := statusJSON(t, srv.config, srv.state)
	i := slices.IndexFunc(st.Hosts, func(r statusRow) bool { return r.Machine == key })
	if i < 0 || !st.Hosts[i].Installed.Equal(rec.Installed) || st.Hosts[i].FQDN != rec.FQDN || !reflect.DeepEqual(st.Hosts[i].SSHHostKeys, nodeFingerprints) {
		t.Errorf("status --json hosts = %+v; want %s installed at %v with its fqdn and host keys", st.Hosts, key, rec.Installed)
	}
	if len(st.Unknown) != 1 || !slices.Equal(st.Unknown[0].MACs, []string{"02:00:00:00:00:01"}) || st.Unknown[0].Model != "Unnamed Server" {
		t.Errorf("status --json unknown = %+v; want the machine 02:00:00:00:00:01", st.Unknown)
	}

	var out bytes.Buffer
	if err := run([]string{"rearm", "--state-dir", srv.state, key}, &out, io.Discard); err != nil {
		t.Fatalf("rearm = %v", err)
	}
	if want := key + " rearmed: installed at " + installedAt + ", it will be answered again\n"; out.String() != want {
		t.Errorf("rearm printed %q; want %q", out.String(), want)
	}
	if again, _ := srv.answer(t, request); again != answer {
		t.Errorf("the answer after rearm differs from the first:\n%s\nfirst:\n%s", again, answer)
	}
	rec = srv.host(t, key)
	if !rec.Installed.IsZero() || len(rec.PreviouslyAt) != 1 || rec.PreviouslyAt[0].UTC().Format(time.RFC3339) != installedAt || rec.Answers != 3 {
		t.Errorf("state after rearm and an answer = %+v; want not installed, installed once before at %s, 3 answers", rec, installedAt)
	}
	if row := statusRowOf(t, srv.config, srv.state, key); row[4] != stateAnswered || row[7] != "install, attempt 2" {
		t.Errorf("status row after rearm = %q; want it answered, its next boot a second attempt", row)
	}
}

// A machine given a token must show it in every report, before and after
// a rearm: a rearm lets the machine be installed again, not anyone mark
// it installed without its token.
func TestFakeInstallerTokenOutlivesRearm(t *testing.T) {
	srv := startTracked(t, nil, "--once")
	const key = "aa-bb-cc-dd-ee-ff"
	request := mustRead(t, "examples/requests/pve-9.2.json")
	_, ans := srv.answer(t, request)
	token, _ := answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	wrong := forgeToken(key, []byte("not the server's secret at all"))
	rearm := func(t *testing.T) {
		if err := run([]string{"rearm", "--state-dir", srv.state, key}, io.Discard, io.Discard); err != nil {
			t.Fatalf("rearm = %v", err)
		}
	}
	report := func(token *string) func(*testing.T) (int, string) {
		return func(t *testing.T) (int, string) { return srv.post(t, "/installed", node01Report(token).body()) }
	}
	for _, step := range []struct {
		name string
		do   func(*testing.T) (int, string)
		code int
		want string // in the body
	}{
		{"tokenless_report_is_401", report(nil), 401, "carries no token, but this machine's answer gave it one"},
		{"wrong_token_is_401", report(&wrong), 401, "not one pxe-pilot gave"},
		{"its_token_is_200", report(&token), 200, "recorded"},
		{"answer_is_409", func(t *testing.T) (int, string) { return srv.post(t, "/answer", request) }, 409, "was installed at"},
		{"rearm", func(t *testing.T) (int, string) { rearm(t); return 0, "" }, 0, ""},
		{"tokenless_report_after_rearm_is_401", report(nil), 401, "carries no token, but this machine's answer gave it one"},
		{"wrong_token_after_rearm_is_401", report(&wrong), 401, "not one pxe-pilot gave"},
		{"answer_after_rearm_is_200", func(t *testing.T) (int, string) { return srv.post(t, "/answer", request) }, 200, "auth-token = '" + token + "'"},
		{"tokenless_report_after_the_new_answer_is_401", report(nil), 401, "carries no token"},
		{"its_token_after_rearm_is_200", report(&token), 200, "recorded"},
		{"rearm_again", func(t *testing.T) (int, string) { rearm(t); return 0, "" }, 0, ""},
		{"tokenless_report_after_a_second_rearm_is_401", report(nil), 401, "carries no token"},
	} {
		code, body := step.do(t)
		if code != step.code || !strings.Contains(body, step.want) {
			t.Errorf("%s: %d %q; want %d containing %q", step.name, code, body, step.code, step.want)
		}
	}
	if rec := srv.host(t, key); !rec.TokenGiven || len(rec.PreviouslyAt) != 2 || !rec.Installed.IsZero() {
		t.Errorf("state after two installs and two rearms = %+v; want token_given, two previous installs, not installed", rec)
	}
}

// Each release gets what it knows: 8.3 a webhook without a token, and its
// report is known by its MACs, else its serial; 8.2 no webhook at all,
// and a script it cannot fetch refuses its answer.
func TestFakeInstallerOlderReleases(t *testing.T) {
	t.Run("8.3_gets_a_webhook_without_token_and_is_known_by_its_MAC", func(t *testing.T) {
		srv := startTracked(t, withFirstBootScript(t), "--once")
		_, ans := srv.answer(t, systemInfo("8.3", "EXAMPLE0002", "5f0b9c2e-8d1a-4c3e-9b7a-1e2d3c4b5a62", "aa:bb:cc:dd:ee:01"))
		if hook := answerTable(ans, "post-installation-webhook"); !reflect.DeepEqual(hook, map[string]any{"url": srv.url + "/installed"}) {
			t.Errorf("[post-installation-webhook] = %v; want only url %s/installed", hook, srv.url)
		}
		scriptURL, _ := answerTable(ans, "first-boot")["url"].(string)
		if code, script := srv.do(t, http.MethodGet, scriptURL, nil); code != http.StatusOK || !strings.Contains(script, `"pve-node-02 aa:bb:cc:dd:ee:01 aabbccddee01 eno1 EXAMPLE0002 5f0b9c2e-8d1a-4c3e-9b7a-1e2d3c4b5a62 pve 8.3"`) {
			t.Errorf("GET the 8.3 script = %d\n%s\nwant its facts filled in", code, script)
		}
		report := installReport{release: "8.3", schema: "1.0", fqdn: "pve-node-02.lab.example.com", machineID: "0123456789abcdef0123456789abcdef",
			nics: []reportNIC{{"eno1", "aa:bb:cc:dd:ee:01", "10.0.0.52/24"}}}
		if code, body := srv.post(t, "/installed", report.body()); code != http.StatusOK {
			t.Fatalf("POST /installed of 8.3 = %d %q; want 200", code, body)
		}
		if rec := srv.host(t, "aa-bb-cc-dd-ee-01"); rec.Installed.IsZero() || rec.FQDN != "pve-node-02.lab.example.com" || rec.Answers != 1 {
			t.Errorf("state = %+v; want installed, its fqdn, 1 answer", rec)
		}
	})
	t.Run("8.3_report_without_a_MAC_host_file_is_known_by_its_serial", func(t *testing.T) {
		srv := startTracked(t, nil, "--once")
		srv.answer(t, systemInfo("8.3", "EXAMPLE0042", "", "02:00:00:00:00:42"))
		report := installReport{release: "8.3", schema: "1.0", fqdn: "pve-EXAMPLE0042.lab.example.com", serial: "EXAMPLE0042",
			nics: []reportNIC{{"eno1", "02:00:00:00:00:42", "10.0.0.42/24"}}}
		if code, body := srv.post(t, "/installed", report.body()); code != http.StatusOK {
			t.Fatalf("POST /installed = %d %q; want 200", code, body)
		}
		if rec := srv.host(t, "serial-EXAMPLE0042"); rec.Installed.IsZero() || rec.Answers != 1 {
			t.Errorf("state of serial-EXAMPLE0042 = %+v; want installed after 1 answer", rec)
		}
		if code, body := srv.post(t, "/answer", systemInfo("8.3", "EXAMPLE0042", "", "02:00:00:00:00:42")); code != http.StatusConflict ||
			!strings.Contains(body, "serial-EXAMPLE0042 was installed at") {
			t.Errorf("POST /answer after the report = %d %q; want 409 naming serial-EXAMPLE0042", code, body)
		}
	})
	t.Run("8.2_gets_no_webhook_and_the_log_says_so", func(t *testing.T) {
		srv := startTracked(t, nil, "--once")
		_, ans := srv.answer(t, mustRead(t, "examples/requests/pve-8.2.json"))
		if hook, ok := ans["post-installation-webhook"]; ok {
			t.Errorf("the 8.2 answer has a webhook, which 8.2 rejects: %v", hook)
		}
		if notes := srv.logLines("ISO 8.2 has no post-installation webhook"); len(notes) != 1 {
			t.Errorf("the log says %d times that 8.2 gets no webhook; want 1:\n%s", len(notes), srv.log)
		}
		if rec := srv.host(t, "aa-bb-cc-dd-ee-01"); rec.Answers != 1 || rec.Release != "8.2" {
			t.Errorf("state = %+v; want 1 answer to 8.2", rec)
		}
	})
	t.Run("8.2_answer_with_a_first_boot_script_is_refused_naming_the_release", func(t *testing.T) {
		srv := startTracked(t, withFirstBootScript(t), "--once")
		code, body := srv.post(t, "/answer", mustRead(t, "examples/requests/pve-8.2.json"))
		if code != http.StatusInternalServerError || !strings.Contains(body, "the 8.2 installer has no [first-boot]") || strings.Count(body, "\n") != 1 {
			t.Errorf("POST /answer of 8.2 with a first-boot script = %d %q; want 500, one line naming 8.2", code, body)
		}
		// The refusal is kept; no answer is counted.
		if rec := srv.host(t, "aa-bb-cc-dd-ee-01"); rec.Answers != 0 || rec.Pending != 0 || rec.LastRefusal == nil || rec.LastRefusal.Code != http.StatusInternalServerError ||
			rec.LastRefusal.Reason != strings.TrimSuffix(strings.TrimPrefix(body, "pxe-pilot: "), "\n") {
			t.Errorf("state = %+v (refusal %+v); want no answer, and the 500 with the line the installer got", rec, rec.LastRefusal)
		}
	})
}

// forgeToken is a token for key made with a secret that is not the
// server's, exactly as the server makes its own.
func forgeToken(key string, secret []byte) string {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, "webhook")
	h.Write([]byte{0})
	io.WriteString(h, key)
	return key + "." + hex.EncodeToString(h.Sum(nil))
}

// Reports that cannot say which machine they are, or say it with a token
// pxe-pilot did not give, change nothing; bad bodies are 400; forged
// script URLs are 404; and none of it crashes the server.
func TestFakeInstallerRefusedReports(t *testing.T) {
	srv := startTracked(t, withFirstBootScript(t), "--once")
	_, ans := srv.answer(t, mustRead(t, "examples/requests/pve-9.2.json"))
	token, _ := answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	scriptURL, _ := answerTable(ans, "first-boot")["url"].(string)
	_, sig, _ := strings.Cut(token, ".")
	flipped := token[:len(token)-1] + "0"
	if strings.HasSuffix(token, "0") {
		flipped = token[:len(token)-1] + "1"
	}

	str := func(s string) *string { return &s }
	report := func(token *string) []byte { return node01Report(token).body() }
	many := installReport{release: "8.3", schema: "1.0"}
	for i := range 300 {
		many.nics = append(many.nics, reportNIC{fmt.Sprintf("eth%d", i), fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff), ""})
	}
	nameless := installReport{release: "8.3", schema: "1.0"}
	claimsOlder := node01Report(nil)
	claimsOlder.release, claimsOlder.schema = "8.3", "1.0"
	unreadable := node01Report(nil)
	unreadable.release = "banana"
	unknown := installReport{release: "8.3", schema: "1.0", nics: []reportNIC{{"eno1", "02:00:00:00:00:99", "10.0.0.99/24"}}}
	for _, tc := range []struct {
		name string
		body []byte
		code int
		want string // in the one-line body
	}{
		{"another_machines_key_with_this_ones_HMAC_is_401", report(str("aa-bb-cc-dd-ee-01." + sig)), 401, "not one pxe-pilot gave"},
		{"a_serial_key_with_this_ones_HMAC_is_401", report(str("serial-EXAMPLE0042." + sig)), 401, "not one pxe-pilot gave"},
		{"a_token_made_with_another_secret_is_401", report(str(forgeToken("aa-bb-cc-dd-ee-ff", []byte("not the server's secret at all")))), 401, "not one pxe-pilot gave"},
		{"a_token_with_one_digit_changed_is_401", report(str(flipped)), 401, "not one pxe-pilot gave"},
		{"a_key_without_its_HMAC_is_401", report(str("aa-bb-cc-dd-ee-ff")), 401, "not one pxe-pilot gave"},
		{"an_empty_token_is_401", report(str("")), 401, "not one pxe-pilot gave"},
		{"a_9.2_report_without_token_is_401", report(nil), 401, "carries no token"},
		{"a_9.2_report_with_a_null_token_is_401", bytes.Replace(report(str("x")), []byte(`"token":"x"`), []byte(`"token":null`), 1), 401, "carries no token"},
		// The machine was answered as 9.2 and given a token: a report that
		// says it is older, to need none, is still a report without one.
		{"a_report_claiming_8.3_for_a_machine_given_a_token_is_401", claimsOlder.body(), 401, "token"},
		{"a_report_with_an_unreadable_release_for_a_machine_given_a_token_is_401", unreadable.body(), 401, "token"},
		{"an_unknown_machine_is_404", unknown.body(), 404, "no host file"},
		{"an_empty_body_is_400", nil, 400, "not the installer's report"},
		{"not_JSON_is_400", []byte("fqdn=pve-node-01"), 400, "not the installer's report"},
		{"a_JSON_array_is_400", []byte(`[{"fqdn": "pve-node-01"}]`), 400, "not the installer's report"},
		{"two_reports_in_one_body_is_400", append(report(str(token)), report(str(token))...), 400, "more than one JSON value"},
		{"schema_2.0_is_400", bytes.Replace(report(str(token)), []byte(`"version":"1.2"`), []byte(`"version":"2.0"`), 1), 400, `$schema.version "2.0"`},
		{"no_schema_is_400", bytes.Replace(report(str(token)), []byte(`"$schema"`), []byte(`"schema"`), 1), 400, `$schema.version ""`},
		{"network_interfaces_not_a_list_is_400", []byte(`{"$schema": {"version": "1.2"}, "network-interfaces": "eno1"}`), 400, "not the installer's report"},
		{"300_NICs_is_400", many.body(), 400, "300 interfaces"},
		{"an_8.3_report_naming_no_MAC_serial_or_UUID_is_400", nameless.body(), 400, "cannot say which machine"},
		{"a_body_over_1_MiB_is_413", append(report(str(token)), bytes.Repeat([]byte(" "), 1<<20)...), 413, "report body is over 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stateSnapshot(t, srv.state)
			code, body := srv.post(t, "/installed", tc.body)
			if code != tc.code || !strings.HasPrefix(body, "pxe-pilot: ") || !strings.Contains(body, tc.want) || strings.Count(body, "\n") != 1 {
				t.Errorf("POST /installed = %d %q; want %d, one line containing %q", code, body, tc.code, tc.want)
			}
			if after := stateSnapshot(t, srv.state); !reflect.DeepEqual(after, before) {
				t.Errorf("a refused report changed the state dir:\n%v\nwas\n%v", after, before)
			}
		})
	}

	// A script URL is a capability: changing what it names, or its
	// signature, makes it no URL pxe-pilot signed.
	ticket := strings.TrimPrefix(scriptURL, srv.url+"/first-boot/")
	payload, scriptSig, _ := strings.Cut(ticket, ".")
	decoded, _ := base64.RawURLEncoding.DecodeString(payload)
	otherMachine := base64.RawURLEncoding.EncodeToString(bytes.Replace(decoded, []byte("aa-bb-cc-dd-ee-ff"), []byte("aa-bb-cc-dd-ee-01"), 1))
	otherScript := base64.RawURLEncoding.EncodeToString(bytes.Replace(decoded, []byte("scripts/setup.sh"), []byte("defaults.toml"), 1))
	for _, tc := range []struct{ name, ticket string }{
		{"another_machine", otherMachine + "." + scriptSig},
		{"another_file", otherScript + "." + scriptSig},
		{"no_signature", payload},
		{"the_webhook_tokens_HMAC", payload + "." + base64.RawURLEncoding.EncodeToString(mustValue(hex.DecodeString(sig)))},
		{"garbage", "..."},
	} {
		if code, body := srv.do(t, http.MethodGet, srv.url+"/first-boot/"+tc.ticket, nil); code != http.StatusNotFound || strings.Contains(body, "#!/bin/sh") {
			t.Errorf("GET a script URL with %s = %d %q; want 404", tc.name, code, body)
		}
	}
	if code, _ := srv.do(t, http.MethodPost, scriptURL, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST the script URL = %d; want 405", code)
	}
	if code, _ := srv.do(t, http.MethodGet, srv.url+"/installed", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /installed = %d; want 405", code)
	}

	// Still up, never panicked, and the genuine report still goes through.
	if code, body := srv.post(t, "/installed", report(str(token))); code != http.StatusOK {
		t.Errorf("the genuine report after the refused ones = %d %q; want 200", code, body)
	}
	if code, _ := srv.do(t, http.MethodGet, srv.url+"/health", nil); code != http.StatusOK {
		t.Errorf("GET /health after the refused reports = %d; want 200", code)
	}
	if strings.Contains(srv.log.String(), "panic") {
		t.Errorf("the server panicked:\n%s", srv.log)
	}
}

func mustValue[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Two machines that hosts/default.toml answers are two machines: each
// its key (its first MAC) and token, and --once refuses the one that was
// installed, not the other.
func TestFakeInstallerDefaultHostKeepsMachinesApart(t *testing.T) {
	srv := startTracked(t, map[string]string{"hosts/default.toml": "hostname = \"pve-{{.MACHex}}\"\n\n[disk]\ntarget = \"sda\"\n"}, "--once")
	a := systemInfo("9.2", "A1", "", "02:00:00:00:0a:01", "02:00:00:00:0a:02")
	b := systemInfo("9.2", "B1", "", "02:00:00:00:0b:01")
	_, ansA := srv.answer(t, a)
	_, ansB := srv.answer(t, b)
	tokenA, _ := answerTable(ansA, "post-installation-webhook")["auth-token"].(string)
	tokenB, _ := answerTable(ansB, "post-installation-webhook")["auth-token"].(string)
	if !strings.HasPrefix(tokenA, "02-00-00-00-0a-01.") || !strings.HasPrefix(tokenB, "02-00-00-00-0b-01.") || tokenA[18:] == tokenB[18:] {
		t.Fatalf("tokens = %q, %q; want each named for its machine's first MAC, with different HMACs", tokenA, tokenB)
	}

	// A's key with B's HMAC is no token.
	_, sigB, _ := strings.Cut(tokenB, ".")
	forged := "02-00-00-00-0a-01." + sigB
	reportA := installReport{release: "9.2", fqdn: "pve-020000000a01.lab.example.com", serial: "A1",
		nics: []reportNIC{{"eno1", "02:00:00:00:0a:01", "10.0.0.61/24"}, {"eno2", "02:00:00:00:0a:02", ""}}, token: &forged}
	if code, body := srv.post(t, "/installed", reportA.body()); code != http.StatusUnauthorized {
		t.Errorf("A's report with B's HMAC = %d %q; want 401", code, body)
	}
	reportA.token = &tokenA
	if code, body := srv.post(t, "/installed", reportA.body()); code != http.StatusOK {
		t.Fatalf("A's report = %d %q; want 200", code, body)
	}

	code, body := srv.post(t, "/answer", a)
	if code != http.StatusConflict || !strings.HasPrefix(body, "pxe-pilot: 02-00-00-00-0a-01 was installed at ") {
		t.Errorf("A's answer after its report = %d %q; want 409 naming 02-00-00-00-0a-01", code, body)
	}
	srv.answer(t, b)
	if recA, recB := srv.host(t, "02-00-00-00-0a-01"), srv.host(t, "02-00-00-00-0b-01"); recA.Installed.IsZero() || recA.Answers != 1 || !recB.Installed.IsZero() || recB.Answers != 2 ||
		recA.HostFile != "hosts/default.toml" || recB.HostFile != "hosts/default.toml" {
		t.Errorf("state: A %+v, B %+v; want A installed after 1 answer, B not installed after 2, both by hosts/default.toml", recA, recB)
	}
	if row := statusRowOf(t, srv.config, srv.state, "02-00-00-00-0a-01"); row[1] != "hosts/default.toml" || row[4] != "refused (409)" ||
		row[6] != "pve-020000000a01.lab.example.com 10.0.0.61/24" || row[7] != "local disk" {
		t.Errorf("status row of A = %q; want it under default, refused its answer once installed, with its fqdn, its next boot from its disk", row)
	}
	if row := statusRowOf(t, srv.config, srv.state, "02-00-00-00-0b-01"); row[4] != stateRepeated || row[6] != "-" || row[7] != "install, attempt 3" {
		t.Errorf("status row of B = %q; want it answered twice and not installed, its next boot its third attempt", row)
	}
}

// Many machines answered and reporting at once, under the race detector:
// every answer counted, every report recorded on its own machine, no
// update lost, no temporary file left.
func TestFakeInstallerConcurrentAnswersAndReports(t *testing.T) {
	const (
		hosts        = 50
		answersEach  = 6 // besides the first, which gives the test its token
		reportsEach  = 2 // the installer reports once; a retry must not confuse anything
		unknowns     = 5
		unknownAsked = 4
	)
	// Host i reports with its token (9.2) if i%3 == 0, by its MAC (8.3) if
	// i%3 == 1, and never if i%3 == 2.
	files := map[string]string{}
	mac := func(i int) string { return fmt.Sprintf("02:00:00:00:01:%02x", i) }
	key := func(i int) string { return strings.ReplaceAll(mac(i), ":", "-") }
	release := func(i int) string { return map[int]string{0: "9.2", 1: "8.3", 2: "9.2"}[i%3] }
	for i := range hosts {
		files["hosts/"+key(i)+".toml"] = fmt.Sprintf("hostname = \"node-%02d\"\n\n[disk]\ntarget = \"sda\"\n", i)
	}
	srv := startTracked(t, files, "--once")
	srv.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 512

	requests, tokens := make([][]byte, hosts), make([]string, hosts)
	for i := range hosts {
		requests[i] = systemInfo(release(i), fmt.Sprintf("S%02d", i), "", mac(i))
		_, ans := srv.answer(t, requests[i])
		tokens[i], _ = answerTable(ans, "post-installation-webhook")["auth-token"].(string)
	}

	type result struct {
		host   int // -1: an unknown machine
		report bool
		code   int
		body   string
		err    error
	}
	var jobs []func() result
	for i := range hosts {
		for range answersEach {
			jobs = append(jobs, func() result {
				code, body, err := srv.send(http.MethodPost, srv.url+"/answer", requests[i])
				return result{i, false, code, body, err}
			})
		}
		if i%3 == 2 {
			continue
		}
		r := installReport{release: release(i), fqdn: fmt.Sprintf("node-%02d.lab.example.com", i), machineID: fmt.Sprintf("%032x", i),
			nics: []reportNIC{{"eno1", mac(i), fmt.Sprintf("10.0.1.%d/24", i)}}}
		if i%3 == 0 {
			r.token = &tokens[i]
		}
		for range reportsEach {
			jobs = append(jobs, func() result {
				code, body, err := srv.send(http.MethodPost, srv.url+"/installed", r.body())
				return result{i, true, code, body, err}
			})
		}
	}
	for u := range unknowns {
		for range unknownAsked {
			jobs = append(jobs, func() result {
				code, body, err := srv.send(http.MethodPost, srv.url+"/answer", systemInfo("9.2", "", "", fmt.Sprintf("02:00:00:00:02:%02x", u)))
				return result{-1, false, code, body, err}
			})
		}
	}

	// Every job waits for the others to start, then all go at once.
	results := make([]result, len(jobs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for j, job := range jobs {
		wg.Go(func() {
			<-start
			results[j] = job()
		})
	}
	close(start)
	wg.Wait()
	t.Logf("%d requests at once: %d hosts, %d answers and up to %d reports each, %d unknown machines", len(jobs), hosts, answersEach, reportsEach, unknowns)

	answered := make([]int, hosts)
	for _, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("host %d: %v", r.host, r.err)
		case r.host < 0:
			if r.code != http.StatusNotFound {
				t.Errorf("an unknown machine's answer = %d %q; want 404", r.code, r.body)
			}
		case r.report:
			if r.code != http.StatusOK {
				t.Errorf("host %d's report = %d %q; want 200", r.host, r.code, r.body)
			}
		case r.code == http.StatusOK:
			answered[r.host]++
			if !strings.Contains(r.body, fmt.Sprintf("'node-%02d.lab.example.com'", r.host)) {
				t.Errorf("host %d was answered another host's answer:\n%s", r.host, r.body)
			}
		case r.code == http.StatusConflict && r.host%3 != 2:
			if !strings.HasPrefix(r.body, "pxe-pilot: "+key(r.host)+" was installed at ") {
				t.Errorf("host %d's refusal = %q; want it to name %s", r.host, r.body, key(r.host))
			}
		default:
			t.Errorf("host %d's answer = %d %q; want 200, or 409 once it reported", r.host, r.code, r.body)
		}
	}
	for i := range hosts {
		rec := srv.host(t, key(i))
		if rec.Answers != 1+answered[i] {
			t.Errorf("%s: %d answers recorded; %d were sent", key(i), rec.Answers, 1+answered[i])
		}
		wantFQDN, wantID := fmt.Sprintf("node-%02d.lab.example.com", i), fmt.Sprintf("%032x", i)
		if i%3 == 2 {
			wantFQDN, wantID = "", ""
		}
		if (i%3 == 2) != rec.Installed.IsZero() || rec.FQDN != wantFQDN || rec.MachineID != wantID {
			t.Errorf("%s: state %+v; want installed %v, fqdn %q, machine-id %q", key(i), rec, i%3 != 2, wantFQDN, wantID)
		}
	}
	for u := range unknowns {
		r, err := readRecord[unknownRecord](filepath.Join(srv.state, "unknown", fmt.Sprintf("02-00-00-00-02-%02x.json", u)))
		if err != nil || r.Requests != unknownAsked {
			t.Errorf("unknown machine %d: %+v, %v; want %d requests", u, r, err, unknownAsked)
		}
	}
	// Nothing but the state: no temporary file left behind.
	var stray []string
	for name := range stateSnapshot(t, srv.state) {
		dir, file := filepath.Split(name)
		if !(name == "/secret" || name == "/.lock" || (dir == "/hosts/" || dir == "/unknown/") && strings.HasSuffix(file, ".json") && !strings.HasPrefix(file, ".")) {
			stray = append(stray, name)
		}
	}
	if len(stray) > 0 {
		t.Errorf("files left in the state dir: %q", stray)
	}
	if n := len(mustValue(os.ReadDir(filepath.Join(srv.state, "hosts")))); n != hosts {
		t.Errorf("%d files in the state dir's hosts; want %d", n, hosts)
	}
}

// The crash test: a child process, this test binary re-run, writes state
// files through the state store as fast as it can; the test kills it with
// SIGKILL again and again, and after each kill every file must be a
// whole version that was written, never torn.

const stateWriterEnv = "PXE_PILOT_TEST_STATE_WRITER" // the state dir the child writes

// The machines the child writes, and the size of their records: a few
// pages each, so that a kill can land in the middle of a write.
var (
	crashKeys     = []string{"02-00-00-00-00-0a", "02-00-00-00-00-0b", "serial-CRASH1", "uuid-5f0b9c2e-8d1a-4c3e-9b7a-1e2d3c4b5a60"}
	crashKeyTypes = 64
)

// crashVersion is version n of a machine's record: every field says n, so
// that a file mixing two versions cannot pass for either.
func crashVersion(key string, n int) hostRecord {
	r := hostRecord{Host: key, Answers: n, FQDN: fmt.Sprintf("v%d.crash.example", n), MachineID: fmt.Sprintf("%032x", n),
		SSHHostKeys: map[string]string{}}
	for k := range crashKeyTypes {
		r.SSHHostKeys[fmt.Sprintf("type%02d", k)] = fmt.Sprintf("SHA256:%d-%s", n, strings.Repeat(string(rune('a'+n%26)), 120))
	}
	return r
}

// TestStateWriterProcess is the child of TestKill9LeavesEveryStateFileWhole;
// run by itself, it has nothing to do.
func TestStateWriterProcess(t *testing.T) {
	dir := os.Getenv(stateWriterEnv)
	if dir == "" {
		t.Skip("the child of TestKill9LeavesEveryStateFileWhole")
	}
	st, err := openState(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for round := 1; ; round++ {
		for _, key := range crashKeys {
			if _, err := st.updateHost(key, func(r *hostRecord) { *r = crashVersion(key, r.Answers+1) }); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
		}
		fmt.Println("round", round) // every key is at this round's version or later
	}
}

// tempFiles are the temporary files of writes to the state dir's hosts.
func tempFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "hosts", ".*.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// crashCheck checks every state file: it parses, it is a version that
// was written, not older than the rounds the writers said they finished
// (done) nor than it was when last checked (seen, which it updates).
func crashCheck(t *testing.T, dir, when string, done int, seen map[string]int) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "hosts", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(crashKeys) {
		t.Fatalf("%s: state files of %d machines; want %d", when, len(paths), len(crashKeys))
	}
	for _, path := range paths {
		key := strings.TrimSuffix(filepath.Base(path), ".json")
		var r hostRecord
		if err := json.Unmarshal(mustRead(t, path), &r); err != nil {
			t.Fatalf("%s: %s is torn: %v", when, path, err)
		}
		if !reflect.DeepEqual(r, crashVersion(key, r.Answers)) {
			t.Fatalf("%s: %s is no version that was written: %+v", when, path, r)
		}
		if r.Answers < done || r.Answers < seen[key] {
			t.Fatalf("%s: %s is at version %d; the writers finished %d rounds, and it was at %d before", when, path, r.Answers, done, seen[key])
		}
		seen[key] = r.Answers
	}
}

// stopInWrite stops the process while it is in the middle of a write: a
// temporary file that was not there before exists, and is still there
// once the process is stopped. While it waits for one, it checks the
// state files as any reader (status) would see them. It gives up after
// many tries.
func stopInWrite(t *testing.T, p *os.Process, dir string, done int, seen map[string]int) bool {
	t.Helper()
	before := tempFiles(t, dir)
	newTemp := func() bool {
		for n := range tempFiles(t, dir) {
			if !before[n] {
				return true
			}
		}
		return false
	}
	for range 10_000 {
		crashCheck(t, dir, "while writing", done, seen)
		if !newTemp() {
			continue
		}
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		waitStopped(t, p.Pid)
		if newTemp() {
			return true
		}
		if err := p.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	return false
}

// waitStopped waits until Linux says the process is stopped: a SIGSTOP
// is delivered after kill(2) returns.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for range 1_000_000 {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...: comm may hold anything, the state follows its last ')'.
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("process %d never stopped", pid)
}

// Half the kills land right after the writer said it finished a round,
// wherever it then is; the other half while it is provably in the middle
// of a write, between creating its temporary file and renaming it.
func TestKill9LeavesEveryStateFileWhole(t *testing.T) {
	const kills = 10
	dir := t.TempDir()
	if _, err := openState(dir); err != nil {
		t.Fatal(err)
	}
	secret := mustRead(t, filepath.Join(dir, "secret"))
	done := 0                // rounds the children said they finished
	seen := map[string]int{} // the version of each machine's file when last checked
	inWrite := 0             // kills that landed in the middle of a write
	for kill := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStateWriterProcess$")
		cmd.Env = append(os.Environ(), stateWriterEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		// Kill after a different number of rounds each time: 1, 3, 5, ...
		lines, rounds := bufio.NewScanner(stdout), 0
		for rounds < 1+2*kill && lines.Scan() {
			if strings.HasPrefix(lines.Text(), "round ") {
				rounds++
			} else if strings.HasPrefix(lines.Text(), "error ") {
				t.Fatalf("the writer failed: %s", lines.Text())
			}
		}
		if rounds < 1+2*kill {
			t.Fatalf("kill %d: the writer stopped after %d rounds: %v", kill, rounds, lines.Err())
		}
		done += rounds
		caught := kill%2 == 1 && stopInWrite(t, cmd.Process, dir, done, seen)
		if kill%2 == 1 && !caught {
			t.Errorf("kill %d: never caught the writer in the middle of a write", kill)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		// The next writer's openState removes what this kill left.
		if caught {
			inWrite++
			if len(tempFiles(t, dir)) == 0 {
				t.Errorf("kill %d, in the middle of a write, left no temporary file", kill)
			}
		}

		crashCheck(t, dir, fmt.Sprintf("after kill %d", kill), done, seen)
		if got := mustRead(t, filepath.Join(dir, "secret")); !bytes.Equal(got, secret) {
			t.Fatalf("kill %d: the secret changed from %q to %q", kill, secret, got)
		}
	}
	st, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if left := tempFiles(t, dir); len(left) > 0 || st.hosts != len(crashKeys) {
		t.Errorf("openState after the kills left %d temporary files and counts %d machines; want none left and %d counted", len(left), st.hosts, len(crashKeys))
	}
	t.Logf("%d kills (%d in the middle of a write) after %d rounds of %d writes", kills, inWrite, done, len(crashKeys))
}
