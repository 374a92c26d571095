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
	name     string         // the file, relative to the config dir: "defaults.toml", "hosts/aa-bb-cc-dd-ee-ff.toml"
	tree     map[string]any // the file's tables, as go-toml decodes them
	profiles []string       // the profiles it lists, merged below it
	fills    bool           // some string value holds "{{": a placeholder, for expand
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

// parseLayer decodes one file's TOML, takes its profiles and translates
// its keys.
func parseLayer(name string, data []byte) (layer, error) {
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		return layer{}, tomlError(name, err)
	}
	profiles, err := takeProfiles(name, tree)
	if err != nil {
		return layer{}, err
	}
	tree, err = translateLayer(name, tree)
	if err != nil {
		return layer{}, err
	}
	return layer{name: name, tree: tree, profiles: profiles, fills: hasBraces(tree)}, nil
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
	dir    string
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
		pl, ok, err := readLayer(s.dir, file)
		if err != nil {
			return err
		}
		if !ok {
			return &configError{l.name, fmt.Sprintf("profiles: %q: %s does not exist (%s)", p, file, path)}
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
func stackLayers(dir string, def layer, hasDefaults bool, host layer) ([]layer, error) {
	if !hasDefaults && len(host.profiles) == 0 {
		return []layer{host}, nil
	}
	if len(def.profiles) == 0 && len(host.profiles) == 0 {
		return []layer{def, host}, nil
	}
	s := stacker{dir: dir}
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
	{
		table: "first-boot",
		picks: [2]pickFunc{has("script"), has("source", "url", "cert-fingerprint")},
		drops: [2][]string{{"source", "url", "cert-fingerprint"}, {"script"}},
		names: [2]string{"first-boot-script", "[first-boot] source"},
		hint:  "cannot be set in the same file; pxe-pilot serves the script, or [first-boot] says where it is",
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
	macs    []string // the MACs tried, as 12 hex digits
	tried   []string // every host file looked for, in order
	skipped []string // why the serial or UUID named no file
}

func (e *noHostError) Error() string {
	msg := "no host file for this machine: tried " + strings.Join(e.tried, ", ")
	if len(e.tried) == 0 {
		msg = "no host file for this machine: it names no MAC"
	}
	if len(e.skipped) > 0 {
		msg += " (" + strings.Join(e.skipped, "; ") + ")"
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
func loadHost(dir string, req request) ([]layer, match, error) {
	host, m, err := findHost(dir, req)
	if err != nil {
		return nil, match{}, err
	}
	def, hasDefaults, err := readLayer(dir, "defaults.toml")
	if err != nil {
		return nil, match{}, &hostError{m, err}
	}
	layers, err := stackLayers(dir, def, hasDefaults, host)
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
func findHost(dir string, req request) (layer, match, error) {
	for _, mac := range req.macs {
		if l, m, found, err := readHost(dir, match{"mac", mac, "hosts/" + hostFileName(mac)}); found || err != nil {
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
		if l, m, found, err := readHost(dir, m); found || err != nil {
			return l, m, err
		}
		nf.tried = append(nf.tried, m.file)
	}
	if l, m, found, err := readHost(dir, match{by: "default", file: "hosts/default.toml"}); found || err != nil {
		return l, m, err
	}
	// No file at all may be no config dir at all: the operator's problem,
	// not the machine's.
	if _, err := os.Stat(dir); err != nil {
		return layer{}, match{}, &configError{"", fmt.Sprintf("config dir %s: %v", dir, unwrapPath(err))}
	}
	return layer{}, match{}, nf
}

// readHost reads the host file m names, if it exists.
func readHost(dir string, m match) (layer, match, bool, error) {
	l, found, err := readLayer(dir, m.file)
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
	def, ok, err := readLayer(dir, "defaults.toml")
	if err == nil && ok {
		_, err = stackLayers(dir, def, false, def)
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
// every file parses, every host file and profile is named so that it can
// be used, every profile a layer lists exists without a cycle, and every
// host's answer validates for rel (with btrfs enabled, as no request says
// otherwise). Facts no request gives here are sample values (see
// sampleFacts), so placeholders are checked for their syntax and names.
func checkDir(dir string, rel release) dirReport {
	var r dirReport
	said := map[string]bool{}
	errorf := func(format string, a ...any) {
		// A broken file that hosts share is said once, not once a host.
		if line := fmt.Sprintf(format, a...); !said[line] {
			said[line] = true
			r.lines = append(r.lines, line)
			r.errors++
		}
	}
	warnf := func(format string, a ...any) {
		r.lines = append(r.lines, "warning: "+fmt.Sprintf(format, a...))
		r.warnings++
	}
	notef := func(format string, a ...any) {
		r.lines = append(r.lines, "note: "+fmt.Sprintf(format, a...))
	}

	used := map[string]bool{}   // profile files some layer lists
	warned := map[string]bool{} // "file: key" already warned of
	def, hasDefaults, defErr := readLayer(dir, "defaults.toml")
	if defErr == nil && hasDefaults {
		// The profiles of defaults.toml are every host's: check them once.
		_, defErr = stackLayers(dir, def, false, def)
		markUsed(dir, def, used)
	}
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
		m, problem := hostMatch(strings.TrimSuffix(name, ".toml"))
		if problem != "" {
			errorf("%s: never matches: %s", file, problem)
			continue
		}
		if m.by == "serial" || m.by == "uuid" {
			notef("%s: answers the machine whose dmi.system.%s is %s (unless one of its MACs has a host file)", file, m.by, m.key)
		}
		r.hosts++
		host, _, err := readLayer(dir, file)
		if err != nil {
			errorf("%v", err)
			continue
		}
		markUsed(dir, host, used)
		if defErr != nil {
			continue // every answer needs defaults.toml, whose error is said once above
		}
		layers, err := stackLayers(dir, def, hasDefaults, host)
		if err != nil {
			errorf("%v", err)
			continue
		}
		f := sampleFacts(m, rel)
		scripts := &sampleScripts{dir: dir}
		f.scripts = scripts
		if _, err := compose(layers, f); err != nil {
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
		// may boot one of them. It names the file that set the key, once
		// for all the hosts that share it.
		since := map[string]release{} // by "file: key"
		for _, old := range ruleChanges {
			if !old.before(rel) {
				break
			}
			f.release, f.iso = old, old.String()
			_, err := compose(layers, f)
			var ae *answerError
			if !errors.As(err, &ae) {
				continue
			}
			for _, p := range ae.problems {
				if p.since == (release{}) {
					continue
				}
				setIn := p.origin(layers)
				if setIn == "" {
					setIn = file
				}
				if k := setIn + ": " + p.key(); !warned[k] {
					if _, seen := since[k]; !seen {
						since[k] = p.since
					}
				}
			}
		}
		for _, k := range sortedKeys(since) {
			warned[k] = true
			warnf("%s: needs an ISO of release %s or later; older ISOs reject the whole answer", k, since[k])
		}
		if scripts.used {
			if file := origin(layers, "first-boot", "script"); !warned[file+" --public-url"] {
				warned[file+" --public-url"] = true
				warnf("%s: first-boot-script: needs pxe-pilot serve --public-url, which serves the script; without it every answer that uses it is refused", file)
			}
		}
	}
	if r.hosts == 0 && dirErr == nil {
		warnf("hosts/: no host files, so no machine gets an answer; create hosts/<mac>.toml")
	}

	// Profiles no layer reached: broken ones are errors all the same, as
	// the next host to list one would fail.
	profiles, err := os.ReadDir(filepath.Join(dir, "profiles"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errorf("profiles/: %v", unwrapPath(err))
	}
	for _, e := range profiles {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".toml") {
			continue
		}
		file := "profiles/" + name
		if !plainName(strings.TrimSuffix(name, ".toml")) {
			errorf("%s: cannot be listed: a profile name is letters, digits, '-', '_' and '.'", file)
			continue
		}
		if used[file] {
			continue
		}
		l, _, err := readLayer(dir, file)
		if err == nil {
			_, err = stackLayers(dir, l, false, l) // its own profiles
		}
		if err != nil {
			errorf("%v", err)
			continue
		}
		// No host composes it, so check here what can be checked of its
		// placeholders: names and braces.
		for _, p := range expand(mergeLayers([]layer{l}), sampleFacts(match{by: "default"}, rel)) {
			if !strings.Contains(p.msg, "nothing to fill in") {
				errorf("%s: %s: %s", file, p.key(), p.msg)
			}
		}
		warnf("%s: no host uses it: no layer lists it in profiles", file)
	}
	return r
}

// markUsed marks the profiles l lists as used, and theirs in turn, also
// where a chain is broken: its error is said, and its profiles are used.
func markUsed(dir string, l layer, used map[string]bool) {
	for _, p := range l.profiles {
		file := profileFile(p)
		if used[file] {
			continue
		}
		used[file] = true
		if pl, ok, err := readLayer(dir, file); ok && err == nil {
			markUsed(dir, pl, used)
		}
	}
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

// sampleScripts checks first-boot scripts for validate as serve would,
// but hands out a URL of no server.
type sampleScripts struct {
	dir  string
	used bool
}

func (s *sampleScripts) scriptURL(path string, f facts, host string) (string, string) {
	s.used = true
	if _, msg := fillScript(s.dir, path, f, host); msg != "" {
		return "", msg
	}
	return "https://pxe-pilot.invalid/first-boot/sample", ""
}

// sampleFacts stand in for a request's in `pxe-pilot validate`: what the
// host file's name tells, and sample values for the rest.
func sampleFacts(m match, rel release) facts {
	req := request{product: "pve", iso: rel.String(), btrfs: true,
		macs: []string{"020000000001"}, links: []string{"eno1"},
		serial: "SAMPLE-SERIAL", uuid: "00000000-0000-4000-8000-000000000001"}
	switch m.by {
	case "mac":
		req.macs[0] = m.key
	case "serial":
		req.serial = m.key
	case "uuid":
		req.uuid = m.key
	}
	return req.facts(m, rel)
}
