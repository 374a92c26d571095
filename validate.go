// The installer's answer schema and rules, per release.

package main

//go:generate go run gen_locales.go

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// A release is a Proxmox VE ISO release, the unit in which the installer's
// answer format changes. Other products' releases are mapped onto it.
type release struct{ major, minor int }

var (
	r82    = release{8, 2} // the first auto-installer
	r83    = release{8, 3}
	r84    = release{8, 4} // kebab-case keys
	r91    = release{9, 1}
	r92    = release{9, 2}
	newest = r92
)

func (r release) before(o release) bool {
	return r.major < o.major || r.major == o.major && r.minor < o.minor
}

func (r release) String() string { return strconv.Itoa(r.major) + "." + strconv.Itoa(r.minor) }

// snakeCase reports whether the release takes the installer's old
// snake_case spellings; 8.4 and later take kebab-case.
func (r release) snakeCase() bool { return r.before(r84) }

// parseRelease reads "X.Y". Numbers after a second dot are ignored.
func parseRelease(s string) (release, bool) {
	maj, rest, ok := strings.Cut(s, ".")
	if !ok {
		return release{}, false
	}
	min, _, _ := strings.Cut(rest, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 || a > 999 || b > 999 {
		return release{}, false
	}
	return release{a, b}, true
}

// describe names a TOML value's type for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return "a boolean"
	case int64:
		return "the integer " + strconv.FormatInt(v, 10)
	case float64:
		return "the float " + strconv.FormatFloat(v, 'g', -1, 64)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return "a date or time"
	}
}

// validate checks an answer against the installer's schema for the
// requesting release: the known tables and keys, their types, enums and
// ranges, and the rules between keys.
func validate(ans map[string]any, f facts) []problem {
	v := validator{rel: f.release}
	v.table(ans, make([]string, 0, 4), topSchema)
	if g, ok := ans["global"].(map[string]any); ok {
		v.global(g)
	}
	if n, ok := ans["network"].(map[string]any); ok {
		v.network(n)
	}
	if d, ok := ans["disk-setup"].(map[string]any); ok {
		v.disks(d, f.btrfs)
	}
	if fb, ok := ans["first-boot"].(map[string]any); ok {
		if fb["source"] == "from-url" && fb["url"] == nil {
			v.add([]string{"first-boot", "url"}, `missing; source = "from-url" needs the script's URL`)
		}
	}
	return v.ps
}

type validator struct {
	rel release
	ps  []problem
}

func (v *validator) add(path []string, format string, a ...any) {
	v.ps = append(v.ps, problem{path: slices.Clone(path), msg: fmt.Sprintf(format, a...)})
}

// warn says what the installer takes, but not as the operator may think.
func (v *validator) warn(path []string, format string, a ...any) {
	v.add(path, format, a...)
	v.ps[len(v.ps)-1].warn = true
}

// A field is one key the installer knows in a table. Schemas are slices,
// not maps, so that checking walks them in a fixed order with no sorting.
type field struct {
	name     string
	since    release
	required bool
	check    func(x any) string // "" when x is fine; nil for a table
	fields   []field            // a table's own keys
}

