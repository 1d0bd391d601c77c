package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// Bootstrap register addresses (GigE Vision 2.x). Stream channel c's
// registers are at the channel 0 address + c*StreamChannelStride.
const (
	RegVersion           uint32 = 0x0000 // major(16) minor(16)
	RegDeviceMode        uint32 = 0x0004 // bit 31 big-endian registers; low 16 bits character set
	RegMACHigh           uint32 = 0x0008 // low 16 bits: MAC bytes 0-1
	RegMACLow            uint32 = 0x000c // MAC bytes 2-5
	RegIPConfigOptions   uint32 = 0x0010
	RegIPConfigCurrent   uint32 = 0x0014
	RegCurrentIP         uint32 = 0x0024
	RegSubnetMask        uint32 = 0x0034
	RegGateway           uint32 = 0x0044
	RegManufacturerName  uint32 = 0x0048 // 32 bytes
	RegModelName         uint32 = 0x0068 // 32 bytes
	RegDeviceVersion     uint32 = 0x0088 // 32 bytes
	RegManufacturerInfo  uint32 = 0x00a8 // 48 bytes
	RegSerialNumber      uint32 = 0x00d8 // 16 bytes
	RegUserName          uint32 = 0x00e8 // 16 bytes
	RegFirstURL          uint32 = 0x0200 // 512 bytes: GenICam XML location
	RegSecondURL         uint32 = 0x0400 // 512 bytes
	RegNumInterfaces     uint32 = 0x0600
	RegNumMessageChans   uint32 = 0x0900
	RegNumStreamChans    uint32 = 0x0904
	RegGVCPCapability    uint32 = 0x0934
	RegHeartbeatTimeout  uint32 = 0x0938 // milliseconds
	RegTimestampFreqHigh uint32 = 0x093c
	RegTimestampFreqLow  uint32 = 0x0940
	RegTimestampControl  uint32 = 0x0944
	RegTimestampHigh     uint32 = 0x0948
	RegTimestampLow      uint32 = 0x094c
	RegGVCPConfig        uint32 = 0x0954 // GVCPConfigHeartbeatDisable
	RegPendingTimeout    uint32 = 0x0958 // milliseconds
	RegGVSPConfig        uint32 = 0x0960 // GVSPConfigExtendedIDs
	RegCCP               uint32 = 0x0a00 // control channel privilege
	RegPrimaryAppPort    uint32 = 0x0a04
	RegPrimaryAppIP      uint32 = 0x0a14
	RegMCP               uint32 = 0x0b00 // message channel port
	RegMCDA              uint32 = 0x0b10 // message channel destination address
	RegSCP0              uint32 = 0x0d00 // stream channel 0 port (host side)
	RegSCPS0             uint32 = 0x0d04 // stream channel 0 packet size
	RegSCPD0             uint32 = 0x0d08 // stream channel 0 packet delay (timestamp ticks)
	RegSCDA0             uint32 = 0x0d18 // stream channel 0 destination address
	RegSCSP0             uint32 = 0x0d1c // stream channel 0 source port (device side)
	RegSCC0              uint32 = 0x0d20 // stream channel 0 capability
	RegSCCFG0            uint32 = 0x0d24 // stream channel 0 configuration
	StreamChannelStride  uint32 = 0x40
	URLSize                     = 512
)

// Register bits.
const (
	CCPExclusive        uint32 = 1 << 0
	CCPControl          uint32 = 1 << 1
	CCPSwitchoverEnable uint32 = 1 << 2

	SCPSFireTest      uint32 = 1 << 31 // write: send one test packet of the set size
	SCPSDoNotFragment uint32 = 1 << 30
	SCPSBigEndian     uint32 = 1 << 29
	SCPSSizeMask      uint32 = 0xffff

	GVCPConfigHeartbeatDisable uint32 = 1 << 0
	// GVSPConfigExtendedIDs enables 64-bit block IDs (GigE Vision 2.0
	// "64bit_block_id_enable", bit 1 counted from the MSB).
	GVSPConfigExtendedIDs uint32 = 1 << 30

	DeviceModeBigEndian uint32 = 1 << 31
)

