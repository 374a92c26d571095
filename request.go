package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// parseRequest reads the installer's JSON as json.Unmarshal would into
//
//	struct {
//		Product struct {
//			Product     string `json:"product"`
//			EnableBtrfs *bool  `json:"enable_btrfs"`
//		} `json:"product"`
//		ISO struct {
//			Release string `json:"release"`
//		} `json:"iso"`
//		NetworkInterfaces []struct {
//			Link string `json:"link"`
//			MAC  string `json:"mac"`
//		} `json:"network_interfaces"`
//		DMI struct {
//			System struct {
//				Name   string `json:"name"`
//				Serial string `json:"serial"`
//				UUID   string `json:"uuid"`
//			} `json:"system"`
//		} `json:"dmi"`
//	}
//
// but in one pass and without reflection (request_test.go holds it to
// exactly that). Nothing from it becomes a path but the MACs, the serial
// and the UUID, and only once normalizeMAC, serialKey and uuidKey have
// vetted them.
func parseRequest(body []byte) (request, error) {
	r := reader{buf: body}
	if !r.read() {
		return request{}, notJSON(body, r.pos)
	}
	if m := r.mismatch; m.got != "" {
		if m.field == "" {
			return request{}, fmt.Errorf("request body is not a JSON object but %s; POST the installer's system info", m.got)
		}
		return request{}, fmt.Errorf("request body: %s: want %s, got %s", m.field, m.want, m.got)
	}
	req := request{product: string(r.product), iso: string(r.release), btrfs: !r.btrfsOff,
		serial: string(r.serial), uuid: string(r.uuid), model: string(r.model)}
	if len(r.nics) > maxNICs {
		return request{}, fmt.Errorf("request body: network_interfaces lists %d interfaces, more than the %d pxe-pilot looks at", len(r.nics), maxNICs)
	}
	var bad []string
	for _, nic := range r.nics {
		mac, ok := normalizeMAC(string(nic.mac))
		if !ok {
			bad = append(bad, fmt.Sprintf("%q", string(nic.mac)))
			continue
		}
		if !slices.Contains(req.macs, mac) {
			if req.macs == nil {
				req.macs = make([]string, 0, len(r.nics))
				req.links = make([]string, 0, len(r.nics))
			}
			req.macs = append(req.macs, mac)
			req.links = append(req.links, string(nic.link))
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

// notJSON says where body breaks JSON's syntax in encoding/json's words,
// which the server has always sent; only a body the reader refused comes
// here, so the second look costs nothing on the path that matters.
func notJSON(body []byte, at int) error {
	var se *json.SyntaxError
	if err := json.Unmarshal(body, &struct{}{}); errors.As(err, &se) {
		return fmt.Errorf("request body is not JSON (offset %d: %s); POST the installer's system info", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	// Unreachable while the reader and encoding/json agree on what JSON
	// is, as FuzzParseRequestDifferential checks; refusing is still right.
	return fmt.Errorf("request body is not JSON (near offset %d); POST the installer's system info", at)
}

// maxDepth is encoding/json's limit on nested objects and arrays.
const maxDepth = 10000

// reader checks a whole body against JSON's syntax, as strictly as
// encoding/json does (RFC 8259, any bytes in strings, nesting at most
// maxDepth deep), and on the way picks out the fields parseRequest needs,
// as json.Unmarshal would decode them: keys match case-insensitively, a
// repeated key's value is decoded over the earlier one (but see readNICs),
// null leaves a field
// as it was (it empties network_interfaces and enable_btrfs), and the first
// value of the wrong type is remembered and skipped. A value it only
// checks costs no allocation.
//
// Each method that reads a value starts at the value's first byte and
// returns false on a syntax error, with pos near it.
type reader struct {
	buf   []byte
	pos   int
	depth int

	product  []byte // product.product, unescaped
	release  []byte // iso.release, unescaped
	serial   []byte // dmi.system.serial, unescaped
	uuid     []byte // dmi.system.uuid, unescaped
	model    []byte // dmi.system.name, unescaped
	btrfsOff bool   // product.enable_btrfs is false
	nics     []nic
	mismatch struct{ field, want, got string } // the first value of the wrong type
}

// nic is a network_interfaces entry: its mac and link, unescaped.
type nic struct {
	mac, link []byte
}

// read reads the whole body.
func (r *reader) read() bool {
	r.space()
	var ok bool
	switch r.peek() {
	case '{':
		ok = r.object(r.top)
	case 'n':
		ok = r.literal("null")
	default:
		ok = r.wrongType("", "object")
	}
	r.space()
	return ok && r.pos == len(r.buf)
}

func (r *reader) top(key []byte) bool {
	switch {
	case keyIs(key, "product"):
		return r.structField("product", r.productMember)
	case keyIs(key, "iso"):
		return r.structField("iso", r.isoMember)
	case keyIs(key, "network_interfaces"):
		return r.readNICs()
	case keyIs(key, "dmi"):
		return r.structField("dmi", r.dmiMember)
	}
	return r.skip()
}

func (r *reader) dmiMember(key []byte) bool {
	if keyIs(key, "system") {
		return r.structField("dmi.system", r.systemMember)
	}
	return r.skip()
}

func (r *reader) systemMember(key []byte) bool {
	switch {
	case keyIs(key, "serial"):
		return r.stringField("dmi.system.serial", &r.serial)
	case keyIs(key, "uuid"):
		return r.stringField("dmi.system.uuid", &r.uuid)
	case keyIs(key, "name"):
		return r.stringField("dmi.system.name", &r.model)
	}
	return r.skip()
}

func (r *reader) productMember(key []byte) bool {
	switch {
	case keyIs(key, "product"):
		return r.stringField("product.product", &r.product)
	case keyIs(key, "enable_btrfs"):
		switch r.peek() {
		case 't', 'n':
			r.btrfsOff = false
			return r.skip()
		case 'f':
			r.btrfsOff = true
			return r.skip()
		}
		return r.wrongType("product.enable_btrfs", "bool")
	}
	return r.skip()
}

func (r *reader) isoMember(key []byte) bool {
	if keyIs(key, "release") {
		return r.stringField("iso.release", &r.release)
	}
	return r.skip()
}

// readNICs reads network_interfaces. Where the key is repeated, the last
// array wins whole (json.Unmarshal would decode it over the earlier
// entries, keeping what the later ones do not set; no installer repeats a
// key, and a machine is better not named by a MAC its request took back).
func (r *reader) readNICs() bool {
	switch r.peek() {
	case '[':
	case 'n':
		r.nics = nil
		return r.skip()
	default:
		return r.wrongType("network_interfaces", "array")
	}
	r.nics = r.nics[:0]
	return r.array(func() bool {
		r.nics = append(r.nics, nic{})
		n := &r.nics[len(r.nics)-1]
		return r.structField("network_interfaces", func(key []byte) bool {
			switch {
			case keyIs(key, "mac"):
				return r.stringField("network_interfaces.mac", &n.mac)
			case keyIs(key, "link"):
				return r.stringField("network_interfaces.link", &n.link)
			}
			return r.skip()
		})
	})
}

// structField reads a value for a struct: an object, whose members go to
// member, or null, which changes nothing.
func (r *reader) structField(field string, member func(key []byte) bool) bool {
	switch r.peek() {
	case '{':
		return r.object(member)
	case 'n':
		return r.skip()
	}
	return r.wrongType(field, "object")
}

// stringField reads a value for a string into dst, if not nil; null
// changes nothing.
func (r *reader) stringField(field string, dst *[]byte) bool {
	switch r.peek() {
	case '"':
		start := r.pos
		plain, ok := r.string()
		if ok && dst != nil {
			*dst = r.text(start, plain)
		}
		return ok
	case 'n':
		return r.skip()
	}
	return r.wrongType(field, "string")
}

// wrongType remembers, if it is the first, that field got a value that is
// not a want, and skips the value: encoding/json reports the first such
// value, and only once the whole body has proved to be JSON.
func (r *reader) wrongType(field, want string) bool {
	if r.mismatch.got == "" {
		got := "number"
		switch r.peek() {
		case '{':
			got = "object"
		case '[':
			got = "array"
		case '"':
			got = "string"
		case 't', 'f':
			got = "bool"
		}
		r.mismatch.field, r.mismatch.want, r.mismatch.got = field, want, got
	}
	return r.skip()
}

// keyIs reports whether key names the field name, all lowercase ASCII, as
// encoding/json matches keys to struct fields: exactly or else with
// Unicode's simple case folding (as strings.EqualFold does).
func keyIs(key []byte, name string) bool {
	if len(key) != len(name) {
		// Only a key with non-ASCII letters can match in another length:
		// the Kelvin sign folds to k, the long s to s. Of name's length,
		// a key matches byte for byte, up to ASCII case.
		return len(key) > len(name) && !isASCII(key) && bytes.EqualFold(key, []byte(name))
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// skip checks the value at pos and steps over it.
func (r *reader) skip() bool {
	switch r.peek() {
	case '{':
		return r.object(nil)
	case '[':
		return r.array(nil)
	case '"':
		_, ok := r.string()
		return ok
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	}
	return r.number()
}

// object reads an object, calling member, if not nil, with each key,
// unescaped, and pos at its value, which member must read. A nil member
// skips the values.
func (r *reader) object(member func(key []byte) bool) bool {
	if !r.enter() {
		return false
	}
	r.space()
	if r.peek() == '}' {
		return r.leave()
	}
	for {
		start := r.pos
		plain, ok := r.string()
		if !ok {
			return false
		}
		end := r.pos
		r.space()
		if r.peek() != ':' {
			return false
		}
		r.pos++
		r.space()
		if member == nil {
			ok = r.skip()
		} else {
			ok = member(r.token(start, end, plain))
		}
		if !ok {
			return false
		}
		r.space()
		switch r.peek() {
		case ',':
			r.pos++
			r.space()
		case '}':
			return r.leave()
		default:
			return false
		}
	}
}

// array reads an array, calling elem, if not nil, with pos at each
// element, which elem must read. A nil elem skips the elements.
func (r *reader) array(elem func() bool) bool {
	if !r.enter() {
		return false
	}
	r.space()
	if r.peek() == ']' {
		return r.leave()
	}
	for {
		var ok bool
		if elem == nil {
			ok = r.skip()
		} else {
			ok = elem()
		}
		if !ok {
			return false
		}
		r.space()
		switch r.peek() {
		case ',':
			r.pos++
			r.space()
		case ']':
			return r.leave()
		default:
			return false
		}
	}
}

// enter steps into the object or array at pos.
func (r *reader) enter() bool {
	r.pos++
	r.depth++
	return r.depth <= maxDepth
}

// leave steps out of an object or array at its closing bracket.
func (r *reader) leave() bool {
	r.pos++
	r.depth--
	return true
}

// string steps over the string at pos; plain means it has no escapes and
// only ASCII, so its text is its bytes.
func (r *reader) string() (plain, ok bool) {
	if r.peek() != '"' {
		return false, false
	}
	plain = true
	for i := r.pos + 1; i < len(r.buf); i++ {
		switch c := r.buf[i]; {
		case c == '"':
			r.pos = i + 1
			return plain, true
		case c == '\\':
			plain = false
			if i++; i == len(r.buf) {
				r.pos = i
				return false, false
			}
			switch r.buf[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					if i++; i == len(r.buf) || !isHex(r.buf[i]) {
						r.pos = i
						return false, false
					}
				}
			default:
				r.pos = i
				return false, false
			}
		case c < ' ':
			r.pos = i
			return false, false
		case c >= 0x80:
			plain = false
		}
	}
	r.pos = len(r.buf)
	return false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// text is the text of the string just read from start.
func (r *reader) text(start int, plain bool) []byte {
	return r.token(start, r.pos, plain)
}

// token is the text of the string buf[start:end].
func (r *reader) token(start, end int, plain bool) []byte {
	if plain {
		return r.buf[start+1 : end-1]
	}
	// Rare, and encoding/json's own unquoting is the one way to be sure
	// escapes, invalid UTF-8 and lone surrogates come out exactly as they
	// would from json.Unmarshal (the last two as U+FFFD). The token is a
	// valid string, so there is no error.
	var s string
	json.Unmarshal(r.buf[start:end], &s)
	return []byte(s)
}

// number steps over the number at pos:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *reader) number() bool {
	if r.peek() == '-' {
		r.pos++
	}
	switch c := r.peek(); {
	case c == '0':
		r.pos++
	case '1' <= c && c <= '9':
		r.digits()
	default:
		return false
	}
	if r.peek() == '.' {
		r.pos++
		if !r.digits() {
			return false
		}
	}
	if c := r.peek(); c == 'e' || c == 'E' {
		r.pos++
		if c := r.peek(); c == '+' || c == '-' {
			r.pos++
		}
		if !r.digits() {
			return false
		}
	}
	return true
}

// digits steps over one or more decimal digits.
func (r *reader) digits() bool {
	start := r.pos
	for r.pos < len(r.buf) && '0' <= r.buf[r.pos] && r.buf[r.pos] <= '9' {
		r.pos++
	}
	return r.pos > start
}

func (r *reader) literal(lit string) bool {
	end := r.pos + len(lit)
	if end > len(r.buf) || string(r.buf[r.pos:end]) != lit {
		return false
	}
	r.pos = end
	return true
}

// peek is the byte at pos, or 0, which no JSON value starts with or
// continues with, at the end.
func (r *reader) peek() byte {
	if r.pos < len(r.buf) {
		return r.buf[r.pos]
	}
	return 0
}

func (r *reader) space() {
	for r.pos < len(r.buf) {
		switch r.buf[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
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
