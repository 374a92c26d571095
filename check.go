// The validate command: a whole config dir checked as the server would answer from it.

package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

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
	return checkConfig(dir, checkOptions{release: rel, older: true})
}

// checkOptions say what validate checks a config dir for.
type checkOptions struct {
	release   release
	older     bool   // also warn of keys that ISOs older than release lack
	publicURL string // the URL serve is reached by: first-boot scripts are served
	bootDir   string // serve's --boot-dir: each host's boot-image must name one of its images

	each func(hostCheck) // if set, told of each host file checked, in hosts/'s order: status's plans
}

// hostCheck is what checkConfig found of one host file, for status to
// show without composing its answer again.
type hostCheck struct {
	m        match
	layers   []layer // in merge order; nil where they could not be read
	why      string  // why not: "(cannot be read)" or "(config error)"
	composes bool    // its answer composes, for a sample request of the release checked
	image    string  // the image /boot.ipxe installs it with, where the options have a --boot-dir with images and its choice is sound
	badImage bool    // its boot-image choice is not sound, and /boot.ipxe refuses it
}

// checkConfig is checkDir with its options.
func checkConfig(dir string, opts checkOptions) dirReport {
	rel := opts.release
	var images []string // --boot-dir's, where there are any to choose from
	if opts.bootDir != "" {
		images, _ = imageNames(opts.bootDir) // checkBootDir says what is wrong with it
	}
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
	warned := map[string]bool{} // "file: key" (and whole warnings) already said
	warnOnce := func(line string) {
		if !warned[line] {
			warned[line] = true
			warnf("%s", line)
		}
	}
	notef := func(format string, a ...any) {
		r.lines = append(r.lines, "note: "+fmt.Sprintf(format, a...))
	}

	c, err := openConfigDir(dir)
	if err != nil {
		errorf("%v", err)
		return r
	}
	defer c.close()
	c.offline = true // what the files say, deploy or not
	c.shared = map[string]readResult{}
	each := opts.each
	if each == nil {
		each = func(hostCheck) {}
	}
	used := map[string]bool{} // profile files some layer lists
	def, hasDefaults, defErr := readLayer(c, "defaults.toml")
	if defErr == nil && hasDefaults {
		// The profiles of defaults.toml are every host's: check them once.
		_, defErr = stackLayers(c, def, false, def)
		markUsed(c, def, used)
	}
	if defErr != nil {
		errorf("%v", defErr)
	}
	entries, dirErr := os.ReadDir(filepath.Join(dir, "hosts"))
	for _, line := range unreadFiles(dir, hasDefaults, entries) {
		errorf("%s", line)
	}
	if err := dirErr; err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			errorf("hosts/: missing, so no machine gets an answer; create hosts/<mac>.toml")
		} else {
			errorf("hosts/: %v", unwrapPath(err))
		}
	}
	// What the hosts' answers share, and what a mistake in a shared layer
	// costs: said once, with the hosts it affects.
	byFQDN, byAddr := map[string][]string{}, map[string][]string{}
	var shared []string               // lines, in the order first met
	sharedBy := map[string][]string{} // the hosts each affects
	named := map[string][]string{}    // the host files each MAC is named in
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".toml") {
			continue
		}
		file := "hosts/" + name
		m, why := hostMatch(strings.TrimSuffix(name, ".toml"))
		if why != "" {
			errorf("%s: never matches: %s", file, why)
			continue
		}
		if m.by == "serial" || m.by == "uuid" {
			notef("%s: answers the machine whose dmi.system.%s is %s (unless one of its MACs has a host file)", file, m.by, m.key)
		}
		r.hosts++
		host, _, err := readLayer(c, file)
		if err != nil {
			errorf("%v", err)
			each(hostCheck{m: m, why: "(cannot be read)"})
			continue
		}
		markUsed(c, host, used)
		if defErr != nil {
			each(hostCheck{m: m, why: "(config error)"})
			continue // every answer needs defaults.toml, whose error is said once above
		}
		layers, err := stackLayers(c, def, hasDefaults, host)
		if err != nil {
			errorf("%v", err)
			each(hostCheck{m: m, why: "(config error)"})
			continue
		}
		checked := hostCheck{m: m, layers: layers}
		if name, from := bootImage(layers); len(images) > 0 {
			if msg := imageChoice(name, images); msg != "" {
				errorf("%s: %s", from, msg)
				checked.badImage = true
			} else {
				checked.image = cmp.Or(name, images[0])
			}
		}
		f := sampleFacts(m, rel)
		scripts := &sampleScripts{}
		f.scripts, f.dir = scripts, c
		// A key another file set is said of that file, once for all the
		// hosts that share it.
		setIn := func(p problem) string {
			if o := p.origin(layers); o != "" {
				return o
			}
			return file
		}
		out, warnings, err := composeWithWarnings(layers, f)
		checked.composes = err == nil
		each(checked)
		if err != nil {
			var ae *answerError
			if !errors.As(err, &ae) {
				errorf("%v", err)
				continue
			}
			for i, line := range ae.lines() {
				p := ae.problems[i]
				if o := p.origin(layers); o != "" && o != file && len(p.path) > 0 {
					line = o + ": " + p.key() + ": " + p.msg
					if sharedBy[line] == nil {
						shared = append(shared, line)
					}
					sharedBy[line] = append(sharedBy[line], file)
					continue
				}
				errorf("%s: %s", file, line)
			}
		}
		if err == nil && m.by != "default" { // default.toml's answer is every unnamed machine's
			fqdn, addr := answerIdentity(out)
			if fqdn != "" {
				byFQDN[fqdn] = append(byFQDN[fqdn], file)
			}
			if addr != "" {
				byAddr[addr] = append(byAddr[addr], file)
			}
		}
		for _, mac := range namedMACs(mergeLayers(layers), m) {
			named[mac] = append(named[mac], file)
		}
		for _, l := range layers {
			for _, n := range l.notes {
				warnOnce(l.name + ": " + n)
			}
		}
		for _, p := range warnings {
			warnOnce(setIn(p) + ": " + p.key() + ": " + p.msg)
		}
		// Keys that older ISOs lack: worth a warning, since the operator
		// may boot one of them, unless --release said which they boot.
		since := map[string]release{} // by "file: key"
		for _, old := range ruleChanges {
			if !opts.older || !old.before(rel) {
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
				if k := setIn(p) + ": " + p.key(); !warned[k] {
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
		if scripts.used && opts.publicURL == "" {
			if file := origin(layers, "first-boot", "script"); !warned[file+" --public-url"] {
				warned[file+" --public-url"] = true
				warnf("%s: first-boot-script: needs pxe-pilot serve --public-url, which serves the script; without it every answer that uses it is refused", file)
			}
		}
	}
	if r.hosts == 0 && dirErr == nil {
		errorf("hosts/: no host files, so no machine gets an answer; create hosts/<mac>.toml")
	}
	for _, line := range shared {
		errorf("%s (%s)", line, affected(sharedBy[line], r.hosts))
	}
	for _, group := range [][2]any{{"the same fqdn", byFQDN}, {"the same address", byAddr}} {
		m := group[1].(map[string][]string)
		for _, k := range sortedKeys(m) {
			if files := m[k]; len(files) > 1 {
				errorf("%s: %s give %s, %s: two machines would be installed under one %s", strings.Join(files, " and "), pluralVerb(files), group[0], k, strings.TrimPrefix(group[0].(string), "the same "))
			}
		}
	}
	for _, mac := range sortedKeys(named) {
		files := named[mac]
		if len(files) < 2 {
			continue
		}
		own := "hosts/" + hostFileName(mac)
		if slices.Contains(files, own) && !slices.ContainsFunc(files, func(f string) bool {
			return f != own && strings.HasPrefix(f, "hosts/") && !strings.HasPrefix(f, "hosts/serial-") && !strings.HasPrefix(f, "hosts/uuid-")
		}) {
			// A MAC's file and a serial or UUID file: the MAC's wins.
			others := slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == own })
			warnOnce(fmt.Sprintf("%s: names the machine with NIC %s, which %s answers first: a MAC's host file wins over its serial's or UUID's, so %s never answers this machine", strings.Join(others, " and "), colonMACs([]string{mac})[0], own, strings.Join(others, " and ")))
			continue
		}
		errorf("%s name one machine (its NIC %s): which answers it depends on the order the installer lists its NICs; keep one file for it", strings.Join(files, " and "), colonMACs([]string{mac})[0])
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
		l, _, err := readLayer(c, file)
		if err == nil {
			_, err = stackLayers(c, l, false, l) // its own profiles
		}
		if err != nil {
			errorf("%v", err)
			continue
		}
		// No host composes it, so check here what can be checked of its
		// placeholders: names and braces.
		ps := expand(mergeLayers([]layer{l}), sampleFacts(match{by: "default"}, rel))
		asWritten(ps, []layer{l})
		for _, p := range ps {
			if !strings.Contains(p.msg, "nothing to fill in") {
				errorf("%s: %s: %s", file, p.key(), p.msg)
			}
		}
		for _, n := range l.notes {
			warnOnce(file + ": " + n)
		}
		warnf("%s: no host uses it: no layer lists it in profiles", file)
	}
	return r
}

