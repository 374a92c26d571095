package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/pelletier/go-toml/v2"
)

// A layer is one config file, its keys already translated to the
// installer's own names (see translateLayer), so that a host file written
// with friendly keys overrides defaults written with native ones key by key.
type layer struct {
	name string         // the file, relative to the config dir: "defaults.toml", "hosts/aa-bb-cc-dd-ee-ff.toml"
	tree map[string]any // the file's tables, as go-toml decodes them
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

// readLayer reads and parses one file of the config dir. A file that does
// not exist is reported with ok = false and no error: both defaults.toml
// and every host file are optional until a request needs one.
func readLayer(dir, name string) (l layer, ok bool, err error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	path := filepath.Join(dir, filepath.FromSlash(name))
	data, err := readFile(path, (*bp)[:0])
	*bp = data[:0]
	if errors.Is(err, fs.ErrNotExist) {
		return layer{}, false, nil
	}
	if err != nil {
		// The client sees the relative path, not the OS error's absolute one.
		return layer{}, false, &configError{name, "cannot read: " + unwrapPath(err).Error()}
	}
	if l, ok := parsed.get(path, data); ok {
		return l, true, nil
	}
	l, err = parseLayer(name, data)
	if err != nil {
		return layer{}, false, err
	}
	parsed.put(path, data, l)
	return l, true, nil
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

// maxLayer bounds a config file: far above any real one, and it keeps a
// file that is really a device or a pipe from filling the memory.
const maxLayer = 1 << 20

// bufPool holds the buffers layer files are read into. go-toml copies every
// string it decodes, so a buffer is free again once its file is parsed.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// readFile reads a whole file into buf with as few system calls as it can:
// open, one read and close for a small file, where os.ReadFile also
// stats the file, registers it with the poller and reads twice. It runs
// twice per answer, and the answer's cost is measured against the HTTP
// connection's.
func readFile(path string, buf []byte) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return buf, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= maxLayer {
				return buf, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes", maxLayer)}
			}
			buf = slices.Grow(buf, len(buf))
		}
		want := cap(buf) - len(buf)
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		buf = buf[:len(buf)+n]
		// A regular file returns all it has up to the space given, so a
		// short read is its end.
		if n < want {
			return buf, nil
		}
	}
}

// parseLayer decodes one file's TOML and translates its keys.
func parseLayer(name string, data []byte) (layer, error) {
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		return layer{}, tomlError(name, err)
	}
	tree, err := translateLayer(name, tree)
	if err != nil {
		return layer{}, err
	}
	return layer{name: name, tree: tree}, nil
}

// tomlError turns a go-toml error into "file:line:column: problem".
func tomlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return &configError{fmt.Sprintf("%s:%d:%d", name, row, col), msg}
	}
	return &configError{name, msg}
}

// An exclusive is an either-or choice within one table: where a layer picks
// one side, the other side is dropped from the layers below it, so that a
// host which sets a plain password gets it whatever hash the defaults hold.
// A layer picking both sides is an error.
type exclusive struct {
	table string      // top-level table the choice lives in
	picks [2]pickFunc // whether a layer's table picks side 0 or side 1
	drops [2][]string // keys dropped from below when that side is picked
	names [2]string   // how an error names each side
	hint  string      // what to do when one file picks both
}

type pickFunc func(t map[string]any) bool

func has(keys ...string) pickFunc {
	return func(t map[string]any) bool {
		for _, k := range keys {
			if _, ok := t[k]; ok {
				return true
			}
		}
		return false
	}
}

func sourceIs(v string) pickFunc {
	return func(t map[string]any) bool { return t["source"] == v }
}

