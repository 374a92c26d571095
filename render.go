// The answer as TOML, written by go-toml.

package main

import (
	"github.com/pelletier/go-toml/v2"
)

// render writes the answer as deterministic TOML with go-toml: [global],
// [network], [disk-setup], then the optional tables, keys sorted within
// each table, spelled for the requesting release.
func render(ans map[string]any, rel release) ([]byte, error) {
	if rel.snakeCase() {
		for _, s := range snakeKeys {
			if t, _ := lookup(ans, s.table...).(map[string]any); t != nil {
				if v, ok := t[s.kebab]; ok {
					delete(t, s.kebab)
					t[s.snake] = v
				}
			}
		}
	}
	// A struct, not the map, keeps the tables in the installer's order.
	doc := struct {
		Global    any `toml:"global"`
		Network   any `toml:"network"`
		DiskSetup any `toml:"disk-setup"`
		Webhook   any `toml:"post-installation-webhook,omitempty"`
		FirstBoot any `toml:"first-boot,omitempty"`
	}{ans["global"], ans["network"], ans["disk-setup"], ans["post-installation-webhook"], ans["first-boot"]}
	out, err := toml.Marshal(doc)
	if err != nil {
		return nil, &configError{"", "rendering the answer: " + err.Error()}
	}
	return out, nil
}
