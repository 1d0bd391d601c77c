package camsim

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/webinspect/webinspect/acquisition/gige/wire"
)

// writeRegLocked applies one register write; d.mu is held.
func (d *device) writeRegLocked(addr, v uint32) wire.Status {
	if st, ok := d.writeBootstrap(addr, v); ok {
		return st
	}
	if addr >= regTrigBase && addr < regTrigBase+0x20 {
		return d.writeTrigger(addr, v)
	}
	if addr >= regChunkEnBase && addr < regChunkEnBase+4*nChunkSel {
		return d.writeLocked(addr, v, v <= 1)
	}
	switch addr {
	case regWidth:
		off := int(d.get32(regOffsetX))
		return d.writeLocked(addr, v, v >= widthInc && v%widthInc == 0 && int(v)+off <= d.sensorWidth)
	case regHeight:
		return d.writeLocked(addr, v, v >= 1 && v <= maxHeight)
	case regOffsetX:
		w := int(d.get32(regWidth))
		return d.writeLocked(addr, v, v%widthInc == 0 && int(v)+w <= d.sensorWidth)
	case regPixelFormat:
		return d.writeLocked(addr, v, slices.Contains(pixelFormats, wire.PixelFormat(v)))
	case regAcqMode:
		return d.writeLocked(addr, v, v <= modeMulti)
	case regChunkActive:
		return d.writeLocked(addr, v, v <= 1)
	case regFrameCount:
		return d.writeLocked(addr, v, v >= 1 && v <= 65535)
	case regTLLocked, regTrigSelector:
		return d.store(addr, v, v <= 1)
	case regChunkSelector:
		return d.store(addr, v, v < nChunkSel)
	case regEncoderDivider:
		return d.store(addr, v, v == d.get32(regEncDivLimit))
	case regTest:
		return d.store(addr, v, true)
	case regAcqStart:
		if v == 1 {
			d.startLocked()
		}
		return wire.StatusSuccess
	case regAcqStop:
		if v == 1 {
			d.stopLocked()
		}
		return wire.StatusSuccess
	case regTrigSoftware:
		if v == 1 && d.acquiring {
			d.softTrig++
			select {
			case d.trig <- struct{}{}:
			default:
			}
		}
		return wire.StatusSuccess
	}
	if d.mem(addr, 4) == nil {
		return wire.StatusInvalidAddress
	}
	return wire.StatusWriteProtect
}

// writeBootstrap handles the writable bootstrap registers; ok is false for
// an address it does not own.
func (d *device) writeBootstrap(addr, v uint32) (wire.Status, bool) {
	switch addr {
	case wire.RegHeartbeatTimeout:
		return d.store(addr, v, v >= 100), true
	case wire.RegTimestampControl:
		if v&1 != 0 {
			d.tsEpoch = time.Now()
		}
		if v&2 != 0 {
			ts := uint64(time.Since(d.tsEpoch))
			d.put32(wire.RegTimestampHigh, uint32(ts>>32))
			d.put32(wire.RegTimestampLow, uint32(ts))
		}
		return wire.StatusSuccess, true
	case wire.RegGVCPConfig:
		return d.store(addr, v&wire.GVCPConfigHeartbeatDisable, true), true
	case wire.RegSCP0:
		return d.store(addr, v&0xffff, true), true
	case wire.RegSCPS0:
		size := v & wire.SCPSSizeMask
		if v&wire.SCPSBigEndian != 0 || size < minPacketSize || size > maxPacketSize {
			return wire.StatusInvalidParameter, true
		}
		if v&wire.SCPSFireTest != 0 {
			d.fireTest = true
			d.notify()
		}
		return d.store(addr, v&^wire.SCPSFireTest, true), true
	case wire.RegSCPD0, wire.RegSCDA0:
		return d.store(addr, v, true), true
	case wire.RegUserName, wire.RegUserName + 4, wire.RegUserName + 8, wire.RegUserName + 12:
		return d.store(addr, v, true), true
	}
	return 0, false
}

// writeTrigger writes TriggerMode or TriggerSource of one selector. A
// line trigger comes from the encoder, a frame trigger from software.
func (d *device) writeTrigger(addr, v uint32) wire.Status {
	sel := (addr - regTrigBase) / 0x10
	switch (addr - regTrigBase) % 0x10 {
	case 0:
		return d.store(addr, v, v <= 1)
	case 4:
		want := uint32(srcEncoder0)
		if sel == selFrameStart {
			want = srcSoftware
		}
		return d.store(addr, v, v == want)
	}
	return wire.StatusInvalidAddress
}

