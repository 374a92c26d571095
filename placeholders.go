// {{.Fact}} placeholders in config values, filled from the request.

package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

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
	shell    bool     // filling a first-boot script: refuse a value that would need quoting
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
		literal := strings.TrimSpace(inner) == `"{{"`
		if msg == "" && !literal && strings.Contains(v, ".") && e.inName() {
			msg = fmt.Sprintf("%q has a dot, which would add a label to the host's name: a placeholder in hostname, domain or fqdn may fill in one label, no more", v)
		}
		if msg == "" && !literal && e.shell && strings.Trim(v, shellSafe) != "" {
			msg = fmt.Sprintf("%q would need quoting in a shell script, and pxe-pilot fills scripts only with letters, digits and %s", v, "'.', '-', '_', ':'")
		}
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

// inName reports whether the key being filled is part of the host's name:
// global.hostname, global.domain or global.fqdn (a name or the table).
func (e *expander) inName() bool {
	return len(e.path) >= 2 && e.path[0] == "global" && (e.path[1] == "hostname" || e.path[1] == "domain" || e.path[1] == "fqdn")
}

// shellSafe are the characters a placeholder may fill into a first-boot
// script: what a vetted request's values are made of, none of which a
// shell reads as anything but itself.
const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:"

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
