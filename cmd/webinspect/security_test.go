package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunTokenAndListenFlags: the token never comes from the command line
// (ps shows it to every user), a token file others can read is refused,
// and a --listen other machines reach without a token is a command-line
// mistake naming the flags, exit 2 — all before any roll is opened.
func TestRunTokenAndListenFlags(t *testing.T) {
	t.Setenv("WEBINSPECT_TOKEN", "")
	rolls := t.TempDir()
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("0123456789abcdef-token\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--token", "0123456789abcdef-token"}, []string{"-token", "visible", "ps", "--token-file"}},
		{[]string{"--token-file", open}, []string{"--token-file", "chmod 600"}},
		{[]string{"--token-file", empty}, []string{"--token-file", "empty"}},
		{[]string{"--token-file", dir}, []string{"--token-file", "not a regular file"}},
		{[]string{"--token-file", filepath.Join(dir, "nosuch")}, []string{"--token-file", "no such file"}},
		{[]string{"--listen", "0.0.0.0:0"}, []string{"--listen 0.0.0.0:0", "--token-file", "WEBINSPECT_TOKEN"}},
		{[]string{"--protect-reads"}, []string{"--protect-reads", "needs a token"}},
		{[]string{"--listen", "nonsense"}, []string{"--listen", "host:port"}},
		{[]string{"--opcua", "opc.tcp://0.0.0.0:4840"}, []string{"--opcua opc.tcp://0.0.0.0:4840", "--token-file", "WEBINSPECT_TOKEN"}},
		{[]string{"--opcua", "http://127.0.0.1:4840"}, []string{"--opcua", "opc.tcp://HOST:PORT"}},
	} {
		args := append([]string{"run", "--rolls", rolls}, tc.args...)
		code, _, stderr := runCLI(t, args...)
		oneLineError(t, code, stderr, tc.want...)
		if code != 2 {
			t.Errorf("run %s: exit %d, want 2 (a command-line mistake)", strings.Join(tc.args, " "), code)
		}
		if strings.Contains(stderr, "set Token") || strings.Contains(stderr, "AllowOpenChanges") {
			t.Errorf("run %s: %q names a Go option, not a flag", strings.Join(tc.args, " "), stderr)
		}
	}
	if ents, _ := os.ReadDir(rolls); len(ents) != 0 {
		t.Errorf("refused starts left %d entries in --rolls, want none", len(ents))
	}
}
