// The config dir: which host file a machine gets, reading and caching layers, profiles.

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
)

// A layer is one config file, its keys already translated to the
// installer's own names (see translateLayer), so that a host file written
// with friendly keys overrides defaults written with native ones key by key.
type layer struct {
	name     string         // the file, relative to the config dir: "defaults.toml", "hosts/aa-bb-cc-dd-ee-ff.toml"
	tree     map[string]any // the file's tables, as go-toml decodes them
	profiles []string       // the profiles it lists, merged below it
	image    string         // its boot-image: the --boot-dir image /boot.ipxe installs with; "" for none
	bootArgs *string        // its boot-args: words for the install's kernel line; nil where it says none ("" clears a lower layer's)
	fills    bool           // some string value holds "{{": a placeholder, for expand
	notes    []string       // legacy spellings it uses ("key: ..."), for validate to warn of
	written  spellings      // how it wrote the keys it spells otherwise than the installer, for messages
}

// configError is a problem with one config file, reported to the client
// as a 500 because the operator, not the machine, has to fix it.
type configError struct {
	file string // relative to the config dir; empty where no file is at fault
	msg  string
}

func (e *configError) Error() string {
	if e.file == "" {
		return e.msg
	}
	return e.file + ": " + e.msg
}

// A configDir is the config dir as one request reads it: opened once, when
// the request starts, and every file read through that handle, so that a
// deploy that swaps or re-creates the directory while installers ask
// cannot give a machine an answer composed of two configs. (On Linux the
// reads are relative to the directory's file descriptor; see
// config_linux.go.)
type configDir struct {
	path    string // as the operator gave it, for messages and to tell whether it was replaced
	fd      int
	offline bool // read by validate, not for a machine: never unsettled

	// shared remembers, within one scan of the whole dir (checkConfig's),
	// each file that is not a host file as it was read: defaults.toml and
	// the profiles, which thousands of hosts share, are read once a scan.
	shared map[string]readResult
}

// readResult is what readLayer returned for a file.
type readResult struct {
	l   layer
	ok  bool
	err error
}

func openConfigDir(path string) (*configDir, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		msg := fmt.Sprintf("config dir %s: %v", path, err)
		// Gone for a moment, as between the two renames of a deploy that
		// moves the old dir away and the new one in?
		var parent syscall.Stat_t
		if err == syscall.ENOENT && syscall.Stat(filepath.Dir(path), &parent) == nil {
			if ago := time.Since(changedAt(&parent)); ago < settleTime {
				return nil, &changingError{fmt.Sprintf("%s, and its parent dir changed %.1f s ago: the config dir is being replaced; boot the machine again in a few seconds", msg, max(ago, 0).Seconds())}
			}
		}
		return nil, &configError{"", msg}
	}
	return &configDir{path: path, fd: fd}, nil
}

func (c *configDir) close() { syscall.Close(c.fd) }

// read reads the file name, a slash-separated path in the dir, into buf.
// A name that does not exist is fs.ErrNotExist; one that exists but cannot
// be read (a symlink to nothing, a FIFO, a directory, no permission) is an
// error that says why, at once: a FIFO is opened without waiting for a
// writer.
func (c *configDir) read(name string, buf []byte) ([]byte, error) {
	fd, err := c.openAt(name, readFlags)
	if err == syscall.ENOENT {
		// Not there, or a symlink to nothing, which is there but
		// cannot be read: opened without following, it is.
		switch fd, err := c.openAt(name, readFlags|syscall.O_NOFOLLOW); err {
		case syscall.ELOOP:
			return buf, errors.New("a symlink to a file that does not exist")
		case nil: // made since the first look
			return readRegular(fd, buf)
		}
		return buf, fs.ErrNotExist
	}
	if err != nil {
		return buf, err
	}
	buf, err = readRegular(fd, buf)
	if err == nil && len(buf) == 0 {
		// An empty file is the operator's "nothing to add", or a copy
		// that has made the file and not yet written it.
		err = c.missing(name+" is empty", nil)
	}
	return buf, err
}

