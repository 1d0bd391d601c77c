package camsim

import (
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// Device-specific register addresses (see the package doc and device.xml).
const (
	regSensorWidth    = 0x10000
	regWidth          = 0x10004
	regHeight         = 0x10008
	regOffsetX        = 0x1000c
	regPixelFormat    = 0x10010
	regScanType       = 0x10014
	regAcqMode        = 0x10018
	regAcqStart       = 0x1001c
	regAcqStop        = 0x10020
	regTLLocked       = 0x10028
	regTrigSelector   = 0x1002c
	regEncoderDivider = 0x10030
	regTrigSoftware   = 0x10034
	regChunkActive    = 0x10038
	regChunkSelector  = 0x1003c
	regTest           = 0x10040
	regEncDivLimit    = 0x10044
	regFrameCount     = 0x10048
	regLineRate       = 0x10050 // float64
	regExposure       = 0x10058 // float64
	regTrigBase       = 0x10100 // + selector*0x10: mode, +4: source
	regChunkEnBase    = 0x10200 // + selector*4

	bootSize = 0x1000
	featBase = 0x10000
	featSize = 0x300
	xmlAddr  = 0x100000
)

// Trigger selectors, sources, chunk selectors and acquisition modes as the
// XML numbers them.
const (
	selLineStart  = 0
	selFrameStart = 1
	srcEncoder0   = 0
	srcSoftware   = 1
	chunkSelEnc   = 0
	chunkSelTS    = 1
	chunkSelLC    = 2
	nChunkSel     = 3
	modeContinous = 0
	modeSingle    = 1
	modeMulti     = 2
)

// Chunk IDs of the payload's chunks (big-endian tags, see the package doc).
const (
	ChunkIDImage        uint32 = 0x57490001
	ChunkIDEncoderValue uint32 = 0x57490002
	ChunkIDTimestamp    uint32 = 0x57490003
	ChunkIDLineCounter  uint32 = 0x57490004
)

// Limits the device enforces on writes (the XML states the same).
const (
	minPacketSize = 576
	maxPacketSize = 9000
	maxHeight     = 16384
	widthInc      = 8
)

var pixelFormats = []wire.PixelFormat{wire.Mono8, wire.Mono10, wire.Mono12, wire.Mono16, wire.Mono10p, wire.Mono12p}

// identity is what discovery and the bootstrap strings say about a camera.
type identity struct {
	serial, user string
	mac          [6]byte
	ip           netip.Addr
}

// camConfig is everything the stream needs, read once at AcquisitionStart.
type camConfig struct {
	width, height, offsetX int
	pf                     wire.PixelFormat
	mode, frameCount       int
	lineTrigger            bool // LineStart On, Encoder0: lines follow the web's motion
	frameTrigger           bool // FrameStart On, Software: a frame per TriggerSoftware
	lineRate               float64
	chunks                 bool
	chunkEnc, chunkTS      bool
	chunkLC                bool
	dest                   netip.AddrPort
	packetSize             int
	packetDelay            time.Duration
}

// device is one camera's register space and acquisition state. Every
// method locks mu; values are stored big-endian as the client sees them.
type device struct {
	mu          sync.Mutex
	boot        [bootSize]byte
	feat        [featSize]byte
	xml         []byte
	sensorWidth int
	tsEpoch     time.Time

	acquiring bool
	acqGen    uint64        // incremented by every AcquisitionStart
	softTrig  int           // pending TriggerSoftware commands
	fireTest  bool          // a test packet was requested
	wake      chan struct{} // acquisition state or test packet request changed
	trig      chan struct{} // a TriggerSoftware arrived
}

// deviceParams are the power-on values of one camera.
type deviceParams struct {
	id          identity
	sensorWidth int
	height      int
	divider     int
	lineRate    float64
	packetSize  int
	noResend    bool
	plainXML    bool
}

func newDevice(p deviceParams) (*device, error) {
	img, url, err := xmlImage(p.plainXML)
	if err != nil {
		return nil, err
	}
	d := &device{xml: img, sensorWidth: p.sensorWidth, tsEpoch: time.Now(), wake: make(chan struct{}, 1), trig: make(chan struct{}, 1)}
	ack := wire.DiscoveryAck{
		VersionMajor: 1, VersionMinor: 2,
		DeviceMode:      wire.DeviceModeBigEndian | 1, // UTF-8
		MAC:             p.id.mac,
		IPConfigOptions: 0x7, IPConfigCurrent: 0x4, // persistent, DHCP, LLA offered; LLA in use
		IP: p.id.ip, Subnet: netip.AddrFrom4([4]byte{255, 0, 0, 0}), Gateway: netip.AddrFrom4([4]byte{}),
		Manufacturer: "webinspect", Model: "WI-LS-Sim", DeviceVersion: "1.0",
		ManufacturerInfo: "emulated line-scan camera (camsim)",
		Serial:           p.id.serial, UserName: p.id.user,
	}
	ack.EncodeBootstrap(d.boot[:])
	copy(d.boot[wire.RegFirstURL:wire.RegFirstURL+wire.URLSize], url)
	caps := uint32(1<<1 | 1<<30 | 1<<31) // WRITEMEM, serial number, user name
	if !p.noResend {
		caps |= 1 << 2 // PACKETRESEND
	}
	for _, r := range []struct{ a, v uint32 }{
		{wire.RegNumInterfaces, 1}, {wire.RegNumMessageChans, 0}, {wire.RegNumStreamChans, 1},
		{wire.RegGVCPCapability, caps}, {wire.RegHeartbeatTimeout, 3000},
		{wire.RegTimestampFreqHigh, 0}, {wire.RegTimestampFreqLow, 1e9},
		{wire.RegSCPS0, uint32(p.packetSize)},
		{regSensorWidth, uint32(p.sensorWidth)}, {regWidth, uint32(p.sensorWidth)},
		{regHeight, uint32(p.height)}, {regPixelFormat, uint32(wire.Mono8)}, {regScanType, 1},
		{regFrameCount, 1}, {regEncoderDivider, uint32(p.divider)}, {regEncDivLimit, uint32(p.divider)},
		{regTrigBase, 1}, {regTrigBase + 4, srcEncoder0}, // LineStart: On, Encoder0
		{regTrigBase + 0x10, 0}, {regTrigBase + 0x14, srcSoftware}, // FrameStart: Off, Software
	} {
		d.put32(r.a, r.v)
	}
	d.putFloat(regLineRate, p.lineRate)
	d.putFloat(regExposure, math.Min(1e6/p.lineRate*0.8, 10000))
	return d, nil
}

// mem returns the bytes at [addr, addr+n) or nil when the range is not
// wholly inside one region.
func (d *device) mem(addr uint32, n int) []byte {
	a := int(addr)
	switch {
	case a+n <= bootSize:
		return d.boot[a : a+n]
	case a >= featBase && a+n <= featBase+featSize:
		return d.feat[a-featBase : a-featBase+n]
	case a >= xmlAddr && a+n <= xmlAddr+len(d.xml):
		return d.xml[a-xmlAddr : a-xmlAddr+n]
	}
	return nil
}

func (d *device) get32(addr uint32) uint32    { return binary.BigEndian.Uint32(d.mem(addr, 4)) }
func (d *device) put32(addr uint32, v uint32) { binary.BigEndian.PutUint32(d.mem(addr, 4), v) }
func (d *device) getFloat(addr uint32) float64 {
	return math.Float64frombits(binary.BigEndian.Uint64(d.mem(addr, 8)))
}
func (d *device) putFloat(addr uint32, v float64) {
	binary.BigEndian.PutUint64(d.mem(addr, 8), math.Float64bits(v))
}

// readMem copies [addr, addr+len(dst)) into dst.
func (d *device) readMem(addr uint32, dst []byte) wire.Status {
	if addr%4 != 0 || len(dst)%4 != 0 {
		return wire.StatusBadAlignment
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.mem(addr, len(dst))
	if m == nil {
		return wire.StatusInvalidAddress
	}
	copy(dst, m)
	return wire.StatusSuccess
}

// writeMem writes data at addr: a float register as a whole, the user name
// as bytes, anything else register by register. It returns how many bytes
// were written and the status of the first failure.
func (d *device) writeMem(addr uint32, data []byte) (int, wire.Status) {
	if addr%4 != 0 || len(data)%4 != 0 {
		return 0, wire.StatusBadAlignment
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if (addr == regLineRate || addr == regExposure) && len(data) == 8 {
		return d.writeFloat(addr, math.Float64frombits(binary.BigEndian.Uint64(data)))
	}
	if addr >= wire.RegUserName && int(addr)+len(data) <= int(wire.RegUserName)+16 {
		copy(d.mem(addr, len(data)), data)
		return len(data), wire.StatusSuccess
	}
	for i := 0; i < len(data); i += 4 {
		if st := d.writeRegLocked(addr+uint32(i), binary.BigEndian.Uint32(data[i:])); st != wire.StatusSuccess {
			return i, st
		}
	}
	return len(data), wire.StatusSuccess
}

func (d *device) writeFloat(addr uint32, v float64) (int, wire.Status) {
	lo, hi := 100.0, 200000.0
	if addr == regExposure {
		lo, hi = 1, 10000
	}
	if math.IsNaN(v) || v < lo || v > hi {
		return 0, wire.StatusInvalidParameter
	}
	d.putFloat(addr, v)
	return 8, wire.StatusSuccess
}

// readReg returns the register at addr.
func (d *device) readReg(addr uint32) (uint32, wire.Status) {
	if addr%4 != 0 {
		return 0, wire.StatusBadAlignment
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mem(addr, 4) == nil {
		return 0, wire.StatusInvalidAddress
	}
	return d.get32(addr), wire.StatusSuccess
}

// writeReg writes one register with the device's rules.
func (d *device) writeReg(addr, v uint32) wire.Status {
	if addr%4 != 0 {
		return wire.StatusBadAlignment
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writeRegLocked(addr, v)
}

func (d *device) notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}
