// Friendly keys (hostname, [disk], address) to the installer's own, and its spellings per release.

package main

import (
	"fmt"
	"slices"
	"strings"
)

// A spelling is a key's two names, kebab-case and snake_case, with its table path.
type spelling struct {
	table        []string
	kebab, snake string
}

// snakeKeys are the keys the installer's 8.2 and 8.3 ISOs know only in
// snake_case, which pxe-pilot serves them; later ones take both spellings.
var snakeKeys = []spelling{
	{[]string{"global"}, "root-password", "root_password"},
	{[]string{"global"}, "root-password-hashed", "root_password_hashed"},
	{[]string{"global"}, "root-ssh-keys", "root_ssh_keys"},
	{[]string{"global"}, "reboot-on-error", "reboot_on_error"},
	{[]string{"disk-setup"}, "disk-list", "disk_list"},
	{[]string{"disk-setup"}, "filter-match", "filter_match"},
	{[]string{"disk-setup", "zfs"}, "arc-max", "arc_max"},
	{[]string{"post-installation-webhook"}, "cert-fingerprint", "cert_fingerprint"},
}

// legacyKeys are the other keys the installer still takes in snake_case
// (9.2.7 does), though no release needs it: every release that knows one
// knows its kebab-case spelling, which pxe-pilot always serves.
var legacyKeys = []spelling{
	{[]string{"global"}, "reboot-mode", "reboot_mode"},
	{[]string{"global"}, "subscription-key", "subscription_key"},
	{[]string{"first-boot"}, "cert-fingerprint", "cert_fingerprint"},
	{[]string{"post-installation-webhook"}, "auth-token", "auth_token"},
}

// friendlyKeys are the keys pxe-pilot takes in a table beside the
// installer's own, by the table as a file writes it, in the spelling an
// operator types: what an unknown key is held against, with the installer's.
var friendlyKeys = func() map[string][]string {
	m := map[string][]string{
		"":        {"hostname", "profiles", "first-boot-script", "first-boot-ordering", "disk"},
		"global":  {"hostname", "domain", "root_password_hash"},
		"network": {"address"},
		"disk":    {"target"},
	}
	for _, s := range snakeKeys {
		tables := [][]string{s.table}
		if s.table[0] == "disk-setup" {
			tables = append(tables, append([]string{"disk"}, s.table[1:]...))
		}
		for _, t := range tables {
			m[keyPath(t)] = append(m[keyPath(t)], s.snake)
		}
	}
	return m
}()

// legacySpellings says which legacyKeys a file spells in snake_case, for
// validate to warn of, before translateLayer respells them.
func legacySpellings(raw map[string]any) []string {
	var notes []string
	for _, s := range legacyKeys {
		if t, _ := lookup(raw, s.table...).(map[string]any); t != nil && t[s.snake] != nil {
			notes = append(notes, fmt.Sprintf("%s.%s: the installer's own spelling is %s, which pxe-pilot serves; %s is a legacy alias Proxmox plans to drop", keyPath(s.table), s.snake, s.kebab, s.snake))
		}
	}
	return notes
}

