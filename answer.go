package main

//go:generate go run gen_locales.go

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
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

// facts are what the request tells about the machine that the answer depends on.
type facts struct {
	mac     string  // the matched NIC as 12 lowercase hex digits; empty when no MAC matched
	release release // the installer's, in Proxmox VE numbering
	btrfs   bool    // product.enable_btrfs: the ISO can install btrfs

	// What placeholders ({{.MAC}}, ...) are filled with; see fill.
	nic          string // the matched NIC's MAC, else the first NIC's, as 12 hex digits
	link         string // that NIC's link (eno1)
	serial, uuid id     // as serialKey and uuidKey read them
	product, iso string // product.product and iso.release, as sent

	// What serve --public-url adds; see tracker.
	key     string       // the machine, as tracking names it (machineKey)
	hook    *webhook     // for an answer without a webhook of its own; nil for none
	scripts scriptSource // hands out first-boot scripts; nil without --public-url
}

// A scriptSource hands out a first-boot script: it checks the script at
// path in the config dir, filled with the machine's facts, and returns the
// URL the installer fetches it from, or the problem with it.
type scriptSource interface {
	scriptURL(path string, f facts, host string) (url, problem string)
}

// snakeKeys are the only keys that ever had two spellings, each with its
// table path: the installer's 8.2 and 8.3 ISOs know only the snake_case one.
var snakeKeys = []struct {
	table        []string
	kebab, snake string
}{
	{[]string{"global"}, "root-password", "root_password"},
	{[]string{"global"}, "root-password-hashed", "root_password_hashed"},
	{[]string{"global"}, "root-ssh-keys", "root_ssh_keys"},
	{[]string{"global"}, "reboot-on-error", "reboot_on_error"},
	{[]string{"disk-setup"}, "disk-list", "disk_list"},
	{[]string{"disk-setup"}, "filter-match", "filter_match"},
	{[]string{"disk-setup", "zfs"}, "arc-max", "arc_max"},
	{[]string{"post-installation-webhook"}, "cert-fingerprint", "cert_fingerprint"},
}

// translateLayer rewrites one file's friendly keys (hostname, [disk],
// address, root_password_hash, snake_case spellings) into the installer's
// kebab-case names, so that layers merge key by key whatever spelling each
// uses. Keys it does not know pass through for validate to judge. raw is
// the parser's fresh output and is changed in place.
func translateLayer(name string, raw map[string]any) (map[string]any, error) {
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
			return nil, err
		}
		if g == nil {
			g = map[string]any{}
			raw["global"] = g
		}
		if _, dup := g["hostname"]; dup {
			return nil, fail("hostname", "set both at the top and in [global]; keep one")
		}
		g["hostname"] = h
		delete(raw, "hostname")
	}

	for _, s := range snakeKeys {
		if err := respellKey(name, raw, s.table, s.snake, s.kebab); err != nil {
			return nil, err
		}
	}

	// [disk] is the friendly spelling of [disk-setup]; where one file has
	// both, the native table wins key by key.
	disk, err := tableAt("disk")
	if err != nil {
		return nil, err
	}
	if disk != nil {
		if t, ok := disk["target"]; ok {
			list, err := diskTargets(t)
			if err != nil {
				return nil, fail("disk.target", "%s", err)
			}
			disk["disk-list"] = list
			delete(disk, "target")
		}
		if err := respellDisk(name, raw); err != nil {
			return nil, err
		}
		native, err := tableAt("disk-setup")
		if err != nil {
			return nil, err
		}
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
			return nil, err
		}
		if fb == nil {
			fb = map[string]any{}
			raw["first-boot"] = fb
		}
		if _, dup := fb[k[1]]; dup {
			return nil, fail(k[0], "also set as first-boot.%s in this file; keep one", k[1])
		}
		fb[k[1]] = v
		delete(raw, k[0])
	}

	if g, _ := raw["global"].(map[string]any); g != nil {
		friendly(g, "root_password_hash", "root-password-hashed")
	}
	if n, _ := raw["network"].(map[string]any); n != nil {
		friendly(n, "address", "cidr")
	}
	if d, _ := raw["disk-setup"].(map[string]any); d != nil {
		if l, ok := d["disk-list"].([]any); ok {
			list, err := diskTargets(l)
			if err != nil {
				return nil, fail("disk-setup.disk-list", "%s", err)
			}
			d["disk-list"] = list
		}
	}
	if p, _ := lookup(raw, "network", "interface-name-pinning", "mapping").(map[string]any); p != nil {
		// MAC keys in uppercase broke installers before 9.1.7.
		for k, v := range p {
			if lk := strings.ToLower(k); lk != k {
				if _, dup := p[lk]; dup {
					return nil, fail("network.interface-name-pinning.mapping", "%s is listed twice (%s and %s)", lk, k, lk)
				}
				delete(p, k)
				p[lk] = v
			}
		}
	}
	l := layer{name: name, tree: raw}
	if err := checkExclusives(l); err != nil {
		return nil, err
	}
	return raw, nil
}

