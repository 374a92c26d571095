// Tests of the installer's rules.

package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// validAnswer is a complete native answer that every release from 8.4 takes.
const validAnswer = `[global]
keyboard = "de"
country = "at"
fqdn = "pve.example.com"
mailto = "ops@example.com"
timezone = "Europe/Vienna"
root-password = "12345678"

[network]
source = "from-dhcp"

[disk-setup]
filesystem = "zfs"
disk-list = ["sda", "sdb"]
zfs.raid = "raid1"
`

// static is a [network] table's body for a static address.
func static(cidr, gateway, dns string) string {
	return fmt.Sprintf("source = \"from-answer\"\ncidr = %q\ngateway = %q\ndns = %q\nfilter.ID_NET_NAME = \"eno1\"", cidr, gateway, dns)
}

// TestValidateRules pins each rule the installer enforces with an answer
// that breaks it: the answer is refused, for that reason, at that key.
// (Each edit is applied to validAnswer with strings.Replace.)
func TestValidateRules(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // the edit; old "" appends new
		release  release
		want     string
	}{
		{"valid_answer_passes", "", "", r92, ""},
		{"static_address_passes", `source = "from-dhcp"`, static("10.0.0.10/24", "10.0.0.1", "10.0.0.53"), r92, ""},
		{"static_ipv6_passes", `source = "from-dhcp"`, static("fd00::10/64", "fd00::1", "fd00::53"), r92, ""},
		{"gateway_outside_the_subnet", `source = "from-dhcp"`, static("10.0.0.10/24", "10.0.1.1", "10.0.0.53"), r92,
			`network.gateway: 10.0.1.1 is outside the host's subnet 10.0.0.0/24 (network.address 10.0.0.10/24), so the host cannot reach it`},
		{"gateway_is_the_host", `source = "from-dhcp"`, static("10.0.0.10/24", "10.0.0.10", "10.0.0.53"), r92,
			`network.gateway: 10.0.0.10 is the host's own address (network.address 10.0.0.10/24); the gateway is another machine`},
		{"host_is_the_network_address", `source = "from-dhcp"`, static("10.0.0.0/24", "10.0.0.1", "10.0.0.53"), r92,
			`network.cidr: 10.0.0.0 is the network address of 10.0.0.0/24, which no host can have`},
		{"host_is_the_broadcast_address", `source = "from-dhcp"`, static("10.0.0.255/24", "10.0.0.1", "10.0.0.53"), r92,
			`network.cidr: 10.0.0.255 is the broadcast address of 10.0.0.0/24, which no host can have`},
		{"point_to_point_31_has_no_broadcast", `source = "from-dhcp"`, static("10.0.0.0/31", "10.0.0.1", "10.0.0.53"), r92, ""},
		{"ipv4_host_with_ipv6_gateway", `source = "from-dhcp"`, static("10.0.0.10/24", "fd00::1", "10.0.0.53"), r92,
			`network.gateway: fd00::1 is an IPv6 address, but network.address 10.0.0.10/24 is IPv4`},
		{"ipv6_host_with_ipv4_dns", `source = "from-dhcp"`, static("fd00::10/64", "fd00::1", "10.0.0.53"), r92,
			`network.dns: 10.0.0.53 is an IPv4 address, but network.address fd00::10/64 is IPv6`},
		{"dns_not_an_ip", `source = "from-dhcp"`, static("10.0.0.10/24", "10.0.0.1", "dns.example.com"), r92,
			`network.dns: "dns.example.com" is not an IP address`},
		{"unknown_table", "", "\n[disk_setup]\nx = 1\n", r92, `disk_setup: unknown table; did you mean disk-setup?`},
		{"unknown_key_suggestion", `zfs.raid = "raid1"`, `zfs.raid = "raid1"` + "\nzfs.ashfit = 12", r92, `disk-setup.zfs.ashfit: unknown key; did you mean ashift?`},
		{"key_too_new_for_release", `timezone`, "reboot-mode = \"power-off\"\ntimezone", r83, `global.reboot-mode: the 8.3 installer does not know this key (it needs 8.4 or later)`},
		{"keyboard_enum", `keyboard = "de"`, `keyboard = "german"`, r92, `global.keyboard: "german" is not one of de, de-ch`},
		{"country_enum", `country = "at"`, `country = "AT"`, r92, `global.country: "AT" is not a country code the installer knows`},
		{"timezone_suggestion", `Europe/Vienna`, `Europe/Viena`, r92, `did you mean Europe/Vienna?`},
		{"timezone_utc_is_fine", `Europe/Vienna`, `UTC`, r92, ""},
		{"filesystem_enum", `filesystem = "zfs"`, `filesystem = "ZFS"`, r92, `disk-setup.filesystem: "ZFS" is not one of ext4, xfs, zfs, btrfs`},
		{"raid_uppercase_is_fine", `"raid1"`, `"RAID1"`, r92, ""},
		{"raid_mixed_case_refused", `"raid1"`, `"Raid1"`, r92, `disk-setup.zfs.raid: "Raid1" is not one of`},
		{"legacy_reboot_mode_is_served_from_8_4", `timezone`, "reboot_mode = \"power-off\"\ntimezone", r84, ""},
		{"legacy_reboot_mode_before_8_4_is_error", `timezone`, "reboot_mode = \"power-off\"\ntimezone", r83, `global.reboot_mode: the 8.3 installer does not know this key (it needs 8.4 or later)`},
		{"legacy_subscription_key_before_9_2_is_error", `timezone`, "subscription_key = \"pve2c-0123456789\"\ntimezone", r91, `global.subscription_key: the 9.1 installer does not know this key (it needs 9.2 or later)`},
		{"legacy_webhook_auth_token_is_served_on_9_2", "", "\n[post-installation-webhook]\nurl = \"https://10.0.0.2/x\"\nauth_token = \"t0ken\"\n", r92, ""},
		{"legacy_first_boot_cert_fingerprint_is_served", "", "\n[first-boot]\nsource = \"from-url\"\nurl = \"https://10.0.0.2/s\"\ncert_fingerprint = \"" + strings.Repeat("ab", 32) + "\"\n", r83, ""},
		{"reboot_mode_enum", `timezone`, "reboot-mode = \"halt\"\ntimezone", r92, `global.reboot-mode: "halt" is not one of reboot, power-off`},
		{"filter_match_enum", `disk-list = ["sda", "sdb"]`, "filter.ID_SERIAL = \"*x*\"\nfilter-match = \"some\"", r92, `disk-setup.filter-match: "some" is not one of any, all`},
		{"zfs_checksum_enum", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.checksum = \"md5\"", r92, `disk-setup.zfs.checksum: "md5" is not one of on, fletcher4, sha256`},
		{"zfs_compress_enum", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.compress = \"brotli\"", r92, `disk-setup.zfs.compress: "brotli" is not one of`},
		{"ashift_range", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.ashift = 17", r92, `disk-setup.zfs.ashift: 17 is not between 9 and 16`},
		{"copies_range", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.copies = 0", r92, `disk-setup.zfs.copies: 0 is not between 1 and 3`},
		{"arc_max_zero_is_zfs_default", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 0", r92, ""},
		{"arc_max_below_64_is_served", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 32", r92, ""},
		{"arc_max_negative_is_error", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = -1", r92, `disk-setup.zfs.arc-max: -1 is less than 0`},
		{"arc_max_float_refused", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 2048.0", r92, `disk-setup.zfs.arc-max: want a whole number, got the float 2048`},
		{"zfs_hdsize_minimum", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.hdsize = 1.5", r92, `disk-setup.zfs.hdsize: 1.5 is less than 2`},
		{"size_nan_refused", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.hdsize = nan", r92, `disk-setup.zfs.hdsize: want a size in GiB`},
		{"bool_type", `timezone`, "reboot-on-error = \"yes\"\ntimezone", r92, `global.reboot-on-error: want true or false, got the string "yes"`},
		{"ssh_keys_type", `timezone`, "root-ssh-keys = \"ssh-ed25519 AAAA\"\ntimezone", r92, `global.root-ssh-keys: want an array of strings`},
		{"fqdn_needs_a_dot", `pve.example.com`, `pve`, r92, `global.fqdn: "pve" is not fully qualified`},
		{"fqdn_label_characters", `pve.example.com`, `pve_01.example.com`, r92, `label "pve_01" may hold only letters, digits and inner hyphens`},
		{"fqdn_label_hyphen_edge", `pve.example.com`, `-pve.example.com`, r92, `label "-pve" may hold only`},
		{"fqdn_label_length", `pve.example.com`, strings.Repeat("a", 64) + ".example.com", r92, `must be 1 to 63 characters`},
		{"fqdn_total_length", `pve.example.com`, strings.Repeat("abcdefgh.", 28) + "com", r92, `is longer than 253 characters`},
		{"fqdn_host_all_digits", `pve.example.com`, `1234.example.com`, r92, `the host name must not be all digits`},
		{"fqdn_dhcp_table_before_8_4", `fqdn = "pve.example.com"`, `fqdn = { source = "from-dhcp" }`, r83, `global.fqdn: the 8.3 installer takes fqdn only as a name`},
		{"fqdn_dhcp_table_without_source_is_served", `fqdn = "pve.example.com"`, `fqdn = { domain = "example.com" }`, r84, ""},
		{"fqdn_empty_dhcp_table_is_served", `fqdn = "pve.example.com"`, `fqdn = {}`, r92, ""},
		{"fqdn_dhcp_table_source", `fqdn = "pve.example.com"`, `fqdn = { source = "from-answer" }`, r92, `global.fqdn.source: the string "from-answer" is not from-dhcp`},
		{"mailto_form", `ops@example.com`, `ops.example.com`, r92, `global.mailto: "ops.example.com" is not an e-mail address`},
		{"mailto_placeholder", `ops@example.com`, `mail@example.invalid`, r92, `the installer's placeholder`},
		{"password_bytes", `"12345678"`, `"1234567"`, r92, `global.root-password: must be at least 8 characters long`},
		{"password_counted_in_bytes", `"12345678"`, `"ääää"`, r92, ""},
		{"hash_form", `root-password = "12345678"`, `root-password-hashed = "secret-password"`, r92, `global.root-password-hashed: not a crypt(3) hash`},
		{"hash_not_crypt_says_the_install_would_lock_root_out", `root-password = "12345678"`, `root-password-hashed = "secret-password"`, r92, `the installer's parser would accept it unchecked, and the installed system would then accept no password for root`},
		{"no_password", `root-password = "12345678"`, ``, r92, "One of `global.root-password` or `global.root-password-hashed` must be set"},
		{"required_key_missing", `mailto = "ops@example.com"`, ``, r92, `global.mailto: missing`},
		{"dhcp_allows_no_static_keys", `source = "from-dhcp"`, "source = \"from-dhcp\"\ndns = \"10.0.0.1\"", r92, `network.dns: not allowed with source = "from-dhcp"`},
		{"static_needs_all_four", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/24\"", r92, `network.dns: missing`},
		{"cidr_prefix_range", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/33\"\ndns = \"10.0.0.1\"\ngateway = \"10.0.0.1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, `network.cidr: "10.0.0.10/33": invalid IP address`},
		{"cidr_without_prefix_is_error", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10\"\ndns = \"10.0.0.1\"\ngateway = \"10.0.0.1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, `network.cidr: "10.0.0.10" has no prefix length: the installer's parser would take it as 10.0.0.10/32, a network of this one address, and the installed host would reach no gateway; write it as "10.0.0.10/24"`},
		{"cidr_ipv6_without_prefix_is_error", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"2001:db8::10\"\ndns = \"2001:db8::1\"\ngateway = \"2001:db8::1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, `would take it as 2001:db8::10/128`},
		{"ip_form", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/24\"\ndns = \"10.0.0.256\"\ngateway = \"10.0.0.1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, `network.dns: "10.0.0.256" is not an IP address`},
		{"static_ipv6_is_fine", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"2001:db8::10/64\"\ndns = \"2001:db8::1\"\ngateway = \"2001:db8::1\"\nfilter.ID_NET_NAME = \"eno1\"", r92, ""},
		{"empty_filter", `disk-list = ["sda", "sdb"]`, `filter = {}`, r92, `disk-setup.filter: empty`},
		{"disk_filter_unclosed_class_is_error", `disk-list = ["sda", "sdb"]`, `filter.ID_SERIAL = "[abc"`, r92, `disk-setup.filter.ID_SERIAL: "[abc" is not a glob the installer can use (Pattern syntax error near position 0: invalid range pattern; a [ opens a class of characters that needs its ]; write [[] for a literal [): its parser takes it, but the install stops with "invalid glob in disk selection"`},
		{"disk_filter_recursive_wildcard_is_error", `disk-list = ["sda", "sdb"]`, "filter.ID_SERIAL = \"*S3Z*\"\nfilter.ID_MODEL = \"*X**\"", r92, `disk-setup.filter.ID_MODEL: "*X**" is not a glob the installer can use (Pattern syntax error near position 1: recursive wildcards must form a single path component;`},
		{"disk_filter_three_stars_is_error", `disk-list = ["sda", "sdb"]`, `filter.ID_SERIAL = "***"`, r82, `disk-setup.filter.ID_SERIAL: "***" is not a glob the installer can use (Pattern syntax error near position 2: wildcards are either regular`},
		{"nic_filter_unclosed_class_is_error", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/24\"\ndns = \"10.0.0.1\"\ngateway = \"10.0.0.1\"\nfilter.ID_NET_NAME = \"eno[1\"", r92, `network.filter.ID_NET_NAME: "eno[1" is not a glob the installer can use (Pattern syntax error near position 3: invalid range pattern`},
		{"disk_filter_class_and_braces_are_served", `disk-list = ["sda", "sdb"]`, `filter.ID_SERIAL = "[!a-z]{x,y}[]]*"`, r92, ""},
		{"disk_list_duplicate", `["sda", "sdb"]`, `["sda", "sdb", "sda"]`, r92, `List of disks contains duplicate device sda`},
		{"disk_named_twice_as_sda_and_dev_sda_is_error", `["sda", "sdb"]`, `["sda", "sdb", "/dev/sda"]`, r92, `hosts/aa-bb-cc-dd-ee-ff.toml: disk-setup.disk-list: "sda" and "/dev/sda" are one disk: the installer's parser would accept both, but the install would fail on a disk listed twice; list it once`},
		{"disk_list_and_filter_together", `disk-list = ["sda", "sdb"]`, "disk-list = [\"sda\", \"sdb\"]\nfilter.ID_SERIAL = \"*x*\"", r92, `disk-setup.disk-list and disk-setup.filter cannot be set at the same time`},
		{"filter_match_without_filter_or_disk_list", `disk-list = ["sda", "sdb"]`, `filter-match = "any"`, r92, `disk-setup.filter-match: set without disk-setup.filter`},
		{"filter_match_beside_disk_list_is_served", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nfilter-match = \"any\"", r92, ""},
		{"empty_disk_list_beside_filter_is_served", `disk-list = ["sda", "sdb"]`, "disk-list = []\nfilter.ID_SERIAL = \"*S3Z*\"", r92, ""},
		{"empty_disk_list_beside_filter_and_filter_match_is_served", `disk-list = ["sda", "sdb"]`, "disk-list = []\nfilter.ID_SERIAL = \"*S3Z*\"\nfilter-match = \"all\"", r82, ""},
		{"empty_disk_list_alone_is_error", `disk-list = ["sda", "sdb"]`, `disk-list = []`, r92, `disk-setup.disk-list: empty; name at least one disk`},
		{"raid10_disk_count", `zfs.raid = "raid1"`, `zfs.raid = "raid10"`, r92, `ZFS RAID10 needs at least 4 disks, got 2`},
		{"raid10_even_count", "disk-list = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"", "disk-list = [\"sda\", \"sdb\", \"sdc\", \"sdd\", \"sde\"]\nzfs.raid = \"raid10\"", r92, `ZFS RAID10 needs an even number of disks, got 5`},
		{"btrfs_raid10_odd_count_is_error", "filesystem = \"zfs\"\ndisk-list = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"", "filesystem = \"btrfs\"\ndisk-list = [\"sda\", \"sdb\", \"sdc\", \"sdd\", \"sde\"]\nbtrfs.raid = \"raid10\"", r92, `disk-setup.btrfs.raid: Btrfs RAID10 needs an even number of disks, got 5`},
		{"btrfs_raid10_odd_count_before_9_2_is_fine", "filesystem = \"zfs\"\ndisk-list = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"", "filesystem = \"btrfs\"\ndisk-list = [\"sda\", \"sdb\", \"sdc\", \"sdd\", \"sde\"]\nbtrfs.raid = \"raid10\"", r91, ""},
		{"btrfs_raid10_even_count_is_fine", "filesystem = \"zfs\"\ndisk-list = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"", "filesystem = \"btrfs\"\ndisk-list = [\"sda\", \"sdb\", \"sdc\", \"sdd\", \"sde\", \"sdf\"]\nbtrfs.raid = \"RAID10\"", r92, ""},
		{"raidz2_disk_count", `zfs.raid = "raid1"`, `zfs.raid = "raidz-2"`, r92, `ZFS RAIDZ-2 needs at least 4 disks, got 2`},
		{"raidz3_disk_count", `zfs.raid = "raid1"`, `zfs.raid = "RAIDZ-3"`, r92, `ZFS RAIDZ-3 needs at least 5 disks, got 2`},
		{"btrfs_raid_enum", `filesystem = "zfs"`, "filesystem = \"btrfs\"\nbtrfs.raid = \"raidz-1\"", r92, `disk-setup.btrfs.raid: "raidz-1" is not one of raid0, raid1, raid10`},
		{"btrfs_compress_before_8_3", `filesystem = "zfs"`, "filesystem = \"btrfs\"\nbtrfs.raid = \"raid1\"\nbtrfs.compress = \"zstd\"", r82, `disk-setup.btrfs.compress: the 8.2 installer does not know this key`},
		{"options_of_another_filesystem", `filesystem = "zfs"`, "filesystem = \"ext4\"\nlvm.swapsize = 4", r92, `disk-setup.zfs: options for zfs, but filesystem is ext4`},
		{"ext4_one_disk", `filesystem = "zfs"`, `filesystem = "xfs"`, r92, `disk-setup.disk-list: xfs installs on one disk, got 2`},
		{"swap_at_most_half", "filesystem = \"zfs\"\ndisk-list = [\"sda\", \"sdb\"]\nzfs.raid = \"raid1\"", "filesystem = \"ext4\"\ndisk-list = [\"sda\"]\nlvm.hdsize = 32\nlvm.swapsize = 16.01", r92, `Swap size 16.01 GiB cannot be greater than 16 GiB (hard disk size / 2)`},
		{"webhook_url_form", "", "\n[post-installation-webhook]\nurl = \"ftp://10.0.0.2/x\"\n", r92, `post-installation-webhook.url: "ftp://10.0.0.2/x" is not an http:// or https:// URL`},
		{"webhook_fingerprint_form", "", "\n[post-installation-webhook]\nurl = \"https://10.0.0.2/x\"\ncert-fingerprint = \"abcd\"\n", r92, `is not a SHA-256 fingerprint`},
		{"webhook_token_before_9_2", "", "\n[post-installation-webhook]\nurl = \"https://10.0.0.2/x\"\nauth-token = \"t\"\n", r91, `post-installation-webhook.auth-token: the 9.1 installer does not know this key`},
		{"webhook_empty_auth_token_is_error", "", "\n[post-installation-webhook]\nurl = \"https://10.0.0.2/x\"\nauth-token = \"\"\n", r92, `post-installation-webhook.auth-token: empty: the installer's parser would accept it, but the install would fail; set a token, or remove auth-token`},
		{"first_boot_from_url_needs_url", "", "\n[first-boot]\nsource = \"from-url\"\n", r92, `first-boot.url: missing`},
		{"first_boot_ordering_enum", "", "\n[first-boot]\nsource = \"from-iso\"\nordering = \"late\"\n", r92, `first-boot.ordering: "late" is not one of before-network, network-online, fully-up`},
		{"pinning_mapping_without_enabled_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"lan0\"", r92, "network.interface-name-pinning: has no enabled, without which the installer refuses the table (\"missing field `enabled`\"): add enabled = true"},
		{"pinning_mapping_without_enabled_is_error_on_9_1", `source = "from-dhcp"`, "source = \"from-dhcp\"\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"lan0\"", r91, "network.interface-name-pinning: has no enabled"},
		{"pinning_enabled_false_alone_is_fine", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = false", r92, ""},
		{"pinning_before_9_1", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true", r84, `network.interface-name-pinning: the 8.4 installer does not know this key`},
		{"pinning_name_length", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"nameoverfifteenchars\"", r92, `interface name 'nameoverfifteenchars' for 'ab:cd:ef:12:34:56' cannot be longer than 15 characters`},
		{"pinning_name_form", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"lan-0\"", r92, `interface name 'lan-0' for 'ab:cd:ef:12:34:56': want 2 to 15 letters`},
		{"pinning_names_unique", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"lan0\"\n\"ab:cd:ef:12:34:57\" = \"lan0\"", r92, `interface name 'lan0' is given to both`},
		{"pinning_uppercase_name_on_9_1", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"LAN0\"", r91, `network.interface-name-pinning.mapping."ab:cd:ef:12:34:56": interface name 'LAN0': uppercase needs a 9.1.3 or later installer (9.1.0 to 9.1.2 take only lowercase letters, digits and _), and a 9.1 ISO does not say which 9.1 it is: write 'lan0', or boot a 9.2 or later ISO`},
		{"pinning_vlan_suffix_on_9_2_is_served", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"mgmt.10\"", r92, ``},
		{"pinning_alias_suffix_on_9_2_is_served", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"mgmt:1\"", r92, ``},
		{"pinning_uppercase_with_suffix_on_9_2_is_served", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"MGMT.10\"", r92, ``},
		{"pinning_vlan_suffix_on_9_1_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"mgmt.10\"", r91, `interface name 'mgmt.10': a VLAN or alias suffix needs a 9.1.3 or later installer (9.1.0 to 9.1.2 take only lowercase letters, digits and _), and a 9.1 ISO does not say which 9.1 it is: boot a 9.2 or later ISO`},
		{"pinning_lowercase_on_9_1_is_served", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"lan_0\"", r91, ``},
		{"pinning_suffix_without_digits_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"mgmt.x\"", r92, `interface name 'mgmt.x' for 'ab:cd:ef:12:34:56': want 2 to 15 letters, digits or _, starting with a letter, and optionally a VLAN or alias suffix such as .10 or :1`},
		{"pinning_empty_suffix_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"mgmt:\"", r92, `interface name 'mgmt:' for 'ab:cd:ef:12:34:56': want 2 to`},
		{"pinning_two_suffixes_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"mgmt.10.20\"", r92, `interface name 'mgmt.10.20' for 'ab:cd:ef:12:34:56': want 2 to`},
		{"pinning_one_letter_before_suffix_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"m.10\"", r92, `interface name 'm.10' for 'ab:cd:ef:12:34:56': want 2 to`},
		{"pinning_name_starting_with_a_digit_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"0lan\"", r92, `interface name '0lan' for 'ab:cd:ef:12:34:56': want 2 to`},
		{"pinning_name_with_suffix_counts_to_15", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"managementl.100\"", r92, ``},
		{"pinning_name_with_suffix_over_15_is_error", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"managementla.100\"", r92, `interface name 'managementla.100' for 'ab:cd:ef:12:34:56' cannot be longer than 15 characters`},
		{"pinning_uppercase_name_on_9_2", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"ab:cd:ef:12:34:56\" = \"LAN0\"", r92, ``},
		{"pinning_mac_form", `source = "from-dhcp"`, "source = \"from-dhcp\"\ninterface-name-pinning.enabled = true\n[network.interface-name-pinning.mapping]\n\"eno1\" = \"lan0\"", r92, `"eno1" is not a MAC address`},
		{"secret_values_never_echoed", `root-password = "12345678"`, `root-password = 87654321`, r92, `global.root-password: want a string, got a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := composeEdit(t, tt.old, tt.new, tt.release)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("compose = %v; want it served", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("compose = %v; want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "87654321") {
				t.Errorf("error echoes a password: %v", err)
			}
		})
	}
}

// composeEdit composes validAnswer, edited: old replaced by new, or new
// appended where old is "". It returns the warnings and the error.
func composeEdit(t *testing.T, old, new string, rel release) ([]problem, error) {
	t.Helper()
	answer := validAnswer + new
	if old != "" {
		if !strings.Contains(validAnswer, old) {
			t.Fatalf("validAnswer has no %q to replace", old)
		}
		answer = strings.Replace(validAnswer, old, new, 1)
	}
	l, err := parseLayer("hosts/aa-bb-cc-dd-ee-ff.toml", []byte(answer))
	if err != nil {
		return nil, err
	}
	_, warnings, err := composeWithWarnings([]layer{l}, facts{mac: "aabbccddeeff", release: rel, btrfs: true})
	return warnings, err
}

// TestValidateWarnings pins what the installer takes, but not as the
// operator may think: the answer is served, with a warning at that key.
func TestValidateWarnings(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // the edit, as in TestValidateRules
		release  release
		want     string // the one warning, "key: message"; "" for none
	}{
		{"valid_answer_has_no_warning", "", "", r92, ""},
		{"arc_max_zero_has_no_warning", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 0", r92, ""},
		{"arc_max_64_has_no_warning", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 64", r92, ""},
		{"arc_max_below_64_is_raised", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nzfs.arc-max = 63", r92, `disk-setup.zfs.arc-max: 63 MiB is below the installer's minimum, so it uses 64 MiB`},
		{"disk_filter_braces_are_literal", `disk-list = ["sda", "sdb"]`, `filter.ID_MODEL = "{Samsung,Micron}*"`, r92, `disk-setup.filter.ID_MODEL: "{Samsung,Micron}*": the installer's globs have no {a,b} alternatives, so braces match only themselves`},
		{"nic_filter_braces_are_literal", `source = "from-dhcp"`, "source = \"from-answer\"\ncidr = \"10.0.0.10/24\"\ndns = \"10.0.0.1\"\ngateway = \"10.0.0.1\"\nfilter.ID_NET_NAME = \"eno{1,2}\"", r92, `network.filter.ID_NET_NAME: "eno{1,2}": the installer's globs have no {a,b} alternatives`},
		{"pxe_pilots_own_nic_filter_has_no_warning", `source = "from-dhcp"`, `cidr = "10.0.0.10/24"` + "\ndns = \"10.0.0.1\"\ngateway = \"10.0.0.1\"", r92, ""},
		{"filter_match_beside_disk_list_is_ignored", `zfs.raid = "raid1"`, "zfs.raid = \"raid1\"\nfilter-match = \"all\"", r92, `disk-setup.filter-match: ignored beside a disk-list: it says how the entries of a filter combine`},
		{"filter_match_beside_filter_has_no_warning", `disk-list = ["sda", "sdb"]`, "filter.ID_SERIAL = \"*S3Z*\"\nfilter-match = \"all\"", r92, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings, err := composeEdit(t, tt.old, tt.new, tt.release)
			if err != nil {
				t.Fatalf("compose = %v; want it served", err)
			}
			var got []string
			for _, p := range warnings {
				got = append(got, p.key()+": "+p.msg)
			}
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("warnings = %q; want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("warnings = %q; want one containing %q", got, tt.want)
			}
		})
	}
}

// TestGlobError holds globError to the Rust glob crate's Pattern::new: what
// it takes, and for what it refuses, its position and complaint.
func TestGlobError(t *testing.T) {
	const (
		class     = "invalid range pattern"
		recursive = "recursive wildcards must form a single path component"
		stars     = "wildcards are either regular `*` or recursive `**`"
	)
	tests := []struct {
		pattern string
		pos     int
		msg     string // "" for a valid glob
	}{
		{"", 0, ""},
		{"eno1", 0, ""},
		{"*", 0, ""},
		{"?", 0, ""},
		{"*S3Z*", 0, ""},
		{"Samsung SSD 9?0*", 0, ""},
		{"*aabbccddeeff", 0, ""}, // the NIC filter pxe-pilot writes
		{"[abc]", 0, ""},
		{"[a-z]", 0, ""},
		{"[!a-z]", 0, ""},
		{"[]]", 0, ""},  // a ']' first is one of the class
		{"[!]]", 0, ""}, // and so after "[!"
		{"[]a]", 0, ""},
		{"[a-]", 0, ""},
		{"[-a]", 0, ""},
		{"[-]", 0, ""},
		{"[z-a]", 0, ""}, // a range that matches nothing is no error
		{"[[]", 0, ""},
		{"[*]", 0, ""},
		{"[**]", 0, ""},
		{"[?]x[!?]", 0, ""},
		{"]", 0, ""},
		{"a]", 0, ""},
		{"!a", 0, ""},
		{"**", 0, ""},
		{"**/b", 0, ""},
		{"a/**", 0, ""},
		{"a/**/b", 0, ""},
		{"/**/x", 0, ""},
		{"**/**", 0, ""},
		{"{a,b}", 0, ""}, // braces are plain characters
		{`\*`, 0, ""},    // so is a backslash: it escapes nothing
		{`[\]]`, 0, ""},  // the class of '\', then a ']'
		{"[abc", 0, class},
		{"eno[1", 3, class},
		{"[", 0, class},
		{"abc[", 3, class},
		{"[!", 0, class},
		{"[!]", 0, class},
		{"[]", 0, class},
		{"abc[]", 3, class},
		{"abc[!]", 3, class},
		{"[!ab", 0, class},
		{"abc[d", 3, class},
		{`\[`, 1, class}, // a backslash does not make '[' plain
		{"é[", 1, class}, // positions count characters, not bytes
		{"*X**", 1, recursive},
		{"a**", 0, recursive},
		{"**b", 2, recursive},
		{"a**b", 0, recursive},
		{"a/**b", 4, recursive},
		{"a/bc**", 3, recursive},
		{"a/b**c**d", 2, recursive},
		{`\**`, 0, recursive},
		{"***", 2, stars},
		{"a/*****", 4, stars},
	}
	for _, tt := range tests {
		pos, msg := globError(tt.pattern)
		if msg != tt.msg || msg != "" && pos != tt.pos {
			t.Errorf("globError(%q) = %d, %q; want %d, %q", tt.pattern, pos, msg, tt.pos, tt.msg)
		}
		if msg != "" && globHints[msg] == "" {
			t.Errorf("globError(%q) = %q, which has no hint", tt.pattern, msg)
		}
	}
}

// TestUnknownKeysGetASuggestion: every unknown key, at the top too, is
// called a key (a table only where it is one) and held against the keys
// its table takes as the file wrote it: the installer's and pxe-pilot's.
func TestUnknownKeysGetASuggestion(t *testing.T) {
	const host = friendlyHost
	tests := []struct {
		name string
		host string
		want string // the whole problem, as answerError.lines says it
	}{
		{"top_level_hostname_typo", "hostnme = \"pve\"\n" + host, "hostnme: unknown key; did you mean hostname?"},
		{"top_level_profile_for_profiles", "profile = [\"rack-a\"]\n" + host, "profile: unknown key; did you mean profiles?"},
		{"top_level_first_boot_script_typo", "first-boot-scrpit = \"scripts/a.sh\"\n" + host, "first-boot-scrpit: unknown key; did you mean first-boot-script?"},
		{"top_level_first_boot_ordering_in_snake_case", "first_boot_ordering = \"fully-up\"\n" + host, "first_boot_ordering: unknown key; did you mean first-boot-ordering?"},
		{"top_level_key_far_from_any", "colour = \"blue\"\n" + host, "colour: unknown key"},
		{"top_level_table_typo", host + "[disk_setup]\nfilesystem = \"zfs\"\n", "disk_setup: unknown table; did you mean disk-setup?"},
		{"top_level_friendly_table_typo", host + "[disks]\nfilesystem = \"zfs\"\n", "disks: unknown table; did you mean disk?"},
		{"disk_targets", "hostname = \"pve\"\n[disk]\ntargets = \"sda\"\n", "disk.targets: unknown key; did you mean target?"},
		{"disk_native_key_typo", host + "filesytem = \"zfs\"\n", "disk.filesytem: unknown key; did you mean filesystem?"},
		{"disk_snake_key_typo", host + "disk_lst = [\"sda\"]\n", "disk.disk_lst: unknown key; did you mean disk_list?"},
		{"disk_zfs_snake_key_typo", host + "zfs.arc_mx = 64\n", "disk.zfs.arc_mx: unknown key; did you mean arc_max?"},
		{"disk_setup_takes_no_target", host + "[disk-setup]\ntargets = [\"sda\"]\n", "disk-setup.targets: unknown key"},
		{"network_adress", host + "[network]\nadress = \"10.0.0.10/24\"\n", "network.adress: unknown key; did you mean address?"},
		{"global_root_password_hash_typo", host + "[global]\nroot_password_hsh = \"$6$salt$hash\"\n", "global.root_password_hsh: unknown key; did you mean root_password_hash?"},
		{"global_domain_typo", host + "[global]\ndomian = \"example.org\"\n", "global.domian: unknown key; did you mean domain?"},
		{"global_hostname_typo", "[global]\nhostnam = \"pve\"\n[disk]\ntarget = \"sda\"\n", "global.hostnam: unknown key; did you mean hostname?"},
		{"global_native_key_typo", host + "[global]\nkeybord = \"de\"\n", "global.keybord: unknown key; did you mean keyboard?"},
		{"global_table_is_called_a_table", host + "[global.keyboards]\nlayout = \"de\"\n", "global.keyboards: unknown table; did you mean keyboard?"},
		{"fqdn_table_key_typo", "[global]\nfqdn = { sorce = \"from-dhcp\" }\n[disk]\ntarget = \"sda\"\n", "global.fqdn.sorce: unknown key; did you mean source?"},
		{"webhook_snake_key_typo", host + "[post-installation-webhook]\nurl = \"https://10.0.0.2/x\"\ncert_fingerprnt = \"ab\"\n", "post-installation-webhook.cert_fingerprnt: unknown key; did you mean cert_fingerprint?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if lines := problemLines(t, friendlyDefaults, tt.host, r92); !slices.Contains(lines, tt.want) {
				t.Errorf("problems = %q; want %q", lines, tt.want)
			}
		})
	}
}
