package u3v

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// The emulated U3V camera: a register space (ABRM, SBRM, SIRM, manifest,
// device XML, feature registers) behind GenCP on the control endpoints and
// a block generator on the stream endpoint. It checks that the host uses
// the device as USB and the standard require and fails the test otherwise:
// opening twice, using a closed device, the wrong endpoint or direction,
// one endpoint from two goroutines at once, stream transfers that are not
// a multiple of the max packet size, malformed commands.

// Emulated register map.
const (
	emuSBRM     = 0x1_0000
	emuSIRM     = 0x2_0000
	emuManifest = 0x3_0000
	emuXML      = 0x4_0000
	emuRegs     = 0x8_0000 // feature registers the test XML points at
	emuMemSize  = 0x10_0000
	emuMPS      = 1024

	regWidth      = emuRegs + 0x00
	regHeight     = emuRegs + 0x04
	regPixFmt     = emuRegs + 0x08
	regAcqStart   = emuRegs + 0x0C
	regAcqStop    = emuRegs + 0x10
	regPayload    = emuRegs + 0x14
	regTestReg    = emuRegs + 0x18
	regEncDivider = emuRegs + 0x1C
)

var emuInfo = deviceInfo{
	Bus: 2, Address: 7, Vendor: 0x1234, Product: 0x5678, Serial: "EMU0001",
	Manufacturer: "webinspect", Model: "EmuLine U3V",
	ControlIntf: 0, ControlIn: endpoint{0x81, emuMPS}, ControlOut: endpoint{0x01, emuMPS},
	StreamIntf: 1, StreamIn: endpoint{0x82, emuMPS},
	EventIntf: -1,
}

// blockFault is what the emulated camera does wrong in one block.
type blockFault struct {
	Short     int    // send only this many payload bytes (0: all)
	NoTrailer bool   // skip the trailer
	StallAt   int    // halt the endpoint at this stream read of the block (1 = leader; 0: never)
	Status    Status // trailer status
	Skip      bool   // the device drops the block (block ID gap)
	BadMagic  bool   // corrupt the leader's magic
}

// reporter is where the emulator reports misuse: the test's *testing.T,
// or a recorder in the test that proves misuse is caught.
type reporter interface{ Error(args ...any) }

type emuDevice struct {
	t reporter

	mu     sync.Mutex
	open   bool
	closed bool
	busy   map[uint8]bool
	mem    []byte

	// control faults, consumed as used
	pending map[uint64]int    // address -> pending acks before the answer
	status  map[uint64]Status // address -> refused with this status
	stale   int               // next N commands are first answered with a wrong request ID
	dropAck int               // next N commands get no answer at all
	acks    [][]byte
	cmds    int // commands received

	// stream
	blockID  uint64
	segs     [][]byte // queued segments of the current block (each ends a transfer)
	halted   bool
	faults   map[uint64]blockFault
	readsInB int // stream reads in the current block
	image    func(id uint64, l leader) []byte
	chunks   func(id uint64) []byte
}

