// Package packs embeds riskflow's shipped rule packs; the default pack is what a node runs when no
// scoring.rules file is configured. The files are the risk team's: edit them, run
// `riskflow rules lint` and `riskflow rules test`, ship them without a redeploy.
package packs

import "embed"

// FS holds every shipped pack: <name>/rules.yaml and <name>/tests.yaml.
//
//go:embed default/rules.yaml default/tests.yaml
var FS embed.FS

// Default returns the default pack's YAML.
func Default() []byte {
	b, err := FS.ReadFile("default/rules.yaml")
	if err != nil {
		panic("embedded default pack missing: " + err.Error())
	}
	return b
}

// DefaultTests returns the default pack's tests.yaml.
func DefaultTests() []byte {
	b, err := FS.ReadFile("default/tests.yaml")
	if err != nil {
		panic("embedded default tests missing: " + err.Error())
	}
	return b
}