// respellDisk moves the snake_case keys of the friendly [disk] table to
// their kebab-case spelling, as translateLayer does for [disk-setup].
func respellDisk(name string, raw map[string]any) error {
	for _, s := range snakeKeys {
		if s.table[0] != "disk-setup" {
			continue
		}
		path := append([]string{"disk"}, s.table[1:]...)
		if err := respellKey(name, raw, path, s.snake, s.kebab); err != nil {
			return err
		}
	}
	return nil
}

func respellKey(name string, raw map[string]any, table []string, snake, kebab string) error {
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
	return nil
}

// friendly moves a friendly key to its native name unless the native key is
// set too, which then wins.
func friendly(t map[string]any, from, to string) {
	if v, ok := t[from]; ok {
		if _, native := t[to]; !native {
			t[to] = v
		}
		delete(t, from)
	}
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
	for _, e := range in {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("want device names, got %s", describe(e))
		}
		if strings.HasPrefix(s, "/dev/disk/") {
			return nil, fmt.Errorf("%q: the installer takes kernel names (sda, nvme0n1), not /dev/disk/ links; to pick a disk by serial, set [disk-setup.filter] ID_SERIAL = \"*<serial>*\" instead", s)
		}
		s = strings.TrimPrefix(s, "/dev/")
		if s == "" || strings.ContainsAny(s, "/ \t\n") {
			return nil, fmt.Errorf("%q is not a disk's kernel name (such as sda or nvme0n1)", e)
		}
		out = append(out, s)
	}
	return out, nil
}

// A problem is one thing wrong with a composed answer, at a key path.
type problem struct {
	path  []string
	name  string // how the operator wrote the key, where path is its translation
	msg   string
	since release // for a key the requesting release predates: the first that has it
}

func (p problem) key() string {
	if p.name != "" {
		return p.name
	}
	return keyPath(p.path)
}

// origin names the layer that set the key the problem is about.
func (p problem) origin(layers []layer) string {
	switch p.key() {
	case "global.fqdn":
		if o := origin(layers, p.path...); o != "" {
			return o
		}
		return origin(layers, "global", "hostname") // fqdn was derived from it
	}
	return origin(layers, p.path...)
}

// keyPath writes a key path as TOML would: dotted, quoting keys that are not bare.
func keyPath(path []string) string {
	var b strings.Builder
	for i, k := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		if bareKey(k) {
			b.WriteString(k)
		} else {
			b.WriteString(strconv.Quote(k))
		}
	}
	return b.String()
}

func bareKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// compose turns a host's layers, lowest first (the last one is the host
// file), into the answer the requesting installer takes, or an error that
// names the host file and every problem, each with the file that set the
// key where another layer did.
func compose(layers []layer, f facts) ([]byte, error) {
	ans := mergeLayers(layers)
	for _, l := range layers {
		if l.fills {
			if ps := expand(ans, f); len(ps) > 0 {
				return nil, &answerError{layers, ps}
			}
			break
		}
	}
	host := layers[len(layers)-1].name
	problems := deliver(ans, f)
	problems = append(problems, complete(ans, f, host, layers)...)
	derived := problems[:len(problems):len(problems)]
	// What complete could not derive, validate finds missing: say it once.
	for _, p := range validate(ans, f) {
		if !slices.ContainsFunc(derived, func(q problem) bool {
			return q.key() == p.key() || q.path[0] == "global" && p.key() == "global.fqdn" // derived from hostname and domain
		}) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, &answerError{layers, problems}
	}
	return render(ans, f.release)
}

// answerError is a composed answer the installer would reject: every
// problem, and the layers to say which file set each key.
type answerError struct {
	layers   []layer
	problems []problem
}

// Error is one line: "hosts/x.toml: key (set in defaults.toml): problem;
// key: problem".
func (e *answerError) Error() string {
	lines := e.lines()
	return e.host() + ": " + strings.Join(lines, "; ")
}

func (e *answerError) host() string { return e.layers[len(e.layers)-1].name }

// lines says each problem: "key (set in defaults.toml): problem".
func (e *answerError) lines() []string {
	out := make([]string, len(e.problems))
	for i, p := range e.problems {
		if len(p.path) == 0 {
			out[i] = p.msg
			continue
		}
		o := p.origin(e.layers)
		setIn := ""
		if o != "" && o != e.host() {
			setIn = " (set in " + o + ")"
		}
		out[i] = p.key() + setIn + ": " + p.msg
	}
	return out
}

// complete derives what the installer needs from the friendly keys of a
// merged config: fqdn from hostname and domain, the network source and the
// filter that pins the matched NIC, a RAID level for one disk.
func complete(ans map[string]any, f facts, host string, layers []layer) []problem {
	var ps []problem
	if g, ok := ans["global"].(map[string]any); ok {
		h, hasHost := g["hostname"]
		d, hasDomain := g["domain"]
		delete(g, "hostname")
		delete(g, "domain")
		switch hs, ok := h.(string); {
		case !hasHost:
		case !ok:
			ps = append(ps, problem{path: []string{"global", "hostname"}, msg: "want a string, got " + describe(h)})
		case strings.Contains(hs, "."):
			g["fqdn"] = hs
		case hasDomain:
			ds, ok := d.(string)
			ds = strings.Trim(ds, ".")
			if !ok || ds == "" {
				ps = append(ps, problem{path: []string{"global", "domain"}, msg: "want a domain name such as \"example.com\", got " + describe(d)})
				break
			}
			g["fqdn"] = hs + "." + ds
		default:
			ps = append(ps, problem{path: []string{"global", "hostname"}, msg: fmt.Sprintf("%q has no domain, and the installer needs a fully qualified name: set global.domain (or write hostname = \"%s.example.com\", or global.fqdn)", hs, hs)})
		}
	}

	if _, ok := ans["network"]; !ok {
		ans["network"] = map[string]any{} // no network settings anywhere: DHCP
	}
	if n, ok := ans["network"].(map[string]any); ok {
		_, hasCIDR := n["cidr"]
		if _, hasSource := n["source"]; !hasSource {
			if hasCIDR {
				n["source"] = "from-answer"
			} else {
				// No address: DHCP, which takes no static settings. Those a
				// lower layer set for static hosts are dropped; set in the
				// host file itself they are a mistake worth saying.
				n["source"] = "from-dhcp"
				for _, k := range []string{"dns", "gateway", "filter"} {
					if _, ok := n[k]; !ok {
						continue
					}
					if origin(layers, "network", k) == host {
						ps = append(ps, problem{path: []string{"network", k}, msg: "set without network.address; a host without an address gets DHCP, which takes no " + k + ": set network.address too, or remove " + k})
					}
					delete(n, k)
				}
			}
		}
		if _, hasFilter := n["filter"]; n["source"] == "from-answer" && !hasFilter {
			if f.mac == "" {
				setIn := ""
				if o := origin(layers, "network", "cidr"); o != host && o != "" {
					setIn = " (set in " + o + ")"
				}
				ps = append(ps, problem{path: []string{"network", "filter"}, msg: "missing; " + host + " is not named by a MAC, so the static network.address" + setIn + " needs a filter that says which NIC gets it, such as filter.ID_NET_NAME = \"eno1\" or filter.ID_NET_NAME_MAC = \"*<12 hex digits of its MAC>\""})
			} else {
				n["filter"] = map[string]any{"ID_NET_NAME_MAC": "*" + f.mac}
			}
		}
	}

	if d, ok := ans["disk-setup"].(map[string]any); ok {
		fs, _ := d["filesystem"].(string)
		if fs == "zfs" || fs == "btrfs" {
			opts, _ := d[fs].(map[string]any)
			if _, hasRaid := opts["raid"]; (opts != nil || d[fs] == nil) && !hasRaid {
				list, _ := d["disk-list"].([]any)
				switch {
				case len(list) == 1:
					if opts == nil {
						opts = map[string]any{}
						d[fs] = opts
					}
					opts["raid"] = "raid0" // the installer's own choice for one disk
				case len(list) > 1:
					ps = append(ps, problem{path: []string{"disk-setup", fs, "raid"}, msg: fmt.Sprintf("missing; %d disks need a RAID level: one of %s", len(list), strings.Join(raidLevels[fs], ", "))})
				case d["filter"] != nil:
					ps = append(ps, problem{path: []string{"disk-setup", fs, "raid"}, msg: "missing; a disk filter may match several disks, so set a RAID level: one of " + strings.Join(raidLevels[fs], ", ")})
				}
			}
		}
	}
	return ps
}

