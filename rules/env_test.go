package rules

import (
	"strings"
	"testing"

	"cel.dev/cel-go/interpreter"
)

// mapInput is an Input backed by a map, for tests.
type mapInput map[string]any

func (m mapInput) ResolveName(name string) (any, bool) { v, ok := m[name]; return v, ok }
func (mapInput) Parent() interpreter.Activation        { return nil }

func mustEnv(t testing.TB, vars ...Var) *Env {
	t.Helper()
	env, err := NewEnv(vars)
	if err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	return env
}

func TestNewEnvRejects(t *testing.T) {
	cases := []struct {
		name string
		vars []Var
		want string
	}{
		{"duplicate", []Var{{Name: "a", Type: Int}, {Name: "a", Type: Bool}}, "variable a is declared twice"},
		{"empty name", []Var{{Name: "", Type: Int}}, `variable name "" is invalid`},
		{"upper case", []Var{{Name: "Phone", Type: String}}, `variable name "Phone" is invalid`},
		{"dotted", []Var{{Name: "ip.type", Type: String}}, `variable name "ip.type" is invalid`},
		{"leading digit", []Var{{Name: "1h_count", Type: Int}}, `variable name "1h_count" is invalid`},
		{"reserved", []Var{{Name: "in", Type: Bool}}, `"in" is a CEL reserved word`},
		{"bad type", []Var{{Name: "x", Type: Type(9)}}, "variable x: unknown type 9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewEnv(c.vars)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewEnv error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestEnvVarsIsACopy(t *testing.T) {
	in := []Var{{Name: "a", Type: Int, Doc: "count"}, {Name: "b", Type: String}}
	env := mustEnv(t, in...)
	in[0].Name = "changed"
	got := env.Vars()
	if len(got) != 2 || got[0].Name != "a" || got[0].Doc != "count" || got[1].Type != String {
		t.Fatalf("Vars() = %+v", got)
	}
	got[1].Name = "mutated"
	if env.Vars()[1].Name != "b" {
		t.Fatal("Vars() exposes the Env's slice")
	}
	if typ, ok := env.Lookup("b"); !ok || typ != String {
		t.Fatalf("Lookup(b) = %v, %v", typ, ok)
	}
	if _, ok := env.Lookup("nope"); ok {
		t.Fatal("Lookup(nope) found something")
	}
}

func TestTypeString(t *testing.T) {
	for typ, want := range map[Type]string{Int: "int", Double: "double", Bool: "bool", String: "string", Type(7): "Type(7)"} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(typ), got, want)
		}
	}
}
