// Package layering holds no code: its test keeps riskflow's import direction — schemas ← rules
// and consumers ← scoring ← pipeline ← cmd — by failing on any import that runs up the layers.
package layering
