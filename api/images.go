package api

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/webinspect/webinspect/rollmap/archive"
)

// ImageSource opens a defect crop by its reference (Defect.ImageRef):
// "<sha256 of the PNG bytes, 64 lowercase hex>.png". The image archive
// (*archive.Archive of rollmap/archive) implements it; DirImages reads an
// archive's directory directly. Open returns an error wrapping
// fs.ErrNotExist or archive.ErrNotFound for a crop it does not hold; the
// caller closes the reader.
type ImageSource interface {
	Open(ref string) (io.ReadCloser, error)
}

var _ ImageSource = (*archive.Archive)(nil)

// imageMissing reports whether err says the crop is not in the archive.
func imageMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, archive.ErrNotFound)
}

// imageNameRe is the only form of image name the API accepts. Checking it
// before anything touches the file system rules out every path trick
// (separators, "..", encodings, absolute paths, overlong names).
var imageNameRe = regexp.MustCompile(`^[0-9a-f]{64}\.png$`)

// ValidImageRef reports whether ref is a well-formed crop reference.
func ValidImageRef(ref string) bool { return imageNameRe.MatchString(ref) }

// ErrBadImageRef is returned by DirImages.Open for a reference that is not
// "<64 lowercase hex>.png".
var ErrBadImageRef = errors.New("bad image reference")

// DirImages is an ImageSource over an image archive directory laid out as
// ROOT/<first 2 hex digits>/<ref>. Open checks the reference's form first,
// then that the path it builds stays under ROOT once symbolic links are
// resolved, and opens only regular files.
type DirImages string

// Open opens the crop ref.
func (d DirImages) Open(ref string) (io.ReadCloser, error) {
	if !ValidImageRef(ref) {
		return nil, fmt.Errorf("%w: %q: want 64 lowercase hex digits + \".png\"", ErrBadImageRef, ref)
	}
	root, err := filepath.Abs(string(d))
	if err != nil {
		return nil, fmt.Errorf("image archive %q: %w", string(d), err)
	}
	p := filepath.Join(root, ref[:2], ref)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, err // fs.ErrNotExist for a missing crop
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(realRoot, real); err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%w: %q resolves outside the image archive", ErrBadImageRef, ref)
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %q is not a regular file", fs.ErrNotExist, ref)
	}
	return f, nil
}

// maxImageBytes bounds one crop served (a crop is a few kB to a few
// hundred kB).
const maxImageBytes = 32 << 20

// handleImage serves GET /api/images/{name}.
func (s *Server) handleImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !ValidImageRef(name) {
		shown := name
		if len(shown) > 80 {
			shown = shown[:80] + "…"
		}
		s.writeError(w, http.StatusBadRequest, fmt.Sprintf("image name %q: want 64 lowercase hex digits (the SHA-256 of the PNG) + \".png\"", shown))
		return
	}
	if s.opts.Images == nil {
		s.writeError(w, http.StatusNotFound, "image "+name+" not found: this server has no image archive")
		return
	}
	rc, err := s.opts.Images.Open(name)
	if err != nil {
		if imageMissing(err) {
			s.writeError(w, http.StatusNotFound, "image "+name+" not found in the image archive (never stored, or removed by retention)")
			return
		}
		if errors.Is(err, ErrBadImageRef) || errors.Is(err, archive.ErrBadRef) {
			s.writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.log.Error().Err(err).Str("image", name).Msg("open image")
		s.writeError(w, http.StatusInternalServerError, "open image: "+err.Error())
		return
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxImageBytes+1))
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, "read image: "+err.Error())
		return
	}
	if len(b) > maxImageBytes {
		s.writeError(w, http.StatusInternalServerError, fmt.Sprintf("image %s is larger than %d bytes", name, maxImageBytes))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	// The name is the hash of the content: it never changes.
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", `"`+strings.TrimSuffix(name, ".png")+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'")
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, h.Get("ETag")) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
