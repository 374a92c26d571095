// Tests of the validate command.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidateCommand(t *testing.T) {
	good := mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")
	other := strings.NewReplacer("pve-node-01", "pve-node-02", "10.0.0.10/", "10.0.0.11/").Replace(string(good)) // another machine
	defaults := mustRead(t, "examples/config/defaults.toml")
	tests := []struct {
		name    string
		files   map[string]string
		args    []string
		wantErr bool
		want    []string // lines, in order, that the output must have
	}{
		{
			name:  "example_config_is_clean_but_warns_about_8_2",
			files: map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			want: []string{
				"warning: defaults.toml: global.root_password_hash: needs an ISO of release 8.3 or later",
				"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 1 warnings",
			},
		},
		{
			name: "misnamed_host_files_get_the_name_they_need",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"hosts/AA:BB:CC:DD:EE:FF.toml": string(good),
				"hosts/aabbccddeeff.toml":      string(good),
				"hosts/pve-node-01.toml":       string(good),
				"hosts/README.md":              "not a host file",
			},
			wantErr: true,
			want: []string{
				"hosts/AA:BB:CC:DD:EE:FF.toml: never matches: name it hosts/aa-bb-cc-dd-ee-ff.toml",
				"hosts/aabbccddeeff.toml: never matches: name it hosts/aa-bb-cc-dd-ee-ff.toml",
				"hosts/pve-node-01.toml: never matches: a host file is named by a MAC",
				"0 host files checked",
			},
		},
		{
			name: "first_boot_script_checked_and_warned_that_it_needs_public_url",
			files: map[string]string{
				"defaults.toml":                "first-boot-script = \"scripts/setup.sh\"\n" + string(defaults),
				"scripts/setup.sh":             "#!/bin/sh\necho {{.Hostname}}\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			want: []string{
				"warning: defaults.toml: first-boot-script: needs an ISO of release 8.3 or later",
				"warning: defaults.toml: first-boot-script: needs pxe-pilot serve --public-url",
				"0 errors",
			},
		},
		{
			name: "first_boot_script_with_a_bad_placeholder_is_error",
			files: map[string]string{
				"defaults.toml":                "first-boot-script = \"scripts/setup.sh\"\n" + string(defaults),
				"scripts/setup.sh":             "#!/bin/sh\necho {{.Hostnme}}\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			wantErr: true,
			want:    []string{`defaults.toml: first-boot-script: "scripts/setup.sh": {{.Hostnme}}: no such placeholder (did you mean {{.Hostname}}?)`, "(in the answer of hosts/aa-bb-cc-dd-ee-ff.toml)"},
		},
		{
			name:    "toml_error_names_line_and_column",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": "hostname = \"x\"\n[disk\n"},
			wantErr: true,
			want:    []string{"hosts/aa-bb-cc-dd-ee-ff.toml:2:6: "},
		},
		{
			name:    "unquoted_value_says_to_quote_it",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": "hostname = \"x\"\n[network]\naddress = \"10.0.0.10/24\"\ngateway = 10.0.0.1\n"},
			wantErr: true,
			want:    []string{`hosts/aa-bb-cc-dd-ee-ff.toml:4:11: gateway = 10.0.0.1: a value that is not a number, boolean or date must be quoted: write gateway = "10.0.0.1"`},
		},
		{
			name:    "every_problem_on_a_line_of_its_own",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good) + "zfs.raid = \"raid5\"\n[global]\nkeyboard = \"us\"\n"},
			wantErr: true,
			want: []string{
				"hosts/aa-bb-cc-dd-ee-ff.toml: global.keyboard: \"us\" is not one of",
				"hosts/aa-bb-cc-dd-ee-ff.toml: disk.zfs.raid: \"raid5\" is not one of",
				"2 errors",
			},
		},
		{
			name:    "release_8_2_makes_the_hash_an_error",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			args:    []string{"--release", "8.2"},
			wantErr: true,
			want:    []string{"defaults.toml: global.root_password_hash: the 8.2 installer does not know this key", "(in the answer of hosts/aa-bb-cc-dd-ee-ff.toml)"},
		},
		{
			name:    "broken_defaults_is_said_once",
			files:   map[string]string{"defaults.toml": string(defaults) + "[global\n", "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			wantErr: true,
			want:    []string{"defaults.toml:", "pxe-pilot: 1 host files checked for ISO release 9.2: 1 errors, 0 warnings"},
		},
		{
			name: "two_hosts_with_one_fqdn_and_one_address_are_errors",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
				"hosts/aa-bb-cc-dd-ee-01.toml": string(good),
			},
			wantErr: true,
			want: []string{
				"hosts/aa-bb-cc-dd-ee-01.toml and hosts/aa-bb-cc-dd-ee-ff.toml: both give the same fqdn, pve-node-01.lab.example.com: two machines would be installed under one fqdn",
				"hosts/aa-bb-cc-dd-ee-01.toml and hosts/aa-bb-cc-dd-ee-ff.toml: both give the same address, 10.0.0.10: two machines would be installed under one address",
				"2 errors",
			},
		},
		{
			name: "one_machine_named_by_two_mac_files_is_an_error",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good) + "[network.interface-name-pinning]\nenabled = true\nmapping.\"aa:bb:cc:dd:ee:01\" = \"data0\"\n",
				"hosts/aa-bb-cc-dd-ee-01.toml": other,
			},
			wantErr: true,
			want:    []string{"hosts/aa-bb-cc-dd-ee-01.toml and hosts/aa-bb-cc-dd-ee-ff.toml name one machine (its NIC aa:bb:cc:dd:ee:01): which answers it depends on the order the installer lists its NICs; keep one file for it"},
		},
		{
			name: "serial_file_of_a_machine_with_a_mac_file_is_a_warning",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
				"hosts/serial-S42.toml":        strings.Replace(other, "[network]\n", "[network]\nfilter.ID_NET_NAME_MAC = \"*aabbccddeeff\"\n", 1),
			},
			want: []string{"warning: hosts/serial-S42.toml: names the machine with NIC aa:bb:cc:dd:ee:ff, which hosts/aa-bb-cc-dd-ee-ff.toml answers first: a MAC's host file wins over its serial's or UUID's, so hosts/serial-S42.toml never answers this machine"},
		},
		{
			name: "files_never_read_are_named_with_their_fix",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"Defaults.toml":                string(defaults),
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
				"hosts/AA-BB-CC-DD-EE-01.TOML": other,
				"hosts/aa-bb-cc-dd-ee-02.tml":  other,
				"hosts/aa-bb-cc-dd-ee-03":      other,
				"hosts/rack-a/x.toml":          other,
				"hosts/README.md":              "not a host file",
				"Hosts/aa-bb-cc-dd-ee-04.toml": other,
			},
			wantErr: true,
			want: []string{
				"Defaults.toml: never read: name it defaults.toml",
				"Hosts/: never read: name it hosts/",
				"hosts/AA-BB-CC-DD-EE-01.TOML: never read: a host file ends in .toml; name it hosts/aa-bb-cc-dd-ee-01.toml",
				"hosts/aa-bb-cc-dd-ee-02.tml: never read: name it hosts/aa-bb-cc-dd-ee-02.toml",
				"hosts/aa-bb-cc-dd-ee-03: never read: name it hosts/aa-bb-cc-dd-ee-03.toml",
				"hosts/rack-a/: never read: host files go in hosts/ itself",
				"6 errors",
			},
		},
		{
			name:    "a_top_level_default_toml_without_defaults_toml_is_never_read",
			files:   map[string]string{"default.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			wantErr: true,
			want:    []string{"default.toml: never read: the defaults every host shares go in defaults.toml"},
		},
		{
			name:  "release_given_warns_of_no_older_release",
			files: map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good)},
			args:  []string{"--release", "9.2"},
			want:  []string{"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 0 warnings"},
		},
		{
			name: "public_url_clears_the_script_warning",
			files: map[string]string{
				"defaults.toml":                "first-boot-script = \"scripts/setup.sh\"\n" + string(defaults),
				"scripts/setup.sh":             "#!/bin/sh\necho {{.Hostname}}\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			args: []string{"--release", "9.2", "--public-url", "https://10.0.0.2:8443"},
			want: []string{"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 0 warnings"},
		},
		{
			name:    "no_host_files_is_an_error",
			files:   map[string]string{"defaults.toml": string(defaults)},
			wantErr: true,
			want:    []string{"hosts/: missing, so no machine gets an answer", "0 host files checked for ISO release 9.2: 1 errors, 0 warnings"},
		},
		{
			name: "profiles_of_defaults_and_host_nested_and_shared_are_clean",
			files: map[string]string{
				"defaults.toml":                "profiles = [\"site\"]\n" + string(defaults),
				"profiles/site.toml":           "[global]\ntimezone = \"Europe/Vienna\"\n",
				"profiles/rack-a.toml":         "profiles = [\"site\", \"zfs-mirror\"]\n[network]\ngateway = \"10.0.0.254\"\n",
				"profiles/zfs-mirror.toml":     "[disk]\ntarget = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": "profiles = [\"rack-a\"]\nhostname = \"pve-node-01\"\n[network]\naddress = \"10.0.0.10/24\"\n",
			},
			want: []string{"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 1 warnings"},
		},
		{
			name: "missing_profile_names_the_file_that_lists_it_and_the_chain",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"profiles/rack-a.toml":         "profiles = [\"zfs-mirorr\"]\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": "profiles = [\"rack-a\"]\n" + string(good),
			},
			wantErr: true,
			want: []string{
				`profiles/rack-a.toml: profiles: "zfs-mirorr": profiles/zfs-mirorr.toml does not exist (hosts/aa-bb-cc-dd-ee-ff.toml -> profiles/rack-a.toml -> profiles/zfs-mirorr.toml)`,
				"1 errors",
			},
		},
		{
			name: "missing_profile_of_defaults_is_said_once",
			files: map[string]string{
				"defaults.toml":                "profiles = [\"site\"]\n" + string(defaults),
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
				"hosts/aa-bb-cc-dd-ee-01.toml": other,
			},
			wantErr: true,
			want: []string{
				`defaults.toml: profiles: "site": profiles/site.toml does not exist (defaults.toml -> profiles/site.toml)`,
				"pxe-pilot: 2 host files checked for ISO release 9.2: 1 errors, 0 warnings",
			},
		},
		{
			name: "profile_listed_by_a_host_that_fails_to_stack_is_not_called_unused",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"profiles/rack-a.toml":         "profiles = [\"zfs-mirorr\"]\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": "profiles = [\"rack-a\"]\n" + string(good),
			},
			wantErr: true,
			want:    []string{"pxe-pilot: 1 host files checked for ISO release 9.2: 1 errors, 0 warnings"},
		},
		{
			name: "profile_cycle_names_the_whole_cycle",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"profiles/a.toml":              "profiles = [\"b\"]\n",
				"profiles/b.toml":              "profiles = [\"a\"]\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": "profiles = [\"a\"]\n" + string(good),
			},
			wantErr: true,
			want: []string{
				`profiles/b.toml: profiles: "a" makes a cycle: hosts/aa-bb-cc-dd-ee-ff.toml -> profiles/a.toml -> profiles/b.toml -> profiles/a.toml`,
				"1 errors",
			},
		},
		{
			name: "profile_listing_itself_is_a_cycle",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"profiles/a.toml":              "profiles = [\"a\"]\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": "profiles = [\"a\"]\n" + string(good),
			},
			wantErr: true,
			want:    []string{`profiles/a.toml: profiles: "a" makes a cycle: hosts/aa-bb-cc-dd-ee-ff.toml -> profiles/a.toml -> profiles/a.toml`},
		},
		{
			name: "profile_name_with_a_slash_is_no_profile_name",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"hosts/aa-bb-cc-dd-ee-ff.toml": "profiles = [\"../hosts/aa-bb-cc-dd-ee-01\"]\n" + string(good),
				"hosts/aa-bb-cc-dd-ee-01.toml": other,
			},
			wantErr: true,
			want: []string{
				`hosts/aa-bb-cc-dd-ee-ff.toml: profiles: "../hosts/aa-bb-cc-dd-ee-01" is not a profile name`,
				"pxe-pilot: 2 host files checked for ISO release 9.2: 1 errors, 1 warnings",
			},
		},
		{
			name: "profile_name_with_toml_gets_the_name_without",
			files: map[string]string{
				"defaults.toml":                "profiles = [\"site.toml\"]\n" + string(defaults),
				"profiles/site.toml":           "",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			wantErr: true,
			want:    []string{`defaults.toml: profiles: "site.toml" is not a profile name: name the profile without .toml: "site" (defaults.toml)`},
		},
		{
			name: "profile_file_that_no_name_can_list_is_an_error",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"profiles/-rack.toml":          "",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			wantErr: true,
			want:    []string{"profiles/-rack.toml: cannot be listed"},
		},
		{
			name: "unused_profile_is_a_warning",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"profiles/old-rack.toml":       "[network]\ngateway = \"10.9.0.1\"\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			want: []string{
				"warning: profiles/old-rack.toml: no host uses it: no layer lists it in profiles",
				"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 2 warnings",
			},
		},
		{
			name: "broken_unused_profile_is_an_error_with_line_and_column",
			files: map[string]string{
				"defaults.toml":                string(defaults),
				"profiles/old-rack.toml":       "[network]\ngateway = \"10.9.0.1\"\n[disk\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			wantErr: true,
			want: []string{
				"profiles/old-rack.toml:3:6: ",
				"pxe-pilot: 1 host files checked for ISO release 9.2: 1 errors, 1 warnings",
			},
		},
		{
			name: "serial_host_file_gets_a_note",
			files: map[string]string{
				"defaults.toml":         string(defaults),
				"hosts/serial-S42.toml": "hostname = \"pve-s42\"\n[disk]\ntarget = \"sda\"\n",
			},
			want: []string{
				"note: hosts/serial-S42.toml: answers the machine whose dmi.system.serial is S42 (unless one of its MACs has a host file)",
				"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 1 warnings",
			},
		},
		{
			name: "placeholder_serial_file_never_matches",
			files: map[string]string{
				"defaults.toml": string(defaults),
				"hosts/serial-To be filled by O.E.M..toml": string(good),
				"hosts/serial-Default string.toml":         string(good),
			},
			wantErr: true,
			want: []string{
				`hosts/serial-Default string.toml: never matches: dmi.system.serial "Default string" is a firmware placeholder; a machine is matched by a serial only where it names one`,
				`hosts/serial-To be filled by O.E.M..toml: never matches: dmi.system.serial "To be filled by O.E.M." is a firmware placeholder`,
				"0 host files checked",
			},
		},
		{
			name: "serial_file_with_a_space_never_matches",
			files: map[string]string{
				"defaults.toml":          string(defaults),
				"hosts/serial-S 42.toml": string(good),
			},
			wantErr: true,
			want:    []string{`hosts/serial-S 42.toml: never matches: dmi.system.serial "S 42" has characters that cannot name a file`},
		},
		{
			name: "uppercase_uuid_file_never_matches_and_gets_its_lowercase_name",
			files: map[string]string{
				"defaults.toml": string(defaults),
				"hosts/uuid-4C4C4544-0042-3510-8057-B4C04F4E3532.toml": "hostname = \"pve-u\"\n[disk]\ntarget = \"sda\"\n",
			},
			wantErr: true,
			want: []string{
				"hosts/uuid-4C4C4544-0042-3510-8057-B4C04F4E3532.toml: never matches: name it hosts/uuid-4c4c4544-0042-3510-8057-b4c04f4e3532.toml (UUIDs are matched in lowercase)",
				"0 host files checked",
			},
		},
		{
			name: "placeholder_uuid_file_never_matches",
			files: map[string]string{
				"defaults.toml": string(defaults),
				"hosts/uuid-03000200-0400-0500-0006-000700080009.toml": "hostname = \"pve-u\"\n[disk]\ntarget = \"sda\"\n",
			},
			wantErr: true,
			want: []string{
				"hosts/uuid-03000200-0400-0500-0006-000700080009.toml: never matches: dmi.system.uuid 03000200-0400-0500-0006-000700080009 is a firmware placeholder; a machine is matched by a UUID only where it names one",
			},
		},
		{
			name: "uuid_file_without_hyphens_never_matches",
			files: map[string]string{
				"defaults.toml": string(defaults),
				"hosts/uuid-4c4c4544004235108057b4c04f4e3532.toml": "hostname = \"pve-u\"\n[disk]\ntarget = \"sda\"\n",
			},
			wantErr: true,
			want:    []string{"hosts/uuid-4c4c4544004235108057b4c04f4e3532.toml: never matches: dmi.system.uuid \"4c4c4544004235108057b4c04f4e3532\" is not of the form 8-4-4-4-12 hex digits"},
		},
		{
			name: "lowercase_uuid_host_file_gets_a_note",
			files: map[string]string{
				"defaults.toml": string(defaults),
				"hosts/uuid-4c4c4544-0042-3510-8057-b4c04f4e3532.toml": "hostname = \"pve-u\"\n[disk]\ntarget = \"sda\"\n",
			},
			want: []string{
				"note: hosts/uuid-4c4c4544-0042-3510-8057-b4c04f4e3532.toml: answers the machine whose dmi.system.uuid is 4c4c4544-0042-3510-8057-b4c04f4e3532 (unless one of its MACs has a host file)",
				"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 1 warnings",
			},
		},
		{
			name: "unknown_placeholder_in_defaults_names_key_and_file",
			files: map[string]string{
				"defaults.toml":                strings.Replace(string(defaults), `mailto = "ops@example.com"`, `mailto = "ops+{{.Serail}}@example.com"`, 1),
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			wantErr: true,
			want: []string{
				"defaults.toml: global.mailto: {{.Serail}}: no such placeholder (did you mean {{.Serial}}?)",
				"1 errors",
			},
		},
		{
			name: "known_placeholders_validate_with_sample_facts",
			files: map[string]string{
				"defaults.toml":         strings.Replace(string(defaults), `mailto = "ops@example.com"`, `mailto = "ops+{{.Serial}}-{{.MACHex}}@example.com"`, 1),
				"hosts/serial-S42.toml": "hostname = \"pve-{{.Serial}}\"\n[disk]\ntarget = \"sda\"\n",
			},
			want: []string{"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 1 warnings"},
		},
		{
			name: "serial_host_with_static_address_and_no_filter_is_an_error",
			files: map[string]string{
				"defaults.toml":         string(defaults),
				"hosts/serial-S42.toml": string(good),
			},
			wantErr: true,
			want: []string{
				"note: hosts/serial-S42.toml: answers the machine whose dmi.system.serial is S42",
				"hosts/serial-S42.toml: network.filter: missing; hosts/serial-S42.toml is not named by a MAC, so the static network.address needs a filter",
				"1 errors",
			},
		},
		{
			name: "serial_host_with_static_address_and_a_filter_is_clean",
			files: map[string]string{
				"defaults.toml":         string(defaults),
				"hosts/serial-S42.toml": strings.Replace(string(good), "[network]\n", "[network]\nfilter.ID_NET_NAME = \"eno1\"\n", 1),
			},
			want: []string{"pxe-pilot: 1 host files checked for ISO release 9.2: 0 errors, 1 warnings"},
		},
		{
			name: "arc_max_below_64_is_a_warning_naming_the_file_once",
			files: map[string]string{
				"defaults.toml":                string(defaults) + "zfs.arc-max = 32\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
				"hosts/aa-bb-cc-dd-ee-01.toml": other,
			},
			want: []string{
				"warning: defaults.toml: disk.zfs.arc-max: 32 MiB is below the installer's minimum, so it uses 64 MiB (0 means ZFS's own default)\n",
				"pxe-pilot: 2 host files checked for ISO release 9.2: 0 errors, 2 warnings",
			},
		},
		{
			name: "pinning_mapping_without_enabled_names_the_file_that_set_it",
			files: map[string]string{
				"defaults.toml":                string(defaults) + "[network.interface-name-pinning.mapping]\n\"aa:bb:cc:dd:ee:ff\" = \"mgmt\"\n",
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
			},
			wantErr: true,
			want: []string{
				"defaults.toml: network.interface-name-pinning: has no enabled, without which the installer refuses the table (\"missing field `enabled`\"): add enabled = true (in the answer of hosts/aa-bb-cc-dd-ee-ff.toml)\n",
				"1 errors",
			},
		},
		{
			name: "legacy_spelling_is_a_warning_naming_the_file_once",
			files: map[string]string{
				"defaults.toml":                strings.Replace(string(defaults), "[network]", "reboot_mode = \"power-off\"\n\n[network]", 1),
				"hosts/aa-bb-cc-dd-ee-ff.toml": string(good),
				"hosts/aa-bb-cc-dd-ee-01.toml": other,
			},
			want: []string{
				"warning: defaults.toml: global.reboot_mode: the installer's own spelling is reboot-mode, which pxe-pilot serves; reboot_mode is a legacy alias Proxmox plans to drop\n",
				"warning: defaults.toml: global.reboot_mode: needs an ISO of release 8.4 or later",
				"pxe-pilot: 2 host files checked for ISO release 9.2: 0 errors, 3 warnings",
			},
		},
		{
			name:  "pinned_vlan_name_warns_for_9_1_and_older",
			files: map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good) + "[network.interface-name-pinning]\nenabled = true\nmapping.\"aa:bb:cc:dd:ee:ff\" = \"mgmt.10\"\n"},
			want: []string{
				"warning: hosts/aa-bb-cc-dd-ee-ff.toml: network.interface-name-pinning: needs an ISO of release 9.1 or later",
				"warning: hosts/aa-bb-cc-dd-ee-ff.toml: network.interface-name-pinning.mapping.\"aa:bb:cc:dd:ee:ff\": needs an ISO of release 9.2 or later",
				"0 errors, 3 warnings",
			},
		},
		{
			name:    "pinned_vlan_name_is_an_error_for_9_1",
			files:   map[string]string{"defaults.toml": string(defaults), "hosts/aa-bb-cc-dd-ee-ff.toml": string(good) + "[network.interface-name-pinning]\nenabled = true\nmapping.\"aa:bb:cc:dd:ee:ff\" = \"mgmt.10\"\n"},
			args:    []string{"--release", "9.1"},
			wantErr: true,
			want: []string{
				"hosts/aa-bb-cc-dd-ee-ff.toml: network.interface-name-pinning.mapping.\"aa:bb:cc:dd:ee:ff\": interface name 'mgmt.10': a VLAN or alias suffix needs a 9.1.3 or later installer",
				"1 errors",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			var out bytes.Buffer
			err := run(append([]string{"validate", "--config-dir", dir}, tt.args...), &out, &out)
			if tt.wantErr != errors.Is(err, errValidate) {
				t.Errorf("validate = %v; want error %v\n%s", err, tt.wantErr, out.String())
			}
			rest := out.String()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("validate output lacks %q (in order):\n%s", w, out.String())
				}
				rest = rest[i+len(w):]
			}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if strings.Contains(line, "warning") && !strings.HasPrefix(line, "warning: ") && !strings.HasPrefix(line, "pxe-pilot: ") {
					t.Errorf("an error line says warning: %q", line)
				}
			}
		})
	}
}

