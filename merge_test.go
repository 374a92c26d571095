// Tests of merging layers and their either-or choices.

package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// tree is a TOML table as go-toml decodes one, written short.
type tree = map[string]any

// stack names trees as layers, lowest first: defaults.toml, then any middle
// layers, then the host file.
func stack(trees ...tree) []layer {
	ls := make([]layer, len(trees))
	for i, t := range trees {
		switch {
		case i == len(trees)-1:
			ls[i] = layer{name: hostFile, tree: t}
		case i == 0:
			ls[i] = layer{name: "defaults.toml", tree: t}
		default:
			ls[i] = layer{name: fmt.Sprintf("middle%d.toml", i), tree: t}
		}
	}
	return ls
}

// deepCopy copies tables and arrays so that a later change to v cannot
// reach the copy.
func deepCopy(v any) any {
	switch v := v.(type) {
	case tree:
		c := make(tree, len(v))
		for k, e := range v {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = deepCopy(e)
		}
		return c
	}
	return v
}

// scribble changes every table reachable from t, depth first: a table the
// result shares with an input would carry the change into that input.
func scribble(t tree) {
	for k, v := range t {
		if sub, ok := v.(tree); ok {
			scribble(sub)
		}
		t[k] = "scribbled"
	}
	t["scribbled"] = true
}

type mergeCase struct {
	name   string
	layers []tree // lowest first; the last is the host file
	want   tree
}

var mergeCases = []mergeCase{
	{
		name: "first_boot_script_in_host_drops_native_source_below",
		layers: []tree{
			{"first-boot": tree{"source": "from-url", "url": "https://x/s.sh", "cert-fingerprint": "AB", "ordering": "fully-up"}},
			{"first-boot": tree{"script": "scripts/s.sh"}},
		},
		want: tree{"first-boot": tree{"script": "scripts/s.sh", "ordering": "fully-up"}},
	},
	{
		name: "native_first_boot_in_host_drops_script_below",
		layers: []tree{
			{"first-boot": tree{"script": "scripts/s.sh", "ordering": "network-online"}},
			{"first-boot": tree{"source": "from-iso"}},
		},
		want: tree{"first-boot": tree{"source": "from-iso", "ordering": "network-online"}},
	},
	{
		name:   "no_layers_is_empty",
		layers: nil,
		want:   tree{},
	},
	{
		name:   "one_layer_is_itself",
		layers: []tree{{"global": tree{"keyboard": "de"}}},
		want:   tree{"global": tree{"keyboard": "de"}},
	},
	{
		name: "tables_merge_key_by_key",
		layers: []tree{
			{"global": tree{"keyboard": "de", "country": "de"}, "network": tree{"dns": "1.1.1.1"}},
			{"global": tree{"country": "at", "timezone": "Europe/Vienna"}},
		},
		want: tree{
			"global":  tree{"keyboard": "de", "country": "at", "timezone": "Europe/Vienna"},
			"network": tree{"dns": "1.1.1.1"},
		},
	},
	{
		name: "tables_merge_key_by_key_four_levels_deep",
		layers: []tree{
			{"a": tree{"b": tree{"c": tree{"d": tree{"x": int64(1), "y": int64(2)}, "sibling": "low"}, "kept": true}}},
			{"a": tree{"b": tree{"c": tree{"d": tree{"y": int64(3), "z": int64(4)}}}}},
		},
		want: tree{"a": tree{"b": tree{"c": tree{"d": tree{"x": int64(1), "y": int64(3), "z": int64(4)}, "sibling": "low"}, "kept": true}}},
	},
	{
		name: "higher_scalar_replaces_lower",
		layers: []tree{
			{"disk-setup": tree{"filesystem": "ext4"}},
			{"disk-setup": tree{"filesystem": "zfs"}},
		},
		want: tree{"disk-setup": tree{"filesystem": "zfs"}},
	},
	{
		name: "higher_array_replaces_lower_not_appends",
		layers: []tree{
			{"disk-setup": tree{"disk-list": []any{"sda", "sdb", "sdc"}}},
			{"disk-setup": tree{"disk-list": []any{"nvme0n1"}}},
		},
		want: tree{"disk-setup": tree{"disk-list": []any{"nvme0n1"}}},
	},
	{
		name: "higher_empty_array_replaces_lower",
		layers: []tree{
			{"global": tree{"root-ssh-keys": []any{"ssh-ed25519 AAAA"}}},
			{"global": tree{"root-ssh-keys": []any{}}},
		},
		want: tree{"global": tree{"root-ssh-keys": []any{}}},
	},
	{
		name: "table_in_lower_value_in_higher_takes_the_value",
		layers: []tree{
			{"network": tree{"filter": tree{"ID_NET_NAME_MAC": "*aabbccddeeff"}}},
			{"network": tree{"filter": "eno1"}},
		},
		want: tree{"network": tree{"filter": "eno1"}},
	},
	{
		name: "value_in_lower_table_in_higher_takes_the_table",
		layers: []tree{
			{"disk-setup": tree{"zfs": "off"}},
			{"disk-setup": tree{"zfs": tree{"raid": "raid1"}}},
		},
		want: tree{"disk-setup": tree{"zfs": tree{"raid": "raid1"}}},
	},
	{
		name: "top_level_value_in_higher_replaces_table",
		layers: []tree{
			{"first-boot": tree{"source": "from-iso"}},
			{"first-boot": "none"},
		},
		want: tree{"first-boot": "none"},
	},
	{
		name: "host_without_a_table_keeps_the_lower_one",
		layers: []tree{
			{"global": tree{"keyboard": "de"}},
			{"network": tree{"cidr": "10.0.0.10/24"}},
		},
		want: tree{"global": tree{"keyboard": "de"}, "network": tree{"cidr": "10.0.0.10/24"}},
	},
	{
		name: "highest_of_three_layers_wins",
		layers: []tree{
			{"global": tree{"keyboard": "de", "country": "de", "timezone": "UTC"}},
			{"global": tree{"keyboard": "fr", "country": "fr"}},
			{"global": tree{"keyboard": "it"}},
		},
		want: tree{"global": tree{"keyboard": "it", "country": "fr", "timezone": "UTC"}},
	},
}

