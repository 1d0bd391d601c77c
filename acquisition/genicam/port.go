package genicam

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// Port is a device's register space as a transport reaches it: GVCP
// READMEM/WRITEMEM for GigE Vision, GenCP ReadMem/WriteMem for USB3 Vision,
// a chunk buffer for chunk data. Implementations must accept any address
// and any length up to MaxPortChunk bytes and split, align or pad as their
// protocol requires; this package never asks for more than MaxPortChunk
// bytes in one call except for registers whose Length says so.
type Port interface {
	ReadMem(addr uint64, p []byte) error
	WriteMem(addr uint64, p []byte) error
}

// Size limits. Anything larger is refused with ErrTooLarge.
const (
	// MaxPortChunk is the largest read FetchXML issues in one ReadMem call
	// (it fits one GVCP READMEM reply of 536 bytes).
	MaxPortChunk = 512
	// MaxFileSize is the largest device description file (zipped or not)
	// FetchXML reads from a device.
	MaxFileSize = 16 << 20
	// MaxXMLSize is the largest XML document Parse accepts, and the largest
	// member FetchXML inflates from a zip file.
	MaxXMLSize = 64 << 20
	// MaxRegisterLength is the largest register (StringReg, Register) this
	// package reads or writes.
	MaxRegisterLength = 1 << 20
)

// maxInflate is MaxXMLSize; tests lower it to exercise the limit cheaply.
var maxInflate int64 = MaxXMLSize

// LocalURL is a parsed GenICam "Local:" URL: the device description is a
// file of Length bytes at Address in the device's own register space.
type LocalURL struct {
	FileName string // e.g. "camera.zip"; its extension says zip or xml
	Address  uint64
	Length   uint64
	Query    string // what followed '?', e.g. "SchemaVersion=1.1.0"; may be empty
}

// Zipped reports whether the file is a zip archive (by its extension).
func (u LocalURL) Zipped() bool {
	return strings.EqualFold(path.Ext(u.FileName), ".zip")
}

// ParseURL parses a GenICam URL as a device bootstrap holds it:
//
//	Local:name.xml;ADDR;LEN[?SchemaVersion=x.y.z]
//	Local:///name.zip;ADDR;LEN
//
// ADDR and LEN are hexadecimal, with or without 0x; "local:" is matched
// case-insensitively; trailing NUL bytes and spaces are ignored. File: and
// http: URLs give ErrUnsupported; anything else ErrMalformed.
func ParseURL(url string) (LocalURL, error) {
	s := strings.TrimRight(url, "\x00 \t\r\n")
	s = strings.TrimLeft(s, " \t")
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return LocalURL{}, fmt.Errorf("genicam: URL %q: %w: no scheme", s, ErrMalformed)
	}
	switch strings.ToLower(scheme) {
	case "local":
	case "file", "http", "https":
		return LocalURL{}, fmt.Errorf("genicam: URL %q: %w: only Local: URLs are read from the device", s, ErrUnsupported)
	default:
		return LocalURL{}, fmt.Errorf("genicam: URL %q: %w: unknown scheme %q", s, ErrMalformed, scheme)
	}
	rest = strings.TrimPrefix(rest, "///")
	var u LocalURL
	rest, u.Query, _ = strings.Cut(rest, "?")
	parts := strings.Split(rest, ";")
	if len(parts) != 3 || parts[0] == "" {
		return LocalURL{}, fmt.Errorf("genicam: URL %q: %w: want Local:name;address;length", s, ErrMalformed)
	}
	u.FileName = parts[0]
	var err error
	if u.Address, err = parseHex(parts[1]); err != nil {
		return LocalURL{}, fmt.Errorf("genicam: URL %q: %w: address %q is not hexadecimal", s, ErrMalformed, parts[1])
	}
	if u.Length, err = parseHex(parts[2]); err != nil {
		return LocalURL{}, fmt.Errorf("genicam: URL %q: %w: length %q is not hexadecimal", s, ErrMalformed, parts[2])
	}
	return u, nil
}

func parseHex(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	return strconv.ParseUint(s, 16, 64)
}

// FetchXML follows a GenICam URL as found in the device bootstrap, reads the
// file through p in reads of at most MaxPortChunk bytes and returns the XML
// bytes, inflated when the file is a zip archive (the first member whose
// name ends in .xml, else the first member). Files larger than MaxFileSize
// and XML larger than MaxXMLSize give ErrTooLarge.
func FetchXML(p Port, url string) ([]byte, error) {
	u, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if u.Length == 0 {
		return nil, fmt.Errorf("genicam: URL %q: %w: zero length", url, ErrMalformed)
	}
	if u.Length > MaxFileSize {
		return nil, fmt.Errorf("genicam: URL %q: %w: file of %d bytes exceeds %d", url, ErrTooLarge, u.Length, MaxFileSize)
	}
	if u.Address+u.Length < u.Address {
		return nil, fmt.Errorf("genicam: URL %q: %w: address+length overflows", url, ErrMalformed)
	}
	buf := make([]byte, u.Length)
	for off := uint64(0); off < u.Length; off += MaxPortChunk {
		end := min(off+MaxPortChunk, u.Length)
		if err := p.ReadMem(u.Address+off, buf[off:end]); err != nil {
			return nil, fmt.Errorf("genicam: reading %s at 0x%x: %w", u.FileName, u.Address+off, err)
		}
	}
	if !u.Zipped() {
		return trimXML(buf), nil
	}
	return unzipXML(buf, u.FileName)
}

// trimXML drops the NUL padding devices put after the document.
func trimXML(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// unzipXML returns the device description inside a zip archive.
func unzipXML(b []byte, name string) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("genicam: %s: %w: not a zip archive: %v", name, ErrMalformed, err)
	}
	var f *zip.File
	for _, m := range zr.File {
		if strings.EqualFold(path.Ext(m.Name), ".xml") {
			f = m
			break
		}
	}
	if f == nil {
		for _, m := range zr.File {
			if !m.FileInfo().IsDir() {
				f = m
				break
			}
		}
	}
	if f == nil {
		return nil, fmt.Errorf("genicam: %s: %w: zip archive holds no file", name, ErrMalformed)
	}
	if f.UncompressedSize64 > uint64(maxInflate) {
		return nil, fmt.Errorf("genicam: %s: %w: member %s of %d bytes exceeds %d", name, ErrTooLarge, f.Name, f.UncompressedSize64, maxInflate)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("genicam: %s: %w: member %s: %v", name, ErrMalformed, f.Name, err)
	}
	defer rc.Close()
	out, err := io.ReadAll(io.LimitReader(rc, maxInflate+1))
	if err != nil {
		return nil, fmt.Errorf("genicam: %s: %w: member %s: %v", name, ErrMalformed, f.Name, err)
	}
	if int64(len(out)) > maxInflate {
		return nil, fmt.Errorf("genicam: %s: %w: member %s inflates beyond %d bytes", name, ErrTooLarge, f.Name, maxInflate)
	}
	return trimXML(out), nil
}