// translateLayer rewrites one file's friendly keys (hostname, [disk],
// address, root_password_hash, snake_case spellings) into the installer's
// kebab-case names, so that layers merge key by key whatever spelling each
// uses, and says how the file wrote each key it renamed, for messages.
// Keys it does not know pass through for validate to judge. raw is the
// parser's fresh output and is changed in place.
func translateLayer(name string, raw map[string]any) (map[string]any, spellings, error) {
	w := spellings{}
	fail := func(key, format string, a ...any) error {
		return &configError{name, key + ": " + fmt.Sprintf(format, a...)}
	}
	tableAt := func(key string) (map[string]any, error) {
		v, ok := raw[key]
		if !ok {
			return nil, nil
		}
		t, ok := v.(map[string]any)
		if !ok {
			return nil, fail(key, "want a table ([%s]), got %s", key, describe(v))
		}
		return t, nil
	}

	if h, ok := raw["hostname"]; ok {
		g, err := tableAt("global")
		if err != nil {
			return nil, nil, err
		}
		if g == nil {
			g = map[string]any{}
			raw["global"] = g
		}
		if _, dup := g["hostname"]; dup {
			return nil, nil, fail("hostname", "set both at the top and in [global]; keep one")
		}
		g["hostname"] = h
		delete(raw, "hostname")
		w.move([]string{"hostname"}, []string{"global", "hostname"})
	}

	for _, keys := range [...][]spelling{snakeKeys, legacyKeys} {
		for _, s := range keys {
			if err := respellKey(name, raw, w, s.table, s.snake, s.kebab); err != nil {
				return nil, nil, err
			}
		}
	}

	// [disk] is the friendly spelling of [disk-setup]; where one file has
	// both, the native table wins key by key.
	disk, err := tableAt("disk")
	if err != nil {
		return nil, nil, err
	}
	if disk != nil {
		if t, ok := disk["target"]; ok {
			list, err := diskTargets(t)
			if err != nil {
				return nil, nil, fail("disk.target", "%s", err)
			}
			disk["disk-list"] = list
			delete(disk, "target")
			w.move([]string{"disk", "target"}, []string{"disk", "disk-list"})
		}
		if err := respellDisk(name, raw, w); err != nil {
			return nil, nil, err
		}
		native, err := tableAt("disk-setup")
		if err != nil {
			return nil, nil, err
		}
		w.merge(disk, native, []string{"disk"}, []string{"disk-setup"})
		if native != nil {
			mergeInto(disk, native)
		}
		raw["disk-setup"] = disk
		delete(raw, "disk")
	}

	// first-boot-script (pxe-pilot serves it) and first-boot-ordering go
	// in [first-boot], where either-or with a native source is decided.
	for _, k := range [][2]string{{"first-boot-script", "script"}, {"first-boot-ordering", "ordering"}} {
		v, ok := raw[k[0]]
		if !ok {
			continue
		}
		fb, err := tableAt("first-boot")
		if err != nil {
			return nil, nil, err
		}
		if fb == nil {
			fb = map[string]any{}
			raw["first-boot"] = fb
		}
		if _, dup := fb[k[1]]; dup {
			return nil, nil, fail(k[0], "also set as first-boot.%s in this file; keep one", k[1])
		}
		fb[k[1]] = v
		delete(raw, k[0])
		w.move([]string{k[0]}, []string{"first-boot", k[1]})
	}

	if g, _ := raw["global"].(map[string]any); g != nil {
		friendly(w, g, "global", "root_password_hash", "root-password-hashed")
	}
	if n, _ := raw["network"].(map[string]any); n != nil {
		friendly(w, n, "network", "address", "cidr")
	}
	if d, _ := raw["disk-setup"].(map[string]any); d != nil {
		if l, ok := d["disk-list"].([]any); ok {
			list, err := diskTargets(l)
			if err != nil {
				return nil, nil, fail("disk-setup.disk-list", "%s", err)
			}
			d["disk-list"] = list
		}
	}
	if p, _ := lookup(raw, "network", "interface-name-pinning", "mapping").(map[string]any); p != nil {
		// MAC keys in uppercase broke installers before 9.1.7.
		at := []string{"network", "interface-name-pinning", "mapping"}
		for k, v := range p {
			if lk := strings.ToLower(k); lk != k {
				if _, dup := p[lk]; dup {
					return nil, nil, fail("network.interface-name-pinning.mapping", "%s is listed twice (%s and %s)", lk, k, lk)
				}
				delete(p, k)
				p[lk] = v
				w.move(append(at, k), append(at, lk))
			}
		}
	}
	l := layer{name: name, tree: raw, written: w}
	if err := checkExclusives(l); err != nil {
		return nil, nil, err
	}
	return raw, w, nil
}

// respellDisk moves the snake_case keys of the friendly [disk] table to
// their kebab-case spelling, as translateLayer does for [disk-setup].
func respellDisk(name string, raw map[string]any, w spellings) error {
	for _, s := range snakeKeys {
		if s.table[0] != "disk-setup" {
			continue
		}
		path := append([]string{"disk"}, s.table[1:]...)
		if err := respellKey(name, raw, w, path, s.snake, s.kebab); err != nil {
			return err
		}
	}
	return nil
}

