// Tests of translating friendly keys to the installer's.

package main

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseLayerRejectsBothSidesInOneFile writes each choice as a user
// would, in friendly spellings and native ones mixed.
func TestParseLayerRejectsBothSidesInOneFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		toml    string
		wantErr []string
	}{
		{"root_password_and_root_password_hash", hostFile,
			"[global]\nroot_password = \"hostpassword\"\nroot_password_hash = \"$6$salt$hash\"\n",
			[]string{"global.root_password and global.root_password_hash cannot be set"}},
		{"root_password_and_native_hash_in_defaults", "defaults.toml",
			"[global]\nroot_password = \"hostpassword\"\nroot-password-hashed = \"$6$salt$hash\"\n",
			[]string{"global.root_password and global.root-password-hashed cannot be set"}},
		{"top_level_hostname_and_global_fqdn", hostFile,
			"hostname = \"pve1\"\n[global]\nfqdn = \"pve1.example.com\"\n",
			[]string{"hostname", "global.fqdn"}},
		{"disk_target_and_disk_setup_filter", hostFile,
			"[disk]\ntarget = \"/dev/sda\"\n[disk-setup.filter]\nID_SERIAL = \"*S3Z*\"\n",
			[]string{"disk.target and disk-setup.filter cannot be set"}},
		{"network_address_and_dhcp_source", "defaults.toml",
			"[network]\naddress = \"10.0.0.10/24\"\nsource = \"from-dhcp\"\n",
			[]string{"network.address", `network.source = "from-dhcp"`}},
		{"first_boot_script_and_native_first_boot", hostFile,
			"first-boot-script = \"scripts/a.sh\"\n[first-boot]\nsource = \"from-iso\"\n",
			[]string{"first-boot-script", "[first-boot] source"}},
		{"reboot_mode_spelled_twice", hostFile,
			"[global]\nreboot_mode = \"power-off\"\nreboot-mode = \"reboot\"\n",
			[]string{"global.reboot_mode and global.reboot-mode are one key spelled twice; keep reboot-mode"}},
		{"webhook_auth_token_spelled_twice", hostFile,
			"[post-installation-webhook]\nauth_token = \"a\"\nauth-token = \"b\"\n",
			[]string{"post-installation-webhook.auth_token and post-installation-webhook.auth-token are one key spelled twice"}},
		{"first_boot_ordering_written_twice", hostFile,
			"first-boot-ordering = \"fully-up\"\n[first-boot]\nordering = \"network-online\"\n",
			[]string{"first-boot-ordering: also set as first-boot.ordering in this file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLayer(tc.file, []byte(tc.toml))
			if err == nil {
				t.Fatalf("parseLayer(%q, %q) = nil error; want one naming %s", tc.file, tc.toml, strings.Join(tc.wantErr, " and "))
			}
			if !strings.HasPrefix(err.Error(), tc.file+": ") {
				t.Errorf("parseLayer(%q, %q) = %q; want it to start with %q", tc.file, tc.toml, err, tc.file+": ")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("parseLayer(%q, %q) = %q; want it to mention %s", tc.file, tc.toml, err, w)
				}
			}
		})
	}
}

