// Tests of filling {{.Fact}} placeholders.

package main

import (
	"reflect"
	"strings"
	"testing"
)

// factsFor are the facts of a 9.2 request from a machine whose second NIC
// matched its host file.
var factsFor = request{product: "pve", iso: "9.2", btrfs: true,
	macs: []string{"aabbccddee01", "aabbccddeeff"}, links: []string{"eno1", "enp1s0f0np0"},
	serial: "S424170X1A21345", uuid: "4C4C4544-0042-3510-8057-B4C04F4E3532",
}.facts(match{by: "mac", key: "aabbccddeeff"}, r92)

func TestExpand(t *testing.T) {
	noSerial := factsFor
	noSerial.serial = request{serial: "To be filled by O.E.M."}.ids()[0]
	dotted := factsFor
	dotted.link, dotted.serial = "x.evil.example.net", request{serial: "S1.evil"}.ids()[0]
	tests := []struct {
		name     string
		f        facts
		hostname any // global.hostname; nil for none
		value    any // global.mailto
		want     any
		wantErr  string // the problem at global.mailto, or at global.hostname
	}{
		{"plain_text_untouched", factsFor, "pve1", "ops@example.com", "ops@example.com", ""},
		{"closing_braces_alone_untouched", factsFor, "pve1", "a}}b", "a}}b", ""},
		{"single_braces_untouched", factsFor, "pve1", "{.Serial}", "{.Serial}", ""},
		{"every_fact", factsFor, "pve-{{.Serial}}",
			"{{.Hostname}} {{.MAC}} {{.MACHex}} {{.Link}} {{.Serial}} {{.UUID}} {{.Product}} {{.Release}}",
			"pve-S424170X1A21345 aa:bb:cc:dd:ee:ff aabbccddeeff enp1s0f0np0 S424170X1A21345 4c4c4544-0042-3510-8057-b4c04f4e3532 pve 9.2", ""},
		{"spaces_inside_braces", factsFor, "pve1", "{{ .MACHex }}", "aabbccddeeff", ""},
		{"literal_braces", factsFor, "pve1", `a{{"{{"}}b}}`, "a{{b}}", ""},
		{"placeholder_at_both_ends", factsFor, "pve1", "{{.Product}}{{.Release}}", "pve9.2", ""},
		{"hostname_is_the_first_label", factsFor, "pve7.other.example.org", "{{.Hostname}}", "pve7", ""},
		{"array_elements", factsFor, "pve1", []any{"a-{{.MACHex}}", "b", int64(3)}, []any{"a-aabbccddeeff", "b", int64(3)}, ""},
		{"tables_in_arrays", factsFor, "pve1", []any{map[string]any{"k": "{{.Link}}"}}, []any{map[string]any{"k": "enp1s0f0np0"}}, ""},
		{"non_strings_untouched", factsFor, "pve1", int64(7), int64(7), ""},
		{"unknown_gets_a_suggestion", factsFor, "pve1", "{{.Serail}}", nil, "{{.Serail}}: no such placeholder (did you mean {{.Serial}}?); the placeholders are {{.Hostname}}, {{.MAC}}"},
		{"case_matters", factsFor, "pve1", "{{.serial}}", nil, "{{.serial}}: no such placeholder (did you mean {{.Serial}}?)"},
		{"without_the_dot", factsFor, "pve1", "{{Serial}}", nil, "{{Serial}}: no such placeholder (did you mean {{.Serial}}?)"},
		{"template_logic_is_not_a_placeholder", factsFor, "pve1", "{{if .Serial}}x{{end}}", nil, "{{if .Serial}}: no such placeholder"},
		{"unclosed", factsFor, "pve1", "ops+{{.Hostname@example.com", nil, `"{{.Hostname@example.com" opens a placeholder with {{ but never closes it with }}`},
		{"missing_fact", noSerial, "pve1", "{{.Serial}}", nil, `{{.Serial}}: nothing to fill in: dmi.system.serial "To be filled by O.E.M." is a firmware placeholder`},
		{"no_hostname_anywhere", factsFor, nil, "{{.Hostname}}", nil, "{{.Hostname}}: nothing to fill in: no hostname or global.fqdn is set"},
		{"hostname_cannot_use_itself", factsFor, "{{.Hostname}}-2", "x", nil, "global.hostname: {{.Hostname}}: the host's name is what {{.Hostname}} is filled from"},
		{"a_fact_with_a_dot_adds_no_label_to_the_hostname", dotted, "pve-{{.Link}}", "x", nil, `global.hostname: {{.Link}}: "x.evil.example.net" has a dot, which would add a label to the host's name`},
		{"a_serial_with_a_dot_adds_no_label_either", dotted, "pve-{{.Serial}}", "x", nil, `global.hostname: {{.Serial}}: "S1.evil" has a dot`},
		{"a_release_adds_no_label_either", factsFor, "pve-{{.Release}}", "x", nil, `global.hostname: {{.Release}}: "9.2" has a dot`},
		{"dots_are_fine_outside_the_name", dotted, "pve1", "{{.Link}}", "x.evil.example.net", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := map[string]any{"mailto": tc.value}
			if tc.hostname != nil {
				g["hostname"] = tc.hostname
			}
			layerTree := map[string]any{"global": g}
			before := deepCopy(layerTree)
			ans := mergeLayers([]layer{{name: hostFile, tree: layerTree}})
			f := tc.f
			ps := expand(ans, f)
			if !reflect.DeepEqual(layerTree, before) {
				t.Errorf("expand changed the layer it merged from: %v; want %v", layerTree, before)
			}
			if tc.wantErr != "" {
				if len(ps) != 1 || !strings.Contains(ps[0].key()+": "+ps[0].msg, tc.wantErr) {
					t.Fatalf("expand(%q) = %v; want one problem with %q", tc.value, ps, tc.wantErr)
				}
				return
			}
			if len(ps) != 0 {
				t.Fatalf("expand(%q) = %v; want no problem", tc.value, ps)
			}
			if got := lookup(ans, "global", "mailto"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("expand(%q) = %#v; want %#v", tc.value, got, tc.want)
			}
		})
	}
}

// A fact is text, never a placeholder: a request cannot make pxe-pilot
// fill in what the operator did not write.
func TestExpandDoesNotReadFactsAgain(t *testing.T) {
	f := factsFor
	f.link = "{{.Serial}}"
	ans := map[string]any{"global": map[string]any{"hostname": "pve1", "mailto": "{{.Link}}"}, "network": map[string]any{"x": "{{.Link}}"}}
	if ps := expand(ans, f); len(ps) != 0 {
		t.Fatalf("expand = %v", ps)
	}
	for _, path := range [][]string{{"global", "mailto"}, {"network", "x"}} {
		if got := lookup(ans, path...); got != "{{.Serial}}" {
			t.Errorf("%s = %q; want the link as sent, {{.Serial}}", keyPath(path), got)
		}
	}
}
