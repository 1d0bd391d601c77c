// Package versions keeps the registry of the recipes and learned models a
// line ran with, so that every defect can name the versions that decided
// it and an old decision can be traced (and re-run) after a change.
//
// # Versions
//
// A version is content-addressed: its SHA-256 is taken over canonical
// bytes (RecipeBytes, ModelDigest), and its ID, what defect records store
// in recipe_version and model_version, is the first 16 hex digits of it.
// The same content is the same version wherever and whenever it runs; any
// change of content is a new version, and the old one stays in the
// registry.
//
// # On disk
//
// The registry lives in the rolls directory (rollmap/FORMAT.md,
// "Versions"):
//
//	ROOT/versions/
//	├── versions.jsonl    one Version as JSON per line, appended and fsynced
//	├── recipe/<id>.json  a recipe's canonical bytes
//	└── model/<id>/       a copy of a model's files
//
// A version is registered once; the first line for an ID says who brought
// it to this line and when. A torn last line (a crash mid-append) is
// ignored by readers and overwritten by nothing: the next append starts on
// a new line.
package versions

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Kinds of version.
const (
	KindRecipe     = "recipe"
	KindModel      = "model"
	KindClassifier = "classifier"
)

// DirName is the registry's directory inside the rolls directory.
const DirName = "versions"

// FileName is the registry's list of versions inside DirName.
const FileName = "versions.jsonl"

// IDLen is the length of a version ID in hex digits.
const IDLen = 16

// Errors returned by the registry.
var (
	// ErrNotFound is returned by Get for an ID the registry does not hold.
	ErrNotFound = errors.New("version not found")
	// ErrInvalid is returned for a version whose fields are unusable (an
	// unknown kind, an ID that is not its digest's prefix).
	ErrInvalid = errors.New("invalid version")
)

// Version is one registered recipe, model or classifier.
type Version struct {
	Kind   string `json:"kind"`   // KindRecipe, KindModel or KindClassifier
	ID     string `json:"id"`     // first IDLen hex digits of SHA256
	SHA256 string `json:"sha256"` // of the canonical bytes, 64 hex digits
	Name   string `json:"name"`   // the recipe's name, the model directory's base name
	Origin string `json:"origin"` // where it was loaded from: a file, a directory, "built-in:NAME"
	// MadeBy is user@host of the process that registered it first.
	MadeBy string    `json:"made_by"`
	MadeAt time.Time `json:"made_at"` // when it was registered first, UTC
	// Note says more where it is known: how a model was made (its
	// sidecar's tool, time and source).
	Note string `json:"note,omitempty"`
}

// Digest returns the SHA-256 of b as 64 hex digits.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// IDOf returns the version ID of a digest.
func IDOf(sha string) string {
	if len(sha) < IDLen {
		return sha
	}
	return sha[:IDLen]
}

