// The validate command: a whole config dir checked as the server would answer from it.

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	if err := dirErr; err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			warnf("hosts/: missing, so no machine gets an answer; create hosts/<mac>.toml")
		} else {
			errorf("hosts/: %v", unwrapPath(err))
		}
	}
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
			continue
		}
		markUsed(c, host, used)
		if defErr != nil {
			continue // every answer needs defaults.toml, whose error is said once above
		}
		layers, err := stackLayers(c, def, hasDefaults, host)
		if err != nil {
			errorf("%v", err)
			continue
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
		_, warnings, err := composeWithWarnings(layers, f)
		if err != nil {
			var ae *answerError
			if !errors.As(err, &ae) {
				errorf("%v", err)
				continue
			}
			for _, line := range ae.lines() {
				errorf("%s: %s", file, line)
			}
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
		// may boot one of them.
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
