package u3v

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"time"
)

// ABRM (technology agnostic bootstrap register map) addresses, from 0.
const (
	abrmGenCPVersion    = 0x0000
	abrmManufacturer    = 0x0004 // string[64]
	abrmModel           = 0x0044 // string[64]
	abrmFamily          = 0x0084 // string[64]
	abrmDeviceVersion   = 0x00C4 // string[64]
	abrmManufacturerInf = 0x0104 // string[64]
	abrmSerial          = 0x0144 // string[64]
	abrmUserName        = 0x0184 // string[64]
	abrmCapability      = 0x01C4 // u64
	abrmMaxResponseMS   = 0x01CC // u32, milliseconds
	abrmManifestAddr    = 0x01D0 // u64
	abrmSBRMAddr        = 0x01D8 // u64
	abrmStringLen       = 64
	abrmLen             = 0x01E0 // everything above, read in one go
)

// SBRM (technology specific bootstrap register map) offsets.
const (
	sbrmVersion      = 0x00 // u32
	sbrmCapability   = 0x04 // u64
	sbrmConfig       = 0x0C // u64
	sbrmMaxCmd       = 0x14 // u32
	sbrmMaxAck       = 0x18 // u32
	sbrmNumStreams   = 0x1C // u32
	sbrmSIRMAddr     = 0x20 // u64
	sbrmSIRMLen      = 0x28 // u32
	sbrmEIRMAddr     = 0x2C // u64
	sbrmEIRMLen      = 0x34 // u32
	sbrmLen          = 0x44
	capSBRMSupported = 1 << 2 // ABRM capability bit: SBRM address is valid
)

// Manifest table: u64 entry count, then entries of manifestEntryLen bytes.
const (
	manifestEntryLen  = 64
	manifestMaxCount  = 64       // more entries than any device carries
	maxDescriptorSize = 64 << 20 // bytes; larger device files are refused
	schemaRaw         = 0        // uncompressed XML
	schemaZip         = 1        // zipped XML
)

// DeviceInfo is what the ABRM says about a camera.
type DeviceInfo struct {
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Family       string `json:"family,omitempty"`
	Version      string `json:"version"`
	Serial       string `json:"serial"`
	UserName     string `json:"user_name,omitempty"`
	GenCPVersion uint32 `json:"gencp_version"`
	// MaxResponse is the longest the device takes to acknowledge a command.
	MaxResponse  time.Duration `json:"max_response"`
	SBRMAddr     uint64        `json:"-"`
	ManifestAddr uint64        `json:"-"`
	Capability   uint64        `json:"-"`
}

// sbrm is the part of the SBRM the host needs.
type sbrm struct {
	Version        uint32
	MaxCmd, MaxAck uint32
	NumStreams     uint32
	SIRMAddr       uint64
	SIRMLen        uint32
	EIRMAddr       uint64
	EIRMLen        uint32
}

// ManifestEntry is one device description file the device offers.
type ManifestEntry struct {
	Major, Minor, Subminor int
	Schema                 int // 0 raw XML, 1 zip
	SchemaMajor            int
	SchemaMinor            int
	Addr, Size             uint64
	SHA1                   [20]byte // zero when the device gives none
}

// URL is the entry as a GenICam "Local:" URL for genicam.FetchXML.
func (e ManifestEntry) URL() string {
	ext := "xml"
	if e.Schema == schemaZip {
		ext = "zip"
	}
	return fmt.Sprintf("Local:device.%s;%x;%x", ext, e.Addr, e.Size)
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(bytes.TrimSpace(b))
}

// parseABRM decodes the first abrmLen bytes of the ABRM.
func parseABRM(b []byte) DeviceInfo {
	le := binary.LittleEndian
	s := func(off int) string { return cString(b[off : off+abrmStringLen]) }
	return DeviceInfo{
		GenCPVersion: le.Uint32(b[abrmGenCPVersion:]),
		Manufacturer: s(abrmManufacturer),
		Model:        s(abrmModel),
		Family:       s(abrmFamily),
		Version:      s(abrmDeviceVersion),
		Serial:       s(abrmSerial),
		UserName:     s(abrmUserName),
		Capability:   le.Uint64(b[abrmCapability:]),
		MaxResponse:  time.Duration(le.Uint32(b[abrmMaxResponseMS:])) * time.Millisecond,
		ManifestAddr: le.Uint64(b[abrmManifestAddr:]),
		SBRMAddr:     le.Uint64(b[abrmSBRMAddr:]),
	}
}