// FilesDigest returns the SHA-256 of the named files of dir, in the order
// given: for each, its name, a NUL byte, its length as 8 bytes
// little-endian, and its bytes. A file that is missing is an error.
func FilesDigest(dir string, names ...string) (string, error) {
	h := sha256.New()
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return "", err
		}
		var l [8]byte
		binary.LittleEndian.PutUint64(l[:], uint64(st.Size()))
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(l[:])
		k, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("read %s: %w", filepath.Join(dir, n), err)
		}
		if k != st.Size() {
			return "", fmt.Errorf("read %s: %d bytes, the file has %d (changed while read)", filepath.Join(dir, n), k, st.Size())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Maker is user@host of this process, for Version.MadeBy.
func Maker() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

// Registry is the version registry of one rolls directory. Its methods
// are safe for concurrent use within a process; between processes, the
// rolls directory's one writer (rollmap.Store.Lock) registers, and any
// process may read.
type Registry struct {
	dir string
	mu  sync.Mutex
}

// Open returns the registry of the rolls directory root, creating its
// directory.
func Open(root string) (*Registry, error) {
	dir := filepath.Join(root, DirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	return &Registry{dir: dir}, nil
}

// Dir is the registry's directory.
func (r *Registry) Dir() string { return r.dir }

// ContentPath is where the content of version v is kept: a file for a
// recipe, a directory for a model or classifier.
func (r *Registry) ContentPath(v Version) string {
	if v.Kind == KindRecipe {
		return filepath.Join(r.dir, KindRecipe, v.ID+".json")
	}
	return filepath.Join(r.dir, v.Kind, v.ID)
}

// List returns every registered version in registration order (the first
// registration of each ID). A line that does not parse is skipped and
// reported in the error, after the versions that did.
func (r *Registry) List() ([]Version, error) {
	return read(filepath.Join(r.dir, FileName))
}

// ListDir reads the registry of the rolls directory root without creating
// anything; no registry is an empty list.
func ListDir(root string) ([]Version, error) {
	vs, err := read(filepath.Join(root, DirName, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return vs, err
}

func read(path string) ([]Version, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var (
		out  []Version
		seen = map[string]bool{}
		errs []error
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := bytes.TrimSpace(sc.Bytes())
		if len(t) == 0 {
			continue
		}
		var v Version
		if err := json.Unmarshal(t, &v); err != nil {
			// A torn last line is a crash mid-append, not damage.
			if line <= bytes.Count(b, []byte{'\n'}) {
				errs = append(errs, fmt.Errorf("%s line %d: %w", path, line, err))
			}
			continue
		}
		key := v.Kind + "/" + v.ID
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return out, errors.Join(errs...)
}

// Get returns the version of kind with the ID id.
func (r *Registry) Get(kind, id string) (Version, error) {
	vs, err := r.List()
	i := slices.IndexFunc(vs, func(v Version) bool { return v.Kind == kind && v.ID == id })
	if i < 0 {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return Version{}, err
		}
		return Version{}, fmt.Errorf("versions: %s %s: %w", kind, id, ErrNotFound)
	}
	return vs[i], nil
}

// RegisterRecipe registers a recipe by its canonical bytes (kept as
// recipe/<id>.json) and returns its version: the one already registered
// when the content is known, else v with ID, SHA256, MadeBy and MadeAt
// filled in (those of v are kept when set).
func (r *Registry) RegisterRecipe(v Version, canonical []byte) (Version, error) {
	v.Kind, v.SHA256 = KindRecipe, Digest(canonical)
	return r.register(v, func(path string) error { return writeFileSync(path, canonical) })
}

// RegisterFiles registers a model or classifier (kind) made of the named
// files of dir, by FilesDigest, and keeps a copy of them under
// <kind>/<id>/. See RegisterRecipe.
func (r *Registry) RegisterFiles(kind string, v Version, dir string, names ...string) (Version, error) {
	if kind != KindModel && kind != KindClassifier {
		return Version{}, fmt.Errorf("versions: kind %q: %w", kind, ErrInvalid)
	}
	sha, err := FilesDigest(dir, names...)
	if err != nil {
		return Version{}, fmt.Errorf("versions: %s %s: %w", kind, dir, err)
	}
	v.Kind, v.SHA256 = kind, sha
	return r.register(v, func(path string) error {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				return err
			}
			if err := writeFileSync(filepath.Join(path, n), b); err != nil {
				return err
			}
		}
		// The copy must be the content registered: check it.
		got, err := FilesDigest(path, names...)
		if err != nil {
			return err
		}
		if got != sha {
			return fmt.Errorf("%s changed while it was copied", dir)
		}
		return nil
	})
}

func (r *Registry) register(v Version, keep func(path string) error) (Version, error) {
	v.ID = IDOf(v.SHA256)
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, err := r.Get(v.Kind, v.ID); err == nil {
		return old, nil
	}
	if v.MadeBy == "" {
		v.MadeBy = Maker()
	}
	if v.MadeAt.IsZero() {
		v.MadeAt = time.Now()
	}
	v.MadeAt = v.MadeAt.UTC().Truncate(time.Millisecond)
	path := r.ContentPath(v)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Version{}, fmt.Errorf("versions: %w", err)
	}
	// A copy left by a registration that stopped before its line was
	// appended is replaced.
	os.RemoveAll(path)
	if err := keep(path); err != nil {
		return Version{}, fmt.Errorf("versions: keep %s %s: %w", v.Kind, v.ID, err)
	}
	line, err := json.Marshal(v)
	if err != nil {
		return Version{}, fmt.Errorf("versions: %w", err)
	}
	if err := r.appendLine(line); err != nil {
		return Version{}, err
	}
	return v, nil
}

// appendLine appends line to the list, starting a new line if the file
// ends in a torn one, and syncs it.
func (r *Registry) appendLine(line []byte) error {
	path := filepath.Join(r.dir, FileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	buf := make([]byte, 0, len(line)+2)
	if st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil {
			return fmt.Errorf("versions: %w", err)
		}
		if last[0] != '\n' {
			buf = append(buf, '\n')
		}
	}
	buf = append(append(buf, line...), '\n')
	if _, err := f.Write(buf); err != nil {
		return fmt.Errorf("versions: append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("versions: sync %s: %w", path, err)
	}
	return nil
}

// writeFileSync writes b to path and syncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