// answerIdentity reads a rendered answer's fqdn and static address (the
// address alone, without its prefix length).
func answerIdentity(out []byte) (fqdn, addr string) {
	var ans struct {
		Global struct {
			FQDN any `toml:"fqdn"`
		} `toml:"global"`
		Network struct {
			CIDR string `toml:"cidr"`
		} `toml:"network"`
	}
	if toml.Unmarshal(out, &ans) != nil {
		return "", ""
	}
	fqdn, _ = ans.Global.FQDN.(string)
	if p, err := netip.ParsePrefix(ans.Network.CIDR); err == nil {
		addr = p.Addr().String()
	}
	return strings.ToLower(fqdn), addr
}

// namedMACs are the MACs a host file names its machine by: the one of its
// file name, and those its answer pins names to or picks its NIC by.
func namedMACs(ans map[string]any, m match) []string {
	var macs []string
	if m.by == "mac" {
		macs = append(macs, m.key)
	}
	if pins, ok := lookup(ans, "network", "interface-name-pinning", "mapping").(map[string]any); ok {
		for k := range pins {
			if mac, ok := normalizeMAC(k); ok && !slices.Contains(macs, mac) {
				macs = append(macs, mac)
			}
		}
	}
	if glob, ok := lookup(ans, "network", "filter", "ID_NET_NAME_MAC").(string); ok {
		if mac, ok := normalizeMAC(strings.TrimPrefix(strings.ToLower(glob), "*")); ok && !slices.Contains(macs, mac) {
			macs = append(macs, mac)
		}
	}
	return macs
}