func (d *device) store(addr, v uint32, valid bool) wire.Status {
	if !valid {
		return wire.StatusInvalidParameter
	}
	d.put32(addr, v)
	return wire.StatusSuccess
}

// writeLocked stores a register that must not change during acquisition.
func (d *device) writeLocked(addr, v uint32, valid bool) wire.Status {
	if d.acquiring && d.get32(addr) != v {
		return wire.StatusBusy
	}
	return d.store(addr, v, valid)
}

func (d *device) startLocked() {
	if d.acquiring {
		return
	}
	d.acquiring = true
	d.acqGen++
	d.softTrig = 0
	d.put32(regTLLocked, 1)
	d.notify()
}

func (d *device) stopLocked() {
	if !d.acquiring {
		return
	}
	d.acquiring = false
	d.put32(regTLLocked, 0)
	d.notify()
}

// stop ends the acquisition (control lost, device closing).
func (d *device) stop() {
	d.mu.Lock()
	d.stopLocked()
	d.mu.Unlock()
}

// finished ends acquisition gen after its last frame (SingleFrame,
// MultiFrame): a later acquisition is left alone.
func (d *device) finished(gen uint64) {
	d.mu.Lock()
	if d.acqGen == gen {
		d.stopLocked()
	}
	d.mu.Unlock()
}

// state reports whether acquisition is on, its generation and config.
func (d *device) state() (on bool, gen uint64, cfg camConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acquiring, d.acqGen, d.configLocked()
}

func (d *device) configLocked() camConfig {
	c := camConfig{
		width:        int(d.get32(regWidth)),
		height:       int(d.get32(regHeight)),
		offsetX:      int(d.get32(regOffsetX)),
		pf:           wire.PixelFormat(d.get32(regPixelFormat)),
		mode:         int(d.get32(regAcqMode)),
		frameCount:   int(d.get32(regFrameCount)),
		lineTrigger:  d.get32(regTrigBase) == 1,
		frameTrigger: d.get32(regTrigBase+0x10) == 1,
		lineRate:     d.getFloat(regLineRate),
		chunks:       d.get32(regChunkActive) == 1,
		chunkEnc:     d.get32(regChunkEnBase+4*chunkSelEnc) == 1,
		chunkTS:      d.get32(regChunkEnBase+4*chunkSelTS) == 1,
		chunkLC:      d.get32(regChunkEnBase+4*chunkSelLC) == 1,
		packetSize:   int(d.get32(wire.RegSCPS0) & wire.SCPSSizeMask),
		packetDelay:  time.Duration(d.get32(wire.RegSCPD0)), // 1 GHz ticks
	}
	var ip [4]byte
	binary.BigEndian.PutUint32(ip[:], d.get32(wire.RegSCDA0))
	c.dest = netip.AddrPortFrom(netip.AddrFrom4(ip), uint16(d.get32(wire.RegSCP0)))
	return c
}

// takeTrigger consumes one pending TriggerSoftware of acquisition gen.
func (d *device) takeTrigger(gen uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.acqGen != gen || d.softTrig == 0 {
		return false
	}
	d.softTrig--
	return true
}

// takeFireTest reports and clears a test packet request, with where to send
// it and its size.
func (d *device) takeFireTest() (bool, camConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.fireTest
	d.fireTest = false
	return f, d.configLocked()
}

// timestamp returns the device clock in ticks (ns) for wall time t.
func (d *device) timestamp(t time.Time) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return uint64(t.Sub(d.tsEpoch))
}

// setCCP stores the control channel privilege register.
func (d *device) setCCP(v uint32) {
	d.mu.Lock()
	d.put32(wire.RegCCP, v)
	d.mu.Unlock()
}

// streamReset forgets the stream destination (control lost).
func (d *device) streamReset() {
	d.mu.Lock()
	d.put32(wire.RegSCP0, 0)
	d.put32(wire.RegSCDA0, 0)
	d.mu.Unlock()
}

// discoveryData returns a copy of the first 248 bootstrap bytes.
func (d *device) discoveryData() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.boot[:wire.DiscoveryAckSize])
}
