// Tests of writing the answer as TOML.

package main

import "testing"

func TestRender(t *testing.T) {
	answer := func() map[string]any {
		return map[string]any{
			"first-boot": map[string]any{"source": "from-iso"},
			"disk-setup": map[string]any{"filesystem": "zfs", "disk-list": []any{"sda", "sdb"},
				"zfs": map[string]any{"raid": "raid1", "arc-max": int64(2048)}},
			"network": map[string]any{"source": "from-dhcp"},
			"global": map[string]any{"root-password": "it's secret", "fqdn": "pve.example.com",
				"reboot-on-error": false, "root-ssh-keys": []any{"ssh-ed25519 AAAA"}},
		}
	}
	for _, tc := range []struct {
		name string
		rel  release
		ans  map[string]any
		want string
	}{
		{"tables_in_the_installers_order_values_before_sub_tables", r92, answer(), `[global]
fqdn = 'pve.example.com'
reboot-on-error = false
root-password = "it's secret"
root-ssh-keys = ['ssh-ed25519 AAAA']

[network]
source = 'from-dhcp'

[disk-setup]
disk-list = ['sda', 'sdb']
filesystem = 'zfs'

[disk-setup.zfs]
arc-max = 2048
raid = 'raid1'

[first-boot]
source = 'from-iso'
`},
		{"snake_case_for_8_3", r83, answer(), `[global]
fqdn = 'pve.example.com'
reboot_on_error = false
root_password = "it's secret"
root_ssh_keys = ['ssh-ed25519 AAAA']

[network]
source = 'from-dhcp'

[disk-setup]
disk_list = ['sda', 'sdb']
filesystem = 'zfs'

[disk-setup.zfs]
arc_max = 2048
raid = 'raid1'

[first-boot]
source = 'from-iso'
`},
		{"no_optional_tables", r92, map[string]any{
			"global":     map[string]any{"fqdn": "a.b"},
			"network":    map[string]any{"source": "from-dhcp"},
			"disk-setup": map[string]any{"filesystem": "ext4"},
		}, "[global]\nfqdn = 'a.b'\n\n[network]\nsource = 'from-dhcp'\n\n[disk-setup]\nfilesystem = 'ext4'\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := render(tc.ans, tc.rel)
			if err != nil || string(got) != tc.want {
				t.Errorf("render = %v\n%s\nwant\n%s", err, got, tc.want)
			}
		})
	}
}