// deliver adds what serve --public-url hands out: the webhook that reports
// the install back to pxe-pilot, where the answer has none of its own, and
// the [first-boot] table of a first-boot-script.
func deliver(ans map[string]any, f facts) []problem {
	if _, own := ans["post-installation-webhook"]; !own && f.hook != nil {
		w := map[string]any{"url": f.hook.url}
		if f.hook.fingerprint != "" {
			w["cert-fingerprint"] = f.hook.fingerprint
		}
		if f.hook.token != "" {
			w["auth-token"] = f.hook.token
		}
		ans["post-installation-webhook"] = w
	}
	fb, _ := ans["first-boot"].(map[string]any)
	script, ok := fb["script"]
	if !ok {
		if _, native := fb["source"]; fb != nil && !native {
			if _, ordering := fb["ordering"]; ordering {
				delete(ans, "first-boot")
				return []problem{{path: []string{"first-boot", "ordering"}, msg: "set without first-boot-script (or a [first-boot] source): it says when a first-boot script runs, and there is none"}}
			}
		}
		return nil
	}
	delete(fb, "script")
	// first-boot-script, where translateLayer put it
	at, name := []string{"first-boot", "script"}, "first-boot-script"
	path, ok := script.(string)
	if !ok || f.release.before(r83) || f.scripts == nil {
		delete(ans, "first-boot") // pxe-pilot's alone, and not to be served: one problem is enough
	}
	switch {
	case !ok:
		return []problem{{path: at, name: name, msg: "want the path of a script in the config dir, such as \"scripts/setup.sh\", got " + describe(script)}}
	case f.release.before(r83):
		return []problem{{path: at, name: name, since: r83, msg: fmt.Sprintf("the %s installer has no [first-boot], so the script this host asks for cannot be delivered: boot an ISO of 8.3 or later, or remove first-boot-script", f.release)}}
	case f.scripts == nil:
		return []problem{{path: at, name: name, msg: "needs pxe-pilot serve --public-url: the installer fetches the script from pxe-pilot, which must know the URL it is reached by"}}
	}
	url, msg := f.scripts.scriptURL(path, f, hostLabel(ans))
	if msg != "" {
		delete(ans, "first-boot")
		return []problem{{path: at, name: name, msg: msg}}
	}
	fb["source"], fb["url"] = "from-url", url
	if f.hook != nil && f.hook.fingerprint != "" {
		fb["cert-fingerprint"] = f.hook.fingerprint
	}
	return nil
}

