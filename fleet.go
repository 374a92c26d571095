// The fleet at a glance: every configured machine and what the state dir knows of it, for status and its page.

package main

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
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

// status is what `pxe-pilot status` shows: the config's problems, every
// configured host with what the state dir knows of it, and the machines
// that asked and matched nothing.
type status struct {
	Problems   []string        `json:"config_problems"` // validate's one-line errors for the config dir: files with errors, files never read
	Hosts      []statusRow     `json:"hosts"`
	Unknown    []unknownRecord `json:"unknown"`
	Dropped    *unknownDropped `json:"unknown_dropped,omitempty"` // unknown machines' records dropped, oldest first, to make room for newer ones
	Unreadable []string        `json:"unreadable,omitempty"`      // a line for each state file that could not be read
}

type statusRow struct {
	Machine        string    `json:"machine"`                // the machine key, or "*" for hosts/default.toml itself
	MatchBy        string    `json:"match"`                  // mac aa:bb:..., serial S1, uuid ..., default
	HostFile       string    `json:"host_file"`              // "" where the file is gone
	PlannedFQDN    string    `json:"planned_fqdn"`           // what the config gives it; see planned
	PlannedAddress string    `json:"planned_address"`        // its static address, "dhcp", or why neither is known
	Profiles       []string  `json:"profiles"`               // the profiles its layers name, in merge order
	BootImage      string    `json:"boot_image,omitempty"`   // the image its next boot installs with, where boot images are served
	NextBoot       string    `json:"next_boot"`              // what its next network boot does; see nextBoot
	State          string    `json:"state"`                  // one of the state constants; see machineState
	StalledSince   time.Time `json:"stalled_since,omitzero"` // LastAnswer + stall-after, where State is stalled
	StateError     string    `json:"state_error,omitempty"`  // why its state file could not be read
	hostRecord
}

// A machine's state, as status and its page show it; see machineState.
const (
	stateNeverSeen = "never seen"
	stateAnswered  = "answered"
	stateInstalled = "installed"
	stateRefused   = "refused"
	stateStalled   = "stalled"
	stateRepeated  = "repeated"
	stateUntracked = "not tracked"
)

// defaultStallAfter is how long an answered machine may go without a
// report before it counts as stalled: an install takes minutes, and the
// installer reports only success, so silence is the one sign of failure.
const defaultStallAfter = time.Hour

// machineState is what a machine's record says of it at now, the first of:
//
//   - refused: the last thing that happened to it is a refusal (its last
//     refusal is later than its last answer, its report and its rearm),
//     whatever it was before: a 409 of an installed machine says it sits at
//     the installer's error console;
//   - installed: it reported, and was not answered since (by the count
//     of answers since, not their times: a clock stepped back between
//     them cannot flip it);
//   - stalled: answered since its last report or rearm, and no report for
//     stallAfter since the last answer (stalledSince is when it became so);
//   - repeated: answered more than once since its last report or rearm;
//   - answered: answered once since, and installing;
//   - never seen: not answered since it was rearmed, or ever.
//
// A state file that cannot be read is an empty record, never seen; its
// row says why in StateError.
func machineState(r hostRecord, now time.Time, stallAfter time.Duration) (state string, stalledSince time.Time) {
	if f := r.LastRefusal; f != nil && f.At.After(r.LastAnswer) && f.At.After(r.Installed) && f.At.After(r.RearmedAt) {
		return stateRefused, time.Time{}
	}
	if !r.Installed.IsZero() && r.Pending == 0 {
		return stateInstalled, time.Time{}
	}
	switch {
	case r.Pending == 0:
		return stateNeverSeen, time.Time{}
	case !now.Before(r.LastAnswer.Add(stallAfter)):
		return stateStalled, r.LastAnswer.Add(stallAfter)
	case r.Pending > 1:
		return stateRepeated, time.Time{}
	}
	return stateAnswered, time.Time{}
}

// fleetOptions are what readFleet needs beyond the two dirs.
type fleetOptions struct {
	now        time.Time     // the time states are reckoned at
	stallAfter time.Duration // --stall-after; 0 is defaultStallAfter
	bootDir    string        // --boot-dir, for each host's boot image; "" serves none
}

// plan is what the config gives one host file, as status shows it.
type plan struct {
	fqdn, addr string
	profiles   []string
	image      string // the boot image /boot.ipxe installs it with, where it boots
	boots      bool   // its answer composes, and its boot image is sound: /boot.ipxe installs it
}