func newEmu(t testing.TB, xml []byte, zip bool) *emuDevice {
	d := &emuDevice{t: t, busy: map[uint8]bool{}, mem: make([]byte, emuMemSize),
		pending: map[uint64]int{}, status: map[uint64]Status{}, faults: map[uint64]blockFault{}}
	le := binary.LittleEndian
	copy(d.mem[abrmManufacturer:], "webinspect")
	copy(d.mem[abrmModel:], "EmuLine U3V")
	copy(d.mem[abrmDeviceVersion:], "1.0")
	copy(d.mem[abrmSerial:], "EMU0001")
	le.PutUint32(d.mem[abrmGenCPVersion:], 0x00010000)
	le.PutUint64(d.mem[abrmCapability:], capSBRMSupported)
	le.PutUint32(d.mem[abrmMaxResponseMS:], 20)
	le.PutUint64(d.mem[abrmManifestAddr:], emuManifest)
	le.PutUint64(d.mem[abrmSBRMAddr:], emuSBRM)
	le.PutUint32(d.mem[emuSBRM+sbrmVersion:], 0x00010000)
	le.PutUint32(d.mem[emuSBRM+sbrmMaxCmd:], 512)
	le.PutUint32(d.mem[emuSBRM+sbrmMaxAck:], 512)
	le.PutUint32(d.mem[emuSBRM+sbrmNumStreams:], 1)
	le.PutUint64(d.mem[emuSBRM+sbrmSIRMAddr:], emuSIRM)
	le.PutUint32(d.mem[emuSBRM+sbrmSIRMLen:], sirmLen)
	le.PutUint32(d.mem[emuSIRM+sirmInfo:], 10<<24) // 1024-byte alignment
	le.PutUint32(d.mem[emuSIRM+sirmReqLeader:], imageLeaderLen)
	le.PutUint32(d.mem[emuSIRM+sirmReqTrailer:], chunkTrailerLen)
	// manifest: one entry
	le.PutUint64(d.mem[emuManifest:], 1)
	e := d.mem[emuManifest+8:]
	le.PutUint32(e[0:], 1<<24|2<<16|3) // version 1.2.3
	schema := uint32(1<<24 | 1<<16)
	if zip {
		schema |= schemaZip << 10
	}
	le.PutUint32(e[4:], schema)
	le.PutUint64(e[8:], emuXML)
	le.PutUint64(e[16:], uint64(len(xml)))
	copy(d.mem[emuXML:], xml)
	// features
	d.setU32(regWidth, 64)
	d.setU32(regHeight, 8)
	d.setU32(regPixFmt, pfMono8)
	d.setU32(regEncDivider, 2)
	return d
}

func (d *emuDevice) setU32(addr uint64, v uint32) { binary.LittleEndian.PutUint32(d.mem[addr:], v) }
func (d *emuDevice) u32(addr uint64) uint32       { return binary.LittleEndian.Uint32(d.mem[addr:]) }

// misuse fails the test and returns the error the call gives.
func (d *emuDevice) misuse(format string, a ...any) error {
	err := fmt.Errorf("emulated device misuse: "+format, a...)
	d.t.Error(err)
	return err
}

// enter checks that ep is used the right way and marks it busy.
func (d *emuDevice) enter(ep uint8, in bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !d.open {
		return d.misuse("endpoint %s used on a closed device", epString(ep))
	}
	ok := ep == emuInfo.ControlOut.Addr && !in ||
		(ep == emuInfo.ControlIn.Addr || ep == emuInfo.StreamIn.Addr) && in
	if !ok {
		return d.misuse("wrong endpoint %s for a bulk %s", epString(ep), map[bool]string{true: "IN", false: "OUT"}[in])
	}
	if d.busy[ep] {
		return d.misuse("endpoint %s used from two goroutines at once", epString(ep))
	}
	d.busy[ep] = true
	return nil
}

func (d *emuDevice) leave(ep uint8) {
	d.mu.Lock()
	d.busy[ep] = false
	d.mu.Unlock()
}

func (d *emuDevice) bulkOut(ctx context.Context, ep uint8, p []byte) (int, error) {
	if err := d.enter(ep, false); err != nil {
		return 0, err
	}
	defer d.leave(ep)
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(p), d.command(p)
}

