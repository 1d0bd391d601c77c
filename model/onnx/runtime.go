package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// EnvLibrary names the environment variable that points at the ONNX Runtime
// shared library when Init is given no path.
const EnvLibrary = "WEBINSPECT_ORT_LIB"

// LibraryRelPath is where `make deps` puts the library, relative to the
// module root.
const LibraryRelPath = "third_party/onnxruntime/libonnxruntime.so.1"

// fixHint is the one instruction every "library missing" error carries.
const fixHint = `run "make deps" (fetches it into ` + LibraryRelPath +
	`) or set ` + EnvLibrary + `=/path/libonnxruntime.so.1`

// Errors returned by this package. Each is wrapped with context naming the
// file, field or tensor at fault; classify with errors.Is.
var (
	// ErrLibraryNotFound is returned by Init (and by Load, which calls it)
	// when the ONNX Runtime shared library is not at the resolved path. The
	// message says what to run.
	ErrLibraryNotFound = errors.New("ONNX Runtime library not found")
	// ErrLibraryLoad is returned by Init when the library exists but cannot
	// be loaded or initialised (wrong file, wrong architecture, too old), or
	// when Init is called again with a different library than the one loaded.
	ErrLibraryLoad = errors.New("ONNX Runtime library cannot be loaded")
	// ErrSidecar is returned when a model's JSON sidecar is missing,
	// malformed or fails Sidecar.Validate.
	ErrSidecar = errors.New("invalid model sidecar")
	// ErrBadModel is returned by Load when the ONNX file is missing, corrupt
	// or cannot be opened by ONNX Runtime.
	ErrBadModel = errors.New("invalid ONNX model")
	// ErrMismatch is returned by Load when the model's inputs or outputs do
	// not match its sidecar or the recipe; the message names both sides.
	ErrMismatch = errors.New("model does not match its sidecar")
	// ErrOptions is returned when ModelOptions or ScoringModelSpec fail
	// validation.
	ErrOptions = errors.New("invalid options")
	// ErrTiles is returned by Session.Run when the tiles passed do not fit
	// the session (too many, wrong size).
	ErrTiles = errors.New("tiles do not fit the session")
	// ErrClosed is returned by Session.Run after Close.
	ErrClosed = errors.New("session closed")
)

var (
	initMu  sync.Mutex
	initLib string // library path loaded into this process; "" until Init succeeds
)

// Init loads the ONNX Runtime shared library into the process. It is safe to
// call more than once and from several goroutines: once a library is loaded,
// later calls that resolve to the same file return nil, and calls naming a
// different file return ErrLibraryLoad (the runtime cannot be swapped).
//
// The library is found, in order, at libPath if it is not empty (the
// engine's --ort-lib flag), at $WEBINSPECT_ORT_LIB if set, and at
// third_party/onnxruntime/libonnxruntime.so.1 under the module root (the
// nearest directory holding go.mod, searched upwards from the working
// directory and then from the executable's directory). When it is missing
// the error wraps ErrLibraryNotFound and says to run `make deps` or to set
// WEBINSPECT_ORT_LIB.
func Init(libPath string) error {
	path, from, err := resolveLibrary(libPath)
	if err != nil {
		return err
	}
	initMu.Lock()
	defer initMu.Unlock()
	if initLib != "" {
		if sameFile(initLib, path) {
			return nil
		}
		return fmt.Errorf("onnx: %w: %s (%s) requested, but %s is already loaded in this process",
			ErrLibraryLoad, path, from, initLib)
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("onnx: %w: %s (%s): %v; %s to get the supported version (onnxruntime-node@1.30.0)",
			ErrLibraryLoad, path, from, err, fixHint)
	}
	initLib = path
	return nil
}

// LibraryPath returns the library loaded by Init, or "" before Init succeeds.
func LibraryPath() string {
	initMu.Lock()
	defer initMu.Unlock()
	return initLib
}

// RuntimeVersion returns the loaded ONNX Runtime's version string (for the
// sidecar's made_by record), or "" before Init succeeds.
func RuntimeVersion() string {
	if LibraryPath() == "" {
		return ""
	}
	return ort.GetVersion()
}

// resolveLibrary picks the library path and says where it came from; it
// fails with ErrLibraryNotFound when the chosen file does not exist.
func resolveLibrary(libPath string) (path, from string, err error) {
	switch {
	case libPath != "":
		path, from = libPath, "given path"
	case os.Getenv(EnvLibrary) != "":
		path, from = os.Getenv(EnvLibrary), "from "+EnvLibrary
	default:
		root, ok := moduleRoot()
		if !ok {
			return "", "", fmt.Errorf("onnx: %w: %s not set and no module root (go.mod) above the working directory or the executable; %s",
				ErrLibraryNotFound, EnvLibrary, fixHint)
		}
		path, from = filepath.Join(root, LibraryRelPath), "module default"
	}
	st, statErr := os.Stat(path)
	if statErr != nil {
		return "", "", fmt.Errorf("onnx: %w: %s (%s) does not exist; %s",
			ErrLibraryNotFound, path, from, fixHint)
	}
	if st.IsDir() {
		return "", "", fmt.Errorf("onnx: %w: %s (%s) is a directory, want the file libonnxruntime.so.1; %s",
			ErrLibraryNotFound, path, from, fixHint)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, from, nil
}

// moduleRoot finds the nearest directory holding go.mod above the working
// directory, else above the executable.
func moduleRoot() (string, bool) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, true
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", false
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