// planOf is the plan of a host file as checkConfig found it.
func planOf(hc hostCheck) plan {
	if hc.layers == nil {
		return plan{fqdn: hc.why, addr: hc.why, profiles: []string{}}
	}
	p := plan{profiles: []string{}, boots: hc.composes && !hc.badImage}
	if p.boots {
		p.image = hc.image
	}
	for _, l := range hc.layers {
		if name, ok := strings.CutPrefix(l.name, "profiles/"); ok {
			p.profiles = append(p.profiles, strings.TrimSuffix(name, ".toml"))
		}
	}
	p.fqdn, p.addr = planned(hc.layers, hc.m)
	return p
}

// planned is the FQDN and address the layers of the host file m names
// give it, as the answer composed from the file's name alone has them,
// complete or not: a static address without its prefix, or "dhcp". A
// name whose placeholders the file's name cannot fill (a serial in a
// MAC's file, anything in hosts/default.toml) is shown as written.
func planned(layers []layer, m match) (fqdn, addr string) {
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
	if strings.Contains(fqdn, "{{") && fillableByName(fqdn, m) {
		// The name's keys alone: nothing else of the answer is shown here.
		g, _ := ans["global"].(map[string]any)
		keys := map[string]any{}
		for _, k := range []string{"hostname", "domain", "fqdn"} {
			if v, ok := g[k].(string); ok {
				keys[k] = v
			}
		}
		filled := map[string]any{"global": keys}
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
	return fqdn, addr
}

// nextBoot says what a configured machine's next network boot does, as
// /boot.ipxe decides it: it installs (again, where it was answered and
// never reported), boots its disk once tracking says it is installed, or
// is refused while its answer does not compose (or its boot image is not
// sound).
func nextBoot(boots, tracked bool, rec hostRecord) string {
	switch {
	case tracked && !rec.Installed.IsZero():
		return "local disk"
	case !boots:
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

// readFleet reads the config dir and, if stateDir is not "", the state
// dir's records, without creating or changing anything: each dir is
// scanned once, and each host's answer composed once, by checkConfig,
// which also gives the config's problems as validate says them. A state
// file that cannot be read is said in Unreadable, and its machine listed
// with its StateError; the others are read all the same. Its lists are
// never nil, so that they are JSON lists, for the scripts that read them.
func readFleet(configDir, stateDir string, o fleetOptions) (status, error) {
	st := status{Problems: []string{}, Hosts: []statusRow{}, Unknown: []unknownRecord{}}
	if o.stallAfter <= 0 {
		o.stallAfter = defaultStallAfter
	}
	if info, err := os.Stat(configDir); err != nil || !info.IsDir() {
		return st, fmt.Errorf("config dir %q is missing or not a directory; point --config-dir or CONFIG_DIR at yours", configDir)
	}
	records := map[string]hostRecord{}
	bad := map[string]string{} // machine key -> why its state file could not be read
	var unknown []unknownRecord
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
			unknown = append(unknown, r)
		}
		switch d, err := readDropped(stateDir); {
		case err != nil:
			st.Unreadable = append(st.Unreadable, err.Error())
		case d.Dropped > 0:
			st.Dropped = &d
		}
	}
	type host struct {
		m match
		p plan
	}
	var hosts []host // the host files, in hosts/'s order
	r := checkConfig(configDir, checkOptions{release: newest, bootDir: o.bootDir, each: func(hc hostCheck) {
		hosts = append(hosts, host{hc.m, planOf(hc)})
	}})
	st.Problems = append(st.Problems, r.errorLines()...)
	// A row is a few hundred bytes: for 10,000 machines, a slice that grew
	// by doubling would hold its old and new arrays at once.
	st.Hosts = make([]statusRow, 0, len(hosts)+len(records))
	// row is a machine's row; tracked is false for the row of
	// hosts/default.toml itself, which is no machine.
	row := func(machine string, m match, p plan, rec hostRecord, tracked bool) statusRow {
		h := statusRow{Machine: machine, MatchBy: m.String(), HostFile: m.file, PlannedFQDN: p.fqdn, PlannedAddress: p.addr,
			Profiles: p.profiles, BootImage: p.image, NextBoot: nextBoot(p.boots, tracked, rec), StateError: bad[machine], hostRecord: rec}
		h.State = stateUntracked
		if tracked {
			h.State, h.StalledSince = machineState(rec, o.now, o.stallAfter)
		}
		return h
	}
	tracked := stateDir != ""
	// A machine with a host file of its own is listed by it, even if
	// hosts/default.toml answered it before that file was written.
	seen := map[string]bool{}
	var def *host
	for i, h := range hosts {
		if h.m.by == "default" {
			def = &hosts[i]
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.m.file, "hosts/"), ".toml")
		seen[name] = true
		st.Hosts = append(st.Hosts, row(name, h.m, h.p, records[name], tracked))
	}
	if def != nil {
		// hosts/default.toml itself is no machine: the machines it
		// answered are rows of their own.
		st.Hosts = append(st.Hosts, row("*", def.m, def.p, hostRecord{}, false))
		for _, k := range sortedKeys(records) {
			if r := records[k]; r.HostFile == def.m.file && !seen[k] {
				seen[k] = true
				st.Hosts = append(st.Hosts, row(k, def.m, def.p, r, tracked))
			}
		}
	}
	// Machines the state dir knows whose host file is gone, or whose state
	// file cannot say which host file answered them.
	for _, k := range sortedKeys(records) {
		if !seen[k] {
			h := row(k, match{}, plan{profiles: []string{}}, records[k], tracked)
			h.MatchBy, h.NextBoot = records[k].Match, ""
			st.Hosts = append(st.Hosts, h)
		}
	}
	// An unknown machine named since is listed by its host file.
	named := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		named[h.m.file] = true
	}
	for _, u := range unknown {
		if slices.ContainsFunc(u.MACs, func(mac string) bool {
			hex, ok := normalizeMAC(mac)
			return ok && named["hosts/"+hostFileName(hex)]
		}) {
			continue
		}
		u.Adopt = adoptWith(u.MACs)
		st.Unknown = append(st.Unknown, u)
	}
	slices.SortFunc(st.Unknown, func(a, b unknownRecord) int { return b.LastSeen.Compare(a.LastSeen) })
	return st, nil
}