// command runs one GenCP command and queues its acknowledges.
func (d *emuDevice) command(p []byte) error {
	le := binary.LittleEndian
	if len(p) < prefixLen || le.Uint32(p) != gencpMagic {
		return d.misuse("command without the U3VC prefix (% x)", p[:min(len(p), 12)])
	}
	flags, cmd, n, id := le.Uint16(p[4:]), le.Uint16(p[6:]), int(le.Uint16(p[8:])), le.Uint16(p[10:])
	if flags&flagRequestAck == 0 || id == 0 || n != len(p)-prefixLen {
		return d.misuse("command flags 0x%04x id %d length %d in a %d-byte transfer", flags, id, n, len(p))
	}
	if len(p) > int(d.u32(emuSBRM+sbrmMaxCmd)) && d.cmds > 0 {
		return d.misuse("command of %d bytes over the SBRM limit", len(p))
	}
	d.cmds++
	scd := p[prefixLen:]
	var addr uint64
	if len(scd) >= 8 {
		addr = le.Uint64(scd)
	}
	if d.dropAck > 0 {
		d.dropAck--
		return nil
	}
	if d.stale > 0 {
		d.stale--
		d.acks = append(d.acks, appendAck(StatusSuccess, cmd+1, id-1, nil))
	}
	for ; d.pending[addr] > 0; d.pending[addr]-- {
		d.acks = append(d.acks, appendAck(StatusSuccess, ackPending, id, []byte{0, 0, 5, 0}))
	}
	if st, ok := d.status[addr]; ok {
		delete(d.status, addr)
		d.acks = append(d.acks, appendAck(st, cmd+1, id, nil))
		return nil
	}
	switch cmd {
	case cmdReadMem:
		size := int(le.Uint16(scd[10:]))
		if addr+uint64(size) > emuMemSize {
			d.acks = append(d.acks, appendAck(StatusInvalidAddress, ackReadMem, id, nil))
			return nil
		}
		d.acks = append(d.acks, appendAck(StatusSuccess, ackReadMem, id, d.mem[addr:addr+uint64(size)]))
	case cmdWriteMem:
		data := scd[writeMemHdrLen:]
		if addr+uint64(len(data)) > emuMemSize || addr < emuSIRM && addr != 0 {
			d.acks = append(d.acks, appendAck(StatusWriteProtect, ackWriteMem, id, nil))
			return nil
		}
		copy(d.mem[addr:], data)
		d.written(addr)
		d.acks = append(d.acks, appendAck(StatusSuccess, ackWriteMem, id, []byte{0, 0, byte(len(data)), byte(len(data) >> 8)}))
	default:
		d.acks = append(d.acks, appendAck(StatusNotImplemented, cmd+1, id, nil))
	}
	return nil
}

// written applies side effects of register writes.
func (d *emuDevice) written(addr uint64) {
	switch addr {
	case regAcqStop:
		d.setU32(regAcqStart, 0)
	case regWidth, regHeight, regPixFmt:
		d.setU32(regPayload, d.u32(regWidth)*d.u32(regHeight)*uint32(pixelBits(d.u32(regPixFmt)))/8)
		binary.LittleEndian.PutUint64(d.mem[emuSIRM+sirmReqPayload:], uint64(d.u32(regPayload)+d.chunkLen()))
	}
}

func (d *emuDevice) chunkLen() uint32 {
	if d.chunks == nil {
		return 0
	}
	return uint32(len(d.chunks(0)))
}

func appendAck(st Status, cmd, id uint16, scd []byte) []byte {
	b := appendCommand(nil, 0, cmd, id, scd)
	binary.LittleEndian.PutUint16(b[4:], uint16(st))
	return b
}

func (d *emuDevice) bulkIn(ctx context.Context, ep uint8, p []byte) (int, error) {
	if err := d.enter(ep, true); err != nil {
		return 0, err
	}
	defer d.leave(ep)
	d.mu.Lock()
	defer d.mu.Unlock()
	if ep == emuInfo.ControlIn.Addr {
		if len(d.acks) == 0 {
			return 0, errTimeout
		}
		a := d.acks[0]
		d.acks = d.acks[1:]
		if len(a) > len(p) {
			return 0, d.misuse("acknowledge of %d bytes overflows a %d-byte buffer", len(a), len(p))
		}
		return copy(p, a), nil
	}
	if len(p) == 0 || len(p)%emuMPS != 0 {
		return 0, d.misuse("stream transfer of %d bytes is not a multiple of the max packet size %d", len(p), emuMPS)
	}
	return d.stream(ctx, p)
}

