// The installer's request: its JSON decoded, its MACs, serial and UUID vetted, the facts an answer depends on.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// request is what pxe-pilot reads of the installer's system info; the
// rest ($schema, the other dmi keys, ...) is only checked to be JSON.
type request struct {
	product string
	iso     string   // iso.release as sent
	btrfs   bool     // product.enable_btrfs; true when absent
	macs    []string // usable MACs in request order, 12 lowercase hex digits, no repeats
	links   []string // the link (eno1) of each of macs, as sent
	serial  string   // dmi.system.serial as sent
	uuid    string   // dmi.system.uuid as sent
	model   string   // dmi.system.name as sent
}

// installerRequest is what pxe-pilot decodes of the installer's system
// info; the rest ($schema, the other dmi keys, ...) is only checked to be
// JSON. Nothing from it becomes a path but the MACs, the serial and the
// UUID, and only once normalizeMAC, serialKey and uuidKey have vetted them.
type installerRequest struct {
	Product struct {
		Product     string `json:"product"`
		EnableBtrfs *bool  `json:"enable_btrfs"`
	} `json:"product"`
	ISO struct {
		Release string `json:"release"`
	} `json:"iso"`
	NetworkInterfaces json.RawMessage `json:"network_interfaces"`
	DMI               dmi             `json:"dmi"`
}

// dmi is what the installer's request and its report say of the machine's
// firmware, as far as pxe-pilot reads it.
type dmi struct {
	System struct {
		Name   string `json:"name"`
		Serial string `json:"serial"`
		UUID   string `json:"uuid"`
	} `json:"system"`
}

// A nic is one of network_interfaces. The array is decoded on its own,
// from the last network_interfaces key, so that where the key is repeated
// the last array wins whole: json.Unmarshal alone decodes it over the
// earlier entries, keeping what the later ones do not set, and a machine
// is better not named by a MAC its request took back.
type nic struct {
	Link string `json:"link"`
	MAC  string `json:"mac"`
}

// parseRequest decodes the installer's JSON and vets its NICs: at most
// maxNICs, and at least one usable MAC.
func parseRequest(body []byte) (request, error) {
	var in installerRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return request{}, jsonError("request body", "POST the installer's system info", err)
	}
	req := request{product: in.Product.Product, iso: in.ISO.Release,
		btrfs:  in.Product.EnableBtrfs == nil || *in.Product.EnableBtrfs,
		serial: in.DMI.System.Serial, uuid: in.DMI.System.UUID, model: in.DMI.System.Name}
	var nics []nic
	if len(in.NetworkInterfaces) > 0 {
		if err := json.Unmarshal(in.NetworkInterfaces, &nics); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				te.Field = strings.TrimSuffix("network_interfaces."+te.Field, ".")
			}
			return request{}, jsonError("request body", "POST the installer's system info", err)
		}
	}
	if len(nics) > maxNICs {
		return request{}, fmt.Errorf("request body: network_interfaces lists %d interfaces, more than the %d pxe-pilot looks at", len(nics), maxNICs)
	}
	if err := req.vet(); err != nil {
		return request{}, err
	}
	var bad []string
	for i, nic := range nics {
		if nic.Link != "" && !interfaceName(nic.Link) {
			return request{}, fmt.Errorf("request body: network_interfaces[%d].link: %s is not an interface name: 1 to 15 letters, digits, '-', '_' or '.', as the kernel names NICs", i, excerpt(nic.Link))
		}
		mac, ok := normalizeMAC(nic.MAC)
		if !ok {
			bad = append(bad, excerpt(nic.MAC))
			continue
		}
		if !slices.Contains(req.macs, mac) {
			req.macs = append(req.macs, mac)
			req.links = append(req.links, nic.Link)
		}
	}
	if len(req.macs) == 0 {
		if len(bad) > 4 {
			bad = append(bad[:4], fmt.Sprintf("and %d more", len(bad)-4))
		}
		if len(bad) > 0 {
			return request{}, fmt.Errorf("request body: network_interfaces has no usable MAC (got %s)", strings.Join(bad, ", "))
		}
		return request{}, errors.New("request body: network_interfaces lists no interface, so no host file can match; POST the installer's system info")
	}
	return req, nil
}

// vet refuses the request's values that could reach an answer or a
// first-boot script through a placeholder ({{.Product}}, {{.Release}}),
// or the operator's screen (the model, in status), unless they are what
// an installer sends. The MACs, the serial and the UUID are vetted where
// they are used: a serial or UUID that cannot name a file names no file,
// which is no reason to refuse a machine that has a MAC.
func (req request) vet() error {
	if req.product != "" && !productName(req.product) {
		return fmt.Errorf("request body: product.product: %s is not a product such as \"pve\": 2 to 16 lowercase letters and digits", excerpt(req.product))
	}
	if req.iso != "" && !releaseName(req.iso) {
		return fmt.Errorf("request body: iso.release: %s is not a release such as \"9.2\"", excerpt(req.iso))
	}
	if len(req.model) > maxModel || strings.ContainsFunc(req.model, func(r rune) bool {
		return unicode.IsControl(r) || r == utf8.RuneError || strings.ContainsRune("\"'`\\$", r)
	}) {
		return fmt.Errorf("request body: dmi.system.name: %s is not a model name: at most %d characters, with no control characters, quotes, backslash or $", excerpt(req.model), maxModel)
	}
	return nil
}

