package main

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// Every probe of the Kubernetes manifest asks a path riskflow serves (/healthz, /readyz) and, for
// /readyz, excludes only checks riskflow has: an unknown name in ?exclude= is a 400, so a probe
// with a check renamed under it (or a typo) would keep every pod out of the Service for good.
func TestShippedProbesAskWhatRiskflowServes(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes/riskflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
		} `yaml:"httpGet"`
	}
	type container struct {
		Name           string `yaml:"name"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		StartupProbe   *probe `yaml:"startupProbe"`
	}
	var paths []string
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []container `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for _, c := range m.Spec.Template.Spec.Containers {
			for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p != nil && p.HTTPGet != nil {
					paths = append(paths, p.HTTPGet.Path)
					if msg := probeProblem(p.HTTPGet.Path); msg != "" {
						t.Errorf("%s, container %s: probe %s: %s", m.Metadata.Name, c.Name, p.HTTPGet.Path, msg)
					}
				}
			}
		}
	}
	if len(paths) < 9 {
		t.Fatalf("found %d probes (%q): the test reads the wrong file", len(paths), paths)
	}
	// The check itself.
	for _, bad := range []string{"/readyz?exclude=frsh", "/ready", "/readyz?exclude=fresh&exclude=archivers"} {
		if probeProblem(bad) == "" {
			t.Errorf("probe %s: no problem found", bad)
		}
	}
}

// probeProblem says what is wrong with a probe path, "" when riskflow answers it.
func probeProblem(path string) string {
	u, err := url.Parse(path)
	if err != nil {
		return err.Error()
	}
	switch u.Path {
	case "/healthz":
		if u.RawQuery != "" {
			return "/healthz takes no query"
		}
	case "/readyz":
		if err := (&health{}).ready(u.Query()["exclude"]...); err != nil {
			return "riskflow answers 400: " + err.Error()
		}
	default:
		return "riskflow's probes are /healthz and /readyz, not " + u.Path
	}
	return ""
}