// hostLabel is what {{.Hostname}} stands for: the first label of the
// host's name, from hostname or a native fqdn.
func hostLabel(ans map[string]any) string {
	g, _ := ans["global"].(map[string]any)
	for _, k := range []string{"hostname", "fqdn"} {
		if v, ok := g[k].(string); ok {
			label, _, _ := strings.Cut(v, ".")
			return label
		}
	}
	return ""
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

// render writes the answer as deterministic TOML with go-toml: [global],
// [network], [disk-setup], then the optional tables, keys sorted within
// each table, spelled for the requesting release.
func render(ans map[string]any, rel release) ([]byte, error) {
	if rel.snakeCase() {
		for _, s := range snakeKeys {
			if t, _ := lookup(ans, s.table...).(map[string]any); t != nil {
				if v, ok := t[s.kebab]; ok {
					delete(t, s.kebab)
					t[s.snake] = v
				}
			}
		}
	}
	// A struct, not the map, keeps the tables in the installer's order.
	doc := struct {
		Global    any `toml:"global"`
		Network   any `toml:"network"`
		DiskSetup any `toml:"disk-setup"`
		Webhook   any `toml:"post-installation-webhook,omitempty"`
		FirstBoot any `toml:"first-boot,omitempty"`
	}{ans["global"], ans["network"], ans["disk-setup"], ans["post-installation-webhook"], ans["first-boot"]}
	out, err := toml.Marshal(doc)
	if err != nil {
		return nil, &configError{"", "rendering the answer: " + err.Error()}
	}
	return out, nil
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
			{name: "arc-max", since: r82, check: whole(64, math.MaxInt32)},
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
		{name: "auth-token", since: r92, check: secret},
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
		if slices.Contains(names, k) {
			continue
		}
		msg := "unknown key"
		if len(path) == 0 {
			msg = "unknown table"
		}
		if near := suggest(k, names); near != "" {
			msg += "; did you mean " + near + "?"
		}
		v.add(append(path, k), "%s", msg)
	}
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
				v.add([]string{"global", "fqdn", k}, "unknown key")
			}
		}
		if _, ok := fq["source"]; !ok {
			v.add([]string{"global", "fqdn", "source"}, `missing; write source = "from-dhcp"`)
		}
	}
}

