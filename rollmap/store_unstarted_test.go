package rollmap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestStartRollReclaimsAnUnstartedDirectory: a kill between a roll
// directory's creation and its roll.json leaves a directory without
// roll.json (seen in TestKillChild). Starting that roll again must work,
// and a directory that holds a roll must still be refused.
func TestStartRollReclaimsAnUnstartedDirectory(t *testing.T) {
	s := openStore(t)
	dir := filepath.Join(s.Root(), "K")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefectsFile), []byte("partial header"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := s.StartRoll(RollMeta{ID: "K", WebWidthMM: 1000})
	if err != nil {
		t.Fatalf("start over an unstarted directory: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRoll(RollMeta{ID: "K", WebWidthMM: 1000}); !errors.Is(err, ErrRollExists) {
		t.Fatalf("start over a real roll: %v, want ErrRollExists", err)
	}
}