// readLayer reads and parses one file of the config dir. A file that does
// not exist is reported with ok = false and no error: both defaults.toml
// and every host file are optional until a request needs one.
func readLayer(c *configDir, name string) (l layer, ok bool, err error) {
	if c.shared != nil && !strings.HasPrefix(name, "hosts/") {
		if r, found := c.shared[name]; found {
			return r.l, r.ok, r.err
		}
		defer func() { c.shared[name] = readResult{l, ok, err} }()
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	data, err := c.read(name, (*bp)[:0])
	*bp = data[:0]
	if errors.Is(err, fs.ErrNotExist) {
		return layer{}, false, nil
	}
	if err != nil {
		return layer{}, false, &configError{name, "cannot read: " + err.Error()}
	}
	if l, ok := parsed.get(name, data); ok {
		return l, true, nil
	}
	l, err = parseLayer(name, data)
	if err != nil {
		return layer{}, false, err
	}
	parsed.put(name, data, l)
	return l, true, nil
}

// settleTime is how long after a change the config dir counts as being
// deployed: long enough to copy a few hundred files, short enough that a
// machine that asked at the wrong moment gets its answer at its next boot.
// (Tests that make a config dir and ask at once set it to 0.)
var settleTime = 3 * time.Second

// unsettled says why a file the request did not find may be missing only
// for now, or "" when the dir is settled: the dir the request opened is no
// longer the one at its path (it was replaced or removed), or it, hosts/
// or profiles/ changed less than settleTime ago, as when a deploy removes
// the dir and copies the new one in file by file.
func (c *configDir) unsettled(now time.Time) string {
	if c.offline {
		return ""
	}
	if why := c.replaced(); why != "" {
		return why
	}
	var opened syscall.Stat_t
	if syscall.Fstat(c.fd, &opened) != nil {
		return "the config dir cannot be read"
	}
	for _, sub := range []string{".", "hosts", "profiles"} {
		st := opened
		if sub != "." && c.statDir(sub, &st) != nil {
			continue
		}
		if ago := now.Sub(changedAt(&st)); ago < settleTime {
			name := "the config dir"
			if sub != "." {
				name = sub + "/"
			}
			return fmt.Sprintf("%s changed %.1f s ago", name, max(ago, 0).Seconds())
		}
	}
	return ""
}

// replaced says, if so, that the dir the request opened is no longer the
// one at its path: replaced by another, or removed.
func (c *configDir) replaced() string {
	var opened, atPath syscall.Stat_t
	if syscall.Fstat(c.fd, &opened) != nil || opened.Nlink == 0 {
		return "the config dir was removed while this request read it"
	}
	if syscall.Stat(c.path, &atPath) != nil || opened.Dev != atPath.Dev || opened.Ino != atPath.Ino {
		return "the config dir was replaced while this request read it"
	}
	return ""
}

// statDir stats the directory sub of the dir.
func (c *configDir) statDir(sub string, st *syscall.Stat_t) error {
	fd, err := c.openAt(sub, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return syscall.Fstat(fd, st)
}

// changingError is a config dir caught mid-deploy: a 503, since the same
// request will be answered once the files are all there.
type changingError struct{ msg string }

func (e *changingError) Error() string { return e.msg }

// configStatus is the status and message for an error in the config: a
// 503 while the dir is being changed, when a mistake may be a file half
// copied; else a 500, since the operator has to fix it.
func (c *configDir) configStatus(err error) (int, []byte) {
	var ce *changingError
	if !errors.As(err, &ce) {
		if why := c.unsettled(time.Now()); why != "" {
			err = &changingError{"the config dir is being changed (" + why + "): " + err.Error() + "; boot the machine again in a few seconds"}
		}
	}
	if errors.As(err, &ce) {
		return http.StatusServiceUnavailable, []byte(err.Error())
	}
	return http.StatusInternalServerError, []byte(err.Error())
}

// missing is the error for a file the request needed, or fell through
// for want of: err, unless the config dir is being changed, when it is a
// changingError that says what was missing and why that may be for now.
func (c *configDir) missing(what string, err error) error {
	if why := c.unsettled(time.Now()); why != "" {
		return &changingError{"the config dir is being changed (" + why + "), and " + what + "; nothing is taken from a config dir caught mid-deploy: boot the machine again in a few seconds"}
	}
	return err
}

// parsed remembers recently parsed layers by their file's exact bytes.
// Every request still reads every file it needs, so an edit applies to the
// next request as before; what is saved is parsing the same bytes again,
// chiefly defaults.toml, which every answer shares. Cached trees are
// shared between requests, which is safe because nothing writes to a
// layer once it is parsed (mergeLayers copies what it changes).
var parsed = layerCache{max: 64}

type layerCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cachedLayer // by file path
}

type cachedLayer struct {
	data string // the file's bytes the layer was parsed from
	l    layer
}

func (c *layerCache) get(path string, data []byte) (layer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[path]
	if !ok || e.data != string(data) {
		return layer{}, false
	}
	return e.l, true
}

func (c *layerCache) put(path string, data []byte, l layer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]cachedLayer, c.max)
	}
	if _, ok := c.entries[path]; !ok && len(c.entries) >= c.max {
		for k := range c.entries { // any one: map order is random enough
			delete(c.entries, k)
			break
		}
	}
	c.entries[path] = cachedLayer{string(data), l}
}

