// The pipeline that makes one answer: merge, fill placeholders, complete, validate, render.

package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

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
	dir     *configDir   // the config dir the request reads, scripts and all
}

// A scriptSource hands out a first-boot script: it checks the script at
// path in the config dir, filled with the machine's facts, and returns the
// URL the installer fetches it from, or the problem with it.
type scriptSource interface {
	scriptURL(path string, f facts, host string) (url, problem string)
}

// A problem is one thing wrong with a composed answer, at a key path.
type problem struct {
	path  []string
	name  string // how the operator wrote the key, where path is its translation
	msg   string
	since release  // for a key the requesting release predates: the first that has it
	warn  bool     // the installer takes it: validate says so, and serve answers all the same
	near  []string // for an unknown key: the keys the installer knows beside it, to suggest one
}

func (p problem) key() string {
	if p.name != "" {
		return p.name
	}
	return keyPath(p.path)
}

// origin names the layer that set the key the problem is about.
func (p problem) origin(layers []layer) string {
	switch keyPath(p.path) {
	case "global.fqdn":
		if o := origin(layers, p.path...); o != "" {
			return o
		}
		return origin(layers, "global", "hostname") // fqdn was derived from it
	}
	return origin(layers, p.path...)
}

// asWritten names the key of each problem as the file that set it wrote
// it, where that is not the installer's spelling: network.address, not
// network.cidr. For an unknown key it suggests the closest of the keys
// that table takes as the file wrote it: the installer's and pxe-pilot's.
func asWritten(ps []problem, layers []layer) {
	for i := range ps {
		p := &ps[i]
		if p.name != "" || len(p.path) == 0 {
			continue
		}
		written := p.path
		o := p.origin(layers)
		for _, l := range layers {
			if l.name == o {
				if w := l.written.of(p.path); w != nil {
					written, p.name = w, keyPath(w)
				}
				break
			}
		}
		if p.near != nil {
			table, k := written[:len(written)-1], written[len(written)-1]
			if near := suggest(k, slices.Concat(p.near, friendlyKeys[keyPath(table)])); near != "" {
				p.msg += "; did you mean " + near + "?"
			}
		}
	}
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
	out, _, err := composeWithWarnings(layers, f)
	return out, err
}

// composeWithWarnings is compose that also returns the warnings: what the
// installer takes, but not as the operator may think (a limit it raises,
// braces it matches literally). They stop no answer; validate prints them.
func composeWithWarnings(layers []layer, f facts) ([]byte, []problem, error) {
	ans := mergeLayers(layers)
	for _, l := range layers {
		if l.fills {
			if ps := expand(ans, f); len(ps) > 0 {
				asWritten(ps, layers)
				return nil, nil, &answerError{layers, ps}
			}
			break
		}
	}
	host := layers[len(layers)-1].name
	problems := deliver(ans, f)
	problems = append(problems, complete(ans, f, host, layers)...)
	derived := problems[:len(problems):len(problems)]
	var warnings []problem
	// What complete could not derive, validate finds missing: say it once.
	for _, p := range validate(ans, f) {
		if p.warn {
			warnings = append(warnings, p)
		} else if !slices.ContainsFunc(derived, func(q problem) bool {
			return q.key() == p.key() || q.path[0] == "global" && p.key() == "global.fqdn" // derived from hostname and domain
		}) {
			problems = append(problems, p)
		}
	}
	asWritten(problems, layers)
	asWritten(warnings, layers)
	if len(problems) > 0 {
		return nil, warnings, &answerError{layers, problems}
	}
	out, err := render(ans, f.release)
	return out, warnings, err
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