var topSchema = []field{
	{name: "global", since: r82, required: true, fields: []field{
		{name: "keyboard", since: r82, required: true, check: oneOfFunc("keyboard", isKeyboard, keyboards[:])},
		{name: "country", since: r82, required: true, check: oneOfFunc("country code", isCountry, nil)},
		{name: "fqdn", since: r82, required: true, check: checkFQDN},
		{name: "mailto", since: r82, required: true, check: checkMail},
		{name: "timezone", since: r82, required: true, check: oneOfFunc("time zone", isTimezone, timezones[:])},
		{name: "root-password", since: r82, check: checkPassword},
		{name: "root-password-hashed", since: r83, check: checkHash},
		{name: "root-ssh-keys", since: r82, check: stringList},
		{name: "reboot-on-error", since: r82, check: boolean},
		{name: "reboot-mode", since: r84, check: oneOf("reboot", "power-off")},
		{name: "subscription-key", since: r92, check: secret},
	}},
	{name: "network", since: r82, required: true, fields: []field{
		{name: "source", since: r82, required: true, check: oneOf("from-dhcp", "from-answer")},
		{name: "cidr", since: r82, check: checkCIDR},
		{name: "dns", since: r82, check: checkIP},
		{name: "gateway", since: r82, check: checkIP},
		{name: "filter", since: r82, check: udevFilter},
		{name: "interface-name-pinning", since: r91, fields: []field{
			{name: "enabled", since: r91, check: boolean},
			{name: "mapping", since: r91, check: checkPinning},
		}},
	}},
	{name: "disk-setup", since: r82, required: true, fields: []field{
		{name: "filesystem", since: r82, required: true, check: oneOf("ext4", "xfs", "zfs", "btrfs")},
		{name: "disk-list", since: r82, check: checkDiskList},
		{name: "filter", since: r82, check: udevFilter},
		{name: "filter-match", since: r82, check: oneOf("any", "all")},
		{name: "zfs", since: r82, fields: []field{
			{name: "raid", since: r82, required: true, check: raidLevel("zfs")},
			{name: "ashift", since: r82, check: whole(9, 16)},
			{name: "arc-max", since: r82, check: whole(0, math.MaxInt32)}, // 0: ZFS's default
			{name: "checksum", since: r82, check: oneOf("on", "fletcher4", "sha256")},
			{name: "compress", since: r82, check: oneOf("on", "off", "lzjb", "lz4", "zle", "gzip", "zstd")},
			{name: "copies", since: r82, check: whole(1, 3)},
			{name: "hdsize", since: r82, check: size(2)},
		}},
		{name: "btrfs", since: r82, fields: []field{
			{name: "raid", since: r82, required: true, check: raidLevel("btrfs")},
			{name: "compress", since: r83, check: oneOf("on", "off", "zlib", "lzo", "zstd")},
			{name: "hdsize", since: r82, check: size(0)},
		}},
		{name: "lvm", since: r82, fields: []field{
			{name: "hdsize", since: r82, check: size(0)},
			{name: "swapsize", since: r82, check: size(0)},
			{name: "maxroot", since: r82, check: size(0)},
			{name: "maxvz", since: r82, check: size(0)},
			{name: "minfree", since: r82, check: size(0)},
		}},
	}},
	{name: "post-installation-webhook", since: r83, fields: []field{
		{name: "url", since: r83, required: true, check: checkURL},
		{name: "cert-fingerprint", since: r83, check: checkFingerprint},
		{name: "auth-token", since: r92, check: checkToken},
	}},
	{name: "first-boot", since: r83, fields: []field{
		{name: "source", since: r83, required: true, check: oneOf("from-iso", "from-url")},
		{name: "url", since: r83, check: checkURL},
		{name: "cert-fingerprint", since: r83, check: checkFingerprint},
		{name: "ordering", since: r83, check: oneOf("before-network", "network-online", "fully-up")},
	}},
}

// missingHints say where a required key usually comes from.
var missingHints = map[string]string{
	"global.fqdn":           "; set hostname (with global.domain) or global.fqdn",
	"global.mailto":         "; set the address the installed system mails root's messages to",
	"disk-setup.filesystem": "; set one of ext4, xfs, zfs, btrfs",
	"disk-setup.zfs.raid":   "; set one of " + strings.Join(raidLevels["zfs"], ", "),
	"disk-setup.btrfs.raid": "; set one of " + strings.Join(raidLevels["btrfs"], ", "),
}