// maxLayer bounds a config file: far above any real layer, and the
// installer's own limit on a first-boot script, past which it would cut
// the script short without a word.
const maxLayer = 1 << 20

// bufPool holds the buffers layer files are read into. go-toml copies every
// string it decodes, so a buffer is free again once its file is parsed.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// readFlags open a config file for reading without blocking: a FIFO opens
// at once, for readRegular to refuse.
const readFlags = syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NONBLOCK | syscall.O_NOCTTY

// readFile reads the regular file at path into buf, as configDir.read does.
func readFile(path string, buf []byte) ([]byte, error) {
	fd, err := syscall.Open(path, readFlags, 0)
	if err != nil {
		return buf, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	buf, err = readRegular(fd, buf)
	if err != nil {
		return buf, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return buf, nil
}

// readRegular reads all of fd, and closes it, if it is a regular file of
// at most maxLayer bytes, with as few system calls as it can: one fstat and
// one read for a small file, where os.ReadFile also registers the file
// with the poller and reads twice.
func readRegular(fd int, buf []byte) ([]byte, error) {
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return buf, err
	}
	if kind := fileKind(uint32(st.Mode)); kind != "" {
		return buf, errors.New("not a regular file but " + kind)
	}
	if st.Size > maxLayer {
		return buf, &tooLargeError{}
	}
	buf = slices.Grow(buf, int(st.Size)+1) // +1: the read that finds the end
	for {
		if len(buf) == cap(buf) {
			if len(buf) > maxLayer {
				return buf, &tooLargeError{}
			}
			buf = slices.Grow(buf, len(buf))
		}
		want := cap(buf) - len(buf)
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf, err
		}
		buf = buf[:len(buf)+n]
		// A regular file returns all it has up to the space given, so a
		// short read is its end.
		if n < want {
			return buf, nil
		}
	}
}

// tooLargeError is a file over maxLayer bytes.
type tooLargeError struct{}

func (*tooLargeError) Error() string { return fmt.Sprintf("larger than %d bytes", maxLayer) }

// fileKind names a file type other than a regular file's, for an error.
func fileKind(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return ""
	case syscall.S_IFDIR:
		return "a directory"
	case syscall.S_IFIFO:
		return "a FIFO"
	case syscall.S_IFSOCK:
		return "a socket"
	case syscall.S_IFCHR, syscall.S_IFBLK:
		return "a device"
	}
	return "a special file"
}

// parseLayer decodes one file's TOML, takes its profiles and translates
// its keys.
func parseLayer(name string, data []byte) (layer, error) {
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		return layer{}, tomlError(name, data, err)
	}
	profiles, err := takeProfiles(name, tree)
	if err != nil {
		return layer{}, err
	}
	image, err := takeBootImage(name, tree)
	if err != nil {
		return layer{}, err
	}
	bootArgs, err := takeBootArgs(name, tree)
	if err != nil {
		return layer{}, err
	}
	notes := legacySpellings(tree)
	tree, written, err := translateLayer(name, tree)
	if err != nil {
		return layer{}, err
	}
	return layer{name: name, tree: tree, profiles: profiles, image: image, bootArgs: bootArgs, fills: hasBraces(tree), notes: notes, written: written}, nil
}

// hasBraces reports whether any string in v holds "{{". Layers are parsed
// once and cached, so this spares composing an answer a walk of the whole
// merged tree when, as usually, no layer has a placeholder.
func hasBraces(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.Contains(v, "{{")
	case []any:
		return slices.ContainsFunc(v, hasBraces)
	case map[string]any:
		for _, x := range v {
			if hasBraces(x) {
				return true
			}
		}
	}
	return false
}

