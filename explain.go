// render --explain: which file and line set each key of an answer.

package main

import (
	"bytes"
	"fmt"
	"slices"
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
	sources := make([]source, len(names))
	for i, name := range names {
		data, err := c.read(name, nil)
		if err != nil {
			return nil, &configError{name, "cannot read: " + err.Error()}
		}
		l, _, err := readLayer(c, name)
		if err != nil {
			return nil, err
		}
		sources[i] = source{l, keyLines(data)}
	}
	byLine := map[int]string{}
	for key, line := range keyLines(answer) {
		byLine[line] = key
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
		fmt.Fprintf(&b, "%s  # %s\n", strings.TrimSuffix(line, "\n"), setBy(key, sources))
	}
	return b.Bytes(), nil
}

// A source is a layer and the line of each key as its file writes it.
type source struct {
	layer
	lines map[string]int
}

// keyLines maps each key of a TOML document, as the dotted path of its
// parts as written ("disk.zfs.raid"), to where it is. Keys of an inline
// table are on the line of its key.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
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
			lines[strings.Join(path, ".")] = line
			if v := e.Value(); v.Kind == unstable.InlineTable {
				for it := v.Children(); it.Next(); {
					var sub []string
					for k := it.Node().Key(); k.Next(); {
						sub = append(sub, string(k.Node().Data))
					}
					lines[strings.Join(append(append([]string{}, path...), sub...), ".")] = line
				}
			}
		}
	}
	return lines
}

// setBy says where the answer's key came from: the highest layer that
// sets it, at the line where its file writes it (layer.written knows how:
// address for cidr, [disk] target for disk-list), or what derived it.
func setBy(key string, sources []source) string {
	find := func(path ...string) (string, any) {
		for _, src := range slices.Backward(sources) {
			v := lookup(src.tree, path...)
			if v == nil {
				continue
			}
			written := src.written.of(path)
			if written == nil {
				written = path
			}
			if line, ok := src.lines[strings.Join(written, ".")]; ok {
				return fmt.Sprintf("%s:%d", src.name, line), v
			}
			return src.name, v
		}
		return "", nil
	}
	path := strings.Split(key, ".")
	for _, s := range snakeKeys { // an answer for 8.2 or 8.3 spells these snake_case
		if len(path) == len(s.table)+1 && slices.Equal(path[:len(s.table)], s.table) && path[len(path)-1] == s.snake {
			path[len(path)-1] = s.kebab
		}
	}
	if where, _ := find(path...); where != "" {
		return where
	}
	switch {
	case key == "global.fqdn":
		host, name := find("global", "hostname")
		if host == "" {
			break
		}
		if domain, _ := find("global", "domain"); domain != "" && !strings.Contains(fmt.Sprint(name), ".") {
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
		if where, _ := find("first-boot", "script"); where != "" {
			return "pxe-pilot: serves first-boot-script (" + where + ")"
		}
	}
	return "pxe-pilot"
}
