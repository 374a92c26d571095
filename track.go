// Install tracking: the webhook, the state dir, the report, first-boot scripts and rearm.

package main

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Install tracking is opt-in: serve --public-url has every answer report
// back to pxe-pilot when the install is done, and can hand out first-boot
// scripts; --state-dir keeps a small JSON file per machine of what it was
// answered and when it reported; --once refuses to answer a machine again
// once it reported, which ends an install loop. Without these flags,
// pxe-pilot keeps nothing.

// tracker is what serve's tracking flags set up; a nil *tracker is off.
type tracker struct {
	publicURL   string      // how installers reach pxe-pilot, without a trailing slash
	fingerprint string      // of the TLS certificate, when serving HTTPS
	state       *stateStore // --state-dir; nil keeps nothing
	once        bool        // --once
	secret      []byte      // signs tokens and script URLs: the state dir's, else this process's
	dir         string      // the config dir, for first-boot scripts
	dry         bool        // render's: records nothing and refuses no one
}

// newTracker sets tracking up, creating the state dir and its secret; a
// dry one (render's) creates nothing and needs the secret serve made.
func newTracker(configDir, publicURL, fingerprint, stateDir string, once, dry bool) (*tracker, error) {
	if once && stateDir == "" {
		return nil, errors.New("--once needs --state-dir: it refuses machines the state dir says were installed")
	}
	if publicURL == "" && stateDir == "" {
		return nil, nil
	}
	t := &tracker{publicURL: strings.TrimRight(publicURL, "/"), fingerprint: fingerprint, once: once, dir: configDir, dry: dry}
	if publicURL != "" {
		if err := checkPublicURL(publicURL); err != nil {
			return nil, err
		}
		if u, err := neturl.Parse(publicURL); err == nil && strings.EqualFold(u.Scheme, "http") && fingerprint != "" {
			return nil, fmt.Errorf("--public-url %q is http://, but pxe-pilot serves HTTPS; give its https:// URL", publicURL)
		}
	}
	switch {
	case stateDir != "" && dry:
		secret, err := readSecret(filepath.Join(stateDir, "secret"), false)
		if err != nil {
			return nil, err
		}
		t.state, t.secret = &stateStore{dir: stateDir, secret: secret}, secret
	case stateDir != "":
		st, err := openState(stateDir)
		if err != nil {
			return nil, err
		}
		t.state, t.secret = st, st.secret
	default:
		// Without a state dir, script URLs are signed with a secret of
		// this process: they stop working at a restart, which only
		// matters between an answer and its script's fetch.
		t.secret = make([]byte, 32)
		rand.Read(t.secret)
	}
	return t, nil
}

func checkPublicURL(s string) error {
	if msg := checkURL(s); msg != "" {
		return fmt.Errorf("--public-url %q: %s", s, msg)
	}
	u, err := neturl.Parse(s)
	if err != nil || strings.ContainsAny(s, "?#") {
		return fmt.Errorf("--public-url %q: want the server's base URL, such as https://10.0.0.2:8443, with no query", s)
	}
	// A path is right only behind a proxy that strips it; /answer is the
	// answer URL given where the base URL was meant.
	for _, route := range []string{"/answer", "/installed", "/health"} {
		if strings.HasSuffix(strings.TrimRight(u.Path, "/"), route) {
			return fmt.Errorf("--public-url %q: give the base URL installers reach pxe-pilot by, without %s: reports go to URL/installed", s, route)
		}
	}
	return nil
}

// machineKey names a machine for tracking, as its host file is named (no
// .toml): the MAC that matched, else the serial or UUID that did, else,
// for a machine answered by hosts/default.toml, its first MAC. Two
// machines that share hosts/default.toml are never confused.
func machineKey(req request, m match) string {
	switch m.by {
	case "mac":
		return strings.TrimSuffix(hostFileName(m.key), ".toml")
	case "serial", "uuid":
		return m.by + "-" + m.key
	}
	if len(req.macs) > 0 {
		return strings.TrimSuffix(hostFileName(req.macs[0]), ".toml")
	}
	return ""
}

// sign is the HMAC of a message in a domain, so that a webhook token can
// never pass for a script URL's signature or the other way round.
func (t *tracker) sign(domain, msg string) []byte {
	h := hmac.New(sha256.New, t.secret)
	io.WriteString(h, domain)
	h.Write([]byte{0})
	io.WriteString(h, msg)
	return h.Sum(nil)
}

// webhookToken is the auth-token of a machine's webhook: its key and an
// HMAC of it, so that a report names its machine and cannot be forged for
// another. The same machine always gets the same token, so its answers
// stay byte-identical.
func (t *tracker) webhookToken(key string) string {
	return key + "." + hex.EncodeToString(t.sign("webhook", key))
}

// tokenKey checks a report's token and returns the machine it names.
func (t *tracker) tokenKey(token string) (string, bool) {
	i := strings.LastIndexByte(token, '.')
	if i <= 0 {
		return "", false
	}
	mac := token[i+1:]
	got, err := hex.DecodeString(mac)
	if err != nil || strings.ToLower(mac) != mac { // one spelling only
		return "", false
	}
	key := token[:i]
	return key, hmac.Equal(got, t.sign("webhook", key))
}