// stream serves the next stream transfer, making a block when needed.
func (d *emuDevice) stream(ctx context.Context, p []byte) (int, error) {
	if d.halted {
		return 0, errStall
	}
	if len(d.segs) == 0 {
		if d.u32(emuSIRM+sirmControl)&sirmEnable == 0 || d.u32(regAcqStart) == 0 {
			d.mu.Unlock() // nothing to send until acquisition runs
			<-ctx.Done()
			d.mu.Lock()
			return 0, ctx.Err()
		}
		d.makeBlock()
	}
	d.readsInB++
	if f := d.faults[d.blockID]; f.StallAt == d.readsInB {
		d.halted, d.segs = true, nil
		return 0, errStall
	}
	seg := d.segs[0]
	n := copy(p, seg)
	if n == len(seg) {
		d.segs = d.segs[1:]
	} else {
		d.segs[0] = seg[n:]
	}
	return n, nil
}

// makeBlock queues leader, payload and trailer of the next block.
func (d *emuDevice) makeBlock() {
	for {
		d.blockID++
		if !d.faults[d.blockID].Skip {
			break
		}
	}
	f := d.faults[d.blockID]
	d.readsInB = 0
	l := leader{BlockID: d.blockID, PayloadType: payloadImage, Timestamp: d.blockID * 1000,
		PixelFormat: d.u32(regPixFmt), SizeX: d.u32(regWidth), SizeY: d.u32(regHeight)}
	var payload []byte
	if d.image != nil {
		payload = d.image(d.blockID, l)
	} else {
		payload = make([]byte, d.u32(regPayload))
	}
	if d.chunks != nil {
		l.PayloadType = payloadImageChunk
		payload = append(payload, d.chunks(d.blockID)...)
	}
	if f.Short > 0 {
		payload = payload[:f.Short]
	}
	lb := appendLeader(nil, l)
	if f.BadMagic {
		lb[0] ^= 0xFF
	}
	d.segs = [][]byte{lb}
	// The device sends the payload in the host's configured transfers.
	ts := int(d.u32(emuSIRM + sirmPayloadSize))
	for off := 0; off < len(payload); off += max(ts, 1) {
		d.segs = append(d.segs, payload[off:min(off+max(ts, 1), len(payload))])
	}
	if !f.NoTrailer {
		t := trailer{BlockID: d.blockID, Status: f.Status, ValidPayload: uint64(len(payload)), SizeY: l.SizeY}
		d.segs = append(d.segs, appendTrailer(nil, t, l.PayloadType))
	}
}

func (d *emuDevice) clearHalt(ep uint8) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !d.open {
		return d.misuse("clear halt on a closed device")
	}
	if ep != emuInfo.StreamIn.Addr && ep != emuInfo.ControlIn.Addr {
		return d.misuse("clear halt on endpoint %s", epString(ep))
	}
	if ep == emuInfo.StreamIn.Addr {
		d.halted = false
	}
	return nil
}

func (d *emuDevice) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !d.open {
		return d.misuse("close of a device that is not open")
	}
	d.closed = true
	return nil
}

// emuBus is a bus with the given emulated devices.
type emuBus struct {
	t      reporter
	devs   []*emuDevice
	infos  []deviceInfo
	err    error // list error
	closed bool
}

func (b *emuBus) list() ([]deviceInfo, error) {
	if b.closed {
		return nil, b.misuse("list on a closed bus")
	}
	return b.infos, b.err
}

func (b *emuBus) misuse(s string) error {
	b.t.Error("emulated bus misuse: " + s)
	return errors.New(s)
}

func (b *emuBus) open(info deviceInfo) (usbDevice, error) {
	if b.closed {
		return nil, b.misuse("open on a closed bus")
	}
	for i, in := range b.infos {
		if in.Bus == info.Bus && in.Address == info.Address {
			d := b.devs[i]
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.open && !d.closed {
				return nil, d.misuse("interfaces claimed twice")
			}
			d.open, d.closed = true, false
			return d, nil
		}
	}
	return nil, errors.New("no such device")
}

func (b *emuBus) close() error {
	if b.closed {
		return b.misuse("bus closed twice")
	}
	for _, d := range b.devs {
		if d.open && !d.closed {
			return b.misuse("bus closed with a device open")
		}
	}
	b.closed = true
	return nil
}