// takeProfiles removes a layer's top-level profiles key and returns the
// names it lists. Whether each is a plain name is for stacker.add to say,
// with the chain that led to it.
func takeProfiles(name string, tree map[string]any) ([]string, error) {
	v, ok := tree["profiles"]
	if !ok {
		return nil, nil
	}
	delete(tree, "profiles")
	list, ok := v.([]any)
	if !ok {
		return nil, &configError{name, "profiles: want a list of profile names such as [\"zfs-mirror\", \"rack-a\"], got " + describe(v)}
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		p, ok := e.(string)
		switch {
		case !ok:
			return nil, &configError{name, "profiles: want profile names, got " + describe(e)}
		case slices.Contains(out, p):
			return nil, &configError{name, fmt.Sprintf("profiles: %q is listed twice", p)}
		}
		out = append(out, p)
	}
	return out, nil
}

// takeBootImage removes a layer's top-level boot-image key, the --boot-dir
// image /boot.ipxe installs the machine with, and returns it.
func takeBootImage(name string, tree map[string]any) (string, error) {
	v, ok := tree["boot-image"]
	if !ok {
		return "", nil
	}
	delete(tree, "boot-image")
	if s, ok := v.(string); ok && plainName(s) {
		return s, nil
	}
	return "", &configError{name, "boot-image: want the name of an image folder of --boot-dir, such as \"pve-9.2\", got " + describe(v)}
}

// maxBootArgs bounds boot-args: room for any console and driver options,
// well within the kernel's command line of 2,048 bytes with the
// installer's own.
const maxBootArgs = 512

// takeBootArgs removes a layer's top-level boot-args key, words /boot.ipxe
// appends to the kernel line of the machine's install (a serial console,
// say), and returns it. They go into an iPXE command, so only printable
// ASCII is taken, and none of what iPXE would read rather than pass on: a
// ${setting}, quotes, a backslash, or ;, | and & that end a command.
func takeBootArgs(name string, tree map[string]any) (*string, error) {
	v, ok := tree["boot-args"]
	if !ok {
		return nil, nil
	}
	delete(tree, "boot-args")
	s, ok := v.(string)
	if !ok {
		return nil, &configError{name, "boot-args: want the words to add to the installer's kernel line, such as \"console=tty0 console=ttyS0,115200\", got " + describe(v)}
	}
	bad := func(why string) error { return &configError{name, "boot-args: " + excerpt(s) + " " + why} }
	switch {
	case len(s) > maxBootArgs:
		return nil, bad(fmt.Sprintf("is %d bytes long; at most %d", len(s), maxBootArgs))
	case strings.Contains(s, "${"):
		return nil, bad("holds ${...}, which iPXE would expand: write the value itself")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n' || c == '\r':
			return nil, bad("holds a line break: boot-args are one kernel line")
		case c < ' ' || c > '~':
			return nil, bad(fmt.Sprintf("holds byte 0x%02x at %d: write printable ASCII only", c, i))
		case strings.IndexByte(`"'\;|&`, c) >= 0:
			return nil, bad(fmt.Sprintf("holds %q, which iPXE reads as part of its command line rather than passing it to the kernel", c))
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	return &s, nil
}

// plainName reports whether s may name a profile: letters, digits, '-',
// '_' and '.', starting with a letter or digit, at most 64 long.
func plainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_' && c != '.') {
			return false
		}
	}
	return true
}

// profileFile is the file a profile name stands for.
func profileFile(name string) string { return "profiles/" + name + ".toml" }

// stacker puts layers in merge order, lowest first: each layer's profiles
// just below it, in the order listed, each with its own profiles below it
// in turn. A profile reached twice is merged once, where first reached.
type stacker struct {
	cfg    *configDir
	layers []layer
	seen   map[string]bool // profile files already stacked
}

// add stacks l, its profiles below it. chain is the way l was reached,
// from defaults.toml or a host file, for the error of a missing profile or
// a cycle.
func (s *stacker) add(l layer, chain []string) error {
	for _, p := range l.profiles {
		// A profile name becomes a path, profiles/<name>.toml, so it may
		// not climb out of profiles/.
		if base := strings.TrimSuffix(p, ".toml"); !plainName(p) || base != p {
			hint := "a name is letters, digits, '-', '_' and '.', and names the file profiles/<name>.toml"
			if base != p && plainName(base) {
				hint = fmt.Sprintf("name the profile without .toml: %q", base)
			}
			return &configError{l.name, fmt.Sprintf("profiles: %q is not a profile name: %s (%s)", p, hint, strings.Join(chain, " -> "))}
		}
		file := profileFile(p)
		path := strings.Join(append(chain, file), " -> ")
		if slices.Contains(chain, file) {
			return &configError{l.name, fmt.Sprintf("profiles: %q makes a cycle: %s", p, path)}
		}
		if s.seen[file] {
			continue
		}
		pl, ok, err := readLayer(s.cfg, file)
		if err != nil {
			return err
		}
		if !ok {
			return s.cfg.missing(file+" does not exist", &configError{l.name, fmt.Sprintf("profiles: %q: %s does not exist (%s)", p, file, path)})
		}
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		s.seen[file] = true
		if err := s.add(pl, append(chain, file)); err != nil {
			return err
		}
	}
	s.layers = append(s.layers, l)
	return nil
}