// table checks one table's keys against its schema: the known ones in the
// schema's order, then any unknown ones, sorted, so that the same answer
// always gives the same message.
func (v *validator) table(t map[string]any, path []string, fields []field) {
	known := 0
	for i := range fields {
		f := &fields[i]
		x, ok := t[f.name]
		p := append(path, f.name)
		switch {
		case !ok:
			if f.required && !v.rel.before(f.since) {
				v.add(p, "%s", "missing"+missingHints[keyPath(p)])
			}
			continue
		case v.rel.before(f.since):
			v.add(p, "the %s installer does not know this key (it needs %s or later), and would reject the whole answer", v.rel, f.since)
			v.ps[len(v.ps)-1].since = f.since
		case f.fields != nil:
			if sub, ok := x.(map[string]any); ok {
				v.table(sub, p, f.fields)
			} else {
				v.add(p, "want a table, got %s", describe(x))
			}
		default:
			if msg := f.check(x); msg != "" {
				v.add(p, "%s", msg)
			}
		}
		known++
	}
	if known == len(t) {
		return
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	for _, k := range sortedKeys(t) {
		if !slices.Contains(names, k) {
			v.unknown(append(path, k), t[k], names)
		}
	}
}

// unknown says a key is not one the installer knows, for asWritten to
// suggest one of names, or of pxe-pilot's own keys where the file wrote it.
func (v *validator) unknown(path []string, x any, names []string) {
	what := "key"
	if _, ok := x.(map[string]any); ok {
		what = "table"
	}
	v.add(path, "unknown %s", what)
	v.ps[len(v.ps)-1].near = names
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (v *validator) global(g map[string]any) {
	_, plain := g["root-password"]
	_, hashed := g["root-password-hashed"]
	switch {
	case plain && hashed:
		v.add([]string{"global"}, "`global.root-password` and `global.root-password-hashed` cannot be set at the same time")
	case !plain && !hashed:
		v.add([]string{"global"}, "One of `global.root-password` or `global.root-password-hashed` must be set (in pxe-pilot: root_password or root_password_hash)")
	}
	fq, ok := g["fqdn"].(map[string]any)
	if ok && v.rel.before(r84) {
		v.add([]string{"global", "fqdn"}, "the %s installer takes fqdn only as a name (the from-dhcp table needs 8.4 or later)", v.rel)
		v.ps[len(v.ps)-1].since = r84
	} else if ok {
		for _, k := range sortedKeys(fq) {
			switch k {
			case "source":
				if fq[k] != "from-dhcp" {
					v.add([]string{"global", "fqdn", k}, "%s is not from-dhcp, the only source the installer knows", describe(fq[k]))
				}
			case "domain":
				if s, ok := fq[k].(string); !ok || s != "" && checkFQDN("x."+s) != "" {
					v.add([]string{"global", "fqdn", k}, "want a domain name, got %s", describe(fq[k]))
				}
			default:
				v.unknown([]string{"global", "fqdn", k}, fq[k], []string{"source", "domain"})
			}
		}
	}
}

func (v *validator) network(n map[string]any) {
	if pin, ok := n["interface-name-pinning"].(map[string]any); ok && !v.rel.before(r91) {
		if _, ok := pin["enabled"]; !ok {
			v.add([]string{"network", "interface-name-pinning"}, "has no enabled, without which the installer refuses the table (\"missing field `enabled`\"): add enabled = true")
		}
	}
	// 9.1.0 to 9.1.2 took only lowercase letters, digits and _ in pinned
	// names, and a 9.1 request does not say which 9.1 it is.
	if m, ok := lookup(n, "interface-name-pinning", "mapping").(map[string]any); ok && v.rel == r91 {
		for _, mac := range sortedKeys(m) {
			name, _ := m[mac].(string)
			if !pinnedName(name) || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == "" {
				continue // checkPinning's, or fine
			}
			what, fix := "a VLAN or alias suffix", "boot a 9.2 or later ISO"
			if !strings.ContainsAny(name, ".:") {
				what, fix = "uppercase", "write '"+strings.ToLower(name)+"', or boot a 9.2 or later ISO"
			}
			v.add([]string{"network", "interface-name-pinning", "mapping", mac}, "interface name '%s': %s needs a 9.1.3 or later installer (9.1.0 to 9.1.2 take only lowercase letters, digits and _), and a 9.1 ISO does not say which 9.1 it is: %s", name, what, fix)
			v.ps[len(v.ps)-1].since = r92
		}
	}
	if f, ok := n["filter"].(map[string]any); ok {
		v.filterGlobs("network", f)
	}
	switch n["source"] {
	case "from-dhcp":
		for _, k := range []string{"cidr", "dns", "gateway", "filter"} {
			if _, ok := n[k]; ok {
				v.add([]string{"network", k}, `not allowed with source = "from-dhcp"; set network.address for a static address, or remove %s`, k)
			}
		}
	case "from-answer":
		for _, k := range []string{"cidr", "dns", "gateway", "filter"} {
			if _, ok := n[k]; !ok {
				v.add([]string{"network", k}, "missing; a static address (source = \"from-answer\") needs cidr, dns, gateway and filter")
			}
		}
		v.addressing(n)
	}
}

// addressing checks that a static address makes sense together with its
// gateway and DNS server: the installer takes them all, and the installed
// node would be unreachable.
func (v *validator) addressing(n map[string]any) {
	cidr, _ := n["cidr"].(string)
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return // checkCIDR's to say
	}
	addr, net := p.Addr(), p.Masked()
	if addr.Is4() && p.Bits() <= 30 {
		switch addr {
		case net.Addr():
			v.add([]string{"network", "cidr"}, "%s is the network address of %s, which no host can have", addr, net)
		case lastAddr(net):
			v.add([]string{"network", "cidr"}, "%s is the broadcast address of %s, which no host can have", addr, net)
		}
	}
	for _, k := range []string{"gateway", "dns"} {
		s, _ := n[k].(string)
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue // checkIP's to say
		}
		switch {
		case a.Is4() != addr.Is4():
			v.add([]string{"network", k}, "%s is an %s address, but network.address %s is %s: the installer sets up one address family", a, family(a), cidr, family(addr))
		case k == "gateway" && a == addr:
			v.add([]string{"network", k}, "%s is the host's own address (network.address %s); the gateway is another machine", a, cidr)
		case k == "gateway" && !net.Contains(a):
			v.add([]string{"network", k}, "%s is outside the host's subnet %s (network.address %s), so the host cannot reach it; fix the gateway or the prefix length", a, net, cidr)
		}
	}
}