// exclusiveCases are the either-or choices: the host picks one side, the
// defaults' other side is dropped, and nothing else is.
var exclusiveCases = []mergeCase{
	{
		name: "host_root_password_drops_defaults_hash",
		layers: []tree{
			{"global": tree{"root-password-hashed": "$6$salt$hash", "keyboard": "de"}},
			{"global": tree{"root-password": "hostpassword"}},
		},
		want: tree{"global": tree{"root-password": "hostpassword", "keyboard": "de"}},
	},
	{
		name: "host_hash_drops_defaults_root_password",
		layers: []tree{
			{"global": tree{"root-password": "defaultpassword", "keyboard": "de"}},
			{"global": tree{"root-password-hashed": "$6$salt$hash"}},
		},
		want: tree{"global": tree{"root-password-hashed": "$6$salt$hash", "keyboard": "de"}},
	},
	{
		name: "host_hostname_drops_defaults_fqdn",
		layers: []tree{
			{"global": tree{"fqdn": "default.example.com", "keyboard": "de"}},
			{"global": tree{"hostname": "pve1"}},
		},
		want: tree{"global": tree{"hostname": "pve1", "keyboard": "de"}},
	},
	{
		name: "host_domain_drops_defaults_fqdn",
		layers: []tree{
			{"global": tree{"fqdn": "default.example.com"}},
			{"global": tree{"domain": "lab.example.com"}},
		},
		want: tree{"global": tree{"domain": "lab.example.com"}},
	},
	{
		name: "host_fqdn_drops_defaults_hostname_and_domain",
		layers: []tree{
			{"global": tree{"hostname": "pve1", "domain": "lab.example.com", "keyboard": "de"}},
			{"global": tree{"fqdn": "pve9.example.org"}},
		},
		want: tree{"global": tree{"fqdn": "pve9.example.org", "keyboard": "de"}},
	},
	{
		name: "host_disk_list_drops_defaults_filter_and_filter_match",
		layers: []tree{
			{"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*"}, "filter-match": "all", "filesystem": "zfs"}},
			{"disk-setup": tree{"disk-list": []any{"sda"}}},
		},
		want: tree{"disk-setup": tree{"disk-list": []any{"sda"}, "filesystem": "zfs"}},
	},
	{
		name: "host_empty_disk_list_drops_defaults_filter_all_the_same",
		layers: []tree{
			{"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*"}, "filter-match": "all"}},
			{"disk-setup": tree{"disk-list": []any{}}},
		},
		want: tree{"disk-setup": tree{"disk-list": []any{}}},
	},
	{
		name: "host_filter_drops_defaults_disk_list",
		layers: []tree{
			{"disk-setup": tree{"disk-list": []any{"sda", "sdb"}, "filesystem": "zfs"}},
			{"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*"}}},
		},
		want: tree{"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*"}, "filesystem": "zfs"}},
	},
	{
		name: "host_cidr_drops_defaults_dhcp_source",
		layers: []tree{
			{"network": tree{"source": "from-dhcp", "dns": "1.1.1.1"}},
			{"network": tree{"cidr": "10.0.0.10/24"}},
		},
		want: tree{"network": tree{"cidr": "10.0.0.10/24", "dns": "1.1.1.1"}},
	},
	{
		name: "host_from_answer_source_drops_defaults_dhcp_source",
		layers: []tree{
			{"network": tree{"source": "from-dhcp", "dns": "1.1.1.1"}},
			{"network": tree{"source": "from-answer"}},
		},
		want: tree{"network": tree{"source": "from-answer", "dns": "1.1.1.1"}},
	},
	{
		name: "host_dhcp_source_drops_defaults_cidr_dns_gateway_filter",
		layers: []tree{
			{"network": tree{
				"cidr": "10.0.0.10/24", "dns": "1.1.1.1", "gateway": "10.0.0.1",
				"filter":                 tree{"ID_NET_NAME_MAC": "*aabbccddeeff"},
				"interface-name-pinning": tree{"enabled": true},
			}},
			{"network": tree{"source": "from-dhcp"}},
		},
		want: tree{"network": tree{"source": "from-dhcp", "interface-name-pinning": tree{"enabled": true}}},
	},
	{
		name: "host_picking_neither_side_keeps_the_defaults_choice",
		layers: []tree{
			{
				"global":     tree{"root-password-hashed": "$6$salt$hash", "fqdn": "default.example.com"},
				"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*"}},
				"network":    tree{"source": "from-dhcp"},
			},
			{
				"global":     tree{"keyboard": "de"},
				"disk-setup": tree{"filesystem": "zfs"},
				"network":    tree{"interface-name-pinning": tree{"enabled": true}},
			},
		},
		want: tree{
			"global":     tree{"root-password-hashed": "$6$salt$hash", "fqdn": "default.example.com", "keyboard": "de"},
			"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*"}, "filesystem": "zfs"},
			"network":    tree{"source": "from-dhcp", "interface-name-pinning": tree{"enabled": true}},
		},
	},
	{
		name: "choice_in_a_different_table_drops_nothing",
		layers: []tree{
			{"global": tree{"root-password-hashed": "$6$salt$hash"}},
			{"network": tree{"root-password": "not-in-global"}},
		},
		want: tree{"global": tree{"root-password-hashed": "$6$salt$hash"}, "network": tree{"root-password": "not-in-global"}},
	},
	{
		name: "middle_layer_choice_is_dropped_by_the_host",
		layers: []tree{
			{"global": tree{"keyboard": "de"}},
			{"global": tree{"root-password": "middlepassword"}},
			{"global": tree{"root-password-hashed": "$6$salt$hash"}},
		},
		want: tree{"global": tree{"keyboard": "de", "root-password-hashed": "$6$salt$hash"}},
	},
}