func parseSBRM(b []byte) sbrm {
	le := binary.LittleEndian
	return sbrm{
		Version:    le.Uint32(b[sbrmVersion:]),
		MaxCmd:     le.Uint32(b[sbrmMaxCmd:]),
		MaxAck:     le.Uint32(b[sbrmMaxAck:]),
		NumStreams: le.Uint32(b[sbrmNumStreams:]),
		SIRMAddr:   le.Uint64(b[sbrmSIRMAddr:]),
		SIRMLen:    le.Uint32(b[sbrmSIRMLen:]),
		EIRMAddr:   le.Uint64(b[sbrmEIRMAddr:]),
		EIRMLen:    le.Uint32(b[sbrmEIRMLen:]),
	}
}

// parseManifestEntry decodes one 64-byte manifest entry.
func parseManifestEntry(b []byte) (ManifestEntry, error) {
	if len(b) < manifestEntryLen {
		return ManifestEntry{}, fmt.Errorf("%w: manifest entry of %d bytes", ErrMalformed, len(b))
	}
	le := binary.LittleEndian
	ver := le.Uint32(b[0:])
	schema := le.Uint32(b[4:])
	e := ManifestEntry{
		Subminor:    int(ver & 0xFFFF),
		Minor:       int(ver >> 16 & 0xFF),
		Major:       int(ver >> 24),
		Schema:      int(schema >> 10 & 0x3F),
		SchemaMinor: int(schema >> 16 & 0xFF),
		SchemaMajor: int(schema >> 24),
		Addr:        le.Uint64(b[8:]),
		Size:        le.Uint64(b[16:]),
	}
	copy(e.SHA1[:], b[24:44])
	if e.Schema != schemaRaw && e.Schema != schemaZip {
		return e, fmt.Errorf("%w: manifest file type %d (want 0 XML or 1 zip)", ErrUnsupported, e.Schema)
	}
	if e.Size == 0 || e.Size > maxDescriptorSize {
		return e, fmt.Errorf("%w: manifest file size %d outside [1, %d]", ErrMalformed, e.Size, maxDescriptorSize)
	}
	return e, nil
}

// readManifest reads the manifest table at addr and returns its usable
// entries, best first (highest file version).
func readManifest(p *control, addr uint64) ([]ManifestEntry, error) {
	var cnt [8]byte
	if err := p.ReadMem(addr, cnt[:]); err != nil {
		return nil, fmt.Errorf("u3v: manifest table: %w", err)
	}
	n := binary.LittleEndian.Uint64(cnt[:])
	if n == 0 || n > manifestMaxCount {
		return nil, fmt.Errorf("%w: manifest table has %d entries (want 1..%d)", ErrMalformed, n, manifestMaxCount)
	}
	raw := make([]byte, int(n)*manifestEntryLen)
	if err := p.ReadMem(addr+8, raw); err != nil {
		return nil, fmt.Errorf("u3v: manifest entries: %w", err)
	}
	var out []ManifestEntry
	var firstErr error
	for i := range int(n) {
		e, err := parseManifestEntry(raw[i*manifestEntryLen:])
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("manifest entry %d: %w", i, err)
			}
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, firstErr
	}
	// Best first: highest file version; insertion sort, n is tiny.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].newer(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

func (e ManifestEntry) newer(o ManifestEntry) bool {
	if e.Major != o.Major {
		return e.Major > o.Major
	}
	if e.Minor != o.Minor {
		return e.Minor > o.Minor
	}
	return e.Subminor > o.Subminor
}

// hashingPort records what a reader fetches from one region so that the
// file a manifest entry points to can be checked against its SHA1.
type hashingPort struct {
	*control
	base uint64
	buf  []byte
	seen []bool
}

func newHashingPort(c *control, e ManifestEntry) *hashingPort {
	return &hashingPort{control: c, base: e.Addr, buf: make([]byte, e.Size), seen: make([]bool, e.Size)}
}

func (h *hashingPort) ReadMem(addr uint64, p []byte) error {
	if err := h.control.ReadMem(addr, p); err != nil {
		return err
	}
	for i := range p {
		a := addr + uint64(i)
		if a >= h.base && a-h.base < uint64(len(h.buf)) {
			h.buf[a-h.base] = p[i]
			h.seen[a-h.base] = true
		}
	}
	return nil
}

// check verifies the SHA1 of the region when the entry has one. A region
// the reader did not read in full is read now.
func (h *hashingPort) check(want [20]byte) error {
	if want == ([20]byte{}) {
		return nil
	}
	for i := 0; i < len(h.seen); {
		if h.seen[i] {
			i++
			continue
		}
		j := i
		for j < len(h.seen) && !h.seen[j] {
			j++
		}
		if err := h.control.ReadMem(h.base+uint64(i), h.buf[i:j]); err != nil {
			return err
		}
		i = j
	}
	if got := sha1.Sum(h.buf); got != want {
		return fmt.Errorf("%w: device file SHA1 %x, manifest says %x", ErrMalformed, got, want)
	}
	return nil
}