// TestValidateReportsUnreadableHostFiles: a host file that exists but
// cannot be read is an error of validate's, as it is a 500 of serve's.
func TestValidateReportsUnreadableHostFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"defaults.toml":                string(mustRead(t, "examples/config/defaults.toml")),
		"hosts/aa-bb-cc-dd-ee-ff.toml": string(mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")),
	})
	hosts := filepath.Join(dir, "hosts")
	for name, mk := range map[string]func(string) error{
		"aa-bb-cc-dd-ee-01.toml": func(p string) error { return os.Symlink("nowhere.toml", p) },
		"aa-bb-cc-dd-ee-02.toml": func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"aa-bb-cc-dd-ee-03.toml": func(p string) error { return os.Mkdir(p, 0o755) },
	} {
		if err := mk(filepath.Join(hosts, name)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	err := run([]string{"validate", "--config-dir", dir}, &out, &out)
	if !errors.Is(err, errValidate) {
		t.Errorf("validate = %v; want it to fail\n%s", err, out.String())
	}
	for _, want := range []string{
		"hosts/aa-bb-cc-dd-ee-01.toml: cannot read: a symlink to a file that does not exist",
		"hosts/aa-bb-cc-dd-ee-02.toml: cannot read: not a regular file but a FIFO",
		"hosts/aa-bb-cc-dd-ee-03.toml: cannot read: not a regular file but a directory",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestValidateSaysWhatTheFilesSay: validate, run right after an edit,
// reports a missing profile as such, not as a deploy under way.
func TestValidateSaysWhatTheFilesSay(t *testing.T) {
	withSettleTime(t, time.Hour)
	dir := writeTree(t, map[string]string{
		"defaults.toml":                string(mustRead(t, "examples/config/defaults.toml")),
		"hosts/aa-bb-cc-dd-ee-ff.toml": "profiles = [\"nope\"]\n" + string(mustRead(t, "examples/config/hosts/aa-bb-cc-dd-ee-ff.toml")),
	})
	var out bytes.Buffer
	run([]string{"validate", "--config-dir", dir}, &out, &out)
	if want := `profiles: "nope": profiles/nope.toml does not exist`; !strings.Contains(out.String(), want) || strings.Contains(out.String(), "being changed") {
		t.Errorf("validate right after an edit:\n%s\nwant %q and nothing of a deploy", out.String(), want)
	}
}

// TestValidateSaysASharedMistakeOnce: a typo in defaults.toml is one line,
// with how many hosts it affects, not a line a host.
func TestValidateSaysASharedMistakeOnce(t *testing.T) {
	defaults := strings.Replace(string(mustRead(t, "examples/config/defaults.toml")), `keyboard = "en-us"`, `keyboard = "en-uss"`, 1)
	files := map[string]string{"defaults.toml": defaults}
	const hosts = 500
	for i := range hosts {
		files[fmt.Sprintf("hosts/02-00-00-00-%02x-%02x.toml", i/256, i%256)] = fmt.Sprintf("hostname = \"pve-%d\"\n[disk]\ntarget = \"sda\"\n", i)
	}
	var out bytes.Buffer
	err := run([]string{"validate", "--release", "9.2", "--config-dir", writeTree(t, files)}, &out, &out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`defaults.toml: global.keyboard: "en-uss" is not one of`,
		"(in the answers of all 500 hosts)",
	}
	if !errors.Is(err, errValidate) || len(lines) != 2 || !strings.Contains(lines[0], want[0]) || !strings.HasSuffix(lines[0], want[1]) {
		t.Errorf("validate with a typo in defaults.toml and %d hosts = %v, %d lines:\n%.600s\nwant 2 lines, the first %q ... %q", hosts, err, len(lines), out.String(), want[0], want[1])
	}
}