// lastAddr is a prefix's last address: its broadcast address, for IPv4.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// raidLevels are the levels each filesystem takes, in the installer's spelling.
var raidLevels = map[string][]string{
	"zfs":   {"raid0", "raid1", "raid10", "raidz-1", "raidz-2", "raidz-3"},
	"btrfs": {"raid0", "raid1", "raid10"},
}

// minDisks is the least number of disks each RAID level needs.
var minDisks = map[string]int{"raid0": 1, "raid1": 2, "raid10": 4, "raidz-1": 3, "raidz-2": 4, "raidz-3": 5}

func (v *validator) disks(d map[string]any, btrfsOK bool) {
	fs, _ := d["filesystem"].(string)
	// An empty disk-list is none to the installer, which then uses the filter.
	list, isList := d["disk-list"].([]any)
	hasList := len(list) > 0
	_, hasFilter := d["filter"]
	switch {
	case hasList && hasFilter:
		v.add([]string{"disk-setup"}, "disk-list and filter cannot be set at the same time; name the disks or filter them, not both")
	case isList && !hasList && !hasFilter:
		v.add([]string{"disk-setup", "disk-list"}, "empty; name at least one disk, or select them with disk-setup.filter")
	case !hasList && !hasFilter && d["disk-list"] == nil:
		v.add([]string{"disk-setup", "disk-list"}, "missing; name the disks (disk.target or disk-setup.disk-list) or select them with disk-setup.filter")
	}
	if f, ok := d["filter"].(map[string]any); ok {
		v.filterGlobs("disk-setup", f)
	}
	if _, ok := d["filter-match"]; ok && !hasFilter {
		if hasList {
			v.warn([]string{"disk-setup", "filter-match"}, "ignored beside a disk-list: it says how the entries of a filter combine")
		} else {
			v.add([]string{"disk-setup", "filter-match"}, "set without disk-setup.filter")
		}
	}
	if fs == "btrfs" && !btrfsOK {
		v.add([]string{"disk-setup", "filesystem"}, "btrfs is not enabled on this installer ISO (product.enable_btrfs is false)")
	}
	for _, other := range []string{"zfs", "btrfs", "lvm"} {
		if _, ok := d[other]; ok && fs != "" && other != fs && !(other == "lvm" && (fs == "ext4" || fs == "xfs")) {
			v.add([]string{"disk-setup", other}, "options for %s, but filesystem is %s", other, fs)
		}
	}
	switch fs {
	case "zfs", "btrfs":
		if d[fs] == nil && (hasList || hasFilter) {
			v.add([]string{"disk-setup", fs, "raid"}, "%s", "missing"+missingHints["disk-setup."+fs+".raid"])
		}
		opts, _ := d[fs].(map[string]any)
		if arc, ok := opts["arc-max"].(int64); fs == "zfs" && ok && arc > 0 && arc < 64 {
			v.warn([]string{"disk-setup", "zfs", "arc-max"}, "%d MiB is below the installer's minimum, so it uses 64 MiB (0 means ZFS's own default)", arc)
		}
		level, _ := opts["raid"].(string)
		level = strings.ToLower(level)
		if need, ok := minDisks[level]; ok && hasList && slices.Contains(raidLevels[fs], level) {
			name := map[string]string{"zfs": "ZFS", "btrfs": "Btrfs"}[fs]
			if len(list) < need {
				v.add([]string{"disk-setup", fs, "raid"}, "%s %s needs at least %d disks, got %d", name, strings.ToUpper(level), need, len(list))
			} else if level == "raid10" && len(list)%2 != 0 && (fs == "zfs" || !v.rel.before(r92)) {
				// Btrfs since 9.2.6; a request says only "9.2".
				v.add([]string{"disk-setup", fs, "raid"}, "%s %s needs an even number of disks, got %d", name, strings.ToUpper(level), len(list))
			}
		}
	case "ext4", "xfs":
		if hasList && len(list) > 1 {
			v.add([]string{"disk-setup", "disk-list"}, "%s installs on one disk, got %d; use zfs or btrfs for several", fs, len(list))
		}
		lvm, _ := d["lvm"].(map[string]any)
		hd, okHD := number(lvm["hdsize"])
		swap, okSwap := number(lvm["swapsize"])
		if okHD && okSwap && swap > hd/2 {
			v.add([]string{"disk-setup", "lvm", "swapsize"}, "Swap size %s GiB cannot be greater than %s GiB (hard disk size / 2)", fmtNum(swap), fmtNum(hd/2))
		}
	}
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// number reads a TOML float or integer.
func number(x any) (float64, bool) {
	switch x := x.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	}
	return 0, false
}

