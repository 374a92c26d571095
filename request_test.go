package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// installerRequest and parseRequestReference are how parseRequest read the
// installer's JSON before the reader: json.Unmarshal into a struct. They are
// the reference the reader is held to, byte for byte of every error.
type installerRequest struct {
	Product struct {
		Product     string `json:"product"`
		EnableBtrfs *bool  `json:"enable_btrfs"`
	} `json:"product"`
	ISO struct {
		Release string `json:"release"`
	} `json:"iso"`
	NetworkInterfaces []struct {
		Link string `json:"link"`
		MAC  string `json:"mac"`
	} `json:"network_interfaces"`
	DMI struct {
		System struct {
			Serial string `json:"serial"`
			UUID   string `json:"uuid"`
		} `json:"system"`
	} `json:"dmi"`
}

func parseRequestReference(body []byte) (request, error) {
	var in installerRequest
	if err := json.Unmarshal(body, &in); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return request{}, fmt.Errorf("request body is not a JSON object but %s; POST the installer's system info", te.Value)
		case errors.As(err, &te):
			return request{}, fmt.Errorf("request body: %s: want %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return request{}, fmt.Errorf("request body is not JSON (offset %d: %s); POST the installer's system info", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		}
		return request{}, fmt.Errorf("request body is not JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if last, ok := lastNICs(body); ok {
		// The reader takes a repeated network_interfaces whole from its
		// last value, where json.Unmarshal decodes over the earlier ones.
		in.NetworkInterfaces = nil
		if err := json.Unmarshal(last, &in.NetworkInterfaces); err != nil {
			return request{}, err
		}
	}
	req := request{product: in.Product.Product, iso: in.ISO.Release, btrfs: in.Product.EnableBtrfs == nil || *in.Product.EnableBtrfs,
		serial: in.DMI.System.Serial, uuid: in.DMI.System.UUID}
	if len(in.NetworkInterfaces) > maxNICs {
		return request{}, fmt.Errorf("request body: network_interfaces lists %d interfaces, more than the %d pxe-pilot looks at", len(in.NetworkInterfaces), maxNICs)
	}
	var bad []string
	for _, nic := range in.NetworkInterfaces {
		mac, ok := normalizeMAC(nic.MAC)
		if !ok {
			bad = append(bad, fmt.Sprintf("%q", nic.MAC))
			continue
		}
		if !slices.Contains(req.macs, mac) {
			req.macs = append(req.macs, mac)
			req.links = append(req.links, nic.Link)
		}
	}
	if len(req.macs) == 0 {
		if len(bad) > 0 {
			return request{}, fmt.Errorf("request body: network_interfaces has no usable MAC (got %s)", strings.Join(bad, ", "))
		}
		return request{}, errors.New("request body: network_interfaces lists no interface, so no host file can match; POST the installer's system info")
	}
	return req, nil
}

// lastNICs returns the last top-level value of a valid body whose key
// matches network_interfaces as json.Unmarshal matches keys.
func lastNICs(body []byte) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var last json.RawMessage
	found := false
	for dec.More() {
		key, err := dec.Token()
		var value json.RawMessage
		if err != nil || dec.Decode(&value) != nil {
			return nil, false
		}
		if k, _ := key.(string); strings.EqualFold(k, "network_interfaces") {
			last, found = value, true
		}
	}
	return last, found
}