func TestMergeLayers(t *testing.T) {
	for _, group := range [][]mergeCase{mergeCases, exclusiveCases} {
		for _, tc := range group {
			t.Run(tc.name, func(t *testing.T) {
				layers := stack(tc.layers...)
				var before []tree
				for _, l := range tc.layers {
					before = append(before, deepCopy(l).(tree))
				}
				got := mergeLayers(layers)
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("mergeLayers(%v)\n = %v\nwant %v", tc.layers, got, tc.want)
				}
				if !reflect.DeepEqual(tc.layers, before) {
					t.Fatalf("mergeLayers changed its input layers:\n got %v\nwant %v", tc.layers, before)
				}
				scribble(got)
				if !reflect.DeepEqual(tc.layers, before) {
					t.Errorf("changing mergeLayers' result changed its input layers:\n got %v\nwant %v", tc.layers, before)
				}
			})
		}
	}
}

// TestScribbleIsSeen proves the check above can fail: a table shared with
// an input is seen.
func TestScribbleIsSeen(t *testing.T) {
	in := tree{"global": tree{"keyboard": "de"}}
	before := deepCopy(in)
	shared := tree{"global": in["global"]}
	scribble(shared)
	if reflect.DeepEqual(in, before) {
		t.Fatalf("scribble on a result sharing a table left the input %v unchanged", in)
	}
}