// The checks below judge one value and say what is wrong with it.

func oneOf(values ...string) func(any) string {
	return func(x any) string {
		if s, ok := x.(string); ok && slices.Contains(values, s) {
			return ""
		}
		return notOneOf(x, values)
	}
}

func notOneOf(x any, values []string) string {
	if s, ok := x.(string); ok {
		return fmt.Sprintf("%q is not one of %s", s, strings.Join(values, ", "))
	}
	return fmt.Sprintf("want one of %s, got %s", strings.Join(values, ", "), describe(x))
}

// oneOfFunc checks a value against one of the installer's locale lists;
// the list, where given, supplies a suggestion.
func oneOfFunc(what string, ok func(string) bool, list []string) func(any) string {
	return func(x any) string {
		s, isString := x.(string)
		if !isString {
			return fmt.Sprintf("want a %s, got %s", what, describe(x))
		}
		if ok(s) {
			return ""
		}
		msg := fmt.Sprintf("%q is not a %s the installer knows", s, what)
		if len(list) > 0 && len(list) <= 30 {
			msg = fmt.Sprintf("%q is not one of %s", s, strings.Join(list, ", "))
		} else if near := suggest(s, list); near != "" {
			msg += "; did you mean " + near + "?"
		} else if what == "country code" {
			msg += " (two lowercase letters, such as us, de or at)"
		}
		return msg
	}
}

// raidLevel takes the installer's levels in lowercase or UPPERCASE, as it does.
func raidLevel(fs string) func(any) string {
	return func(x any) string {
		if s, ok := x.(string); ok {
			for _, l := range raidLevels[fs] {
				if s == l || s == strings.ToUpper(l) {
					return ""
				}
			}
		}
		return notOneOf(x, raidLevels[fs])
	}
}

func boolean(x any) string {
	if _, ok := x.(bool); ok {
		return ""
	}
	return "want true or false, got " + describe(x)
}

