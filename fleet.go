// The fleet at a glance: every configured machine and what the state dir knows of it, for status and its page.

package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// status is what `pxe-pilot status` shows: every configured host, with
// what the state dir knows of it, and the machines that asked and matched
// nothing.
type status struct {
	Hosts      []statusRow     `json:"hosts"`
	Unknown    []unknownRecord `json:"unknown"`
	Unreadable []string        `json:"unreadable,omitempty"` // a line for each state file that could not be read
}

type statusRow struct {
	Machine        string `json:"machine"`               // the machine key, or "*" for hosts/default.toml itself
	MatchBy        string `json:"match"`                 // mac aa:bb:..., serial S1, uuid ..., default
	HostFile       string `json:"host_file"`             // "" where the file is gone
	PlannedFQDN    string `json:"planned_fqdn"`          // what the config gives it; see planned
	PlannedAddress string `json:"planned_address"`       // its static address, "dhcp", or why neither is known
	NextBoot       string `json:"next_boot"`             // what its next network boot does; see nextBoot
	StateError     string `json:"state_error,omitempty"` // why its state file could not be read
	hostRecord
}

// planned is the FQDN and address the config gives the host a file
// names, as the answer composed from the file's name alone has them,
// complete or not: a static address without its prefix, or "dhcp". A
// name whose placeholders the file's name cannot fill (a serial in a
// MAC's file, anything in hosts/default.toml) is shown as written.
func planned(c *configDir, m match) (fqdn, addr string, composes bool) {
	host, ok, err := readLayer(c, m.file)
	if !ok || err != nil {
		return "(cannot be read)", "(cannot be read)", false
	}
	def, hasDefaults, err := readLayer(c, "defaults.toml")
	if err != nil {
		return "(config error)", "(config error)", false
	}
	layers, err := stackLayers(c, def, hasDefaults, host)
	if err != nil {
		return "(config error)", "(config error)", false
	}
	// Whether its answer composes, as validate checks it.
	f := sampleFacts(m, newest)
	f.scripts, f.dir = &sampleScripts{}, c
	_, _, err = composeWithWarnings(layers, f)
	composes = err == nil
	name := func(ans map[string]any) string {
		g, _ := ans["global"].(map[string]any)
		hostname, _ := g["hostname"].(string)
		domain, _ := g["domain"].(string)
		switch fq := g["fqdn"].(type) {
		case string:
			return fq
		case map[string]any:
			return "(from DHCP)"
		}
		if domain = strings.Trim(domain, "."); domain != "" && !strings.Contains(withoutPlaceholders(hostname), ".") {
			return hostname + "." + domain
		}
		return hostname
	}
	ans := mergeLayers(layers)
	fqdn = name(ans)
	if !strings.Contains(fqdn, "{{") || fillableByName(fqdn, m) {
		filled := mergeLayers(layers)
		if len(expand(filled, sampleFacts(m, newest))) == 0 {
			fqdn = name(filled)
		}
	}
	addr = "dhcp"
	if cidr, ok := lookup(ans, "network", "cidr").(string); ok {
		addr = cidr
		if p, err := netip.ParsePrefix(cidr); err == nil {
			addr = p.Addr().String()
		}
	}
	return fqdn, addr, composes
}

// nextBoot says what a configured machine's next network boot does, as
// /boot.ipxe decides it: it installs (again, where it was answered and
// never reported), boots its disk once tracking says it is installed, or
// is refused while its answer does not compose.
func nextBoot(composes, tracked bool, rec hostRecord) string {
	switch {
	case tracked && !rec.Installed.IsZero():
		return "local disk"
	case !composes:
		return "refused (pxe-pilot validate says why)"
	case tracked && rec.Pending > 0:
		return fmt.Sprintf("install, attempt %d", rec.Pending+1)
	}
	return "install"
}

// withoutPlaceholders is s with its placeholders taken out.
func withoutPlaceholders(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		j := strings.Index(s[max(i, 0):], "}}")
		if i < 0 || j < 0 {
			return b.String() + s
		}
		b.WriteString(s[:i])
		s = s[i+j+2:]
	}
}

// fillableByName reports whether every placeholder in s is one a host
// file's name fills: the MAC of a MAC's file, the serial or UUID of theirs.
func fillableByName(s string, m match) bool {
	ok := map[string][]string{"mac": {"MAC", "MACHex"}, "serial": {"Serial"}, "uuid": {"UUID"}}[m.by]
	for rest := s; ; {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return true
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return false
		}
		name := strings.TrimPrefix(strings.TrimSpace(rest[i+2:i+j]), ".")
		if !slices.Contains(ok, name) {
			return false
		}
		rest = rest[i+j+2:]
	}
}