// adoptWith is the host file that would adopt an unknown machine: the
// one named by the first MAC it sent, as the 404 it got says.
func adoptWith(macs []string) string {
	if len(macs) > 0 {
		if hex, ok := normalizeMAC(macs[0]); ok {
			return "hosts/" + hostFileName(hex)
		}
	}
	return ""
}

// logStalls logs, once, each machine that became stalled by now: answered,
// and no report for stallAfter since. The installer reports only success,
// so this silence is the one sign that an install failed.
func logStalls(log *slog.Logger, st *stateStore, now time.Time, stallAfter time.Duration) {
	marked, err := st.markStalled(now, stallAfter)
	for _, r := range marked {
		log.Warn(fmt.Sprintf("%s: machine %s stalled: answered %s and no report after %v; its next network boot installs it again",
			r.HostFile, r.Host, r.LastAnswer.UTC().Format(time.RFC3339), stallAfter),
			"machine", r.Host, "host", r.HostFile, "last_answer", r.LastAnswer.UTC().Format(time.RFC3339), "answers_since_install", r.Pending)
	}
	if err != nil {
		log.Warn("stalled machines not all marked; each is logged again at the next check", "error", err.Error())
	}
}

// stallCheckEvery is how often serve looks for stalled machines: a
// quarter of stallAfter, at most a minute and at least a second.
func stallCheckEvery(stallAfter time.Duration) time.Duration {
	return max(min(stallAfter/4, time.Minute), time.Second)
}