// stackLayers puts defaults.toml (if ok), the host file and the profiles
// of both in merge order; the host file is always last.
func stackLayers(c *configDir, def layer, hasDefaults bool, host layer) ([]layer, error) {
	if !hasDefaults && len(host.profiles) == 0 {
		return []layer{host}, nil
	}
	if len(def.profiles) == 0 && len(host.profiles) == 0 {
		return []layer{def, host}, nil
	}
	s := stacker{cfg: c}
	if hasDefaults {
		if err := s.add(def, []string{def.name}); err != nil {
			return nil, err
		}
	}
	if err := s.add(host, []string{host.name}); err != nil {
		return nil, err
	}
	return s.layers, nil
}

// tomlError turns a go-toml error into "file:line:column: problem". Where
// the line it points at is key = value with a value TOML takes only quoted
// (keyboard = de, gateway = 10.0.0.1), it says to quote it, at the value.
func tomlError(name string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &configError{name, msg}
	}
	row, col := de.Position()
	lines := strings.Split(string(data), "\n")
	if row >= 1 && row <= len(lines) {
		if key, value, at, ok := unquotedValue(lines[row-1]); ok {
			col = at
			msg = fmt.Sprintf("%s = %s: a value that is not a number, boolean or date must be quoted: write %s = %q", key, value, key, value)
			if secretName(key) {
				msg = fmt.Sprintf("%s: a value that is not a number, boolean or date must be quoted: write %s = \"...\" with the value between the quotes (it is a secret, so it is not shown)", key, key)
			}
		}
	}
	return &configError{fmt.Sprintf("%s:%d:%d", name, row, col), msg}
}

// unquotedValue reads line as key = value where value is what TOML refuses
// unquoted and takes quoted: an operator's string left without quotes. For
// most keys that is one bare word (de, pve-01, 10.0.0.1, 10.0.0.10/24);
// for a key that may hold a secret, any value not begun as a string, array
// or table, since a password may hold spaces and quotes. It returns the
// key, the value and the value's column.
func unquotedValue(line string) (key, value string, col int, ok bool) {
	k, v, found := strings.Cut(line, "=")
	if !found {
		return "", "", 0, false
	}
	key, value = strings.TrimSpace(k), strings.TrimSpace(v)
	if !secretName(key) {
		v, _, _ = strings.Cut(v, "#") // unquoted, a # starts a comment
		value = strings.TrimSpace(v)
		if strings.ContainsFunc(value, func(r rune) bool {
			return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune("\"'[]{}=,\\", r)
		}) {
			return "", "", 0, false
		}
	}
	var m map[string]any
	switch {
	case value == "" || strings.ContainsAny(value[:1], "\"'[{"):
		return "", "", 0, false
	case toml.Unmarshal([]byte("v = "+value), &m) == nil:
		return "", "", 0, false // a value TOML takes: the error is another
	case toml.Unmarshal([]byte(key+" = \"\""), &m) != nil:
		return "", "", 0, false // not a key
	}
	at := len(k) + 1 + strings.Index(v, value)
	return key, value, utf8.RuneCountInString(line[:at]) + 1, true
}

// secretName reports whether a key, as a line of a file writes it, may
// hold a secret: a password, hash, token or subscription key, in any
// spelling, so that no message quotes its value.
func secretName(key string) bool {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		key = key[i+1:]
	}
	key = strings.ToLower(strings.NewReplacer("-", "", "_", "", `"`, "", "'", "").Replace(key))
	for _, s := range []string{"password", "passwd", "token", "secret", "subscription"} {
		if strings.Contains(key, s) {
			return true
		}
	}
	return false
}