// hook is the [post-installation-webhook] pxe-pilot adds to an answer for
// the requesting release, or nil, and why not.
func (t *tracker) hook(key string, rel release) (*webhook, string) {
	if t == nil || t.publicURL == "" {
		return nil, ""
	}
	if rel.before(r83) {
		return nil, fmt.Sprintf("ISO %s has no post-installation webhook; answered without pxe-pilot's, so this install will not report back", rel)
	}
	w := &webhook{url: t.publicURL + "/installed", fingerprint: t.fingerprint}
	switch {
	case t.state == nil || key == "":
	case rel.before(r92):
		return w, fmt.Sprintf("ISO %s takes no webhook auth-token (9.2 does); its report will be known by its MACs", rel)
	default:
		w.token = t.webhookToken(key)
	}
	return w, ""
}

// webhook is a [post-installation-webhook] table to add to an answer that
// has none of its own.
type webhook struct {
	url, fingerprint, token string
}

// The state dir: DIR/secret, DIR/hosts/<key>.json, DIR/unknown/<mac>.json,
// and DIR/unknown-dropped.json, the count of unknown machines' records
// dropped to make room for newer ones.

// stateStore keeps one small JSON file per machine. Every write is to a
// temporary file, synced and renamed over the old one, so a crash leaves
// either the old file or the new, never a torn one; mu makes each update
// a whole read-modify-write, so concurrent requests lose nothing.
//
// hosts and unknown keep track of the state files on disk: those found at
// the start, then each new file once it is written, so a write that fails
// (a full disk) takes no room under the caps.
type stateStore struct {
	dir    string
	secret []byte
	mu     sync.Mutex // within this process
	lock   *os.File   // DIR/.lock, flocked around each update: between processes (serve and rearm)
	hosts  int        // files in DIR/hosts, which hosts/default.toml could grow without end

	// unknown are the files in DIR/unknown, by name, with the time each
	// machine last asked: read once at the start, so that making room
	// costs no scan of the folder. A flood of made-up MACs must not grow
	// it without end, nor hide a new machine from the operator: past
	// unknownCap, a new machine's record takes the place of the one that
	// asked longest ago (see makeRoom).
	unknown    map[string]time.Time
	unknownCap int // maxUnknown; tests make it smaller

	replace func(path string, data []byte, perm fs.FileMode) error // replaceFile; tests fail it as a full disk would
}

// maxUnknown bounds the machines recorded from 404s, maxHosts those
// answered: far above any site, and a bound on what a flood can write.
// Past maxUnknown the oldest are dropped; past maxHosts nothing more is
// recorded, since a record of hosts/ is what --once refuses by.
const (
	maxUnknown = 1000
	maxHosts   = 20000
)

func openState(dir string) (*stateStore, error) {
	for _, d := range []string{dir, filepath.Join(dir, "hosts"), filepath.Join(dir, "unknown")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	secret, err := readSecret(filepath.Join(dir, "secret"), true)
	if err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if info, err := os.Stat(dir); err == nil && os.Geteuid() == 0 {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			lock.Chown(int(st.Uid), int(st.Gid)) // as writeAtomic does
		}
	}
	s := &stateStore{dir: dir, secret: secret, lock: lock}
	err = s.locked(func() (err error) {
		var hosts []string
		if hosts, err = stateFiles(filepath.Join(dir, "hosts")); err == nil {
			s.hosts = len(hosts)
			s.unknown, err = lastAsked(filepath.Join(dir, "unknown"))
		}
		return err
	})
	if err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// stateFiles are the names of the state files of one of the state dir's
// folders; it removes the temporary files of writes that a crash cut
// short: openState calls it holding the lock, so no write is under way.
func stateFiles(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	var files []string
	for _, name := range names {
		switch {
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp-"): // writeAtomic's
			os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, "."):
			files = append(files, name)
		}
	}
	return files, nil
}

// lastAsked reads when each unknown machine of dir last asked: its
// record's last_seen, or for a record that cannot be read, the time it
// was written.
func lastAsked(dir string) (map[string]time.Time, error) {
	names, err := stateFiles(dir)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]time.Time, len(names))
	for _, name := range names {
		path := filepath.Join(dir, name)
		r, err := readRecord[unknownRecord](path)
		if err != nil || r.LastSeen.IsZero() {
			if info, err := os.Lstat(path); err == nil {
				r.LastSeen = info.ModTime()
			}
		}
		seen[name] = r.LastSeen
	}
	return seen, nil
}