func stringList(x any) string {
	l, ok := x.([]any)
	if !ok {
		return "want an array of strings, got " + describe(x)
	}
	for _, e := range l {
		if _, ok := e.(string); !ok {
			return "want an array of strings, but it holds " + describe(e)
		}
	}
	return ""
}

// whole checks an unsigned integer in [lo, hi]; the installer refuses a float.
func whole(lo, hi int64) func(any) string {
	return func(x any) string {
		n, ok := x.(int64)
		if !ok {
			return fmt.Sprintf("want a whole number, got %s", describe(x))
		}
		if n < lo || n > hi {
			if hi == math.MaxInt32 {
				return fmt.Sprintf("%d is less than %d", n, lo)
			}
			return fmt.Sprintf("%d is not between %d and %d", n, lo, hi)
		}
		return ""
	}
}

// size checks a size in GiB: a float, an integer accepted, at least lo.
func size(lo float64) func(any) string {
	return func(x any) string {
		f, ok := number(x)
		if !ok {
			return "want a size in GiB, got " + describe(x)
		}
		if f < lo {
			return fmt.Sprintf("%s is less than %s", fmtNum(f), fmtNum(lo))
		}
		return ""
	}
}

// secretType names a secret value's type without its value, which must
// reach neither the log nor the console.
func secretType(x any) string {
	switch x.(type) {
	case string:
		return "a string"
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	case int64, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "a date or time"
}

func secret(x any) string {
	if s, ok := x.(string); ok && strings.TrimSpace(s) != "" {
		return ""
	}
	return "want a non-empty string, got " + secretType(x)
}

// checkToken wants the webhook's auth-token not empty, which the
// installer's parser takes, though the install then fails.
func checkToken(x any) string {
	if s, ok := x.(string); ok && strings.TrimSpace(s) == "" {
		return "empty: the installer's parser would accept it, but the install would fail; set a token, or remove auth-token"
	}
	return secret(x)
}

func checkPassword(x any) string {
	s, ok := x.(string)
	if !ok {
		return "want a string, got " + secretType(x)
	}
	if len(s) < 8 {
		return "must be at least 8 characters long (the installer counts bytes)"
	}
	return ""
}

// checkHash wants a crypt(3) hash ("$6$salt$hash", "$y$..."): a plain
// password put here by mistake would lock the operator out of the machine.
func checkHash(x any) string {
	s, ok := x.(string)
	if !ok {
		return "want a crypt(3) hash string, got " + secretType(x)
	}
	if !strings.HasPrefix(s, "$") || strings.ContainsAny(s, " \t\r\n:") || strings.Count(s, "$") < 3 {
		return "not a crypt(3) hash (such as \"$6$...\" from `openssl passwd -6` or mkpasswd): the installer's parser would accept it unchecked, and the installed system would then accept no password for root; a plain password goes in root_password"
	}
	return ""
}

func checkFQDN(x any) string {
	s, ok := x.(string)
	if !ok {
		if _, table := x.(map[string]any); table {
			return "" // the from-dhcp table, judged by validator.global
		}
		return "want a fully qualified domain name, got " + describe(x)
	}
	if !strings.Contains(s, ".") {
		return fmt.Sprintf("%q is not fully qualified: either a fully-qualified domain name or extended configuration for usage with DHCP must be specified", s)
	}
	if len(s) > 253 {
		return fmt.Sprintf("%q is longer than 253 characters", s)
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if msg := checkLabel(l); msg != "" {
			return fmt.Sprintf("%q: %s", s, msg)
		}
	}
	if strings.Trim(labels[0], "0123456789") == "" {
		return fmt.Sprintf("%q: the host name must not be all digits", s)
	}
	return ""
}

func checkLabel(l string) string {
	if l == "" || len(l) > 63 {
		return fmt.Sprintf("label %q must be 1 to 63 characters", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(l)-1) {
			return fmt.Sprintf("label %q may hold only letters, digits and inner hyphens", l)
		}
	}
	return ""
}

// checkMail follows HTML5's "valid e-mail address", as the installer does.
func checkMail(x any) string {
	s, ok := x.(string)
	if !ok {
		return "want an e-mail address, got " + describe(x)
	}
	local, domain, ok := strings.Cut(s, "@")
	valid := ok && local != "" && domain != ""
	for i := 0; valid && i < len(local); i++ {
		c := local[i]
		valid = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0
	}
	for _, l := range strings.Split(domain, ".") {
		valid = valid && checkLabel(l) == ""
	}
	if !valid {
		return fmt.Sprintf("%q is not an e-mail address", s)
	}
	if s == "mail@example.invalid" {
		return "\"mail@example.invalid\" is the installer's placeholder, which it refuses; give a real address"
	}
	return ""
}

func checkCIDR(x any) string {
	s, ok := x.(string)
	if !ok {
		return "want an address with a prefix length such as \"10.0.0.10/24\", got " + describe(x)
	}
	if _, err := netip.ParsePrefix(s); err != nil {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			return fmt.Sprintf("%q has no prefix length: the installer's parser would take it as %s, a network of this one address, and the installed host would reach no gateway; write it as \"%s/24\" (or the right length)", s, netip.PrefixFrom(a, a.BitLen()), s)
		}
		return fmt.Sprintf("%q: invalid IP address with prefix length", s)
	}
	return ""
}

