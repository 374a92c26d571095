// Deep merge of layers, the either-or choices between them, and which file set a key.

package main

import "strings"

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
	// together says whether one file's picking both sides is one the
	// installer takes all the same; nil where none is.
	together pickFunc
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
		// An empty disk-list beside a filter: the installer uses the filter.
		together: func(t map[string]any) bool {
			l, ok := t["disk-list"].([]any)
			return ok && len(l) == 0
		},
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

// checkExclusives reports a layer that picks both sides of a choice,
// naming a side that is one key as the layer wrote it.
func checkExclusives(l layer) error {
	name := func(side string) string {
		if w := l.written.of(strings.Split(side, ".")); w != nil {
			return keyPath(w)
		}
		return side
	}
	for _, x := range exclusives {
		t, _ := l.tree[x.table].(map[string]any)
		if t != nil && x.picks[0](t) && x.picks[1](t) && (x.together == nil || !x.together(t)) {
			return &configError{l.name, name(x.names[0]) + " and " + name(x.names[1]) + " " + x.hint}
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