// maxModel bounds dmi.system.name: SMBIOS strings are far shorter.
const maxModel = 128

func productName(s string) bool {
	return len(s) >= 2 && len(s) <= 16 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// releaseName accepts the releases installers send: "9.2", "3.4", "10.0.1".
func releaseName(s string) bool {
	if len(s) > 16 || s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	return strings.Trim(s, "0123456789.") == ""
}

// interfaceName accepts a NIC's name as the kernel makes them (eno1,
// enp1s0f0np0, ens18, eth0): at most 15 bytes, and here only letters,
// digits, '-', '_' and '.', starting with a letter or digit, so that
// {{.Link}} never needs quoting.
func interfaceName(s string) bool {
	if s == "" || len(s) > 15 || !isAlnum(s[0]) {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// excerpt quotes a value from the network for a message or the log: at
// most 40 bytes of it, escaped.
func excerpt(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

// jsonError says in one line what is wrong with a JSON body: where it
// breaks JSON's syntax, or which field has a value of the wrong type.
func jsonError(what, hint string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s is not JSON (offset %d: %s); %s", what, se.Offset, strings.TrimPrefix(se.Error(), "json: "), hint)
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("%s is not a JSON object but %s; %s", what, clip(te.Value), hint)
	case errors.As(err, &te):
		return fmt.Errorf("%s: %s: want %s, got %s", what, clip(te.Field), jsonKind(te.Type), clip(te.Value))
	}
	return fmt.Errorf("%s is not JSON: %s; %s", what, strings.TrimPrefix(err.Error(), "json: "), hint)
}

// jsonKind names a Go type by the JSON value it takes.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.Kind().String()
}

// release finds the answer-format rules for the requesting ISO, in Proxmox
// VE numbering; note is worth a log line where the rules were a guess.
func (req request) release() (rel release, note string, err error) {
	if req.iso == "" {
		return newest, "request has no iso.release; answering with " + newest.String() + " rules", nil
	}
	rel, ok := parseRelease(req.iso)
	if !ok {
		return release{}, "", fmt.Errorf("request body: iso.release: %q is not a release such as \"9.2\"", req.iso)
	}
	switch req.product {
	case "pve", "":
	case "pbs":
		rel.major += 5 // Proxmox Backup Server 3.x is built on the same installer as Proxmox VE 8.x
	default:
		return newest, fmt.Sprintf("product %q %s: no release mapping known; answering with %s rules", req.product, req.iso, newest), nil
	}
	if rel.before(r82) {
		return release{}, "", fmt.Errorf("request body: iso.release %s: this installer has no automated installation (Proxmox VE 8.2 or later has)", req.iso)
	}
	if newest.before(rel) {
		return newest, fmt.Sprintf("iso.release %s is newer than the newest pxe-pilot knows; answering with %s rules", req.iso, newest), nil
	}
	return rel, "", nil
}

// normalizeMAC accepts a MAC in any usual spelling (aa:bb:cc:dd:ee:ff,
// AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff, aabbccddeeff) and returns its 12
// lowercase hex digits.
func normalizeMAC(s string) (string, bool) {
	var sep byte
	switch len(s) {
	case 12:
	case 14:
		sep = '.'
	case 17:
		sep = s[2]
		if sep != ':' && sep != '-' {
			return "", false
		}
	default:
		return "", false
	}
	var b [12]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if sep != 0 && (sep == '.' && i%5 == 4 || sep != '.' && i%3 == 2) {
			if c != sep {
				return "", false
			}
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		b[n] = c
		n++
	}
	return string(b[:]), n == 12
}

// colonMACs spells MACs of 12 hex digits as aa:bb:cc:dd:ee:ff, for people.
func colonMACs(macs []string) []string {
	out := make([]string, len(macs))
	for i, m := range macs {
		out[i] = strings.ReplaceAll(strings.TrimSuffix(hostFileName(m), ".toml"), "-", ":")
	}
	return out
}

// hostFileName is a host file's name for a MAC of 12 hex digits:
// aa-bb-cc-dd-ee-ff.toml.
func hostFileName(mac string) string {
	var b strings.Builder
	b.Grow(22)
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(mac[i : i+2])
	}
	b.WriteString(".toml")
	return b.String()
}

// facts are what the answer of the machine that m matched depends on.
func (req request) facts(m match, rel release) facts {
	f := facts{release: rel, btrfs: req.btrfs, product: req.product, iso: req.iso}
	ids := req.ids()
	f.serial, f.uuid = ids[0], ids[1]
	i := 0 // a host matched otherwise is known by its first NIC
	if m.by == "mac" {
		f.mac = m.key
		i = slices.Index(req.macs, m.key)
	}
	if i >= 0 && i < len(req.macs) {
		f.nic, f.link = req.macs[i], req.links[i]
	}
	return f
}

// An id is a way other than a MAC that a request names its machine.
type id struct {
	by   string // "serial" or "uuid"
	key  string // as a host file is named by it; empty when it names nothing
	why  string // why not, when key is empty
	sent bool   // the request sent a value at all
}

// ids are the serial and the UUID, in the order host files are looked up.
func (req request) ids() [2]id {
	serial, whyS := serialKey(req.serial)
	uuid, whyU := uuidKey(req.uuid)
	return [2]id{
		{"serial", serial, whyS, strings.TrimSpace(req.serial) != ""},
		{"uuid", uuid, whyU, strings.TrimSpace(req.uuid) != ""},
	}
}

// placeholderSerials are what firmware writes where nobody set a serial
// (compared without case, spaces and dots); such a value names no machine.
var placeholderSerials = []string{
	"tobefilledbyoem", "defaultstring", "systemserialnumber",
	"chassisserialnumber", "baseboardserialnumber", "type2boardserialnumber",
	"serialnumber", "notspecified", "notapplicable", "notavailable", "none",
	"n/a", "na", "oem", "unknown", "invalid", "empty", "null", "default", "serial",
	"0123456789", "123456789", "1234567890", "01234567890",
}

// serialKey is the serial a host file may be named by (hosts/serial-S.toml),
// or "" and why there is none: a serial that is empty, a firmware
// placeholder, one character repeated, or has characters that cannot name
// a file identifies nothing.
func serialKey(s string) (key, why string) {
	switch {
	case strings.TrimSpace(s) == "":
		return "", "the request has no dmi.system.serial"
	case len(s) > 64:
		return "", fmt.Sprintf("dmi.system.serial %.20q... is too long to name a file", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			if placeholderSerial(s) {
				break
			}
			return "", fmt.Sprintf("dmi.system.serial %q has characters that cannot name a file (letters, digits, '-', '_' and '.' can)", s)
		}
	}
	if placeholderSerial(s) {
		return "", fmt.Sprintf("dmi.system.serial %q is a firmware placeholder", s)
	}
	return s, ""
}

func placeholderSerial(s string) bool {
	var buf [64]byte // serialKey has refused longer ones
	folded := buf[:0]
	for i := 0; i < len(s) && len(folded) < len(buf); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '.' || c == '-' || c == '_':
		case 'A' <= c && c <= 'Z':
			folded = append(folded, c+'a'-'A')
		default:
			folded = append(folded, c)
		}
	}
	if len(folded) == 0 || bytes.Count(folded, folded[:1]) == len(folded) {
		return true // "", "00000000", "XXXXXXXX", "........"
	}
	for _, p := range placeholderSerials {
		if string(folded) == p {
			return true
		}
	}
	return false
}