func checkIP(x any) string {
	s, ok := x.(string)
	if !ok {
		return "want an IP address, got " + describe(x)
	}
	if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
		return fmt.Sprintf("%q is not an IP address", s)
	}
	return ""
}

// udevFilter checks a table of udev property globs.
func udevFilter(x any) string {
	t, ok := x.(map[string]any)
	if !ok {
		return "want a table of udev properties and globs (filter.ID_SERIAL = \"*S3Z*\"), got " + describe(x)
	}
	if len(t) == 0 {
		return "empty; give at least one udev property and glob"
	}
	for _, k := range sortedKeys(t) {
		if s, ok := t[k].(string); !ok || s == "" {
			return fmt.Sprintf("%s: want a non-empty glob string, got %s", k, describe(t[k]))
		}
	}
	return ""
}

// The installer's glob crate's complaints, and what to write instead.
var globHints = map[string]string{
	"invalid range pattern":                                 "a [ opens a class of characters that needs its ]; write [[] for a literal [",
	"recursive wildcards must form a single path component": "** may only stand alone between slashes; * matches any characters",
	"wildcards are either regular `*` or recursive `**`":    "* matches any characters",
}

// globError parses pattern as the Rust glob crate's Pattern::new does,
// which the installer runs on every filter value: it returns the crate's
// complaint and the position it names, counted in characters, or "" where
// the crate takes the pattern. Only '*', '?' and '[' are special; braces
// and backslashes are plain characters.
func globError(pattern string) (pos int, msg string) {
	p := []rune(pattern)
	for i := 0; i < len(p); {
		switch p[i] {
		case '*':
			start := i
			for i < len(p) && p[i] == '*' {
				i++
			}
			switch {
			case i-start > 2:
				return start + 2, "wildcards are either regular `*` or recursive `**`"
			case i-start == 2:
				// A whole path component: at the start or after a '/',
				// and at the end or before a '/', which it takes along.
				if start > 0 && p[start-1] != '/' {
					return start - 1, "recursive wildcards must form a single path component"
				}
				if i < len(p) && p[i] != '/' {
					return i, "recursive wildcards must form a single path component"
				}
				if i < len(p) {
					i++
				}
			}
		case '[':
			// "[" or "[!", then at least one character, a ']' among
			// them, up to the next ']'.
			first := i + 1
			if first < len(p) && p[first] == '!' {
				first++
			}
			end := -1
			if first+1 <= len(p) {
				end = slices.Index(p[first+1:], ']')
			}
			if end < 0 {
				return i, "invalid range pattern"
			}
			i = first + 1 + end + 1
		default:
			i++
		}
	}
	return 0, ""
}

// filterGlobs checks the values of a filter table as the installer's glob
// crate will read them.
func (v *validator) filterGlobs(table string, filter map[string]any) {
	for _, k := range sortedKeys(filter) {
		s, ok := filter[k].(string)
		if !ok {
			continue // udevFilter says so
		}
		path := []string{table, "filter", k}
		if pos, msg := globError(s); msg != "" {
			v.add(path, "%q is not a glob the installer can use (Pattern syntax error near position %d: %s; %s): its parser takes it, but the install stops with \"invalid glob in disk selection\"", s, pos, msg, globHints[msg])
		} else if strings.ContainsAny(s, "{}") {
			v.warn(path, "%q: the installer's globs have no {a,b} alternatives, so braces match only themselves", s)
		}
	}
}