// noHostError is a machine no host file names: a 404, since an
// auto-installer wipes disks and a machine nobody named must not be
// installed by accident.
type noHostError struct {
	macs    []string // the MACs tried, as 12 hex digits
	tried   []string // every host file looked for, in order
	skipped []string // why the serial or UUID named no file
	near    []string // files meant for the machine that are never read, and why
}

func (e *noHostError) Error() string {
	msg := "no host file for this machine: tried " + strings.Join(e.tried, ", ")
	if len(e.tried) == 0 {
		msg = "no host file for this machine: it names no MAC"
	}
	if len(e.skipped) > 0 {
		msg += " (" + strings.Join(e.skipped, "; ") + ")"
	}
	if len(e.near) > 0 {
		return msg + "; " + strings.Join(e.near, "; ")
	}
	if len(e.tried) == 0 {
		return msg + ", and there is no hosts/default.toml"
	}
	return msg + "; create " + e.tried[0] + " for it (or hosts/default.toml to answer every machine that has none)"
}

// A match is how a machine found its host file.
type match struct {
	by   string // "mac", "serial", "uuid" or "default"
	key  string // the MAC as 12 hex digits, the serial or the UUID; empty for default
	file string // the host file: "hosts/aa-bb-cc-dd-ee-ff.toml"
}

func (m match) String() string {
	switch m.by {
	case "mac":
		return "mac " + colonMACs([]string{m.key})[0]
	case "default":
		return "default"
	}
	return m.by + " " + m.key
}

// loadHost reads the layers that compose one machine's answer, lowest
// first: the profiles of defaults.toml, defaults.toml if it exists, the
// profiles of the host file, and the host file (see findHost).
func loadHost(c *configDir, req request) ([]layer, match, error) {
	host, m, err := findHost(c, req)
	if err != nil {
		return nil, match{}, err
	}
	def, hasDefaults, err := readLayer(c, "defaults.toml")
	if err == nil && !hasDefaults {
		// Without defaults.toml, an answer is the host file's alone: right
		// where the operator keeps no defaults, wrong where they are on
		// their way.
		err = c.missing("defaults.toml does not exist", nil)
	}
	if err != nil {
		return nil, match{}, &hostError{m, err}
	}
	layers, err := stackLayers(c, def, hasDefaults, host)
	if err != nil {
		return nil, match{}, &hostError{m, err}
	}
	return layers, m, nil
}

// findHost reads the machine's host file: the first that exists of
// hosts/<mac>.toml for each NIC in request order, hosts/serial-<serial>.toml,
// hosts/uuid-<uuid>.toml and hosts/default.toml. A host file that exists
// but is broken stops the search: falling through to a later one would
// install a half-configured machine as another host.
func findHost(c *configDir, req request) (layer, match, error) {
	for _, mac := range req.macs {
		if l, m, found, err := readHost(c, match{"mac", mac, "hosts/" + hostFileName(mac)}); found || err != nil {
			return l, m, err
		}
	}
	nf := &noHostError{macs: req.macs}
	for _, mac := range req.macs {
		nf.tried = append(nf.tried, "hosts/"+hostFileName(mac))
	}
	for _, id := range req.ids() {
		if id.key == "" {
			if id.sent {
				nf.skipped = append(nf.skipped, id.why)
			}
			continue
		}
		m := match{id.by, id.key, "hosts/" + id.by + "-" + id.key + ".toml"}
		if l, m, found, err := readHost(c, m); found || err != nil {
			return l, m, err
		}
		nf.tried = append(nf.tried, m.file)
	}
	// No file names the machine itself. Falling through to default.toml,
	// which answers any machine nobody named, is right only of a config
	// dir that is not being deployed: mid-copy, the machine's own file may
	// not be there yet. Saying there is no such host is right of any dir
	// but one replaced or removed while the request read it.
	l, m, found, err := readHost(c, match{by: "default", file: "hosts/default.toml"})
	switch {
	case err != nil:
		return layer{}, match{}, err
	case found:
		if err := c.missing("no host file names this machine", nil); err != nil {
			return layer{}, match{}, err
		}
		return l, m, nil
	}
	if why := c.replaced(); why != "" {
		return layer{}, match{}, &changingError{"the config dir is being changed (" + why + "), and no host file names this machine; boot it again in a few seconds"}
	}
	nf.near = nearMisses(c, req.macs)
	return layer{}, match{}, nf
}

