// Fault tests: config files replaced, rewritten and removed while the server answers.

package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests drive pxe-pilot as many installers at once would, over
// loopback, while its config changes under it. They are bounded by a
// count of requests, never by time.

// faultHosts is how many machines the fault tests configure.
const faultHosts = 40

// faultMAC is the MAC of machine i.
func faultMAC(i int) string { return fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256) }

// Two versions of defaults.toml and of each host file: every answer must be
// the composition of one version of each, never anything else.
func faultDefaults(v int) string {
	return fmt.Sprintf(`[global]
keyboard = "en-us"
country = "us"
timezone = "%s"
domain = "v%d.lab.example.com"
mailto = "ops-v%d@example.com"
root_password_hash = "$6$fault$Yb2u0ZkQb3T1cXz1mGQy9m0oLq0r6G1g8b7h2aQx8pWc0eVd9aH3jK4lM5nO6pQ7rS8tU9vW0xY1zA2bC3dE4/"

[network]
dns = "10.0.%d.53"

[disk]
filesystem = "zfs"
`, []string{"UTC", "Europe/Berlin"}[v], v, v, v)
}

func faultHost(i, v int) string {
	return fmt.Sprintf(`# machine %d, version %d
hostname = "pve-%d-v%d"

[network]
address = "10.%d.%d.%d/16"
gateway = "10.%d.0.1"

[disk]
target = ["sda", "sdb"]
zfs.raid = "raid1"
`, i, v, i, v, v, i/256, i%256+2, v)
}

// replace writes a file as an operator's tool should: to a temporary file
// in the same dir, then renamed over the old one.
func replace(t testing.TB, path, content string) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := tmp.WriteString(content); err != nil {
		t.Error(err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Error(err)
	}
}

// faultConfig writes version 0 of everything and returns the config dir and
// every answer each machine may get: each version of defaults.toml
// composed with each version of its host file.
func faultConfig(t *testing.T) (dir string, valid []map[string]bool) {
	t.Helper()
	files := map[string]string{"defaults.toml": faultDefaults(0)}
	for i := range faultHosts {
		files["hosts/"+hostFileName(strings.ReplaceAll(faultMAC(i), ":", ""))] = faultHost(i, 0)
	}
	dir = writeTree(t, files)
	valid = make([]map[string]bool, faultHosts)
	for i := range faultHosts {
		valid[i] = map[string]bool{}
		for dv := range 2 {
			for hv := range 2 {
				d, err := parseLayer("defaults.toml", []byte(faultDefaults(dv)))
				if err != nil {
					t.Fatal(err)
				}
				h, err := parseLayer("hosts/x.toml", []byte(faultHost(i, hv)))
				if err != nil {
					t.Fatal(err)
				}
				mac := strings.ReplaceAll(faultMAC(i), ":", "")
				out, err := compose([]layer{d, h}, facts{mac: mac, release: r92, btrfs: true})
				if err != nil {
					t.Fatalf("machine %d, defaults v%d, host v%d: %v", i, dv, hv, err)
				}
				valid[i][string(out)] = true
			}
		}
	}
	return dir, valid
}

// installer posts machine i's request on a connection of its own, as the
// installer does, and returns the status and body.
func installer(client *http.Client, url string, i int) (int, string, error) {
	body := installerBody("pve", "9.2", faultMAC(i))
	resp, err := client.Post(url+"/answer", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func newInstallerClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}}
}