// affected says which hosts a mistake in a shared layer affects.
func affected(files []string, hosts int) string {
	switch {
	case len(files) == 1:
		return "in the answer of " + files[0]
	case len(files) == hosts:
		return fmt.Sprintf("in the answers of all %d hosts", hosts)
	case len(files) <= 3:
		return fmt.Sprintf("in the answers of %d hosts: %s", len(files), strings.Join(files, ", "))
	}
	return fmt.Sprintf("in the answers of %d hosts: %s, and %d more", len(files), strings.Join(files[:3], ", "), len(files)-3)
}

func pluralVerb(files []string) string {
	if len(files) == 2 {
		return "both"
	}
	return "all"
}

// unreadFiles names the files of the config dir that look meant for
// pxe-pilot but that it will never read, with the rename that fixes each.
func unreadFiles(dir string, hasDefaults bool, hosts []os.DirEntry) []string {
	var lines []string
	top, _ := os.ReadDir(dir)
	for _, e := range top {
		name := e.Name()
		base, ext := splitExt(name)
		lower := strings.ToLower(base)
		switch {
		case name == "defaults.toml" || name == "hosts" || name == "profiles":
		case e.IsDir() && (lower == "hosts" || lower == "host" || lower == "profiles" || lower == "profile"):
			want := "hosts"
			if strings.HasPrefix(lower, "profile") {
				want = "profiles"
			}
			lines = append(lines, fmt.Sprintf("%s/: never read: name it %s/", name, want))
		case e.IsDir():
		case lower == "defaults" && (isTOMLExt(ext) || ext == ""):
			lines = append(lines, fmt.Sprintf("%s: never read: name it defaults.toml", name))
		case lower == "default" && (isTOMLExt(ext) || ext == "") && !hasDefaults:
			lines = append(lines, fmt.Sprintf("%s: never read: the defaults every host shares go in defaults.toml (and hosts/default.toml is the host file of every machine that has none of its own)", name))
		}
	}
	for _, e := range hosts {
		name := e.Name()
		base, ext := splitExt(name)
		switch {
		case e.IsDir() && !strings.HasSuffix(name, ".toml"):
			lines = append(lines, fmt.Sprintf("hosts/%s/: never read: host files go in hosts/ itself, not in folders below it", name))
		case ext == ".toml":
		case isTOMLExt(ext) || ext == "" && hostLike(base):
			if _, why := hostMatch(base); why == "" {
				lines = append(lines, fmt.Sprintf("hosts/%s: never read: name it hosts/%s.toml", name, base))
			} else if hostLike(base) {
				lines = append(lines, fmt.Sprintf("hosts/%s: never read: a host file ends in .toml; %s", name, why))
			}
		}
	}
	return lines
}

// markUsed marks the profiles l lists as used, and theirs in turn, also
// where a chain is broken: its error is said, and its profiles are used.
func markUsed(c *configDir, l layer, used map[string]bool) {
	for _, p := range l.profiles {
		file := profileFile(p)
		if used[file] {
			continue
		}
		used[file] = true
		if pl, ok, err := readLayer(c, file); ok && err == nil {
			markUsed(c, pl, used)
		}
	}
}

// sampleScripts checks first-boot scripts for validate as serve would,
// but hands out a URL of no server.
type sampleScripts struct {
	used bool
}

func (s *sampleScripts) scriptURL(path string, f facts, host string) (string, string) {
	s.used = true
	if _, msg := fillScript(f.dir, path, f, host); msg != "" {
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

// errorLines are the report's errors, without its warnings and notes.
func (r dirReport) errorLines() []string {
	var out []string
	for _, l := range r.lines {
		if !strings.HasPrefix(l, "warning: ") && !strings.HasPrefix(l, "note: ") {
			out = append(out, l)
		}
	}
	return out
}

// filesWithErrors counts the files the errors name: each line starts with
// its file ("hosts/x.toml: ..." or "defaults.toml:2:12: ...").
func (r dirReport) filesWithErrors() int {
	files := map[string]bool{}
	for _, l := range r.errorLines() {
		file, _, _ := strings.Cut(l, ":")
		files[file] = true
	}
	return len(files)
}