func TestParseLayerTranslates(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want tree
	}{
		{"top_level_hostname_moves_to_global",
			`hostname = "pve1"`,
			tree{"global": tree{"hostname": "pve1"}}},
		{"first_boot_script_and_ordering_move_to_first_boot",
			"first-boot-script = \"scripts/s.sh\"\nfirst-boot-ordering = \"network-online\"\n",
			tree{"first-boot": tree{"script": "scripts/s.sh", "ordering": "network-online"}}},
		{"top_level_hostname_joins_global",
			"hostname = \"pve1\"\n[global]\nkeyboard = \"de\"\n",
			tree{"global": tree{"hostname": "pve1", "keyboard": "de"}}},
		{"global_hostname_stays",
			"[global]\nhostname = \"pve1\"\n",
			tree{"global": tree{"hostname": "pve1"}}},
		{"disk_becomes_disk_setup",
			"[disk]\nfilesystem = \"zfs\"\n[disk.zfs]\nraid = \"raid1\"\n",
			tree{"disk-setup": tree{"filesystem": "zfs", "zfs": tree{"raid": "raid1"}}}},
		{"native_disk_setup_wins_key_by_key_in_one_file",
			"[disk]\nfilesystem = \"ext4\"\ntarget = \"sda\"\n[disk.zfs]\nraid = \"raid1\"\nashift = 12\n" +
				"[disk-setup]\nfilesystem = \"zfs\"\n[disk-setup.zfs]\nraid = \"raid10\"\n",
			tree{"disk-setup": tree{"filesystem": "zfs", "disk-list": []any{"sda"}, "zfs": tree{"raid": "raid10", "ashift": int64(12)}}}},
		{"disk_target_string_with_dev_prefix",
			"[disk]\ntarget = \"/dev/sda\"\n",
			tree{"disk-setup": tree{"disk-list": []any{"sda"}}}},
		{"disk_target_array",
			"[disk]\ntarget = [\"/dev/sda\", \"nvme0n1\"]\n",
			tree{"disk-setup": tree{"disk-list": []any{"sda", "nvme0n1"}}}},
		{"empty_disk_list_beside_filter_in_one_file",
			"[disk-setup]\ndisk-list = []\nfilter.ID_SERIAL = \"*S3Z*\"\n",
			tree{"disk-setup": tree{"disk-list": []any{}, "filter": tree{"ID_SERIAL": "*S3Z*"}}}},
		{"disk_setup_disk_list_loses_dev_prefix",
			"[disk-setup]\ndisk-list = [\"/dev/sdb\"]\n",
			tree{"disk-setup": tree{"disk-list": []any{"sdb"}}}},
		{"root_password_becomes_kebab",
			"[global]\nroot_password = \"hostpassword\"\n",
			tree{"global": tree{"root-password": "hostpassword"}}},
		{"root_password_hashed_becomes_kebab",
			"[global]\nroot_password_hashed = \"$6$salt$hash\"\n",
			tree{"global": tree{"root-password-hashed": "$6$salt$hash"}}},
		{"root_ssh_keys_becomes_kebab",
			"[global]\nroot_ssh_keys = [\"ssh-ed25519 AAAA\"]\n",
			tree{"global": tree{"root-ssh-keys": []any{"ssh-ed25519 AAAA"}}}},
		{"reboot_on_error_becomes_kebab",
			"[global]\nreboot_on_error = true\n",
			tree{"global": tree{"reboot-on-error": true}}},
		{"disk_list_becomes_kebab",
			"[disk-setup]\ndisk_list = [\"sda\"]\n",
			tree{"disk-setup": tree{"disk-list": []any{"sda"}}}},
		{"filter_match_becomes_kebab",
			"[disk-setup]\nfilter_match = \"all\"\n",
			tree{"disk-setup": tree{"filter-match": "all"}}},
		{"zfs_arc_max_becomes_kebab",
			"[disk-setup.zfs]\narc_max = 2048\n",
			tree{"disk-setup": tree{"zfs": tree{"arc-max": int64(2048)}}}},
		{"webhook_cert_fingerprint_becomes_kebab",
			"[post-installation-webhook]\ncert_fingerprint = \"ab:cd\"\n",
			tree{"post-installation-webhook": tree{"cert-fingerprint": "ab:cd"}}},
		{"disk_snake_keys_become_kebab_under_friendly_disk",
			"[disk]\ndisk_list = [\"/dev/sda\"]\nfilter_match = \"any\"\n[disk.zfs]\narc_max = 4096\n",
			tree{"disk-setup": tree{"disk-list": []any{"sda"}, "filter-match": "any", "zfs": tree{"arc-max": int64(4096)}}}},
		{"reboot_mode_becomes_kebab",
			"[global]\nreboot_mode = \"power-off\"\n",
			tree{"global": tree{"reboot-mode": "power-off"}}},
		{"subscription_key_becomes_kebab",
			"[global]\nsubscription_key = \"pve2c-0123456789\"\n",
			tree{"global": tree{"subscription-key": "pve2c-0123456789"}}},
		{"first_boot_cert_fingerprint_becomes_kebab",
			"[first-boot]\ncert_fingerprint = \"ab:cd\"\n",
			tree{"first-boot": tree{"cert-fingerprint": "ab:cd"}}},
		{"webhook_auth_token_becomes_kebab",
			"[post-installation-webhook]\nauth_token = \"t0ken\"\n",
			tree{"post-installation-webhook": tree{"auth-token": "t0ken"}}},
		{"disk_setup_filter_keeps_udev_spelling",
			"[disk-setup.filter]\nID_SERIAL = \"*S3Z*\"\nID_MODEL = \"Samsung*\"\n",
			tree{"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*", "ID_MODEL": "Samsung*"}}}},
		{"disk_filter_keeps_udev_spelling",
			"[disk.filter]\nID_SERIAL = \"*S3Z*\"\n",
			tree{"disk-setup": tree{"filter": tree{"ID_SERIAL": "*S3Z*"}}}},
		{"network_filter_keeps_udev_spelling",
			"[network.filter]\nID_NET_NAME_MAC = \"*aabbccddeeff\"\n",
			tree{"network": tree{"filter": tree{"ID_NET_NAME_MAC": "*aabbccddeeff"}}}},
		{"network_address_becomes_cidr",
			"[network]\naddress = \"10.0.0.10/24\"\n",
			tree{"network": tree{"cidr": "10.0.0.10/24"}}},
		{"native_cidr_wins_over_address_in_one_file",
			"[network]\naddress = \"10.0.0.10/24\"\ncidr = \"10.0.0.11/24\"\n",
			tree{"network": tree{"cidr": "10.0.0.11/24"}}},
		{"root_password_hash_becomes_root_password_hashed",
			"[global]\nroot_password_hash = \"$6$salt$hash\"\n",
			tree{"global": tree{"root-password-hashed": "$6$salt$hash"}}},
		{"pinning_mapping_keys_are_lowercased",
			"[network.interface-name-pinning.mapping]\n\"AA:BB:CC:DD:EE:FF\" = \"nic0\"\n\"11:22:33:44:55:6a\" = \"nic1\"\n",
			tree{"network": tree{"interface-name-pinning": tree{"mapping": tree{"aa:bb:cc:dd:ee:ff": "nic0", "11:22:33:44:55:6a": "nic1"}}}}},
		{"unknown_keys_pass_through",
			"colour = \"blue\"\n[global]\nroot_passwd = \"x\"\n",
			tree{"colour": "blue", "global": tree{"root_passwd": "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseLayer(hostFile, []byte(tc.toml))
			if err != nil {
				t.Fatalf("parseLayer(%q) = %v", tc.toml, err)
			}
			if l.name != hostFile {
				t.Errorf("parseLayer(%q).name = %q; want %q", tc.toml, l.name, hostFile)
			}
			if !reflect.DeepEqual(l.tree, tc.want) {
				t.Errorf("parseLayer(%q).tree\n = %v\nwant %v", tc.toml, l.tree, tc.want)
			}
		})
	}
}

