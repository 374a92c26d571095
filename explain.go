// render --explain: which file and line set each key of an answer.

package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// explain writes an answer, the server's own bytes, with what an operator
// asks first when a machine got something unexpected: above it, the host
// file that matched and by what, and the layers in merge order; beside
// each key, the file and line that set it, or what pxe-pilot made it from.
// Comments only: what it writes is still the answer's TOML.
func explain(dir string, o *outcome, answer []byte) ([]byte, error) {
	c, err := openConfigDir(dir)
	if err != nil {
		return nil, err
	}
	defer c.close()
	names := strings.Split(o.layers, ",")
	sources := make([]map[string]keyAt, len(names))
	for i, name := range names {
		data, err := c.read(name, nil)
		if err != nil {
			return nil, &configError{name, "cannot read: " + err.Error()}
		}
		sources[i] = keyLines(data)
	}
	byLine := map[int]string{}
	for key, at := range keyLines(answer) {
		byLine[at.line] = key
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s, matched by %s\n", o.host, o.match)
	fmt.Fprintf(&b, "# layers, lowest first: %s\n", strings.Join(names, ", "))
	for i, line := range strings.SplitAfter(string(answer), "\n") {
		key, ok := byLine[i+1]
		if !ok {
			b.WriteString(line)
			continue
		}
		fmt.Fprintf(&b, "%s  # %s\n", strings.TrimSuffix(line, "\n"), setBy(key, names, sources))
	}
	return b.Bytes(), nil
}

// A keyAt is where a key is written, and its value if a string.
type keyAt struct {
	line  int
	value string
}

// keyLines maps each key of a TOML document, as the dotted path of its
// parts as written ("disk.zfs.raid"), to where it is. Keys of an inline
// table are on the line of its key.
func keyLines(data []byte) map[string]keyAt {
	lines := map[string]keyAt{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		var key []string
		var first *unstable.Node
		for it := e.Key(); it.Next(); {
			if first == nil {
				first = it.Node()
			}
			key = append(key, string(it.Node().Data))
		}
		if first == nil {
			continue
		}
		line := p.Shape(first.Raw).Start.Line
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = key
		case unstable.KeyValue:
			path := append(append([]string{}, table...), key...)
			at := keyAt{line: line}
			if v := e.Value(); v.Kind == unstable.String {
				at.value = string(v.Data)
			}
			lines[strings.Join(path, ".")] = at
			if v := e.Value(); v.Kind == unstable.InlineTable {
				for it := v.Children(); it.Next(); {
					var sub []string
					for k := it.Node().Key(); k.Next(); {
						sub = append(sub, string(k.Node().Data))
					}
					lines[strings.Join(append(append([]string{}, path...), sub...), ".")] = keyAt{line: line}
				}
			}
		}
	}
	return lines
}

// setBy says where the answer's key came from: the highest layer that
// sets it in any spelling pxe-pilot takes for it, or what derived it.
func setBy(key string, names []string, sources []map[string]keyAt) string {
	find := func(forms ...string) (string, keyAt) {
		for i := len(names) - 1; i >= 0; i-- {
			for _, s := range forms {
				if at, ok := sources[i][s]; ok {
					return fmt.Sprintf("%s:%d", names[i], at.line), at
				}
			}
		}
		return "", keyAt{}
	}
	if where, _ := find(writtenAs(key)...); where != "" {
		return where
	}
	switch {
	case key == "global.fqdn":
		host, at := find("hostname", "global.hostname")
		if host == "" {
			break
		}
		if domain, _ := find("global.domain"); domain != "" && !strings.Contains(at.value, ".") {
			return "hostname (" + host + ") and domain (" + domain + ")"
		}
		return "hostname (" + host + ")"
	case key == "network.source":
		return "pxe-pilot: from-answer where network.address is set, else from-dhcp"
	case strings.HasPrefix(key, "network.filter."):
		return "pxe-pilot: the NIC whose MAC named the host file"
	case strings.HasSuffix(key, ".raid"):
		return "pxe-pilot: raid0, the installer's own choice for one disk"
	case strings.HasPrefix(key, "post-installation-webhook."):
		return "pxe-pilot: serve --public-url has the install reported back"
	case strings.HasPrefix(key, "first-boot."):
		if where, _ := find("first-boot-script", "first-boot.script"); where != "" {
			return "pxe-pilot: serves first-boot-script (" + where + ")"
		}
	}
	return "pxe-pilot"
}

// writtenAs are the ways a config file may write an answer's key: as the
// installer spells it, snake_case, and pxe-pilot's friendly names.
func writtenAs(key string) []string {
	out := []string{key}
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		add(key[:i+1] + strings.ReplaceAll(key[i+1:], "-", "_"))
	}
	switch key {
	case "network.cidr":
		add("network.address")
	case "global.root-password-hashed":
		add("global.root_password_hash")
	case "disk-setup.disk-list":
		add("disk.target")
	}
	for _, s := range append([]string{}, out...) {
		if rest, ok := strings.CutPrefix(s, "disk-setup."); ok {
			add("disk." + rest)
		}
	}
	return out
}