func jsonKind(k string) string {
	switch k {
	case "struct":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

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

// parseCases pin what json.Unmarshal made of tricky bodies; each is also
// checked against parseRequestReference, so a wrong want cannot hide.
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
		body: `{"product":{"product":"p\"v\\e\/\b\f\n\r\t"},"iso":{"release":"9\u002e2"},"network_interfaces":[{"mac":"AA:BB:CC:DD:EE:0\u0041"}]}`,
		want: request{product: "p\"v\\e/\b\f\n\r\t", iso: "9.2", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "surrogate_pair_is_one_rune",
		body: `{"product":{"product":"\ud83d\ude00"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{product: "\U0001F600", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "lone_surrogates_become_replacement_characters",
		body: `{"product":{"product":"\ud800x\udc00\ud800\u0041"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{product: "\uFFFDx\uFFFD\uFFFDA", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "invalid_utf8_becomes_replacement_characters",
		body: "{\"product\":{\"product\":\"p\xffv\xc3\"},\"iso\":{\"release\":\"\xe2\x82\"},\"network_interfaces\":[{\"mac\":\"" + reqMAC1 + "\"}]}",
		want: request{product: "p\uFFFDv\uFFFD", iso: "\uFFFD\uFFFD", btrfs: true, macs: []string{"aabbccddee0a"}}},
	{name: "valid_utf8_is_kept",
		body: `{"product":{"product":"prøduct ✓"},"network_interfaces":[{"mac":"` + reqMAC1 + `"}]}`,
		want: request{product: "prøduct ✓", btrfs: true, macs: []string{"aabbccddee0a"}}},
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
			serial: "S42", uuid: "4C4C4544-0042-3510-8057-B4C04F4E3532"}},
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
// about MACs, and the comparison with json.Unmarshal below still holds
// every row's links to it.
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
			ref, refErr := parseRequestReference([]byte(tc.body))
			if fmt.Sprint(refErr) != fmt.Sprint(err) || !reflect.DeepEqual(ref, got) {
				t.Errorf("parseRequest(%.80q) = %+v, %v; json.Unmarshal made it %+v, %v", tc.body, got, err, ref, refErr)
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

// FuzzParseRequestDifferential holds the reader to json.Unmarshal: for any
// body, parseRequest and parseRequestReference return the same request and
// the same error, word for word.
func FuzzParseRequestDifferential(f *testing.F) {
	for _, seed := range requestSeeds(f) {
		f.Add(seed)
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.body))
	}
	for _, seed := range []string{
		`{"product":{"product":"pve","enable_btrfs":true},"iso":{"release":"9.2"},"network_interfaces":[{"link":"eno1","mac":"AA:BB:CC:DD:EE:FF"},{"link":"eno2","mac":"aabb.ccdd.eeff"}]}`,
		`{"network_interfaces":[{"mac":"aa-bb-cc-dd-ee-ff"},{"mac":"aabbccddeeff"},{"mac":"zz"}]}`,
		`{"Network_Interfaces":[{"Mac":"aabbccddeeff"}],"NETWORK_INTERFACES":[{}, {"MAC":"aabbccddee00"}]}`,
		`{"network_interfaces":[{"mac":"aabbccddee01"},{"mac":"aabbccddee02"},{"mac":"aabbccddee03"},{"mac":"aabbccddee04"},{"mac":"aabbccddee05"}],"network_interfaces":[{}],"network_interfaces":[null,null,null,null,null,null,null,null,{}]}`,
		`{"product":{"enable_btrfs":true,"enable_btrfs":null,"enable_btrfs":false},"network_interfaces":[{"mac":"aabbccddeeff"}]}`,
		`{"dmi":{"system":{"serial":"S1","uuid":"u"},"system":{"serial":null}},"network_interfaces":[{"link":"a","mac":"aabbccddeeff","link":"b"}]}`,
		`{"iso":{"release":"\ud800\udbff\udfff\u00e9\u0000"},"network_interfaces":[{"mac":"aabbccddeeff"}]}`,
		"{\"iso\":{\"release\":\"\xed\xa0\x80\xf4\x90\x80\x80\xc0\xaf\"},\"network_interfaces\":[{\"mac\":\"aabbccddeeff\"}]}",
		`{"n":[-0.0e-0,0E+0,1.0,-12.34e56,9007199254740993,1e-400]}`,
		`{"x":[[[[{"y":[{}]}]]]]}`,
		`{"x":` + nestedJSON("{\"a\":", "}", 9999) + `}`,
		nestedJSON("[", "]", 10001),
		`{"network_interfaces":[]}   ` + "\t\r\n",
		`{"network_interfaces":[]} garbage`,
		`{"network_interfaces":[]}` + "\x00",
		`{"a":"\u"}`, `{"a":"\x"}`, `{"a":tru}`, `{"a":falsey}`, `{"a" 1}`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`, `"\`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseRequest(body)
		want, wantErr := parseRequestReference(body)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("parseRequest(%q) error = %v; json.Unmarshal's = %v", body, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseRequest(%q) = %+v; json.Unmarshal's = %+v", body, got, want)
		}
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

// BenchmarkParseRequest compares the reader with json.Unmarshal, which it
// replaced, on requests as the installer sends them.
func BenchmarkParseRequest(b *testing.B) {
	example, err := os.ReadFile("examples/requests/pve-9.2.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, body := range []struct {
		name string
		data []byte
	}{{"pve-9.2", example}, {"full", []byte(bigRequest)}} {
		for _, parse := range []struct {
			name string
			fn   func([]byte) (request, error)
		}{{"reader", parseRequest}, {"json.Unmarshal", func(b []byte) (request, error) {
			var in installerRequest // the decoding the reader replaced, alone
			return request{}, json.Unmarshal(b, &in)
		}}} {
			b.Run(body.name+"/"+parse.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body.data)))
				for b.Loop() {
					if _, err := parse.fn(body.data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