func respellKey(name string, raw map[string]any, w spellings, table []string, snake, kebab string) error {
	t, _ := lookup(raw, table...).(map[string]any)
	if t == nil {
		return nil
	}
	v, ok := t[snake]
	if !ok {
		return nil
	}
	if _, dup := t[kebab]; dup {
		key := keyPath(table)
		return &configError{name, key + "." + snake + " and " + key + "." + kebab + " are one key spelled twice; keep " + kebab}
	}
	t[kebab] = v
	delete(t, snake)
	at := slices.Clip(table)
	w.move(append(at, snake), append(at, kebab))
	return nil
}

// friendly moves a friendly key of the table at path to its native name
// unless the native key is set too, which then wins.
func friendly(w spellings, t map[string]any, path, from, to string) {
	if v, ok := t[from]; ok {
		if _, native := t[to]; !native {
			t[to] = v
			w.move([]string{path, from}, []string{path, to})
		}
		delete(t, from)
	}
}

// spellings say how a file wrote the keys translateLayer renamed: by the
// key path in the installer's names (keyPath), the path as written. A key
// under a renamed table is found by the table's entry.
type spellings map[string][]string

// move records that the key at from, as renamed so far, is now at to; the
// keys under it move along.
func (w spellings) move(from, to []string) {
	f, t := keyPath(from), keyPath(to)
	written, ok := w[f]
	if !ok {
		written = slices.Clone(from)
	}
	var under []string // the keys below from, renamed after the loop
	for k := range w {
		if strings.HasPrefix(k, f+".") {
			under = append(under, k)
		}
	}
	for _, k := range under {
		w[t+k[len(f):]] = w[k]
		delete(w, k)
	}
	delete(w, f)
	w[t] = written
}

// merge records the keys of the table src at from that merging dst (at
// to) over it keeps, now at to: those dst lacks, and in tables both have,
// theirs in turn. What dst has instead is its own, natively spelled.
func (w spellings) merge(src, dst map[string]any, from, to []string) {
	if dst == nil {
		w.move(from, to)
		return
	}
	for _, k := range sortedKeys(src) {
		f, t := append(slices.Clip(from), k), append(slices.Clip(to), k)
		sub, _ := src[k].(map[string]any)
		dv, ok := dst[k]
		switch dsub, _ := dv.(map[string]any); {
		case !ok:
			w.move(f, t)
		case sub != nil && dsub != nil:
			w.merge(sub, dsub, f, t)
		default:
			w.drop(f) // dst's own
		}
	}
}

// drop forgets the key at path and the keys under it.
func (w spellings) drop(path []string) {
	p := keyPath(path)
	for k := range w {
		if k == p || strings.HasPrefix(k, p+".") {
			delete(w, k)
		}
	}
}

// of says how the file wrote the key at path, or nil where it wrote it so.
func (w spellings) of(path []string) []string {
	for i := len(path); i > 0; i-- {
		if written, ok := w[keyPath(path[:i])]; ok {
			return append(slices.Clip(written), path[i:]...)
		}
	}
	return nil
}

// diskTargets turns disk.target (a device or a list of them) into the
// installer's disk-list of kernel names: "/dev/sda" becomes "sda".
func diskTargets(v any) ([]any, error) {
	var in []any
	switch v := v.(type) {
	case string:
		in = []any{v}
	case []any:
		in = v
	default:
		return nil, fmt.Errorf("want a device name or a list of them, got %s", describe(v))
	}
	out := make([]any, 0, len(in))
	written := map[string]string{} // each kernel name as first written
	for _, e := range in {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("want device names, got %s", describe(e))
		}
		if strings.HasPrefix(s, "/dev/disk/") {
			return nil, fmt.Errorf("%q: the installer takes kernel names (sda, nvme0n1), not /dev/disk/ links; to pick a disk by serial, set [disk-setup.filter] ID_SERIAL = \"*<serial>*\" instead", s)
		}
		name := strings.TrimPrefix(s, "/dev/")
		if name == "" || strings.ContainsAny(name, "/ \t\n") {
			return nil, fmt.Errorf("%q is not a disk's kernel name (such as sda or nvme0n1)", e)
		}
		// The same spelling twice is the installer's own error, for validate to say.
		if first, dup := written[name]; dup && first != s {
			return nil, fmt.Errorf("%q and %q are one disk: the installer's parser would accept both, but the install would fail on a disk listed twice; list it once", first, s)
		}
		written[name] = s
		out = append(out, name)
	}
	return out, nil
}