// readStatus reads the config dir's host files and, if stateDir is not
// "", the state dir's records, without creating or changing anything. A
// state file that cannot be read is said in Unreadable, and its machine
// listed with its StateError; the others are read all the same.
func readStatus(configDir, stateDir string) (status, error) {
	var st status
	records := map[string]hostRecord{}
	bad := map[string]string{} // machine key -> why its state file could not be read
	if stateDir != "" {
		if _, err := os.Stat(stateDir); err != nil {
			return st, fmt.Errorf("state dir: %w", err)
		}
		paths, _ := filepath.Glob(filepath.Join(stateDir, "hosts", "*.json"))
		for _, p := range paths {
			key := strings.TrimSuffix(filepath.Base(p), ".json")
			r, err := readRecord[hostRecord](p)
			if err != nil {
				bad[key] = err.Error()
				st.Unreadable = append(st.Unreadable, err.Error())
			}
			records[key] = r
		}
		paths, _ = filepath.Glob(filepath.Join(stateDir, "unknown", "*.json"))
		for _, p := range paths {
			r, err := readRecord[unknownRecord](p)
			if err != nil {
				st.Unreadable = append(st.Unreadable, err.Error())
				continue
			}
			if !hasHostFile(configDir, r.MACs) {
				st.Unknown = append(st.Unknown, r) // else named since
			}
		}
		slices.SortFunc(st.Unknown, func(a, b unknownRecord) int { return b.LastSeen.Compare(a.LastSeen) })
	}
	entries, err := os.ReadDir(filepath.Join(configDir, "hosts"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("config dir: %w", err)
	}
	c, err := openConfigDir(configDir)
	if err != nil {
		return st, err
	}
	defer c.close()
	c.offline = true
	// A machine with a host file of its own is listed by it, even if
	// hosts/default.toml answered it before that file was written.
	seen := map[string]bool{}
	var hasDefault bool
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".toml")
		if e.IsDir() || !ok {
			continue
		}
		m, problem := hostMatch(name)
		switch {
		case problem != "":
			continue // validate says why
		case m.by == "default":
			hasDefault = true
			continue
		}
		seen[name] = true
		fqdn, addr, composes := planned(c, m)
		st.Hosts = append(st.Hosts, statusRow{Machine: name, MatchBy: m.String(), HostFile: m.file, PlannedFQDN: fqdn, PlannedAddress: addr,
			NextBoot: nextBoot(composes, stateDir != "", records[name]), StateError: bad[name], hostRecord: records[name]})
	}
	if hasDefault {
		m := match{by: "default", file: "hosts/default.toml"}
		fqdn, addr, composes := planned(c, m)
		st.Hosts = append(st.Hosts, statusRow{Machine: "*", MatchBy: "default", HostFile: m.file, PlannedFQDN: fqdn, PlannedAddress: addr,
			NextBoot: nextBoot(composes, false, hostRecord{})})
		for _, k := range sortedKeys(records) {
			if r := records[k]; r.HostFile == "hosts/default.toml" && !seen[k] {
				seen[k] = true
				st.Hosts = append(st.Hosts, statusRow{Machine: k, MatchBy: "default", HostFile: r.HostFile, PlannedFQDN: fqdn, PlannedAddress: addr,
					NextBoot: nextBoot(composes, true, r), hostRecord: r})
			}
		}
	}
	// Machines the state dir knows whose host file is gone, or whose state
	// file cannot say which host file answered them.
	for _, k := range sortedKeys(records) {
		if !seen[k] {
			st.Hosts = append(st.Hosts, statusRow{Machine: k, MatchBy: records[k].Match, StateError: bad[k], hostRecord: records[k]})
		}
	}
	return st, nil
}

// hasHostFile reports whether one of macs has a host file now.
func hasHostFile(configDir string, macs []string) bool {
	for _, m := range macs {
		if mac, ok := normalizeMAC(m); ok {
			if _, err := os.Stat(filepath.Join(configDir, "hosts", hostFileName(mac))); err == nil {
				return true
			}
		}
	}
	return false
}

// writeStatus prints the status as two tables, every value from the state
// dir or the config dir shown as it is only where it is plain text.
func writeStatus(w io.Writer, st status, withState bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tMATCHED BY\tHOST FILE\tPLANNED FQDN\tADDRESS\tLAST ANSWER\tINSTALLED\tFQDN\tNEXT BOOT")
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, h := range st.Hosts {
		match, file, last, installed, fqdn, next := dash(h.MatchBy), h.HostFile, when(h.LastAnswer), when(h.Installed), dash(h.FQDN), dash(h.NextBoot)
		switch {
		case h.StateError != "": // its state file, which would say, cannot be read
			match, file, last, installed, fqdn, next = cmp.Or(h.MatchBy, "?"), cmp.Or(file, "?"), "?", "?", "?", "?"
		case file == "":
			file = "(gone)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shown(h.Machine), shown(match), shown(file), shown(dash(h.PlannedFQDN)), shown(dash(h.PlannedAddress)), last, installed, shown(fqdn), next)
	}
	tw.Flush()
	if !withState {
		fmt.Fprintln(w, "\n(no --state-dir: what was answered and installed is not known)")
		return
	}
	if len(st.Unknown) > 0 {
		fmt.Fprintln(w, "\nMachines that asked and matched no host file (name one by a MAC: hosts/<mac>.toml):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MACS\tSERIAL\tMODEL\tLAST ASKED\tREQUESTS")
		for _, u := range st.Unknown {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", shown(strings.Join(u.MACs, ",")), shown(dash(u.Serial)), shown(dash(u.Model)), when(u.LastSeen), u.Requests)
		}
		tw.Flush()
	}
	if len(st.Unreadable) > 0 {
		fmt.Fprintln(w, "\nState files that could not be read (? above), the rest listed all the same:")
		for _, line := range st.Unreadable {
			fmt.Fprintln(w, shown(line))
		}
	}
}

// shown is a value as status prints it: as it is where every character
// of it prints, else quoted with Go's escapes (\x1b, \r, \u202e), so that
// nothing a request or report said can move the operator's cursor, clear
// the screen or turn the text around.
func shown(s string) string {
	if utf8.ValidString(s) && !strings.HasPrefix(s, `"`) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}