// TestParseLayerNotesLegacySpellings: the snake_case spellings the
// installer takes only as legacy aliases are noted, for validate to warn
// of; the ones 8.2 and 8.3 need are not.
func TestParseLayerNotesLegacySpellings(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"kebab_case_has_no_note",
			"[global]\nreboot-mode = \"power-off\"\nsubscription-key = \"k\"\n", nil},
		{"snake_case_that_8_2_needs_has_no_note",
			"[global]\nroot_password = \"hostpassword\"\n[disk-setup]\ndisk_list = [\"sda\"]\n", nil},
		{"all_four_legacy_spellings_are_noted",
			"[global]\nreboot_mode = \"power-off\"\nsubscription_key = \"k\"\n[first-boot]\ncert_fingerprint = \"ab\"\n[post-installation-webhook]\nauth_token = \"t\"\n",
			[]string{
				"global.reboot_mode: the installer's own spelling is reboot-mode, which pxe-pilot serves; reboot_mode is a legacy alias Proxmox plans to drop",
				"global.subscription_key: the installer's own spelling is subscription-key, which pxe-pilot serves; subscription_key is a legacy alias Proxmox plans to drop",
				"first-boot.cert_fingerprint: the installer's own spelling is cert-fingerprint, which pxe-pilot serves; cert_fingerprint is a legacy alias Proxmox plans to drop",
				"post-installation-webhook.auth_token: the installer's own spelling is auth-token, which pxe-pilot serves; auth_token is a legacy alias Proxmox plans to drop",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseLayer(hostFile, []byte(tc.toml))
			if err != nil {
				t.Fatalf("parseLayer(%q) = %v", tc.toml, err)
			}
			if !reflect.DeepEqual(l.notes, tc.want) {
				t.Errorf("parseLayer(%q).notes\n = %q\nwant %q", tc.toml, l.notes, tc.want)
			}
		})
	}
}