// placeholderUUIDs are system UUIDs that firmware gives many machines.
var placeholderUUIDs = []string{
	"00000000-0000-0000-0000-000000000000",
	"ffffffff-ffff-ffff-ffff-ffffffffffff",
	"03000200-0400-0500-0006-000700080009", // AMI's default, on many boards at once
	"12345678-1234-5678-90ab-cddeefaabbcc",
}

// uuidKey is the system UUID a host file may be named by
// (hosts/uuid-U.toml), in lowercase, or "" and why there is none: only the
// canonical 8-4-4-4-12 form names a machine, and not a placeholder.
func uuidKey(s string) (key, why string) {
	if strings.TrimSpace(s) == "" {
		return "", "the request has no dmi.system.uuid"
	}
	if len(s) != 36 {
		return "", fmt.Sprintf("dmi.system.uuid %.40q is not of the form 8-4-4-4-12 hex digits", s)
	}
	var b [36]byte
	copy(b[:], s)
	for i, c := range b {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", fmt.Sprintf("dmi.system.uuid %q is not of the form 8-4-4-4-12 hex digits", s)
			}
		case 'A' <= c && c <= 'F':
			b[i] = c + 'a' - 'A'
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return "", fmt.Sprintf("dmi.system.uuid %q is not of the form 8-4-4-4-12 hex digits", s)
		}
	}
	key = s
	if string(b[:]) != s { // compared without a copy
		key = string(b[:])
	}
	if slices.Contains(placeholderUUIDs, key) {
		return "", fmt.Sprintf("dmi.system.uuid %s is a firmware placeholder", s)
	}
	return key, ""
}