func checkDiskList(x any) string {
	l, ok := x.([]any)
	if !ok {
		return "want an array of disk names (\"sda\", \"nvme0n1\"), got " + describe(x)
	}
	seen := map[string]bool{}
	for _, e := range l {
		s, ok := e.(string)
		if !ok || s == "" {
			return "want disk names, got " + describe(e)
		}
		if seen[s] {
			return "List of disks contains duplicate device " + s
		}
		seen[s] = true
	}
	return ""
}

// checkPinning checks interface-name-pinning.mapping: "mac" = "name".
func checkPinning(x any) string {
	t, ok := x.(map[string]any)
	if !ok {
		return "want a table of \"mac\" = \"name\", got " + describe(x)
	}
	names := map[string]string{}
	for _, mac := range sortedKeys(t) {
		name, ok := t[mac].(string)
		if !ok {
			return fmt.Sprintf("%q: want an interface name, got %s", mac, describe(t[mac]))
		}
		if _, ok := normalizeMAC(mac); !ok {
			return fmt.Sprintf("%q is not a MAC address", mac)
		}
		if len(name) > 15 {
			return fmt.Sprintf("interface name '%s' for '%s' cannot be longer than 15 characters", name, mac)
		}
		if !pinnedName(name) {
			return fmt.Sprintf("interface name '%s' for '%s': want 2 to 15 letters, digits or _, starting with a letter, and optionally a VLAN or alias suffix such as .10 or :1", name, mac)
		}
		if other, dup := names[strings.ToLower(name)]; dup {
			return fmt.Sprintf("interface name '%s' is given to both '%s' and '%s'", name, other, mac)
		}
		names[strings.ToLower(name)] = mac
	}
	return ""
}

// pinnedName reports whether name is one the installer pins from 9.1.3
// on: ^[a-z][a-z0-9_]{1,20}([:.]\d+)?$ matched case-insensitively, here
// in ASCII only; the 15 characters at most are checkPinning's.
func pinnedName(name string) bool {
	base, suffix := name, ""
	if i := strings.IndexAny(name, ".:"); i >= 0 {
		base, suffix = name[:i], name[i+1:]
		if suffix == "" || strings.Trim(suffix, "0123456789") != "" {
			return false
		}
	}
	if len(base) < 2 || len(base) > 21 {
		return false
	}
	for i := 0; i < len(base); i++ {
		c := base[i] | 0x20 // ASCII letters to lowercase
		if !(c >= 'a' && c <= 'z' || i > 0 && (base[i] >= '0' && base[i] <= '9' || base[i] == '_')) {
			return false
		}
	}
	return true
}

func checkURL(x any) string {
	s, ok := x.(string)
	if !ok {
		return "want a URL, got " + describe(x)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Sprintf("%q is not an http:// or https:// URL", s)
	}
	return ""
}

// checkFingerprint wants a SHA-256 fingerprint: 64 hex digits, colons optional.
func checkFingerprint(x any) string {
	s, ok := x.(string)
	if !ok {
		return "want a SHA-256 fingerprint, got " + describe(x)
	}
	hex := strings.ReplaceAll(s, ":", "")
	valid := len(hex) == 64
	for i := 0; valid && i < len(hex); i++ {
		valid = strings.IndexByte("0123456789abcdefABCDEF", hex[i]) >= 0
	}
	if !valid {
		return fmt.Sprintf("%q is not a SHA-256 fingerprint (64 hex digits, colons optional)", s)
	}
	return ""
}

// suggest returns the candidate closest to s, if one is close enough to
// be what was meant: the same but for case, '-' and '_', or a typo or two.
func suggest(s string, candidates []string) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
	}
	best, bestDist := "", 3
	if len(s) <= 4 {
		bestDist = 2
	}
	for _, c := range candidates {
		if fold(c) == fold(s) {
			return c
		}
		if d := distance(strings.ToLower(s), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