// exclusives are the either-or choices of the answer, in the installer's own
// key names (layers are translated before they are merged).
var exclusives = []exclusive{
	{
		table: "global",
		picks: [2]pickFunc{has("root-password"), has("root-password-hashed")},
		drops: [2][]string{{"root-password-hashed"}, {"root-password"}},
		names: [2]string{"global.root-password", "global.root-password-hashed"},
		hint:  "cannot be set at the same time; keep one",
	},
	{
		table: "global",
		picks: [2]pickFunc{has("hostname", "domain"), has("fqdn")},
		drops: [2][]string{{"fqdn"}, {"hostname", "domain"}},
		names: [2]string{"hostname", "global.fqdn"},
		hint:  "cannot be set in the same file; use hostname (with global.domain) or fqdn",
	},
	{
		table: "disk-setup",
		picks: [2]pickFunc{has("disk-list"), has("filter")},
		drops: [2][]string{{"filter", "filter-match"}, {"disk-list"}},
		names: [2]string{"disk-setup.disk-list", "disk-setup.filter"},
		hint:  "cannot be set at the same time; name the disks or filter them, not both",
	},
	{
		table: "network",
		picks: [2]pickFunc{
			func(t map[string]any) bool { return has("cidr")(t) || sourceIs("from-answer")(t) },
			sourceIs("from-dhcp"),
		},
		drops: [2][]string{{"source"}, {"cidr", "dns", "gateway", "filter"}},
		names: [2]string{"network.address", `network.source = "from-dhcp"`},
		hint:  "cannot be set in the same file; a static address needs no DHCP",
	},
}

// checkExclusives reports a layer that picks both sides of a choice.
func checkExclusives(l layer) error {
	for _, x := range exclusives {
		t, _ := l.tree[x.table].(map[string]any)
		if t != nil && x.picks[0](t) && x.picks[1](t) {
			return &configError{l.name, x.names[0] + " and " + x.names[1] + " " + x.hint}
		}
	}
	return nil
}

// mergeLayers deep-merges layers, lowest first: tables merge key by key at
// any depth, scalars and arrays are replaced whole, and where a table meets a
// value the higher layer's wins. Either-or choices drop the side a higher
// layer did not pick. Inputs are not mutated: every table of the result is
// new, while leaves (strings, arrays) are shared, and never written to.
func mergeLayers(layers []layer) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		for _, x := range exclusives {
			upper, _ := l.tree[x.table].(map[string]any)
			lower, _ := out[x.table].(map[string]any)
			if upper == nil || lower == nil {
				continue
			}
			for side, picks := range x.picks {
				if picks(upper) {
					for _, k := range x.drops[side] {
						delete(lower, k) // lower is a table mergeInto made: ours to change
					}
				}
			}
		}
		mergeInto(out, l.tree)
	}
	return out
}

// mergeInto merges src over dst, copying src's tables so that dst never
// shares one with an input.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		sv, ok := v.(map[string]any)
		if !ok {
			dst[k] = v
			continue
		}
		dv, ok := dst[k].(map[string]any)
		if !ok {
			dv = make(map[string]any, len(sv))
			dst[k] = dv
		}
		mergeInto(dv, sv)
	}
}

// origin names the layer that set the key at path in the merged result: the
// highest layer that has it, since a higher layer's key always wins.
func origin(layers []layer, path ...string) string {
	for i := len(layers) - 1; i >= 0; i-- {
		if lookup(layers[i].tree, path...) != nil {
			return layers[i].name
		}
	}
	return ""
}

// lookup returns the value at path, or nil.
func lookup(t map[string]any, path ...string) any {
	var v any = t
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[k]; !ok {
			return nil
		}
	}
	return v
}

// noHostError is a machine no host file names: a 404, since an
// auto-installer wipes disks and a machine nobody named must not be
// installed by accident.
type noHostError struct {
	macs []string // the MACs tried, as 12 hex digits
}

func (e *noHostError) Error() string {
	if len(e.macs) == 0 {
		return "no host file for this machine: it names no MAC, and there is no hosts/default.toml"
	}
	files := make([]string, len(e.macs))
	for i, m := range e.macs {
		files[i] = "hosts/" + hostFileName(m)
	}
	return "no host file for this machine: tried " + strings.Join(files, ", ") +
		"; create " + files[0] + " for it (or hosts/default.toml to answer every machine that has none)"
}

// loadHost reads the layers that compose one machine's answer, lowest
// first: defaults.toml if it exists, then the host file of the first MAC
// that has one, else hosts/default.toml. It also returns the MAC that
// matched (empty for hosts/default.toml). A host file that exists but is
// broken stops the search: falling through to a later NIC's file would
// install a half-configured machine as another host.
func loadHost(dir string, macs []string) (layers []layer, mac string, err error) {
	var host layer
	found := false
	for _, m := range macs {
		name := "hosts/" + hostFileName(m)
		if host, found, err = readLayer(dir, name); err != nil {
			return nil, "", &hostError{name, err}
		}
		if found {
			mac = m
			break
		}
	}
	if !found {
		if host, found, err = readLayer(dir, "hosts/default.toml"); err != nil {
			return nil, "", &hostError{"hosts/default.toml", err}
		}
		if !found {
			return nil, "", &noHostError{macs}
		}
	}
	def, ok, err := readLayer(dir, "defaults.toml")
	if err != nil {
		return nil, "", &hostError{host.name, err}
	}
	if ok {
		layers = append(layers, def)
	}
	return append(layers, host), mac, nil
}

