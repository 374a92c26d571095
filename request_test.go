// Tests of decoding and vetting the installer's request.

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const (
	reqMAC1 = "aa:bb:cc:dd:ee:0a"
	reqMAC2 = "aa:bb:cc:dd:ee:0b"
	reqMAC3 = "aa:bb:cc:dd:ee:0c"

	noNICError     = "request body: network_interfaces lists no interface, so no host file can match; POST the installer's system info"
	foldsToK       = "\u212a" // folds to k
	foldsToS       = "\u017f" // folds to s
	dotlessI       = "\u0131" // does not fold to i
	dottedCapitalI = "\u0130" // does not fold to i either
)

// nicsJSON is a network_interfaces array of objects with these MACs, "" for {}.
func nicsJSON(macs ...string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, m := range macs {
		if i > 0 {
			b.WriteByte(',')
		}
		if m == "" {
			b.WriteString("{}")
		} else {
			fmt.Fprintf(&b, `{"link":"eno%d","mac":%q}`, i+1, m)
		}
	}
	b.WriteByte(']')
	return b.String()
}

func nestedJSON(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

// parseCases pin what parseRequest makes of tricky bodies: json.Unmarshal's
// reading of them, but for a repeated network_interfaces (see nicList).
var parseCases = []struct {
	name    string
	body    string
	want    request
	wantErr string // the error's text, whole; "" for none
}{
	{name: "plain",
		body: `{"product":{"product":"pve","enable_btrfs":true},"iso":{"release":"9.2"},"network_interfaces":` + nicsJSON(reqMAC1, reqMAC2) + `}`,
		want: request{product: "pve", iso: "9.2", btrfs: true, macs: []string{"aabbccddee0a", "aabbccddee0b"}}},
	{name: "keys_match_case_insensitively",
		body: `{"PRODUCT":{"Product":"pbs","ENABLE_BTRFS":false},"Iso":{"rElEaSe":"3.3"},"Network_Interfaces":[{"MAC":"` + reqMAC1 + `"}]}`,
		want: request{product: "pbs", iso: "3.3", btrfs: false, macs: []string{"aabbccddee0a"}}},
	{name: "kelvin_sign_and_long_s_fold_to_ascii",
		body: `{"i` + foldsToS + `o":{"relea` + foldsToS + `e":"9.2"},"networ` + foldsToK + `_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{iso: "9.2", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "escaped_kelvin_sign_folds_too",
		body: `{"networ\u212a_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "dotless_and_dotted_i_do_not_fold_to_i",
		body: `{"` + dotlessI + `so":{"release":"9.2"},"` + dottedCapitalI + `SO":{"release":"9.3"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "escaped_key",
		body: `{"\u0070roduct":{"product":"pve"},"network_interfaces":[{"m\u0061c":"` + reqMAC1 + `"}]}`,
		want: request{product: "pve", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "escapes_in_values",
		body: `{"dmi":{"system":{"serial":"p\"v\\e\/\b\f\n\r\t"}},"iso":{"release":"9\u002e2"},"network_interfaces":[{"mac":"AA:BB:CC:DD:EE:0\u0041"}]}`,
		want: request{serial: "p\"v\\e/\b\f\n\r\t", iso: "9.2", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "surrogate_pair_is_one_rune",
		body: `{"dmi":{"system":{"serial":"\ud83d\ude00"}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{serial: "\U0001F600", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "lone_surrogates_become_replacement_characters",
		body: `{"dmi":{"system":{"serial":"\ud800x\udc00\ud800\u0041"}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{serial: "\uFFFDx\uFFFD\uFFFDA", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "invalid_utf8_becomes_replacement_characters",
		body: "{\"dmi\":{\"system\":{\"serial\":\"p\xffv\xc3\",\"uuid\":\"\xe2\x82\"}},\"network_interfaces\":[{\"mac\":\"" + reqMAC1 + "\"}]}",
		want: request{serial: "p\uFFFDv\uFFFD", uuid: "\uFFFD\uFFFD", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "valid_utf8_is_kept",
		body: `{"dmi":{"system":{"name":"prøduct ✓"}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{model: "prøduct ✓", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "bad_mac_is_quoted_as_decoded",
		body:    "{\"network_interfaces\":[{\"mac\":\"\\u0000\xff\\\"\"}]}",
		wantErr: "request body: network_interfaces has no usable MAC (got \"\\x00\uFFFD\\\"\")"},
	{name: "later_key_wins",
		body: `{"iso":{"release":"8.2"},"iso":{"release":"9.2"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{iso: "9.2", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "repeated_objects_merge",
		body: `{"product":{"product":"pbs"},"product":{"enable_btrfs":false},"PRODUCT":{"fullname":"x"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{product: "pbs", btrfs: false, macs: []string{"aabbccddee0a"}}},
	{name: "null_leaves_strings_and_objects_alone",
		body: `{"product":{"product":"pve","product":null},"iso":{"release":"9.2"},"iso":null,"network_interfaces":[{"mac":"` + reqMAC1 + `","mac":null},null]}`,
		want: request{product: "pve", iso: "9.2", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "null_enable_btrfs_is_absent",
		body: `{"product":{"enable_btrfs":false,"enable_btrfs":null},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "null_empties_network_interfaces",
		body:    `{"network_interfaces":` + nicsJSON(reqMAC1) + `,"network_interfaces":null}`,
		wantErr: noNICError},
	{name: "null_top_level_is_an_empty_request",
		body:    ` null `,
		wantErr: noNICError},
	{name: "repeated_network_interfaces_last_wins_whole",
		body:    `{"network_interfaces":[{"mac":"` + reqMAC1 + `","link":"eno1"}],"network_interfaces":[{"link":"eno2"}]}`,
		wantErr: `request body: network_interfaces has no usable MAC (got "")`},
	{name: "repeated_network_interfaces_brings_no_earlier_entry_back",
		body:    `{"network_interfaces":` + nicsJSON(reqMAC1, reqMAC2, reqMAC3) + `,"network_interfaces":[{}],"network_interfaces":` + nicsJSON("", "", "") + `}`,
		wantErr: `request body: network_interfaces has no usable MAC (got "", "", "")`},
	{name: "repeated_network_interfaces_later_macs_count",
		body: `{"network_interfaces":` + nicsJSON(reqMAC1) + `,"NETWORK_INTERFACES":` + nicsJSON(reqMAC2, reqMAC3) + `}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0b", "aabbccddee0c"}}},
	{name: "empty_network_interfaces_forgets_the_entries",
		body:    `{"network_interfaces":` + nicsJSON(reqMAC1, reqMAC2) + `,"network_interfaces":[],"network_interfaces":` + nicsJSON("", "") + `}`,
		wantErr: `request body: network_interfaces has no usable MAC (got "", "")`},
	{name: "null_network_interfaces_forgets_the_entries",
		body:    `{"network_interfaces":` + nicsJSON(reqMAC1, reqMAC2) + `,"network_interfaces":null,"network_interfaces":` + nicsJSON("", "") + `}`,
		wantErr: `request body: network_interfaces has no usable MAC (got "", "")`},
	{name: "unknown_keys_at_every_level_are_skipped",
		body: `{"$schema":{"version":"1.0"},"dmi":{"a":[1,-2.5e+3,true,false,null,{"b":[]}]},"product":{"x":{"product":5}},"iso":{"isorelease":"1"},"network_interfaces":[{"mac":"` + reqMAC1 + `","speed":1000,"link":"eno1"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "dmi_serial_uuid_and_links",
		body: `{"dmi":{"system":{"name":"X","serial":"S42","uuid":"4C4C4544-0042-3510-8057-B4C04F4E3532"},"chassis":{"serial":"C1"}},"network_interfaces":[{"link":"eno1","mac":"` + reqMAC1 + `"},{"mac":"` + reqMAC2 + `"},{"link":"eno3","mac":"` + reqMAC1 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a", "aabbccddee0b"}, links: []string{"eno1", ""},
			serial: "S42", uuid: "4C4C4544-0042-3510-8057-B4C04F4E3532", model: "X"}},
	{name: "dmi_keys_fold_case_and_null_is_nothing",
		body: `{"DMI":{"System":{"Serial":"S42","uuid":null}},"dmi":null,"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}, serial: "S42"}},
	{name: "numbers_of_every_form",
		body: `{"n":[0,-0,1,-1,10,0.5,-0.5,1e5,1E5,1e+5,1e-5,1.5E-05,123456789012345678901234567890,1e999],"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "whitespace_everywhere",
		body: " \t\r\n{ \"network_interfaces\" \n:\t[ { \"mac\" : \"" + reqMAC1 + "\" } ] } \n",
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "depth_10000_is_allowed",
		body:    `{"x":` + nestedJSON("[", "]", 9999) + `}`,
		wantErr: noNICError},
	{name: "too_many_nics",
		body:    `{"network_interfaces":[` + strings.Repeat(`{},`, maxNICs) + `{}]}`,
		wantErr: "request body: network_interfaces lists 257 interfaces, more than the 256 pxe-pilot looks at"},

	{name: "link_with_shell_metacharacters", body: `{"network_interfaces":[{"link":"eno1;reboot","mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: network_interfaces[0].link: "eno1;reboot" is not an interface name: 1 to 15 letters, digits, '-', '_' or '.', as the kernel names NICs`},
	{name: "link_of_16_bytes", body: `{"network_interfaces":[{"mac":"` + reqMAC2 + `"},{"link":"enp1s0f0np0abcde","mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: network_interfaces[1].link: "enp1s0f0np0abcde" is not an interface name: 1 to 15 letters, digits, '-', '_' or '.', as the kernel names NICs`},
	{name: "link_with_a_space", body: `{"network_interfaces":[{"link":"eno 1","mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: network_interfaces[0].link: "eno 1" is not an interface name: 1 to 15 letters, digits, '-', '_' or '.', as the kernel names NICs`},
	{name: "link_of_a_bad_mac_too", body: `{"network_interfaces":[{"link":"$(reboot)","mac":"zz"},{"mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: network_interfaces[0].link: "$(reboot)" is not an interface name: 1 to 15 letters, digits, '-', '_' or '.', as the kernel names NICs`},
	{name: "links_as_kernels_name_them", body: `{"network_interfaces":[{"link":"enp1s0f0np0","mac":"` + reqMAC1 + `"},{"link":"eth0.100","mac":"` + reqMAC2 + `"},{"link":"wlx_0a-1","mac":"` + reqMAC3 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a", "aabbccddee0b", "aabbccddee0c"}, links: []string{"enp1s0f0np0", "eth0.100", "wlx_0a-1"}}},
	{name: "product_with_a_newline", body: `{"product":{"product":"pve\n[global]"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: product.product: "pve\n[global]" is not a product such as "pve": 2 to 16 lowercase letters and digits`},
	{name: "product_in_capitals", body: `{"product":{"product":"PVE"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: product.product: "PVE" is not a product such as "pve": 2 to 16 lowercase letters and digits`},
	{name: "unknown_product_of_letters_is_taken", body: `{"product":{"product":"pxy2"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{product: "pxy2", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "release_with_a_tail", body: `{"iso":{"release":"9.2.x;rm -rf /"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: iso.release: "9.2.x;rm -rf /" is not a release such as "9.2"`},
	{name: "release_with_a_point", body: `{"iso":{"release":"9.2.1"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{iso: "9.2.1", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "model_with_an_escape_sequence", body: `{"dmi":{"system":{"name":"\u001b[2J\u001b[Hpwned"}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: dmi.system.name: "\x1b[2J\x1b[Hpwned" is not a model name: at most 128 characters, with no control characters, quotes, backslash or $`},
	{name: "model_with_a_command", body: `{"dmi":{"system":{"name":"x$(reboot)"}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: dmi.system.name: "x$(reboot)" is not a model name: at most 128 characters, with no control characters, quotes, backslash or $`},
	{name: "model_of_a_qemu_vm", body: `{"dmi":{"system":{"name":"Standard PC (i440FX + PIIX, 1996)"}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{model: "Standard PC (i440FX + PIIX, 1996)", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "model_too_long", body: `{"dmi":{"system":{"name":"` + strings.Repeat("M", 129) + `"}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		wantErr: `request body: dmi.system.name: "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM"... is not a model name: at most 128 characters, with no control characters, quotes, backslash or $`},
	{name: "a_huge_bad_mac_is_quoted_short", body: `{"network_interfaces":[{"mac":"` + strings.Repeat("z", 100000) + `"}]}`,
		wantErr: `request body: network_interfaces has no usable MAC (got "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"...)`},
	{name: "many_bad_macs_are_counted", body: `{"network_interfaces":[{"mac":"1"},{"mac":"2"},{"mac":"3"},{"mac":"4"},{"mac":"5"},{"mac":"6"}]}`,
		wantErr: `request body: network_interfaces has no usable MAC (got "1", "2", "3", "4", and 2 more)`},
	{name: "array_is_not_an_object",
		body:    `[{"mac":"` + reqMAC1 + `"}]`,
		wantErr: "request body is not a JSON object but array; POST the installer's system info"},
	{name: "string_is_not_an_object", body: `"{}"`,
		wantErr: "request body is not a JSON object but string; POST the installer's system info"},
	{name: "number_is_not_an_object", body: `-1.5`,
		wantErr: "request body is not a JSON object but number; POST the installer's system info"},
	{name: "bool_is_not_an_object", body: `true`,
		wantErr: "request body is not a JSON object but bool; POST the installer's system info"},
	{name: "release_number", body: `{"iso":{"release":9.2}}`,
		wantErr: "request body: iso.release: want string, got number"},
	{name: "release_object_named_as_declared", body: `{"ISO":{"Release":{}}}`,
		wantErr: "request body: iso.release: want string, got object"},
	{name: "product_string", body: `{"product":"pve"}`,
		wantErr: "request body: product: want object, got string"},
	{name: "product_product_array", body: `{"product":{"product":["pve"]}}`,
		wantErr: "request body: product.product: want string, got array"},
	{name: "enable_btrfs_string", body: `{"product":{"enable_btrfs":"true"}}`,
		wantErr: "request body: product.enable_btrfs: want bool, got string"},
	{name: "enable_btrfs_number", body: `{"product":{"enable_btrfs":1}}`,
		wantErr: "request body: product.enable_btrfs: want bool, got number"},
	{name: "iso_bool", body: `{"iso":false}`,
		wantErr: "request body: iso: want object, got bool"},
	{name: "network_interfaces_object", body: `{"network_interfaces":{"mac":"` + reqMAC1 + `"}}`,
		wantErr: "request body: network_interfaces: want array, got object"},
	{name: "network_interfaces_entry_string", body: `{"network_interfaces":["` + reqMAC1 + `"]}`,
		wantErr: "request body: network_interfaces: want object, got string"},
	{name: "mac_number", body: `{"network_interfaces":[{"mac":12}]}`,
		wantErr: "request body: network_interfaces.mac: want string, got number"},
	{name: "link_bool_though_unused", body: `{"network_interfaces":[{"link":true,"mac":"` + reqMAC1 + `"}]}`,
		wantErr: "request body: network_interfaces.link: want string, got bool"},
	{name: "serial_number", body: `{"dmi":{"system":{"serial":12345}}}`,
		wantErr: "request body: dmi.system.serial: want string, got number"},
	{name: "dmi_system_array", body: `{"dmi":{"system":[]}}`,
		wantErr: "request body: dmi.system: want object, got array"},
	{name: "first_type_error_wins", body: `{"iso":{"release":1},"product":"x","network_interfaces":{}}`,
		wantErr: "request body: iso.release: want string, got number"},
	{name: "type_error_in_skipped_value_is_no_error", body: `{"dmi":{"iso":{"release":1}},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{btrfs: true, macs: []string{"aabbccddee0a"}}},

	{name: "syntax_error_after_type_error_wins", body: `{"iso":{"release":1}} x`,
		wantErr: "request body is not JSON (offset 23: invalid character 'x' after top-level value); POST the installer's system info"},
	{name: "syntax_error_before_type_error_wins", body: `{"x":[1,,2],"iso":{"release":1}}`,
		wantErr: "request body is not JSON (offset 9: invalid character ',' looking for beginning of value); POST the installer's system info"},
	{name: "empty_body", body: ``,
		wantErr: "request body is not JSON (offset 0: unexpected end of JSON input); POST the installer's system info"},
	{name: "not_json", body: `this is not json`,
		wantErr: "request body is not JSON (offset 2: invalid character 'h' in literal true (expecting 'r')); POST the installer's system info"},
	{name: "trailing_garbage", body: `{}}`,
		wantErr: "request body is not JSON (offset 3: invalid character '}' after top-level value); POST the installer's system info"},
	{name: "two_values", body: `{} {}`,
		wantErr: "request body is not JSON (offset 4: invalid character '{' after top-level value); POST the installer's system info"},
	{name: "truncated", body: `{"network_interfaces":[{"mac":"` + reqMAC1,
		wantErr: "request body is not JSON (offset 48: unexpected end of JSON input); POST the installer's system info"},
	{name: "depth_10001_is_refused", body: `{"x":` + nestedJSON("[", "]", 10000) + `}`,
		wantErr: "request body is not JSON (offset 10005: invalid character '[' exceeded max depth); POST the installer's system info"},
	{name: "leading_zero", body: `{"x":01}`,
		wantErr: "request body is not JSON (offset 7: invalid character '1' after object key:value pair); POST the installer's system info"},
	{name: "bare_dot", body: `{"x":1.}`,
		wantErr: "request body is not JSON (offset 8: invalid character '}' after decimal point in numeric literal); POST the installer's system info"},
	{name: "bare_exponent", body: `{"x":1e}`,
		wantErr: "request body is not JSON (offset 8: invalid character '}' in exponent of numeric literal); POST the installer's system info"},
	{name: "plus_sign", body: `{"x":+1}`,
		wantErr: "request body is not JSON (offset 6: invalid character '+' looking for beginning of value); POST the installer's system info"},
	{name: "lone_minus", body: `{"x":-}`,
		wantErr: "request body is not JSON (offset 7: invalid character '}' in numeric literal); POST the installer's system info"},
	{name: "control_character_in_string", body: "{\"x\":\"a\tb\"}",
		wantErr: `request body is not JSON (offset 8: invalid character '\t' in string literal); POST the installer's system info`},
	{name: "single_quote_escape", body: `{"x":"\'"}`,
		wantErr: `request body is not JSON (offset 8: invalid character '\'' in string escape code); POST the installer's system info`},
	{name: "short_unicode_escape", body: `{"x":"\u12"}`,
		wantErr: `request body is not JSON (offset 11: invalid character '"' in \u hexadecimal character escape); POST the installer's system info`},
	{name: "trailing_comma", body: `{"x":1,}`,
		wantErr: "request body is not JSON (offset 8: invalid character '}' looking for beginning of object key string); POST the installer's system info"},
	{name: "bad_literal", body: `{"x":nul}`,
		wantErr: "request body is not JSON (offset 9: invalid character '}' in literal null (expecting 'l')); POST the installer's system info"},
	{name: "non_ascii_outside_strings", body: "{\"x\":1\xc2\xa0}",
		wantErr: "request body is not JSON (offset 7: invalid character 'Â' after object key:value pair); POST the installer's system info"},
}

// withLinks is got without its links where want names none: most rows are
// about MACs.
func withLinks(got, want request) request {
	if want.links == nil {
		got.links = nil
	}
	return got
}

func TestParseRequestTricky(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRequest([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("parseRequest(%.80q) = %+v, %v; want error %q", tc.body, got, err, tc.wantErr)
				}
			} else if want := tc.want; err != nil || !reflect.DeepEqual(withLinks(got, want), want) {
				t.Errorf("parseRequest(%.80q) = %+v, %v; want %+v", tc.body, got, err, want)
			}
		})
	}
}

// requestSeeds are the installer's own requests: the examples and, when
// checked out beside this repository, the shared fixtures.
func requestSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, pattern := range []string{"examples/requests/*.json", "../shared/proxmox/requests/*.json"} {
		names, err := filepath.Glob(pattern)
		if err != nil {
			tb.Fatal(err)
		}
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		tb.Fatal("no example requests in examples/requests")
	}
	return seeds
}

var hex12 = regexp.MustCompile(`^[0-9a-f]{12}$`)

// FuzzParseRequest holds parseRequest, for any body, to no panic and either
// a one-line error about the body or a request whose every MAC is vetted.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range requestSeeds(f) {
		f.Add(seed)
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.body))
	}
	for _, seed := range []string{
		installerBody("pve", "9.2", "AA:BB:CC:DD:EE:FF", "AA:BB:CC:DD:EE:FE"),
		installerBody("pbs", "3.3", "aa-bb-cc-dd-ee-ff"),
		installerBody("pve", "8.2", "aabb.ccdd.eeff", "aabbccddeeff", "not-a-mac"),
		`{"$schema": {"version": "1.0"}, "product": {"product": "pve", "enable_btrfs": false}, "iso": {"release": "10.0"},
		  "dmi": {"system": {"serial": "SYSTEMSERIAL0042"}}, "network_interfaces": [{"link": "eno1", "mac": "02:5E:00:12:34:56"}, {"link": "eno2", "mac": "02:5E:00:12:34:57"}]}`,
		`{"network_interfaces": [null, {"mac": "../../etc/passwd"}, {"mac": 5}]}`,
		`{"network_interfaces": {"mac": "aa:bb:cc:dd:ee:ff"}}`,
		`[{"mac": "aa:bb:cc:dd:ee:ff"}]`,
		`"aa:bb:cc:dd:ee:ff"`,
		`null`,
		`{`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseRequest(body)
		if err != nil {
			if len(req.macs) != 0 {
				t.Errorf("parseRequest(%q) = %q with error %v; want no MACs with an error", body, req.macs, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "request body") || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("parseRequest(%q) error %q: want one line about the request body", body, msg)
			}
			return
		}
		if len(req.macs) == 0 || len(req.macs) > maxNICs || len(req.links) != len(req.macs) {
			t.Errorf("parseRequest(%q) = %d MACs, %d links and no error; want 1 to %d MACs, a link each", body, len(req.macs), len(req.links), maxNICs)
		}
		seen := map[string]bool{}
		for _, m := range req.macs {
			if !hex12.MatchString(m) {
				t.Errorf("parseRequest(%q) returned MAC %q; want 12 lowercase hex digits", body, m)
			}
			if seen[m] {
				t.Errorf("parseRequest(%q) returned MAC %q twice", body, m)
			}
			seen[m] = true
			if f := hostFileName(m); strings.ContainsAny(f, "/\\") || len(f) != len("aa-bb-cc-dd-ee-ff.toml") {
				t.Errorf("parseRequest(%q): MAC %q makes host file %q", body, m, f)
			}
		}
		req.release() // must not panic
	})
}

// bigRequest is a request of the 9.2 wire format with everything a real
// server's firmware fills in, so that the benchmark reads realistic bytes.
const bigRequest = `{
  "$schema": {"version": "1.0"},
  "product": {"fullname": "Proxmox VE", "product": "pve", "enable_btrfs": true},
  "iso": {"release": "9.2", "isorelease": "1"},
  "dmi": {
    "baseboard": {"asset_tag": "Default string", "name": "EXAMPLE-BOARD-2", "serial": "BOARDSERIAL0042"},
    "chassis": {"asset_tag": "Default string", "serial": "CHASSISSERIAL0042", "sku": "Default string"},
    "system": {"name": "EXAMPLE-SERVER-1U", "serial": "SYSTEMSERIAL0042", "sku": "To be filled by O.E.M.", "uuid": "7d3f0a52-1c4e-4b8a-9f60-2e5d8c1b4a77"}
  },
  "network_interfaces": [
    {"link": "eno1", "mac": "02:5E:00:12:34:56"},
    {"link": "eno2", "mac": "02:5E:00:12:34:57"},
    {"link": "enp1s0f0np0", "mac": "02:5E:00:AA:00:10"},
    {"link": "enp1s0f1np1", "mac": "02:5E:00:AA:00:11"}
  ]
}
`

// BenchmarkParseRequest decodes requests as the installer sends them.
func BenchmarkParseRequest(b *testing.B) {
	example, err := os.ReadFile("examples/requests/pve-9.2.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, body := range []struct {
		name string
		data []byte
	}{{"pve-9.2", example}, {"full", []byte(bigRequest)}} {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if _, err := parseRequest(body.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestSerialKey(t *testing.T) {
	long65 := strings.Repeat("A", 32) + "-" + strings.Repeat("1", 32)
	tests := []struct {
		name    string
		in      string
		want    string // the key; "" for none
		wantWhy string // part of why, when want is ""
	}{
		{name: "dell_service_tag_kept", in: "7XYZ123", want: "7XYZ123"},
		{name: "long_serial_kept", in: "S424170X1A21345", want: "S424170X1A21345"},
		{name: "case_kept_as_given", in: "abcDEF42", want: "abcDEF42"},
		{name: "hyphen_underscore_and_dot_kept", in: "CZ-2041_07.a", want: "CZ-2041_07.a"},
		{name: "64_characters_kept", in: strings.Repeat("Ab", 32), want: strings.Repeat("Ab", 32)},

		{name: "empty", in: "", wantWhy: "the request has no dmi.system.serial"},
		{name: "spaces_only", in: "   ", wantWhy: "the request has no dmi.system.serial"},
		{name: "tabs_and_newlines_only", in: "\t\n", wantWhy: "the request has no dmi.system.serial"},

		{name: "to_be_filled_by_oem", in: "To be filled by O.E.M.", wantWhy: `dmi.system.serial "To be filled by O.E.M." is a firmware placeholder`},
		{name: "to_be_filled_by_oem_in_capitals", in: "TO BE FILLED BY O.E.M.", wantWhy: `"TO BE FILLED BY O.E.M." is a firmware placeholder`},
		{name: "default_string", in: "Default string", wantWhy: `"Default string" is a firmware placeholder`},
		{name: "system_serial_number", in: "System Serial Number", wantWhy: `"System Serial Number" is a firmware placeholder`},
		{name: "not_specified", in: "Not Specified", wantWhy: `"Not Specified" is a firmware placeholder`},
		{name: "oem_with_dots", in: "O.E.M.", wantWhy: `"O.E.M." is a firmware placeholder`},
		{name: "counting_digits", in: "0123456789", wantWhy: `"0123456789" is a firmware placeholder`},
		{name: "zeros", in: "00000000", wantWhy: `"00000000" is a firmware placeholder`},
		{name: "one_letter_repeated", in: "XXXXXXXXXX", wantWhy: `"XXXXXXXXXX" is a firmware placeholder`},
		{name: "dots_only", in: "..", wantWhy: `".." is a firmware placeholder`},
		{name: "n_slash_a_is_a_placeholder_not_a_bad_character", in: "N/A", wantWhy: `dmi.system.serial "N/A" is a firmware placeholder`},

		{name: "path_climbing_out", in: "../x", wantWhy: `dmi.system.serial "../x" has characters that cannot name a file`},
		{name: "slash", in: "rack1/node2", wantWhy: `"rack1/node2" has characters that cannot name a file`},
		{name: "space_inside", in: "a b", wantWhy: `"a b" has characters that cannot name a file`},
		{name: "spaces_around_are_not_trimmed", in: " S42 ", wantWhy: `" S42 " has characters that cannot name a file`},
		{name: "template_left_in_by_the_vendor", in: "<serial_number_chassis>", wantWhy: `"<serial_number_chassis>" has characters that cannot name a file`},
		{name: "non_ascii", in: "S\u00e9rie42", wantWhy: `"Série42" has characters that cannot name a file`},
		{name: "nul_byte", in: "S42\x00", wantWhy: `"S42\x00" has characters that cannot name a file`},

		{name: "65_characters_too_long", in: long65, wantWhy: `dmi.system.serial "` + long65[:20] + `"... is too long to name a file`},
		{name: "too_long_is_said_before_bad_characters", in: strings.Repeat("a b/", 20), wantWhy: `"a b/a b/a b/a b/a b/"... is too long to name a file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, why := serialKey(tt.in)
			if key != tt.want {
				t.Errorf("serialKey(%q) = %q, %q; want %q", tt.in, key, why, tt.want)
			}
			switch {
			case tt.want != "" && why != "":
				t.Errorf("serialKey(%q) = %q, %q; want no why with a key", tt.in, key, why)
			case tt.want == "" && !strings.Contains(why, tt.wantWhy):
				t.Errorf("serialKey(%q) why = %q; want it to say %q", tt.in, why, tt.wantWhy)
			}
		})
	}
}

func TestUUIDKey(t *testing.T) {
	const (
		lower = "4c4c4544-0042-3510-8057-b4c04f4e3532"
		upper = "4C4C4544-0042-3510-8057-B4C04F4E3532"
	)
	const notUUID = "is not of the form 8-4-4-4-12 hex digits"
	tests := []struct {
		name    string
		in      string
		want    string // the key; "" for none
		wantWhy string // part of why, when want is ""
	}{
		{name: "lowercase_kept", in: lower, want: lower},
		{name: "uppercase_made_lowercase", in: upper, want: lower},
		{name: "mixed_case_made_lowercase", in: "4c4C4544-0042-3510-8057-b4C04f4E3532", want: lower},
		{name: "random_v4", in: "7d3f0a52-1c4e-4b8a-9f60-2e5d8c1b4a77", want: "7d3f0a52-1c4e-4b8a-9f60-2e5d8c1b4a77"},

		{name: "empty", in: "", wantWhy: "the request has no dmi.system.uuid"},
		{name: "spaces_only", in: "  ", wantWhy: "the request has no dmi.system.uuid"},

		{name: "all_zero", in: "00000000-0000-0000-0000-000000000000", wantWhy: "dmi.system.uuid 00000000-0000-0000-0000-000000000000 is a firmware placeholder"},
		{name: "all_f_uppercase", in: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", wantWhy: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF is a firmware placeholder"},
		{name: "all_f_lowercase", in: "ffffffff-ffff-ffff-ffff-ffffffffffff", wantWhy: "ffffffff-ffff-ffff-ffff-ffffffffffff is a firmware placeholder"},
		{name: "ami_default", in: "03000200-0400-0500-0006-000700080009", wantWhy: "03000200-0400-0500-0006-000700080009 is a firmware placeholder"},
		{name: "counting_placeholder_in_uppercase", in: "12345678-1234-5678-90AB-CDDEEFAABBCC", wantWhy: "is a firmware placeholder"},

		{name: "one_digit_short", in: lower[:35], wantWhy: notUUID},
		{name: "one_digit_long", in: lower + "0", wantWhy: notUUID},
		{name: "no_hyphens", in: strings.ReplaceAll(lower, "-", ""), wantWhy: notUUID},
		{name: "hyphen_one_place_early", in: "4c4c454-40042-3510-8057-b4c04f4e3532", wantWhy: notUUID},
		{name: "hyphen_where_a_digit_goes", in: "4c4c4544-0042-3510-8057-b4c04f4e353-", wantWhy: notUUID},
		{name: "non_hex_letter", in: "4c4c4544-0042-3510-8057-b4c04f4e353g", wantWhy: notUUID},
		{name: "non_ascii_of_36_bytes", in: "4c4c4544-0042-3510-8057-b4c04f4e35\u00e9", wantWhy: notUUID},
		{name: "path_of_36_bytes", in: "../../../../../../../../../../../../", wantWhy: notUUID},
		{name: "braces", in: "{" + lower + "}", wantWhy: notUUID},
		{name: "urn", in: "urn:uuid:" + lower, wantWhy: notUUID},
		{name: "spaces_around", in: " " + lower + " ", wantWhy: notUUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, why := uuidKey(tt.in)
			if key != tt.want {
				t.Errorf("uuidKey(%q) = %q, %q; want %q", tt.in, key, why, tt.want)
			}
			switch {
			case tt.want != "" && why != "":
				t.Errorf("uuidKey(%q) = %q, %q; want no why with a key", tt.in, key, why)
			case tt.want == "" && !strings.Contains(why, tt.wantWhy):
				t.Errorf("uuidKey(%q) why = %q; want it to say %q", tt.in, why, tt.wantWhy)
			}
		})
	}
}

func TestRequestFacts(t *testing.T) {
	const (
		mac1  = "aabbccddee0a"
		mac2  = "aabbccddee0b"
		uuidU = "4C4C4544-0042-3510-8057-B4C04F4E3532"
		uuidL = "4c4c4544-0042-3510-8057-b4c04f4e3532"
	)
	twoNICs := request{product: "pve", iso: "9.2", btrfs: true,
		macs: []string{mac1, mac2}, links: []string{"eno1", "enp1s0f1"},
		serial: "S42", uuid: uuidU}
	noLink := twoNICs
	noLink.links = []string{"eno1", ""}
	fakeIDs := twoNICs
	fakeIDs.serial, fakeIDs.uuid = "Default string", "00000000-0000-0000-0000-000000000000"
	none := twoNICs
	none.serial, none.uuid = "", ""
	pbs := twoNICs
	pbs.product, pbs.iso, pbs.btrfs = "pbs", "3.3", false

	// want is what a test can state of facts; why only as whether it is
	// said, since TestSerialKey and TestUUIDKey pin its words.
	type want struct {
		mac, nic, link       string
		serial, uuid         string
		serialSent, uuidSent bool
		product, iso         string
		btrfs                bool
	}
	tests := []struct {
		name string
		req  request
		m    match
		want want
	}{
		{"mac_of_the_first_nic", twoNICs, match{"mac", mac1, "hosts/aa-bb-cc-dd-ee-0a.toml"},
			want{mac1, mac1, "eno1", "S42", uuidL, true, true, "pve", "9.2", true}},
		{"mac_of_the_second_nic_gives_its_own_link", twoNICs, match{"mac", mac2, "hosts/aa-bb-cc-dd-ee-0b.toml"},
			want{mac2, mac2, "enp1s0f1", "S42", uuidL, true, true, "pve", "9.2", true}},
		{"second_nic_without_a_link_does_not_borrow_the_first", noLink, match{"mac", mac2, "hosts/aa-bb-cc-dd-ee-0b.toml"},
			want{mac2, mac2, "", "S42", uuidL, true, true, "pve", "9.2", true}},
		{"serial_match_has_no_mac_and_the_first_nic", twoNICs, match{"serial", "S42", "hosts/serial-S42.toml"},
			want{"", mac1, "eno1", "S42", uuidL, true, true, "pve", "9.2", true}},
		{"uuid_match_has_no_mac_and_the_first_nic", twoNICs, match{"uuid", uuidL, "hosts/uuid-" + uuidL + ".toml"},
			want{"", mac1, "eno1", "S42", uuidL, true, true, "pve", "9.2", true}},
		{"default_match_has_no_mac_and_the_first_nic", twoNICs, match{"default", "", "hosts/default.toml"},
			want{"", mac1, "eno1", "S42", uuidL, true, true, "pve", "9.2", true}},
		{"placeholder_ids_are_sent_but_name_nothing", fakeIDs, match{"default", "", "hosts/default.toml"},
			want{"", mac1, "eno1", "", "", true, true, "pve", "9.2", true}},
		{"absent_ids_are_not_sent", none, match{"mac", mac1, "hosts/aa-bb-cc-dd-ee-0a.toml"},
			want{mac1, mac1, "eno1", "", "", false, false, "pve", "9.2", true}},
		{"product_iso_and_btrfs_as_sent", pbs, match{"mac", mac1, "hosts/aa-bb-cc-dd-ee-0a.toml"},
			want{mac1, mac1, "eno1", "S42", uuidL, true, true, "pbs", "3.3", false}},
	}
	rel := release{8, 3}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.req.facts(tt.m, rel)
			got := want{f.mac, f.nic, f.link, f.serial.key, f.uuid.key, f.serial.sent, f.uuid.sent, f.product, f.iso, f.btrfs}
			if got != tt.want {
				t.Errorf("facts(%v) = %+v; want %+v", tt.m, got, tt.want)
			}
			if f.release != rel {
				t.Errorf("facts(%v).release = %v; want %v", tt.m, f.release, rel)
			}
			for _, id := range []id{f.serial, f.uuid} {
				if (id.key == "") != (id.why != "") {
					t.Errorf("facts(%v).%s = key %q, why %q; want a why exactly when there is no key", tt.m, id.by, id.key, id.why)
				}
			}
			if f.serial.by != "serial" || f.uuid.by != "uuid" {
				t.Errorf("facts(%v) ids by %q, %q; want serial, uuid", tt.m, f.serial.by, f.uuid.by)
			}
		})
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"aa:bb:cc:dd:ee:ff", "aabbccddeeff", true},
		{"AA-BB-CC-DD-EE-FF", "aabbccddeeff", true},
		{"aabb.ccdd.eeff", "aabbccddeeff", true},
		{"AABBCCDDEEFF", "aabbccddeeff", true},
		{"Aa:bB:cC:Dd:eE:Ff", "aabbccddeeff", true},
		{"00:11:22:33:44:55", "001122334455", true},
		{"", "", false},
		{"aa:bb:cc:dd:ee", "", false},
		{"aa:bb:cc:dd:ee:ff:00", "", false},
		{"aabbccddeef", "", false},
		{"aabbccddeeff0", "", false},
		{"aa:bb:cc:dd:ee:f", "", false},
		{"aa:bb:cc:dd:ee:fff", "", false},
		{" aa:bb:cc:dd:ee:ff", "", false},
		{"aa:bb:cc:dd:ee:ff\n", "", false},
		{"aa:bb-cc:dd:ee:ff", "", false},
		{"aa-bb:cc-dd:ee-ff", "", false},
		{"aa:bb:cc:dd:ee-ff", "", false},
		{"aabb.ccdd:eeff", "", false},
		{"aabb-ccdd-eeff", "", false},
		{"aa.bbccdd.eeff", "", false},
		{"aa:bbc:cd:de:eff", "", false},
		{"aa.bb.cc.dd.ee.ff", "", false},
		{"aa/bb/cc/dd/ee/ff", "", false},
		{"gg:bb:cc:dd:ee:ff", "", false},
		{"aa:bb:cc:dd:ee:fg", "", false},
		{"0xbbccddeeff", "", false},
		{"aabbccddeef ", "", false},
		{"../../etc/passwd", "", false},
		{"../../etc/pa", "", false},
		{"..:..:..:..:..:..", "", false},
		{"aa:bb:cc:dd:ee:..", "", false},
		{"../../../../../../etc/passwd", "", false},
		{"aabb/ccdd/eeff", "", false},
		{"aabbccddee\x00f", "", false},
		{"aabbccddeeé", "", false},
		{"ａabbccddeef", "", false},
	}
	for _, tc := range tests {
		got, ok := normalizeMAC(tc.in)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("normalizeMAC(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func FuzzNormalizeMAC(f *testing.F) {
	for _, seed := range []string{
		"aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "AABBCCDDEEFF",
		"aa:bb-cc:dd:ee:ff", "../../etc/passwd", "", "gg:bb:cc:dd:ee:ff", "aabb.ccdd.eef\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mac, ok := normalizeMAC(s)
		if !ok {
			if mac != "" {
				t.Errorf("normalizeMAC(%q) = %q, false; want \"\" with false", s, mac)
			}
			return
		}
		if !hex12.MatchString(mac) {
			t.Fatalf("normalizeMAC(%q) = %q; want 12 lowercase hex digits", s, mac)
		}
		dashed := strings.TrimSuffix(hostFileName(mac), ".toml")
		for _, spelling := range []string{
			mac,
			strings.ToUpper(mac),
			dashed,
			strings.ToUpper(dashed),
			strings.ReplaceAll(dashed, "-", ":"),
			colonMACs([]string{mac})[0],
			mac[0:4] + "." + mac[4:8] + "." + mac[8:12],
		} {
			if got, ok := normalizeMAC(spelling); !ok || got != mac {
				t.Errorf("normalizeMAC(%q) = %q, %v; want %q, true (from %q)", spelling, got, ok, mac, s)
			}
		}
	})
}