// locked runs fn holding the state dir against other goroutines and other
// processes, so that each read-modify-write is whole.
func (s *stateStore) locked(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := syscall.Flock(int(s.lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("state: locking %s: %w", s.lock.Name(), err)
	}
	defer syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	return fn()
}

// readSecret reads the state dir's secret, creating it the first time
// if create is set.
func readSecret(path string, create bool) ([]byte, error) {
	data, err := readFile(path, nil) // a FIFO is refused, not waited on
	if errors.Is(err, fs.ErrNotExist) && create {
		s := make([]byte, 32)
		rand.Read(s)
		data = []byte(hex.EncodeToString(s) + "\n")
		if err := writeAtomic(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("state dir: creating the secret: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("state dir: reading the secret: %w (serve makes it at its first start)", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("state dir: %s is not a secret pxe-pilot made (64 hex digits); remove it to make a new one, which changes every webhook token", path)
	}
	return secret, nil
}

// hostRecord is what the state dir knows of one machine.
type hostRecord struct {
	Host        string    `json:"host"`                // the machine key: aa-bb-cc-dd-ee-ff, serial-S1, uuid-...
	Match       string    `json:"match,omitempty"`     // what matched its host file: "mac aa:bb:...", "serial S1", "default"
	HostFile    string    `json:"host_file,omitempty"` // the host file that answered it last
	FirstAnswer time.Time `json:"first_answer,omitzero"`
	LastAnswer  time.Time `json:"last_answer,omitzero"`
	Answers     int       `json:"answers,omitempty"`
	Release     string    `json:"release,omitempty"`               // of the last answer
	TokenGiven  bool      `json:"token_given,omitempty"`           // an answer's webhook had an auth-token: its reports must show it, rearmed or not
	Pending     int       `json:"answers_since_install,omitempty"` // answers since it last reported or was rearmed: /boot.ipxe's attempt, less one

	Installed     time.Time         `json:"installed,omitzero"` // when it reported; zero once rearmed
	FQDN          string            `json:"fqdn,omitempty"`
	MachineID     string            `json:"machine_id,omitempty"`
	MAC           string            `json:"management_mac,omitempty"`
	Address       string            `json:"management_address,omitempty"`
	SSHHostKeys   map[string]string `json:"ssh_host_keys,omitempty"` // key type -> SHA256:... fingerprint
	PreviouslyAt  []time.Time       `json:"previous_installs,omitempty"`
	RearmedAt     time.Time         `json:"rearmed,omitzero"`
	ReportRelease string            `json:"report_release,omitempty"`  // the report's iso.release
	Product       string            `json:"product,omitempty"`         // the report's product.short and product.version: "pve 9.2.2"
	SSHPublicKeys map[string]string `json:"ssh_public_keys,omitempty"` // key type (ssh-ed25519, ...) -> base64 blob, vetted; see report.hostKeys

	LastRefusal *refusal  `json:"last_refusal,omitempty"` // the last time pxe-pilot refused it an answer (409, 500), and why
	StallLogged time.Time `json:"stall_logged,omitzero"`  // the LastAnswer whose stall serve logged, so that it is logged once
}

// A refusal is the last time pxe-pilot refused a machine an answer: the
// status and the one line its console got, clipped (see refusalOf).
type refusal struct {
	At     time.Time `json:"at"`
	Code   int       `json:"code"`
	Reason string    `json:"reason"`
}

// unknownRecord is a machine that asked and matched no host file.
type unknownRecord struct {
	MACs      []string  `json:"macs"` // aa:bb:cc:dd:ee:ff, in the installer's order
	Serial    string    `json:"serial,omitempty"`
	UUID      string    `json:"uuid,omitempty"`
	Model     string    `json:"model,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Requests  int       `json:"requests"`

	Adopt       string   `json:"adopt_with,omitempty"`   // the host file that would answer it: hosts/<its first MAC>.toml; readFleet's, never stored
	LastRefusal *refusal `json:"last_refusal,omitempty"` // its last 404, and the line it got
}

// hostPath is a machine's state file; key is checked to be one
// machineKey makes, since rearm takes it from the command line.
func (s *stateStore) hostPath(key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("%q is not a machine: name it as its host file is named, aa-bb-cc-dd-ee-ff, serial-<serial> or uuid-<uuid>", key)
	}
	return filepath.Join(s.dir, "hosts", key+".json"), nil
}

func validKey(key string) bool {
	m, problem := hostMatch(key)
	return problem == "" && m.by != "default"
}

// host reads a machine's record; a machine never seen has an empty one.
func (s *stateStore) host(key string) (hostRecord, error) {
	path, err := s.hostPath(key)
	if err != nil {
		return hostRecord{}, err
	}
	return readRecord[hostRecord](path)
}

// readRecord reads a state file; one that is not there is an empty record.
func readRecord[T any](path string) (T, error) {
	var r T
	// As a config file is read: a FIFO or a device planted in the state
	// dir is refused, not waited on, and a file of over 1 MiB too.
	data, err := readFile(path, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, &badStateFile{name: stateFileName(path), why: "cannot be read (" + unwrapPath(err).Error() + ")"}
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, &badStateFile{name: stateFileName(path), why: "is not a record pxe-pilot can read (" + strings.TrimPrefix(err.Error(), "json: ") + ")"}
	}
	return r, nil
}

// A badStateFile is a state file that cannot be read (torn by hand,
// garbage, a directory): what is wrong with it and how to mend it, naming
// it as the state dir holds it, since a reply to a request may show it.
type badStateFile struct {
	name string // hosts/aa-bb-cc-dd-ee-ff.json
	why  string
}

func (e *badStateFile) Error() string {
	fix := "remove it, and pxe-pilot forgets the machine: serve --once answers it again"
	if strings.HasPrefix(e.name, "unknown/") {
		fix = "remove it; the machine is recorded anew when it asks again"
	}
	return fmt.Sprintf("state file %s %s; %s", e.name, e.why, fix)
}

// updateHost changes a machine's record with change, as one atomic step.
func (s *stateStore) updateHost(key string, change func(*hostRecord)) (hostRecord, error) {
	return s.changeHost(key, true, change)
}

// changeHost is updateHost; where create is false, a machine with no
// record is left without one, and the record returned is empty.
func (s *stateStore) changeHost(key string, create bool, change func(*hostRecord)) (hostRecord, error) {
	path, err := s.hostPath(key)
	if err != nil {
		return hostRecord{}, err
	}
	var r hostRecord
	err = s.locked(func() error {
		if !create {
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				return nil
			}
		}
		if r, err = readRecord[hostRecord](path); err != nil {
			return err
		}
		r.Host = key
		change(&r)
		return s.save(path, r)
	})
	return r, err
}

// recordAnswer notes an answer served to a machine.
func (s *stateStore) recordAnswer(key string, m match, rel release, tokenGiven bool, now time.Time) error {
	_, err := s.updateHost(key, func(r *hostRecord) {
		if r.FirstAnswer.IsZero() {
			r.FirstAnswer = now
		}
		r.LastAnswer = now
		r.Answers++
		r.Pending++
		r.Match, r.HostFile, r.Release = m.String(), m.file, rel.String()
		r.TokenGiven = r.TokenGiven || tokenGiven // a later answer of another release must not lift it
	})
	return err
}

// keepRefusal keeps a refusal /answer or /boot.ipxe gave, in one write,
// so that status shows why a machine is not installing: a 404 on the
// unknown machine's record (as many as maxUnknown); another refusal on the
// record of the machine its own host file names, or, for one that
// hosts/default.toml matched, only on a record it has already, since that
// file matches any MAC a request makes up. A 200 refuses nothing, nor
// does a 400 (the request names no machine) or a 503 (the config dir is
// being deployed). key is machineKey's, or the one tracking knows the
// machine by; the refusal is built only where it is kept.
func (s *stateStore) keepRefusal(req request, key string, m match, status int, reason []byte, now time.Time) error {
	switch {
	case status == http.StatusNotFound:
		ref := refusalOf(status, reason, now)
		return s.recordUnknown(req, now, &ref)
	case status == http.StatusOK || status == http.StatusBadRequest || status == http.StatusServiceUnavailable || m.file == "" || key == "":
		return nil
	}
	ref := refusalOf(status, reason, now)
	_, err := s.changeHost(key, m.by != "default", func(r *hostRecord) {
		r.LastRefusal = &ref
		r.Match, r.HostFile = m.String(), m.file
	})
	return err
}

// refusalOf is the refusal a status and reason make: the line the
// machine's console got, as fail sends it, clipped. The reason is what
// the request's log line says too, which never holds a secret.
func refusalOf(status int, reason []byte, now time.Time) refusal {
	line := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(reason), "?"))
	if len(line) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut] + "..."
	}
	return refusal{At: now, Code: status, Reason: line}
}

// maxReason bounds a refusal's reason as kept: room for the longest line
// pxe-pilot says of a machine's config, and a bound on what it stores.
const maxReason = 512

// recordUnknown notes a machine that matched no host file, so that the
// operator can copy its MAC into a new one; ref is its 404, or nil.
func (s *stateStore) recordUnknown(req request, now time.Time, ref *refusal) error {
	if len(req.macs) == 0 {
		return nil
	}
	name := strings.TrimSuffix(hostFileName(req.macs[0]), ".toml") + ".json"
	path := filepath.Join(s.dir, "unknown", name)
	return s.locked(func() error {
		r, err := readRecord[unknownRecord](path)
		if err != nil {
			return err
		}
		if _, known := s.unknown[name]; !known {
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				if err := s.makeRoom(now); err != nil {
					return err
				}
			}
		}
		if r.Requests == 0 {
			r.FirstSeen = now
		}
		r.MACs = colonMACs(req.macs)
		r.Serial, r.UUID, r.Model = clipField(req.serial), clipField(req.uuid), clipField(req.model)
		r.LastSeen = now
		r.Requests++
		r.Adopt = "" // status says it from the MACs: a file an older pxe-pilot wrote loses it
		if ref != nil {
			r.LastRefusal = ref
		}
		if err := s.save(path, r); err != nil {
			return err
		}
		if s.unknown == nil {
			s.unknown = map[string]time.Time{}
		}
		s.unknown[name] = now
		return nil
	})
}

// makeRoom drops the records of the unknown machines that asked longest
// ago until there is room for one more under unknownCap, and counts them
// in DIR/unknown-dropped.json, so that status can say records were lost.
// It runs under the lock. serve alone writes these records, but each is
// read again before it goes: one that asked since (in another process
// sharing the dir) is kept by its new time, and one removed by hand only
// leaves the count.
func (s *stateStore) makeRoom(now time.Time) error {
	limit := cmp.Or(s.unknownCap, maxUnknown)
	dropped := 0
	for len(s.unknown) >= limit {
		name := oldestAsked(s.unknown)
		path := filepath.Join(s.dir, "unknown", name)
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			delete(s.unknown, name)
			continue
		}
		if r, err := readRecord[unknownRecord](path); err == nil && r.LastSeen.After(s.unknown[name]) {
			s.unknown[name] = r.LastSeen
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: making room for a new unknown machine: removing %s: %w", stateFileName(path), unwrapPath(err))
		}
		delete(s.unknown, name)
		dropped++
	}
	if dropped == 0 {
		return nil
	}
	d, err := readDropped(s.dir)
	if err != nil {
		d = unknownDropped{} // a count that cannot be read starts again
	}
	if d.Dropped == 0 {
		d.Since = now
	}
	d.Dropped += dropped
	d.Last = now
	data, _ := json.MarshalIndent(d, "", "  ")
	replace := s.replace
	if replace == nil {
		replace = replaceFile
	}
	if err := replace(filepath.Join(s.dir, droppedFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing state file %s: %w", droppedFile, err)
	}
	return nil
}

// oldestAsked is the machine of seen that asked longest ago; of two that
// asked at once, the first by name.
func oldestAsked(seen map[string]time.Time) string {
	var oldest string
	for name, at := range seen {
		if o := seen[oldest]; oldest == "" || at.Before(o) || at.Equal(o) && name < oldest {
			oldest = name
		}
	}
	return oldest
}

// droppedFile counts, in the state dir, the unknown machines' records
// dropped to make room for newer ones; removing it starts the count
// again.
const droppedFile = "unknown-dropped.json"

// unknownDropped is what droppedFile holds.
type unknownDropped struct {
	Dropped int       `json:"dropped"`
	Since   time.Time `json:"since"` // the first drop counted
	Last    time.Time `json:"last"`
}

// String is the count as status says it.
func (d unknownDropped) String() string {
	return fmt.Sprintf("%s dropped since %s, the oldest first, to keep the newest %d (the last at %s): more machines asked than that, or a flood of made-up MACs did; remove %s to count again.",
		plural(d.Dropped, "record")+" of unknown machines", when(d.Since), maxUnknown, when(d.Last), droppedFile)
}

// readDropped reads the state dir's count of dropped records; none is
// a count of 0.
func readDropped(stateDir string) (unknownDropped, error) {
	var d unknownDropped
	data, err := readFile(filepath.Join(stateDir, droppedFile), nil)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &d)
	}
	if err != nil {
		return unknownDropped{}, fmt.Errorf("state file %s is not a count pxe-pilot can read (%s); remove it, and the count starts again", droppedFile, strings.TrimPrefix(unwrapPath(err).Error(), "json: "))
	}
	return d, nil
}

// clipField bounds what a request may make pxe-pilot store.
func clipField(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}

// rearm forgets that a machine was installed, so that --once answers it
// again; its install stays in previous_installs. It keeps token_given: a
// machine once given a token must show it in every report, or anyone
// could mark it installed again with a tokenless one after a rearm.
func (s *stateStore) rearm(key string, now time.Time) (hostRecord, error) {
	path, err := s.hostPath(key)
	if err != nil {
		return hostRecord{}, err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return hostRecord{}, fmt.Errorf("%s: no such machine in the state dir %s (pxe-pilot status lists them)", key, s.dir)
	}
	return s.updateHost(key, func(r *hostRecord) {
		if !r.Installed.IsZero() {
			r.PreviouslyAt = append(r.PreviouslyAt, r.Installed)
		}
		r.Installed, r.Pending = time.Time{}, 0
		r.RearmedAt = now
	})
}

// markStalled marks each machine of the state dir that is stalled at now
// and was not marked for its last answer, and returns their records: the
// mark (StallLogged, the answer's time) is kept, so that a stall is
// logged once, whatever the ticks and restarts. Each mark is one write,
// made after reading the record again under the lock; a state file that
// cannot be read is left to status to name.
func (s *stateStore) markStalled(now time.Time, stallAfter time.Duration) ([]hostRecord, error) {
	paths, err := filepath.Glob(filepath.Join(s.dir, "hosts", "*.json"))
	if err != nil {
		return nil, err
	}
	stalled := func(r hostRecord) bool {
		state, _ := machineState(r, now, stallAfter)
		return state == stateStalled && !r.StallLogged.Equal(r.LastAnswer)
	}
	var marked []hostRecord
	var errs []error
	for _, p := range paths {
		if r, err := readRecord[hostRecord](p); err != nil || !stalled(r) {
			continue
		}
		err := s.locked(func() error {
			r, err := readRecord[hostRecord](p)
			if err != nil || !stalled(r) {
				return err
			}
			r.StallLogged = r.LastAnswer
			if err := s.save(p, r); err != nil {
				return err
			}
			marked = append(marked, r)
			return nil
		})
		errs = append(errs, err)
	}
	return marked, errors.Join(errs...)
}

// save writes a state file of hosts/ or unknown/ under the lock; a file
// new to hosts/ is refused past maxHosts, and counted once it is written.
// unknown/ is kept under its cap by recordUnknown.
func (s *stateStore) save(path string, v any) error {
	_, err := os.Lstat(path)
	isNew := errors.Is(err, fs.ErrNotExist) && filepath.Base(filepath.Dir(path)) == "hosts"
	if isNew && s.hosts >= maxHosts {
		return fmt.Errorf("state: %d machines recorded already; not recording more (machines answered by hosts/default.toml each count)", maxHosts)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		replace := s.replace
		if replace == nil {
			replace = replaceFile
		}
		err = replace(path, append(data, '\n'), 0o600)
	}
	if err != nil {
		// Named as the state dir holds it: a reply may show it.
		return fmt.Errorf("writing state file %s: %w", stateFileName(path), err)
	}
	if isNew {
		s.hosts++
	}
	return nil
}

// stateFileName is a state file's name in the state dir: hosts/<key>.json.
func stateFileName(path string) string {
	return filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
}

// writeAtomic replaces path with data: a temporary file in the same dir,
// synced, renamed over path, and the dir synced, so that after a crash at
// any point path holds the old bytes or the new, never a mix.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := replaceFile(path, data, perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// replaceFile is writeAtomic, its errors not naming the file.
func replaceFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return unwrapPath(err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	// Root (pxe-pilot rearm, say) writes files the dir's owner, the
	// user serve runs as, can still replace.
	if info, err := os.Stat(dir); err == nil && os.Geteuid() == 0 {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			tmp.Chown(int(st.Uid), int(st.Gid))
		}
	}
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
		if le := (*os.LinkError)(nil); errors.As(err, &le) {
			err = le.Err
		}
	}
	if err != nil {
		return unwrapPath(err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// The installer's report, POSTed to the webhook URL after an install.

// report is what pxe-pilot reads of the installer's report.
type report struct {
	Schema struct {
		Version string `json:"version"`
	} `json:"$schema"`
	FQDN      string `json:"fqdn"`
	MachineID string `json:"machine-id"`
	Product   struct {
		Short   string `json:"short"`   // pve, pbs, pmg or pdm
		Version string `json:"version"` // of the product installed, such as 9.2.2
		Product string `json:"product"` // the answer request's name for short, which some senders use
	} `json:"product"`
	ISO struct {
		Release string `json:"release"`
	} `json:"iso"`
	DMI               dmi `json:"dmi"`
	NetworkInterfaces []struct {
		Name         string `json:"name"`
		MAC          string `json:"mac"`
		Address      string `json:"address"`
		IsManagement bool   `json:"is-management"`
	} `json:"network-interfaces"`
	SSHHostKeys map[string]string `json:"ssh-public-host-keys"`
	Token       *string           `json:"token"`
}

// parseReport reads a report body, as far as pxe-pilot needs it.
func parseReport(body []byte) (report, request, error) {
	var r report
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return report{}, request{}, fmt.Errorf("report body is not the installer's report: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return report{}, request{}, errors.New("report body: more than one JSON value")
	}
	if v := r.Schema.Version; v != "1" && !strings.HasPrefix(v, "1.") {
		return report{}, request{}, fmt.Errorf("report body: $schema.version %q: pxe-pilot reads reports of version 1.x", clip(v))
	}
	// The cap comes before any work per NIC: a body of 1 MiB lists tens
	// of thousands.
	if len(r.NetworkInterfaces) > maxNICs {
		return report{}, request{}, fmt.Errorf("report body: network-interfaces lists %d interfaces, more than the %d pxe-pilot looks at", len(r.NetworkInterfaces), maxNICs)
	}
	if r.Product.Short == "" {
		r.Product.Short = r.Product.Product
	}
	// What is kept or logged of the report is clipped, as a request's
	// serial and model are.
	r.FQDN, r.MachineID, r.ISO.Release = clipField(r.FQDN), clipField(r.MachineID), clipField(r.ISO.Release)
	r.Product.Short, r.Product.Version = clipField(r.Product.Short), clipField(r.Product.Version)
	req := request{product: r.Product.Short, iso: r.ISO.Release, serial: r.DMI.System.Serial, uuid: r.DMI.System.UUID, model: r.DMI.System.Name}
	seen := make(map[string]bool, len(r.NetworkInterfaces))
	for _, n := range r.NetworkInterfaces {
		if mac, ok := normalizeMAC(n.MAC); ok && !seen[mac] {
			seen[mac] = true
			req.macs = append(req.macs, mac)
			req.links = append(req.links, n.Name)
		}
	}
	return r, req, nil
}

// installed is what the report says was installed: "pve 9.2.2".
func (r report) installed() string {
	return strings.TrimSpace(r.Product.Short + " " + r.Product.Version)
}

// management is the report's management NIC: its MAC and address.
func (r report) management() (mac, address string) {
	for _, n := range r.NetworkInterfaces {
		if n.IsManagement {
			if m, ok := normalizeMAC(n.MAC); ok {
				mac = colonMACs([]string{m})[0]
			}
			return mac, clipField(n.Address)
		}
	}
	return "", ""
}

// sshKeyTypes are the SSH host key types pxe-pilot keeps of a report, by
// the names the installer gives them in ssh-public-host-keys, with the
// key types each may be: a fixed list, so that nothing else reaches a
// known_hosts file.
var sshKeyTypes = map[string][]string{
	"ecdsa":   {"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"},
	"ed25519": {"ssh-ed25519"},
	"rsa":     {"ssh-rsa"},
}

// maxKeyBlob bounds a host key's base64: an RSA key of 16384 bits is
// under 3 KiB of it.
const maxKeyBlob = 8 << 10

// hostKeys vets the report's SSH host keys and returns, of those that pass,
// their fingerprints as OpenSSH shows them (ssh-keygen -lf: SHA256: and the
// unpadded base64 of the SHA-256 of the key's blob), by the installer's
// name (ed25519), and the keys themselves, by key type (ssh-ed25519), for
// known_hosts; and a line for each key dropped, saying why. A key passes
// where its name is one of sshKeyTypes, its line is "TYPE BASE64
// [COMMENT]" with no line break or control character in it but a last
// newline, TYPE is one its name may be, and BASE64 decodes to a blob that
// names TYPE itself. The comment is not kept.
func (r report) hostKeys() (fps, pubs map[string]string, dropped []string) {
	fps, pubs = map[string]string{}, map[string]string{}
	bad := 0 // the first 8 are said, and how many more there are
	for _, kind := range sortedKeys(r.SSHHostKeys) {
		typ, blob, why := vetHostKey(kind, r.SSHHostKeys[kind])
		if why != "" {
			if bad++; bad <= 8 {
				dropped = append(dropped, excerpt(kind)+" "+why)
			}
			continue
		}
		raw, _ := base64.StdEncoding.DecodeString(blob)
		sum := sha256.Sum256(raw)
		fps[kind] = "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
		pubs[typ] = blob
	}
	if bad > 8 {
		dropped = append(dropped, fmt.Sprintf("and %d more", bad-8))
	}
	return fps, pubs, dropped
}

// vetHostKey checks one key of a report's ssh-public-host-keys: its type
// and base64 blob, or why it is dropped.
func vetHostKey(kind, line string) (typ, blob, why string) {
	types, ok := sshKeyTypes[kind]
	if !ok {
		return "", "", "is not a key type pxe-pilot keeps (ecdsa, ed25519, rsa)"
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return "", "", "holds a line break or a control character"
	}
	f := strings.Fields(line)
	switch {
	case len(f) < 2:
		return "", "", "is not TYPE BASE64, as a .pub file has it"
	case !slices.Contains(types, f[0]):
		return "", "", "is of type " + excerpt(f[0]) + ", not one of " + strings.Join(types, ", ")
	}
	if why := vetKey(f[0], f[1]); why != "" {
		return "", "", why
	}
	return f[0], f[1], ""
}

// vetKey checks a host key as a known_hosts line holds it, its type and
// its base64 blob: the type one of sshKeyTypes', the blob at most
// maxKeyBlob bytes with no space or control character in it (Go's
// decoder would skip a line break), decoding to a key that names the type
// itself; or says why not. A report's keys are vetted with it, and the
// state dir's again as status prints them.
func vetKey(typ, blob string) (why string) {
	known := false
	for _, types := range sshKeyTypes {
		known = known || slices.Contains(types, typ)
	}
	switch {
	case !known:
		return "is of type " + excerpt(typ) + ", not one pxe-pilot keeps"
	case len(blob) > maxKeyBlob:
		return fmt.Sprintf("is over %d bytes of base64", maxKeyBlob)
	case strings.ContainsFunc(blob, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "is not base64 of a key"
	}
	if got, ok := blobType(blob); !ok {
		return "is not base64 of a key"
	} else if got != typ {
		return "says it is " + typ + ", but its key is of type " + excerpt(got)
	}
	return ""
}

// blobType is the key type an SSH public key's base64 blob names first
// (RFC 4253, 6.6: a string, its length in four bytes before it).
func blobType(b64 string) (string, bool) {
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) < 4 {
		return "", false
	}
	n := int(raw[0])<<24 | int(raw[1])<<16 | int(raw[2])<<8 | int(raw[3])
	if n > len(raw)-4 || n > 64 {
		return "", false
	}
	return string(raw[4 : 4+n]), true
}

// sortedHostKeys writes fingerprints as "ed25519=SHA256:...,rsa=...".
func sortedHostKeys(fps map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(fps) {
		parts = append(parts, k+"="+fps[k])
	}
	return strings.Join(parts, ",")
}

// First-boot scripts. The installer fetches a first-boot script with a
// plain GET that says nothing about the machine, so the URL must: it
// carries the machine's key, the script and the facts its placeholders
// need, signed so that it can be neither guessed nor forged.

// scriptTicket is what a script URL carries.
type scriptTicket struct {
	Key     string `json:"k"`
	Path    string `json:"p"`
	Host    string `json:"h,omitempty"`
	NIC     string `json:"m,omitempty"`
	Link    string `json:"l,omitempty"`
	Serial  string `json:"s,omitempty"`
	UUID    string `json:"u,omitempty"`
	Product string `json:"pr,omitempty"`
	Release string `json:"r,omitempty"`
}

func (st scriptTicket) facts() facts {
	lacking := func(k, what string) id {
		if k != "" {
			return id{key: k}
		}
		return id{why: "the request had no usable " + what}
	}
	return facts{nic: st.NIC, link: st.Link, serial: lacking(st.Serial, "dmi.system.serial"),
		uuid: lacking(st.UUID, "dmi.system.uuid"), product: st.Product, iso: st.Release}
}

// scriptURL checks the script and signs a URL for it; see scriptSource.
func (t *tracker) scriptURL(path string, f facts, host string) (string, string) {
	if t == nil || t.publicURL == "" {
		return "", "needs pxe-pilot serve --public-url: the installer fetches the script from pxe-pilot, which must know the URL it is reached by"
	}
	c := f.dir
	if c == nil { // an answer composed without a request's handle, as in a test
		var err error
		if c, err = openConfigDir(t.dir); err != nil {
			return "", err.Error()
		}
		defer c.close()
	}
	if _, msg := fillScript(c, path, f, host); msg != "" {
		return "", msg
	}
	st := scriptTicket{Key: f.key, Path: path, Host: host, NIC: f.nic, Link: f.link,
		Serial: f.serial.key, UUID: f.uuid.key, Product: f.product, Release: f.iso}
	payload, _ := json.Marshal(st)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return t.publicURL + "/first-boot/" + p + "." + base64.RawURLEncoding.EncodeToString(t.sign("first-boot", p)), ""
}

// ticket checks a script URL's last part and returns what it carries.
func (t *tracker) ticket(s string) (scriptTicket, bool) {
	p, sig, ok := strings.Cut(s, ".")
	if !ok {
		return scriptTicket{}, false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig) // one spelling only
	if err != nil || !hmac.Equal(got, t.sign("first-boot", p)) {
		return scriptTicket{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	var st scriptTicket
	if err != nil || json.Unmarshal(payload, &st) != nil {
		return scriptTicket{}, false
	}
	return st, true
}

// fillScript reads a first-boot script of the config dir and fills its
// placeholders, as config values are filled; or says what is wrong.
func fillScript(c *configDir, path string, f facts, host string) ([]byte, string) {
	if !filepath.IsLocal(path) || strings.Contains(path, `\`) {
		return nil, fmt.Sprintf("%q: want a path inside the config dir, such as \"scripts/setup.sh\"", path)
	}
	data, err := c.read(filepath.ToSlash(path), nil)
	var tooBig *tooLargeError
	switch {
	case errors.As(err, &tooBig):
		return nil, fmt.Sprintf("%q: over 1 MiB, and the installer would cut it short without a word", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Sprintf("%q: no such file in the config dir", path)
	case err != nil:
		return nil, fmt.Sprintf("%q: %v", path, err)
	}
	if !bytes.Contains(data, []byte("{{")) {
		return data, ""
	}
	// Vetted facts need no quoting in a shell; shell makes sure of it.
	e := expander{f: f, host: host, hostWhy: "the host has no hostname or fqdn", path: []string{path}, shell: true}
	out := e.fill(string(data))
	if len(e.problems) > 0 {
		return nil, fmt.Sprintf("%q: %s", path, e.problems[0].msg)
	}
	return []byte(out), ""
}

// rearmLine is the command that rearms a machine of this state dir, for
// the 409 that --once gives it: the operator runs it as it stands.
func (s *stateStore) rearmLine(key string) string {
	dir := s.dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // serve's working dir is not the operator's
	}
	return "pxe-pilot rearm --state-dir " + shellQuote(dir) + " " + shellQuote(key)
}

// shellQuote is s as one word of a POSIX shell: as it is where no
// character of it means anything to a shell, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, shellSafe+"/+,=@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// rearmKey reads rearm's HOST: a machine key, or a MAC in any spelling.
func rearmKey(host string) string {
	if mac, ok := normalizeMAC(host); ok {
		return strings.TrimSuffix(hostFileName(mac), ".toml")
	}
	if u, ok := strings.CutPrefix(host, "uuid-"); ok {
		return "uuid-" + strings.ToLower(u)
	}
	return strings.TrimSuffix(host, ".toml")
}