// writeStatus prints the status: the config's problems first, then the
// hosts, one row each, then the refused machines' reasons (too long for a
// cell), the unknown machines and the state files that could not be read;
// every value from the state dir or the config dir shown as it is only
// where it is plain text. STATE is the row's State, with a refusal's
// status; WHEN is the time of what the state names (the answer, the
// report, the refusal); REPORTED the FQDN and address of the last report.
func writeStatus(w io.Writer, st status, withState bool) {
	if len(st.Problems) > 0 {
		fmt.Fprintln(w, "Config problems, as pxe-pilot validate says them:")
		for _, line := range st.Problems {
			fmt.Fprintln(w, shown(line))
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tHOST FILE\tPLANNED FQDN\tADDRESS\tSTATE\tWHEN\tREPORTED\tNEXT BOOT")
	var refused []statusRow
	for _, h := range st.Hosts {
		file, state, at, reported, next := h.HostFile, h.State, "-", strings.TrimSpace(h.FQDN+" "+h.Address), dash(h.NextBoot)
		switch h.State {
		case stateRefused:
			state, at = fmt.Sprintf("refused (%d)", h.LastRefusal.Code), when(h.LastRefusal.At)
			refused = append(refused, h)
		case stateInstalled:
			at = when(h.Installed)
		case stateAnswered, stateRepeated, stateStalled:
			at = when(h.LastAnswer)
		}
		if h.BootImage != "" && strings.HasPrefix(next, "install") {
			next += " (" + h.BootImage + ")"
		}
		switch {
		case h.StateError != "": // its state file, which would say, cannot be read
			file, state, at, reported, next = cmp.Or(file, "?"), "?", "?", "?", "?"
		case file == "":
			file = "(gone)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shown(h.Machine), shown(file), shown(dash(h.PlannedFQDN)), shown(dash(h.PlannedAddress)),
			state, at, shown(dash(reported)), next)
	}
	tw.Flush()
	if !withState {
		fmt.Fprintln(w, "\n(no --state-dir: what was answered and installed is not known)")
		return
	}
	if len(refused) > 0 {
		fmt.Fprintln(w, "\nWhy the refused machines were refused, the last time:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, h := range refused {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", shown(h.Machine), h.LastRefusal.Code, shown(h.LastRefusal.Reason))
		}
		tw.Flush()
	}
	if len(st.Unknown) > 0 {
		fmt.Fprintln(w, "\nMachines that asked and matched no host file (name one by a MAC: hosts/<mac>.toml):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MACS\tSERIAL\tUUID\tMODEL\tLAST ASKED\tREQUESTS\tADOPT WITH")
		for _, u := range st.Unknown {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", shown(strings.Join(u.MACs, ",")), shown(dash(u.Serial)), shown(dash(u.UUID)), shown(dash(u.Model)),
				when(u.LastSeen), u.Requests, shown(dash(u.Adopt)))
		}
		tw.Flush()
	}
	if st.Dropped != nil {
		fmt.Fprintln(w, "\n"+st.Dropped.String())
	}
	if len(st.Unreadable) > 0 {
		fmt.Fprintln(w, "\nState files that could not be read (? above), the rest listed all the same:")
		for _, line := range st.Unreadable {
			fmt.Fprintln(w, shown(line))
		}
	}
}

// when is a time as status prints it, "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// dash is a value as status prints it, "-" for none.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeKnownHosts prints a known_hosts line for each SSH host key each
// installed machine's report carried: "fqdn,address keytype base64", a
// line a key type, sorted, the machines sorted by what their lines start
// with; ready for ~/.ssh/known_hosts or an inventory. The keys were vetted
// when reported, and are again here (vetKey), with the FQDN and address,
// so that a state file edited by hand cannot add a line of its own. A
// machine without a key, or without a name a line can hold, is a # line
// that says so, as is each key of the state dir that fails.
func writeKnownHosts(w io.Writer, hosts []statusRow) {
	type machine struct {
		names, key, why string
		keys            []string // "keytype base64"
		dropped         []string // why each key that failed vetting was left out
	}
	var ms []machine
	for _, h := range hosts {
		if h.Installed.IsZero() || h.StateError != "" {
			continue
		}
		var names []string
		if checkFQDN(h.FQDN) == "" { // as an answer's fqdn is checked
			names = append(names, strings.ToLower(h.FQDN))
		}
		if a, ok := reportedAddr(h.Address); ok {
			names = append(names, a)
		}
		m := machine{names: strings.Join(names, ","), key: h.Machine}
		for _, typ := range sortedKeys(h.SSHPublicKeys) {
			if why := vetKey(typ, h.SSHPublicKeys[typ]); why != "" {
				m.dropped = append(m.dropped, "the key "+excerpt(typ)+" of its state file "+why+"; left out")
				continue
			}
			m.keys = append(m.keys, typ+" "+h.SSHPublicKeys[typ])
		}
		switch {
		case m.names == "":
			m.why = "installed, but its report gave neither an FQDN nor an address a known_hosts line can hold"
		case len(m.keys) == 0:
			m.why = "installed, but no SSH host key of its report was kept: it carried none that passed vetting, or reported before pxe-pilot kept them"
		}
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b machine) int {
		return cmp.Or(strings.Compare(a.names, b.names), strings.Compare(a.key, b.key))
	})
	for _, m := range ms {
		if m.why != "" {
			fmt.Fprintf(w, "# %s (%s): %s\n", shown(m.key), shown(dash(m.names)), m.why)
		} else {
			for _, k := range m.keys {
				fmt.Fprintf(w, "%s %s\n", m.names, k)
			}
		}
		for _, why := range m.dropped {
			fmt.Fprintf(w, "# %s (%s): %s\n", shown(m.key), shown(dash(m.names)), why)
		}
	}
}

// reportedAddr is a report's management address without its prefix
// length, as known_hosts takes it.
func reportedAddr(s string) (string, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().WithZone("").String(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").String(), true
	}
	return "", false
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