// nearMisses names the files of hosts/ meant for one of macs that are
// never read, with the name that would be: hosts/AA-BB-CC-DD-EE-FF.toml.
func nearMisses(c *configDir, macs []string) []string {
	entries, _ := os.ReadDir(filepath.Join(c.path, "hosts"))
	var out []string
	for _, e := range entries {
		base, ext := splitExt(e.Name())
		mac, ok := normalizeMAC(base)
		if !ok || !slices.Contains(macs, mac) || !isTOMLExt(ext) && ext != "" {
			continue
		}
		want := hostFileName(mac)
		switch {
		case e.Name() == want:
		case strings.ToLower(e.Name()) == want:
			out = append(out, "hosts/"+e.Name()+" exists, but names are lowercase: name it hosts/"+want)
		default:
			out = append(out, "hosts/"+e.Name()+" exists, but is never read: name it hosts/"+want)
		}
	}
	return out
}

// splitExt splits a file name at its last dot: "a.TOML" is "a", ".TOML".
func splitExt(name string) (base, ext string) {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i], name[i:]
	}
	return name, ""
}

// isTOMLExt reports whether ext is .toml in some other spelling.
func isTOMLExt(ext string) bool {
	return strings.EqualFold(ext, ".toml") || strings.EqualFold(ext, ".tml")
}

// hostLike reports whether a name, without extension, looks like what a
// host file is named by: a MAC in any spelling, serial-..., uuid-...,
// or default.
func hostLike(base string) bool {
	_, mac := normalizeMAC(base)
	lower := strings.ToLower(base)
	return mac || lower == "default" || strings.HasPrefix(lower, "serial-") || strings.HasPrefix(lower, "uuid-")
}

// readHost reads the host file m names, if it exists.
func readHost(c *configDir, m match) (layer, match, bool, error) {
	l, found, err := readLayer(c, m.file)
	if err != nil {
		return layer{}, match{}, false, &hostError{m, err}
	}
	return l, m, found, nil
}

// hostError is a config error met while loading a machine's layers; it
// remembers the host file that matched and how, for the request's log line.
type hostError struct {
	match match
	err   error
}

func (e *hostError) Error() string { return e.err.Error() }

func (e *hostError) Unwrap() error { return e.err }

// checkConfigDir reports whether answers can be composed at all: the dir
// can be listed and defaults.toml, if present, is sound, profiles and all.
func checkConfigDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("config dir %s: %w", dir, unwrapPath(err))
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config dir %s: %w", dir, unwrapPath(err))
	}
	c, err := openConfigDir(dir)
	if err != nil {
		return err
	}
	defer c.close()
	def, ok, err := readLayer(c, "defaults.toml")
	if err == nil && ok {
		_, err = stackLayers(c, def, false, def)
	}
	return err
}

// unwrapPath drops the path from an OS error whose message names it already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostMatch reads a host file's name, without .toml: what it matches, or
// why it never can.
func hostMatch(name string) (match, string) {
	file := "hosts/" + name + ".toml"
	switch {
	case name == "default":
		return match{by: "default", file: file}, ""
	case strings.HasPrefix(name, "serial-"):
		s := strings.TrimPrefix(name, "serial-")
		if s == "" {
			return match{}, "it names no serial: name it hosts/serial-<dmi.system.serial>.toml"
		}
		if k, why := serialKey(s); k != s {
			return match{}, why + "; a machine is matched by a serial only where it names one"
		}
		return match{"serial", s, file}, ""
	case strings.HasPrefix(name, "uuid-"):
		u := strings.TrimPrefix(name, "uuid-")
		switch k, why := uuidKey(u); {
		case u == "":
			return match{}, "it names no UUID: name it hosts/uuid-<dmi.system.uuid in lowercase>.toml"
		case k == "":
			return match{}, why + "; a machine is matched by a UUID only where it names one"
		case k != u:
			return match{}, "name it hosts/uuid-" + k + ".toml (UUIDs are matched in lowercase)"
		}
		return match{"uuid", u, file}, ""
	}
	m, ok := normalizeMAC(name)
	switch {
	case !ok:
		return match{}, "a host file is named by a MAC in lowercase with hyphens (aa-bb-cc-dd-ee-ff.toml), serial-<serial>.toml, uuid-<uuid>.toml, or is default.toml"
	case hostFileName(m) != name+".toml":
		return match{}, "name it hosts/" + hostFileName(m)
	}
	return match{"mac", m, file}, ""
}