// hostError is a config error met while loading a machine's layers; it
// remembers the host file that matched, for the request's log line.
type hostError struct {
	host string
	err  error
}

func (e *hostError) Error() string { return e.err.Error() }
func (e *hostError) Unwrap() error { return e.err }

// checkConfigDir reports whether answers can be composed at all: the dir
// can be listed and defaults.toml, if present, is sound.
func checkConfigDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("config dir %s: %w", dir, unwrapPath(err))
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config dir %s: %w", dir, unwrapPath(err))
	}
	_, _, err = readLayer(dir, "defaults.toml")
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

// dirReport is what `pxe-pilot validate` found in a config dir: one line
// per problem, warnings starting "warning: ".
type dirReport struct {
	lines            []string
	hosts            int
	errors, warnings int
}

// ruleChanges are the releases at which the answer format changed; a host
// that uses a key is checked against each older one to warn the operator
// who may boot an older ISO.
var ruleChanges = []release{r82, r83, r84, r91, r92}

// checkDir checks a whole config dir as the server would answer from it:
// every file parses, every host file is named so that it can match, and
// every host's answer validates for rel (with btrfs enabled, as no request
// says otherwise).
func checkDir(dir string, rel release) dirReport {
	var r dirReport
	errorf := func(format string, a ...any) {
		r.lines = append(r.lines, fmt.Sprintf(format, a...))
		r.errors++
	}
	warnf := func(format string, a ...any) {
		r.lines = append(r.lines, "warning: "+fmt.Sprintf(format, a...))
		r.warnings++
	}

	def, hasDefaults, defErr := readLayer(dir, "defaults.toml")
	if defErr != nil {
		errorf("%v", defErr)
	}
	entries, dirErr := os.ReadDir(filepath.Join(dir, "hosts"))
	if err := dirErr; err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			warnf("hosts/: missing, so no machine gets an answer; create hosts/<mac>.toml")
		} else {
			errorf("hosts/: %v", unwrapPath(err))
		}
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".toml") {
			continue
		}
		file := "hosts/" + name
		mac := ""
		if name != "default.toml" {
			m, ok := normalizeMAC(strings.TrimSuffix(name, ".toml"))
			switch {
			case !ok:
				errorf("%s: never matches: a host file is named by a MAC in lowercase with hyphens (aa-bb-cc-dd-ee-ff.toml), or is default.toml", file)
				continue
			case hostFileName(m) != name:
				errorf("%s: never matches: name it hosts/%s", file, hostFileName(m))
				continue
			}
			mac = m
		}
		r.hosts++
		host, _, err := readLayer(dir, file)
		if err != nil {
			errorf("%v", err)
			continue
		}
		if defErr != nil {
			continue // every answer needs defaults.toml, whose error is said once above
		}
		layers := []layer{host}
		if hasDefaults {
			layers = []layer{def, host}
		}
		if _, err := compose(layers, facts{mac: mac, release: rel, btrfs: true}); err != nil {
			var ae *answerError
			if !errors.As(err, &ae) {
				errorf("%v", err)
				continue
			}
			for _, line := range ae.lines() {
				errorf("%s: %s", file, line)
			}
		}
		// Keys that older ISOs lack: worth a warning, since the operator
		// may boot one of them.
		since := map[string]release{}
		for _, old := range ruleChanges {
			if !old.before(rel) {
				break
			}
			_, err := compose(layers, facts{mac: mac, release: old, btrfs: true})
			var ae *answerError
			if !errors.As(err, &ae) {
				continue
			}
			for _, p := range ae.problems {
				if _, seen := since[p.key()]; p.since != (release{}) && !seen {
					since[p.key()] = p.since
				}
			}
		}
		for _, k := range sortedKeys(since) {
			warnf("%s: %s: needs an ISO of release %s or later; older ISOs reject the whole answer", file, k, since[k])
		}
	}
	if r.hosts == 0 && dirErr == nil {
		warnf("hosts/: no host files, so no machine gets an answer; create hosts/<mac>.toml")
	}
	return r
}