func TestCheckExclusives(t *testing.T) {
	tests := []struct {
		name    string
		tree    tree
		wantErr []string // substrings of the error; nil for none
	}{
		{"password_alone_is_fine", tree{"global": tree{"root-password": "x"}}, nil},
		{"hash_alone_is_fine", tree{"global": tree{"root-password-hashed": "x"}}, nil},
		{"password_and_hash", tree{"global": tree{"root-password": "x", "root-password-hashed": "y"}},
			[]string{"global.root-password", "global.root-password-hashed"}},
		{"hostname_and_fqdn", tree{"global": tree{"hostname": "pve1", "fqdn": "pve1.example.com"}},
			[]string{"hostname", "global.fqdn"}},
		{"domain_and_fqdn", tree{"global": tree{"domain": "example.com", "fqdn": "pve1.example.com"}},
			[]string{"hostname", "global.fqdn"}},
		{"hostname_and_domain_are_fine", tree{"global": tree{"hostname": "pve1", "domain": "example.com"}}, nil},
		{"disk_list_and_filter", tree{"disk-setup": tree{"disk-list": []any{"sda"}, "filter": tree{"ID_SERIAL": "*"}}},
			[]string{"disk-setup.disk-list", "disk-setup.filter"}},
		{"disk_list_and_filter_match", tree{"disk-setup": tree{"disk-list": []any{"sda"}, "filter-match": "all"}}, nil},
		{"empty_disk_list_and_filter_are_fine", tree{"disk-setup": tree{"disk-list": []any{}, "filter": tree{"ID_SERIAL": "*"}}}, nil},
		{"cidr_and_dhcp", tree{"network": tree{"cidr": "10.0.0.10/24", "source": "from-dhcp"}},
			[]string{"network.address", `network.source = "from-dhcp"`}},
		{"cidr_and_from_answer_are_fine", tree{"network": tree{"cidr": "10.0.0.10/24", "source": "from-answer"}}, nil},
		{"dhcp_with_dns_is_fine_here", tree{"network": tree{"source": "from-dhcp", "dns": "1.1.1.1"}}, nil},
		{"table_that_is_a_value_is_fine", tree{"global": "x"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExclusives(layer{name: hostFile, tree: tc.tree})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("checkExclusives(%v) = %v; want nil", tc.tree, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkExclusives(%v) = nil; want an error naming %s", tc.tree, strings.Join(tc.wantErr, " and "))
			}
			if !strings.HasPrefix(err.Error(), hostFile+": ") {
				t.Errorf("checkExclusives(%v) = %q; want it to start with %q", tc.tree, err, hostFile+": ")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("checkExclusives(%v) = %q; want it to mention %s", tc.tree, err, w)
				}
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	layers := stack(
		tree{"global": tree{"keyboard": "de", "country": "de"}, "disk-setup": tree{"zfs": tree{"raid": "raid1"}}, "network": tree{"filter": "eno1"}},
		tree{"global": tree{"country": "at"}, "network": tree{"filter": tree{"ID_NET_NAME_MAC": "*aabb"}}},
	)
	tests := []struct {
		name string
		path []string
		want string
	}{
		{"key_only_in_defaults", []string{"global", "keyboard"}, "defaults.toml"},
		{"key_in_both_names_the_host", []string{"global", "country"}, hostFile},
		{"table_in_both_names_the_host", []string{"global"}, hostFile},
		{"nested_key_only_in_defaults", []string{"disk-setup", "zfs", "raid"}, "defaults.toml"},
		{"key_under_a_table_only_the_host_has", []string{"network", "filter", "ID_NET_NAME_MAC"}, hostFile},
		{"key_in_no_layer", []string{"global", "timezone"}, ""},
		{"path_through_a_value", []string{"disk-setup", "zfs", "raid", "deeper"}, ""},
		{"empty_path_is_the_host", nil, hostFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := origin(layers, tc.path...); got != tc.want {
				t.Errorf("origin(%q) = %q; want %q", tc.path, got, tc.want)
			}
		})
	}
	if got := origin(nil, "global"); got != "" {
		t.Errorf("origin(no layers, global) = %q; want \"\"", got)
	}
}