// TestAnswersWhileFilesAreReplaced: hundreds of installers at once, while
// defaults.toml and host files are replaced atomically, get each a 200
// and an answer composed of one whole version of every file it reads.
func TestAnswersWhileFilesAreReplaced(t *testing.T) {
	dir, valid := faultConfig(t)
	s := &server{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		slots: make(chan struct{}, defaultMaxInflight)}
	srv := httptest.NewServer(s)
	defer srv.Close()

	const clients, perClient = 200, 20
	var done atomic.Bool
	var replaced atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for v := 1; !done.Load(); v++ {
			if rng.IntN(4) == 0 {
				replace(t, filepath.Join(dir, "defaults.toml"), faultDefaults(v%2))
			} else {
				i := rng.IntN(faultHosts)
				replace(t, filepath.Join(dir, "hosts", hostFileName(strings.ReplaceAll(faultMAC(i), ":", ""))), faultHost(i, v%2))
			}
			replaced.Add(1)
		}
	}()

	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	client := newInstallerClient()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range perClient {
				i := (c*perClient + r) % faultHosts
				code, body, err := installer(client, srv.URL, i)
				requests.Add(1)
				if err != nil || code != http.StatusOK || !valid[i][body] {
					if failures.Add(1) <= 3 {
						t.Errorf("machine %d: %d %v\n%s\nwant 200 and one of its %d valid answers", i, code, err, body, len(valid[i]))
					}
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	<-writerDone
	t.Logf("%d requests from %d concurrent installers, %d files replaced meanwhile: %d failures",
		requests.Load(), clients, replaced.Load(), failures.Load())
	if replaced.Load() < 10 {
		t.Errorf("only %d files were replaced during the requests; the test proved little", replaced.Load())
	}
}

// TestHalfWrittenFile: a host file rewritten in place and read while half
// written gives that machine a 500 naming the file, never another answer;
// once written, the next request gets the new answer.
func TestHalfWrittenFile(t *testing.T) {
	dir, valid := faultConfig(t)
	s := &server{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const i = 7
	name := "hosts/" + hostFileName(strings.ReplaceAll(faultMAC(i), ":", ""))
	path := filepath.Join(dir, filepath.FromSlash(name))
	post := func() (int, string) {
		rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", faultMAC(i))))
		return rec.Code, rec.Body.String()
	}
	next := faultHost(i, 1)
	// Cut points inside a line: in a string, a key, a table header.
	for _, cut := range []int{0, strings.Index(next, "pve-") + 2, strings.Index(next, "address") + 3, strings.Index(next, "[disk]") + 3, len(next) - 5} {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(next[:cut])
		code, body := post()
		if code != http.StatusInternalServerError || !strings.HasPrefix(body, "pxe-pilot: "+name) {
			t.Errorf("request while %s holds %d of %d bytes = %d %q; want a 500 naming %s", name, cut, len(next), code, body, name)
		}
		f.WriteString(next[cut:])
		f.Close()
		code, body = post()
		if code != http.StatusOK || !valid[i][body] || !strings.Contains(body, "pve-7-v1") {
			t.Errorf("request once %s is written = %d\n%s\nwant the new answer", name, code, body)
		}
		replace(t, path, faultHost(i, 0))
	}
}

// TestHalfWrittenFilesUnderLoad: while one host file is rewritten in place
// again and again, its machine gets either an answer of a whole version or
// a 500 naming its file; every other machine gets its answer.
func TestHalfWrittenFilesUnderLoad(t *testing.T) {
	dir, valid := faultConfig(t)
	s := &server{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(s)
	defer srv.Close()
	const i = 3
	name := "hosts/" + hostFileName(strings.ReplaceAll(faultMAC(i), ":", ""))
	path := filepath.Join(dir, filepath.FromSlash(name))

	var done atomic.Bool
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for v := 1; !done.Load(); v++ {
			content := faultHost(i, v%2)
			cut := strings.Index(content, "address") + 3 // mid-key
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.WriteString(content[:cut])
			f.WriteString(content[cut:])
			f.Close()
		}
	}()
	var wg sync.WaitGroup
	var requests, answered, refused, failures atomic.Int64
	client := newInstallerClient()
	for c := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 20 {
				m := i
				if r%2 == 1 {
					m = (c + r) % faultHosts // another machine
				}
				code, body, err := installer(client, srv.URL, m)
				requests.Add(1)
				switch {
				case err == nil && code == http.StatusOK && valid[m][body]:
					answered.Add(1)
				case err == nil && m == i && code == http.StatusInternalServerError && strings.HasPrefix(body, "pxe-pilot: "+name):
					refused.Add(1)
				default:
					if failures.Add(1) <= 3 {
						t.Errorf("machine %d: %d %v %q; want 200 with a valid answer or, for machine %d, a 500 naming %s", m, code, err, body, i, name)
					}
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	<-writerDone
	t.Logf("%d requests from 100 concurrent installers while %s was rewritten in place: %d answered, %d refused naming it, %d failures",
		requests.Load(), name, answered.Load(), refused.Load(), failures.Load())
}

// TestConfigDirComesAndGoes: the config dir disappearing turns /health to
// 503, and answers fail with a 500; its return turns both back, with no
// restart.
func TestConfigDirComesAndGoes(t *testing.T) {
	dir, valid := faultConfig(t)
	s := &server{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(s)
	defer srv.Close()
	client := newInstallerClient()
	check := func(state string, wantHealth, wantAnswer int) {
		t.Helper()
		resp, err := client.Get(srv.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		health, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantHealth {
			t.Errorf("%s: GET /health = %d %s; want %d", state, resp.StatusCode, health, wantHealth)
		}
		code, body, err := installer(client, srv.URL, 0)
		if err != nil || code != wantAnswer || code == http.StatusOK && !valid[0][body] {
			t.Errorf("%s: POST /answer = %d %v %q; want %d", state, code, err, body, wantAnswer)
		}
	}
	check("at first", 200, 200)
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	check("config dir gone", 503, 500)
	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	check("config dir back", 200, 200)
	if err := os.Chmod(filepath.Join(dir, "defaults.toml"), 0); err == nil && os.Geteuid() != 0 {
		check("defaults.toml unreadable", 503, 500)
		os.Chmod(filepath.Join(dir, "defaults.toml"), 0o644)
	}
	replace(t, filepath.Join(dir, "defaults.toml"), "[global\n")
	check("defaults.toml broken", 503, 500)
	replace(t, filepath.Join(dir, "defaults.toml"), faultDefaults(1))
	check("defaults.toml mended", 200, 200)
}

// deployVersion is version v of a whole config dir: defaults.toml, a host
// file for each of faultHosts machines and hosts/default.toml, every file
// marked with v so that an answer shows which versions it was made of.
func deployVersion(v int) map[string]string {
	files := map[string]string{
		"defaults.toml":      faultDefaults(v % 2),
		"hosts/default.toml": fmt.Sprintf("hostname = \"anyone-v%d\"\n[disk]\ntarget = \"sda\"\n", v),
	}
	for i := range faultHosts {
		files["hosts/"+hostFileName(strings.ReplaceAll(faultMAC(i), ":", ""))] = faultHost(i, v%2)
	}
	return files
}

// writeFiles writes files into dir, creating it, in the order of names.
func writeFiles(t *testing.T, dir string, files map[string]string, names []string) {
	for _, name := range names {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Error(err)
			return
		}
		if err := os.WriteFile(path, []byte(files[name]), 0o644); err != nil {
			t.Error(err)
			return
		}
	}
}

// TestDeploysThatReplaceTheWholeDir: installers ask while deploys replace
// the whole config dir, as rsync, git and copy scripts do: renamed into
// place, removed and copied in file by file (defaults.toml first, or last),
// or flipped by a symlink. Every answer is one machine's own, composed of
// one version of the config; a machine with its own host file never gets
// hosts/default.toml's answer, and none gets an answer without
// defaults.toml. What cannot be answered so is refused with a 503 (or,
// should a deploy leave no dir at the path for longer than the settle
// time, a 500).
func TestDeploysThatReplaceTheWholeDir(t *testing.T) {
	withSettleTime(t, 3*time.Second) // as served
	const (
		deploys   = 24
		askers    = 8
		machines  = faultHosts + 1 // the last one has no host file: hosts/default.toml answers it
		maxAsks   = 4000           // per asker: bounded even if a deploy stalls
		unknownID = faultHosts
	)
	// Every answer each machine may get: one version of everything.
	valid := make([]map[string]bool, machines)
	for i := range valid {
		valid[i] = map[string]bool{}
	}
	for v := range 2 {
		files := deployVersion(v)
		d, err := parseLayer("defaults.toml", []byte(files["defaults.toml"]))
		if err != nil {
			t.Fatal(err)
		}
		for i := range machines {
			name := "hosts/default.toml"
			if i < faultHosts {
				name = "hosts/" + hostFileName(strings.ReplaceAll(faultMAC(i), ":", ""))
			}
			h, err := parseLayer(name, []byte(files[name]))
			if err != nil {
				t.Fatal(err)
			}
			mac := strings.ReplaceAll(faultMAC(i), ":", "")
			f := facts{mac: mac, release: r92, btrfs: true}
			if i == unknownID {
				f.mac = ""
			}
			out, err := compose([]layer{d, h}, f)
			if err != nil {
				t.Fatalf("machine %d, version %d: %v", i, v, err)
			}
			valid[i][string(out)] = true
		}
	}

	styles := []struct {
		name string
		// The dir is filled file by file, so a machine may find neither its
		// own file nor hosts/default.toml yet: a 404, which installs
		// nothing, from a dir that is still the one at the config path.
		mayNotFind bool
		deploy     func(t *testing.T, root, link string, v int) // makes version v the config at link
	}{
		{"renamed_into_place", false, func(t *testing.T, root, link string, v int) {
			next, old := link+".next", link+".old"
			writeFiles(t, next, deployVersion(v), sortedKeys(deployVersion(v)))
			os.Rename(link, old)
			os.Rename(next, link)
			os.RemoveAll(old)
		}},
		{"removed_and_copied_defaults_first", true, func(t *testing.T, root, link string, v int) {
			os.RemoveAll(link)
			writeFiles(t, link, deployVersion(v), sortedKeys(deployVersion(v))) // defaults.toml sorts first
		}},
		{"removed_and_copied_defaults_last", true, func(t *testing.T, root, link string, v int) {
			os.RemoveAll(link)
			names := sortedKeys(deployVersion(v))
			names = append(names[1:], names[0])
			slices.Reverse(names[:len(names)-1]) // hosts/default.toml before the machines' files
			writeFiles(t, link, deployVersion(v), names)
		}},
		{"symlink_flipped", false, func(t *testing.T, root, link string, v int) {
			release := filepath.Join(root, fmt.Sprintf("release-%d", v))
			writeFiles(t, release, deployVersion(v), sortedKeys(deployVersion(v)))
			tmp := link + ".new"
			os.Remove(tmp)
			if err := os.Symlink(release, tmp); err != nil {
				t.Error(err)
			}
			os.Rename(tmp, link)
			os.RemoveAll(filepath.Join(root, fmt.Sprintf("release-%d", v-2)))
		}},
	}
	for _, style := range styles {
		t.Run(style.name, func(t *testing.T) {
			root := t.TempDir()
			link := filepath.Join(root, "config")
			if style.name == "symlink_flipped" {
				style.deploy(t, root, link, 0)
			} else {
				writeFiles(t, link, deployVersion(0), sortedKeys(deployVersion(0)))
			}
			s := &server{dir: link, log: slog.New(slog.NewTextHandler(io.Discard, nil))}

			var done atomic.Bool
			var asked, ok, busy, gone, notYet, wrong atomic.Int64
			var wg sync.WaitGroup
			for a := range askers {
				wg.Go(func() {
					for n := 0; n < maxAsks && !done.Load(); n++ {
						i := (a + n*askers) % machines
						rec := send(s, "POST", "/answer", strings.NewReader(installerBody("pve", "9.2", faultMAC(i))))
						asked.Add(1)
						body := rec.Body.String()
						switch {
						case rec.Code == http.StatusOK && valid[i][body]:
							ok.Add(1)
						case rec.Code == http.StatusServiceUnavailable && strings.Contains(body, "config dir is being"):
							busy.Add(1)
						case rec.Code == http.StatusInternalServerError && strings.Contains(body, "config dir "+link):
							gone.Add(1)
						case rec.Code == http.StatusNotFound && style.mayNotFind && strings.Contains(body, "no host file for this machine"):
							notYet.Add(1)
						default:
							wrong.Add(1)
							if wrong.Load() <= 5 {
								t.Errorf("machine %d got %d %q", i, rec.Code, body)
							}
						}
					}
				})
			}
			for v := 1; v <= deploys; v++ {
				style.deploy(t, root, link, v)
			}
			done.Store(true)
			wg.Wait()
			t.Logf("%d requests during %d deploys: %d answered, %d refused as mid-deploy (503), %d not found yet (404), %d with the dir not there (500), %d wrong",
				asked.Load(), deploys, ok.Load(), busy.Load(), notYet.Load(), gone.Load(), wrong.Load())
			if wrong.Load() != 0 {
				t.Errorf("%d of %d answers were wrong", wrong.Load(), asked.Load())
			}
		})
	}
}