func (v *validator) network(n map[string]any) {
	// One 9.1 point release took only lowercase pinned names, and the
	// request does not say which point release it is.
	if m, ok := lookup(n, "interface-name-pinning", "mapping").(map[string]any); ok && v.rel == r91 {
		for _, mac := range sortedKeys(m) {
			if name, ok := m[mac].(string); ok && name != strings.ToLower(name) {
				v.add([]string{"network", "interface-name-pinning", "mapping", mac}, "interface name '%s': some 9.1 installers take only lowercase names; write '%s'", name, strings.ToLower(name))
			}
		}
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
	}
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
	list, hasList := d["disk-list"].([]any)
	_, hasFilter := d["filter"]
	switch {
	case hasList && hasFilter:
		v.add([]string{"disk-setup"}, "disk-list and filter cannot be set at the same time; name the disks or filter them, not both")
	case !hasList && !hasFilter && d["disk-list"] == nil:
		v.add([]string{"disk-setup", "disk-list"}, "missing; name the disks (disk.target or disk-setup.disk-list) or select them with disk-setup.filter")
	}
	if _, ok := d["filter-match"]; ok && !hasFilter {
		v.add([]string{"disk-setup", "filter-match"}, "set without disk-setup.filter")
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
		level, _ := opts["raid"].(string)
		level = strings.ToLower(level)
		if need, ok := minDisks[level]; ok && hasList && slices.Contains(raidLevels[fs], level) {
			name := map[string]string{"zfs": "ZFS", "btrfs": "Btrfs"}[fs]
			if len(list) < need {
				v.add([]string{"disk-setup", fs, "raid"}, "%s %s needs at least %d disks, got %d", name, strings.ToUpper(level), need, len(list))
			} else if fs == "zfs" && level == "raid10" && len(list)%2 != 0 {
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
		return "not a crypt(3) hash (such as \"$6$...\" from `openssl passwd -6` or mkpasswd); a plain password goes in root_password"
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
		if !strings.Contains(s, "/") {
			return fmt.Sprintf("%q has no prefix length; write it as \"%s/24\" (or the right length)", s, s)
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

func checkDiskList(x any) string {
	l, ok := x.([]any)
	if !ok {
		return "want an array of disk names (\"sda\", \"nvme0n1\"), got " + describe(x)
	}
	if len(l) == 0 {
		return "empty; name at least one disk"
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
		valid := len(name) >= 2
		for i := 0; valid && i < len(name); i++ {
			c := name[i]
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			valid = letter || i > 0 && (c >= '0' && c <= '9' || c == '_')
		}
		if !valid {
			return fmt.Sprintf("interface name '%s' for '%s': want 2 to 15 letters, digits or _, starting with a letter", name, mac)
		}
		if other, dup := names[strings.ToLower(name)]; dup {
			return fmt.Sprintf("interface name '%s' is given to both '%s' and '%s'", name, other, mac)
		}
		names[strings.ToLower(name)] = mac
	}
	return ""
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

// placeholders are the facts a string value may name: {{.Serial}}.
var placeholders = []string{"Hostname", "MAC", "MACHex", "Link", "Serial", "UUID", "Product", "Release"}

// expand fills the placeholders of every string value in a merged config
// (see fill), global.hostname and global.fqdn first, since {{.Hostname}}
// is the host label they give. Strings without "{{" are never touched, and
// no filled-in text is read again, so a fact cannot inject a placeholder.
// Tables inside arrays and arrays are shared with the cached layers, so a
// changed one is copied.
func expand(ans map[string]any, f facts) []problem {
	e := expander{f: f, path: make([]string, 0, 8), self: true}
	g, _ := ans["global"].(map[string]any)
	for _, k := range []string{"hostname", "fqdn"} {
		if v, ok := g[k].(string); ok && strings.Contains(v, "{{") {
			e.path = append(e.path[:0], "global", k)
			g[k] = e.fill(v)
		}
	}
	e.self, e.hostWhy = false, "no hostname or global.fqdn is set"
	e.host = hostLabel(ans)
	if _, ok := g["fqdn"].(map[string]any); ok && e.host == "" {
		e.hostWhy = "the host's name comes from DHCP at install time (global.fqdn.source = \"from-dhcp\")"
	}
	if len(e.problems) == 0 {
		for k, v := range ans {
			if t, ok := v.(map[string]any); ok {
				e.path = append(e.path[:0], k)
				e.table(t)
			}
		}
	}
	// By key; the elements of one array stay in their order.
	slices.SortStableFunc(e.problems, func(a, b problem) int { return strings.Compare(a.key(), b.key()) })
	return e.problems
}

type expander struct {
	f        facts
	path     []string // the key being filled
	self     bool     // filling the host's name itself, which {{.Hostname}} is made from
	host     string   // the host label, for {{.Hostname}}; empty when there is none
	hostWhy  string   // why there is none
	problems []problem
}

// table fills the placeholders in a table the merge made, in place.
func (e *expander) table(t map[string]any) {
	top := len(e.path) == 1
	for k, v := range t {
		if top && e.path[0] == "global" && (k == "hostname" || k == "fqdn") {
			if _, ok := v.(string); ok {
				continue // filled first, by expand
			}
		}
		e.path = append(e.path, k)
		if nv, changed := e.value(v, true); changed {
			t[k] = nv
		}
		e.path = e.path[:len(e.path)-1]
	}
}

// value fills the placeholders in v. A table the merge made (owned) is
// changed in place; a changed array, or table in an array, is a copy.
func (e *expander) value(v any, owned bool) (any, bool) {
	// Each case returns v itself where nothing changed: a string put back
	// into an interface would cost an allocation, for every value.
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{{") {
			return v, false
		}
		return e.fill(x), true
	case map[string]any:
		if owned {
			e.table(x)
			return v, false
		}
		var out map[string]any
		for k, el := range x {
			e.path = append(e.path, k)
			if nel, changed := e.value(el, false); changed {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = nel
			}
			e.path = e.path[:len(e.path)-1]
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []any:
		var out []any
		for i, el := range x {
			if nel, changed := e.value(el, false); changed {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = nel
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	return v, false
}

// fill replaces each {{.Name}} in s with the fact it names ({{ .Name }}
// too, and {{"{{"}} writes "{{"); an unknown name, an unclosed "{{" or a
// fact the request lacks is a problem at the key being filled.
func (e *expander) fill(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	for rest := s; ; {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		j := strings.Index(rest[i+2:], "}}")
		secret := secretKeys[keyPath(e.path)]
		if j < 0 {
			if secret {
				e.problem("opens a placeholder with {{ but never closes it with }} (the value is a secret, so it is not shown)")
			} else {
				e.problem(fmt.Sprintf("%q opens a placeholder with {{ but never closes it with }}", clip(rest[i:])))
			}
			return s
		}
		inner := rest[i+2 : i+2+j]
		rest = rest[i+2+j+2:]
		v, msg := e.fact(strings.TrimSpace(inner))
		if msg != "" {
			if secret && !slices.Contains(placeholders, strings.TrimPrefix(strings.TrimSpace(inner), ".")) {
				// Not a placeholder, so maybe part of the secret: not shown.
				e.problem("holds {{...}} that is not a placeholder (the value is a secret, so it is not shown); the placeholders are " + knownPlaceholders() + `, and {{"{{"}} writes {{`)
			} else {
				e.problem("{{" + inner + "}}: " + msg)
			}
			return s
		}
		b.WriteString(v)
	}
}

func (e *expander) problem(msg string) {
	e.problems = append(e.problems, problem{path: slices.Clone(e.path), msg: msg})
}

// fact is the value of a placeholder, or why there is none.
func (e *expander) fact(name string) (string, string) {
	f := &e.f
	lacks := func(v, why string) (string, string) {
		if v == "" {
			return "", "nothing to fill in: " + why
		}
		return v, ""
	}
	switch name {
	case `"{{"`:
		return "{{", ""
	case ".Hostname":
		if e.self {
			return "", "the host's name is what {{.Hostname}} is filled from, so the name itself cannot use it; use another fact, such as {{.Serial}} or {{.MACHex}}"
		}
		return lacks(e.host, e.hostWhy)
	case ".MAC", ".MACHex":
		if f.nic == "" {
			return lacks("", "the request names no NIC")
		}
		if name == ".MACHex" {
			return f.nic, ""
		}
		return colonMACs([]string{f.nic})[0], ""
	case ".Link":
		if f.link == "" {
			return "", "nothing to fill in: the request gives no link (interface name) for that NIC"
		}
		return f.link, ""
	case ".Serial":
		return lacks(f.serial.key, f.serial.why)
	case ".UUID":
		return lacks(f.uuid.key, f.uuid.why)
	case ".Product":
		return lacks(f.product, "the request has no product.product")
	case ".Release":
		return lacks(f.iso, "the request has no iso.release")
	}
	msg := "no such placeholder"
	if s := suggest(strings.TrimPrefix(name, "."), placeholders); s != "" {
		msg += " (did you mean {{." + s + "}}?)"
	}
	return "", msg + "; the placeholders are " + knownPlaceholders()
}

func knownPlaceholders() string {
	known := make([]string, len(placeholders))
	for i, p := range placeholders {
		known[i] = "{{." + p + "}}"
	}
	return strings.Join(known, ", ")
}

// secretKeys are the keys whose values no error may quote.
var secretKeys = map[string]bool{
	"global.root-password":                 true,
	"global.root-password-hashed":          true,
	"global.subscription-key":              true,
	"post-installation-webhook.auth-token": true,
}

// clip shortens a quoted excerpt of a long value.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