// DiscoveryAck is the payload of a DISCOVERY_ACK: a copy of the first 248
// bytes of the device's bootstrap registers.
type DiscoveryAck struct {
	VersionMajor, VersionMinor uint16
	DeviceMode                 uint32
	MAC                        [6]byte
	IPConfigOptions            uint32
	IPConfigCurrent            uint32
	IP, Subnet, Gateway        netip.Addr // IPv4
	Manufacturer               string     // ≤ 32 bytes
	Model                      string     // ≤ 32 bytes
	DeviceVersion              string     // ≤ 32 bytes
	ManufacturerInfo           string     // ≤ 48 bytes
	Serial                     string     // ≤ 16 bytes
	UserName                   string     // ≤ 16 bytes
}

// HardwareAddr returns the MAC as a net.HardwareAddr.
func (d DiscoveryAck) HardwareAddr() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	copy(m, d.MAC[:])
	return m
}

// AppendDiscoveryCmd appends a DISCOVERY command; allowBroadcast lets the
// device answer by broadcast (for a host on another subnet).
func AppendDiscoveryCmd(dst []byte, reqID uint16, allowBroadcast bool) []byte {
	flags := FlagAckRequired
	if allowBroadcast {
		flags |= FlagAllowBroadcastAck
	}
	return AppendCmd(dst, Cmd{Flags: flags, Command: CmdDiscovery, ReqID: reqID}, nil)
}

// EncodeBootstrap writes d's fields at their bootstrap offsets into p,
// which must hold DiscoveryAckSize bytes. A device keeps these bytes as
// the start of its register space; strings longer than their field are cut.
func (d DiscoveryAck) EncodeBootstrap(p []byte) {
	clear(p[:DiscoveryAckSize])
	be := binary.BigEndian
	be.PutUint16(p[0:], d.VersionMajor)
	be.PutUint16(p[2:], d.VersionMinor)
	be.PutUint32(p[4:], d.DeviceMode)
	copy(p[10:16], d.MAC[:])
	be.PutUint32(p[16:], d.IPConfigOptions)
	be.PutUint32(p[20:], d.IPConfigCurrent)
	putIP(p[36:], d.IP)
	putIP(p[52:], d.Subnet)
	putIP(p[68:], d.Gateway)
	putStr(p[72:104], d.Manufacturer)
	putStr(p[104:136], d.Model)
	putStr(p[136:168], d.DeviceVersion)
	putStr(p[168:216], d.ManufacturerInfo)
	putStr(p[216:232], d.Serial)
	putStr(p[232:248], d.UserName)
}

// AppendDiscoveryAck appends a DISCOVERY_ACK carrying d.
func AppendDiscoveryAck(dst []byte, ackID uint16, d DiscoveryAck) []byte {
	dst = AppendAck(dst, Ack{Ack: AckDiscovery, AckID: ackID}, nil)
	n := len(dst)
	dst = append(dst, make([]byte, DiscoveryAckSize)...)
	d.EncodeBootstrap(dst[n:])
	binary.BigEndian.PutUint16(dst[n-4:], DiscoveryAckSize)
	return dst
}

// ParseDiscoveryAck decodes a DISCOVERY_ACK payload (or the first 248
// bytes of a bootstrap register dump).
func ParseDiscoveryAck(p []byte) (DiscoveryAck, error) {
	if len(p) < DiscoveryAckSize {
		return DiscoveryAck{}, fmt.Errorf("%w: discovery acknowledge of %d bytes, want %d", ErrShort, len(p), DiscoveryAckSize)
	}
	be := binary.BigEndian
	d := DiscoveryAck{
		VersionMajor:     be.Uint16(p[0:]),
		VersionMinor:     be.Uint16(p[2:]),
		DeviceMode:       be.Uint32(p[4:]),
		IPConfigOptions:  be.Uint32(p[16:]),
		IPConfigCurrent:  be.Uint32(p[20:]),
		IP:               getIP(p[36:]),
		Subnet:           getIP(p[52:]),
		Gateway:          getIP(p[68:]),
		Manufacturer:     CString(p[72:104]),
		Model:            CString(p[104:136]),
		DeviceVersion:    CString(p[136:168]),
		ManufacturerInfo: CString(p[168:216]),
		Serial:           CString(p[216:232]),
		UserName:         CString(p[232:248]),
	}
	copy(d.MAC[:], p[10:16])
	return d, nil
}

// CString returns the bytes of b up to the first NUL as a string.
func CString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func putStr(dst []byte, s string) {
	n := copy(dst, s)
	clear(dst[n:])
}

func putIP(dst []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(dst, v[:])
	}
}

func getIP(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }
