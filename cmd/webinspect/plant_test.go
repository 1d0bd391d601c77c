package main

import (
	"strings"
	"testing"
)

// Plant flags that do not fit are refused before anything starts, naming
// the flag, with exit status 2.
func TestPlantFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--plant", "nats://127.0.0.1:1"}, "--plant needs --line NAME"},
		{[]string{"run", "--line", "L1"}, "--line needs --plant URL"},
		{[]string{"run", "--plant", "nats://127.0.0.1:1", "--line", "L.1"}, `--line: line "L.1"`},
		{[]string{"run", "--plant", "nats://127.0.0.1:1", "--line", "L1", "--plant-replicas", "7"}, "--plant-replicas 7"},
		{[]string{"plant", "--listen", "nohost"}, `--listen "nohost"`},
		{[]string{"plant", "extra"}, `unexpected argument "extra"`},
		{[]string{"plant", "--listen", "0.0.0.0:8090"}, "--listen 0.0.0.0:8090 can be reached from other machines: give the plant a token"},
	} {
		t.Setenv("WEBINSPECT_TOKEN", "")
		code, _, stderr := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
