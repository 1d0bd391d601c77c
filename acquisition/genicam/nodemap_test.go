package genicam

import (
	"errors"
	"strings"
	"testing"
)

func TestLinescanRead(t *testing.T) {
	c := newTestCamera(t)
	m := c.m
	ints := map[string]int64{
		"Width": 4096, "Height": 256, "OffsetX": 0, "SensorWidth": 4096, "WidthMax": 4096,
		"PixelBits": 8, "PayloadSize": 4096 * 256, "EncoderDivider": 4, "EncoderValue": 1 << 40,
		"GevSCPSPacketSize": 1500, "TestRegister": 0, "TestIndexed": 100, "TLParamsLocked": 0,
		"PixelFormat": 0x01080001, "TriggerSoftwareAvailable": 0,
	}
	for name, want := range ints {
		if got, err := m.Int(name); err != nil || got != want {
			t.Errorf("Int(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	floats := map[string]float64{
		"AcquisitionLineRate": 10000, "ExposureTime": 50, "DeviceTemperature": 45.5,
		"AcquisitionLineRateMax": 1e6 / 52, "TestSwissKnifeFloat": 6.5, "Width": 4096,
	}
	for name, want := range floats {
		if got, err := m.Float(name); err != nil || got != want {
			t.Errorf("Float(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	enums := map[string]string{
		"DeviceScanType": "Linescan", "PixelFormat": "Mono8", "TriggerSelector": "LineStart",
		"TriggerMode": "On", "TriggerSource": "Encoder0", "AcquisitionMode": "Continuous",
		"ChunkSelector": "Image", "EncoderSelector": "Encoder0", "TriggerActivation": "RisingEdge",
	}
	for name, want := range enums {
		if got, err := m.Enum(name); err != nil || got != want {
			t.Errorf("Enum(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	strs := map[string]string{"DeviceVendorName": "WebInspect", "DeviceModelName": "LS4096 emulated", "TestString": "hello", "DeviceUserID": ""}
	for name, want := range strs {
		if got, err := m.String(name); err != nil || got != want {
			t.Errorf("String(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	bools := map[string]bool{"ReverseX": false, "ChunkModeActive": false, "ChunkEnable": true}
	for name, want := range bools {
		if got, err := m.Bool(name); err != nil || got != want {
			t.Errorf("Bool(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	if m.ModelName != "LS4096" || m.VendorName != "WebInspect" || m.SchemaVersion != "1.1.0" {
		t.Errorf("root attributes: %q %q %q", m.ModelName, m.VendorName, m.SchemaVersion)
	}
}

func TestLinescanWrite(t *testing.T) {
	c := newTestCamera(t)
	m := c.m
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.SetInt("Width", 2048))
	must(m.SetInt("OffsetX", 1024))
	must(m.SetEnum("PixelFormat", "Mono12p"))
	must(m.SetInt("Height", 100))
	if got := be32u(c.p.peek(0x10100, 4)); got != 2048 {
		t.Errorf("WidthReg = %d", got)
	}
	if v, _ := m.Int("WidthMax"); v != 4096-1024 {
		t.Errorf("WidthMax after OffsetX=1024: %d", v)
	}
	if v, _ := m.Int("PayloadSize"); v != (2048*100*12+7)/8 {
		t.Errorf("PayloadSize = %d", v)
	}
	must(m.SetBool("ChunkModeActive", true))
	if v, _ := m.Int("PayloadSize"); v != (2048*100*12+7)/8+40 {
		t.Errorf("PayloadSize with chunks = %d", v)
	}
	if got := be32u(c.p.peek(0x10400, 4)); got != 1 {
		t.Errorf("ChunkModeActive bit: register 0x%x", got)
	}
	must(m.SetFloat("ExposureTime", 12.34))
	if got := be32u(c.p.peek(0x1020C, 4)); got != 123 {
		t.Errorf("ExposureTimeRaw = %d, want 123", got)
	}
	must(m.SetFloat("AcquisitionLineRate", 25000))
	if v, _ := m.Float("AcquisitionLineRate"); v != 25000 {
		t.Errorf("line rate read back %v", v)
	}
	must(m.SetInt("EncoderDivider", 3))
	must(m.SetInt("TestRegister", -5))
	if v, _ := m.Int("TestIntConverter"); v != -10 {
		t.Errorf("TestIntConverter = %d", v)
	}
	must(m.SetInt("TestIntConverter", 42))
	if v, _ := m.Int("TestRegister"); v != 21 {
		t.Errorf("TestRegister after converter write = %d", v)
	}
	must(m.SetString("DeviceUserID", "left camera"))
	if got := string(c.p.peek(0xE8, 16)); got != "left camera\x00\x00\x00\x00\x00" {
		t.Errorf("DeviceUserID register %q", got)
	}
	must(m.SetInt("GevSCPSPacketSize", 8996))
	if got := be32u(c.p.peek(0x0D04, 4)); got != 0x8000_0000|8996 {
		t.Errorf("SCPS register 0x%x: the flag bit must survive", got)
	}
	must(m.SetString("TestString", "bye"))
	if v, _ := m.String("TestString"); v != "bye" {
		t.Errorf("TestString %q", v)
	}
	must(m.Execute("AcquisitionStart"))
	if got := be32u(c.p.peek(0x10204, 4)); got != 1 {
		t.Errorf("AcquisitionStart wrote %d", got)
	}
	must(m.Execute("AcquisitionStop"))
	if got := be32u(c.p.peek(0x10204, 4)); got != 0 {
		t.Errorf("AcquisitionStop wrote %d", got)
	}
	must(m.SetInt("TestCopy", 77))
	if v, _ := m.Int("TestLittleInt"); v != 77 {
		t.Errorf("pValueCopy: TestLittleInt = %d", v)
	}
}

func be32u(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func TestEncodings(t *testing.T) {
	c := newTestCamera(t)
	m := c.m
	if err := m.SetInt("TestLittleInt", -2); err != nil {
		t.Fatal(err)
	}
	if got := c.p.peek(0x10518, 4); string(got) != "\xfe\xff\xff\xff" {
		t.Errorf("little-endian -2 = % x", got)
	}
	if err := m.SetInt("TestMaskedLittle", 0xA); err != nil {
		t.Fatal(err)
	}
	if got := c.p.peek(0x1051C, 4); string(got) != "\xa0\x00\x00\x00" {
		t.Errorf("little-endian bits 4..7 = % x", got)
	}
	if err := m.SetInt("TestMaskedLittle", 16); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("16 in 4 bits: %v", err)
	}
	if err := m.SetFloat("TestFloat64", -1.25); err != nil {
		t.Fatal(err)
	}
	if got := c.p.peek(0x10508, 8); string(got) != "\x00\x00\x00\x00\x00\x00\xf4\xbf" {
		t.Errorf("little-endian float64 -1.25 = % x", got)
	}
	if err := m.SetValue("TestRawRegister", "0102030405060708"); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Value("TestRawRegister"); err != nil || v != "0102030405060708" {
		t.Errorf("raw register %q %v", v, err)
	}
	// StructReg fields share one register.
	for _, s := range []struct {
		name string
		v    int64
	}{{"GainRaw", 200}, {"BlackLevelRaw", -3}, {"ReverseXBit", 1}} {
		if err := m.SetInt(s.name, s.v); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if got := be32u(c.p.peek(0x10114, 4)); got != 0x00FDC801 {
		t.Errorf("ImageControl register 0x%08x, want 0x00FDC801 (BigEndian bit numbers count from the MSB)", got)
	}
	if v, _ := m.Int("BlackLevelRaw"); v != -3 {
		t.Errorf("BlackLevelRaw %d", v)
	}
	if v, _ := m.Bool("ReverseX"); !v {
		t.Error("ReverseX false")
	}
	if err := m.SetInt("BlackLevelRaw", 128); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("128 in a signed byte: %v", err)
	}
	// The alias reaches TestRegisterReg's address through an inline formula.
	if err := m.SetInt("TestAlias", 1234); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Int("TestRegister"); v != 1234 {
		t.Errorf("TestRegister after alias write = %d (overlapping caches must not disagree)", v)
	}
}

func TestErrors(t *testing.T) {
	c := newTestCamera(t)
	m := c.m
	for _, tc := range []struct {
		err  error
		want error
		text string
	}{
		{m.SetInt("Width", 5000), ErrOutOfRange, "outside [16, 4096]"},
		{m.SetInt("Width", 1000), ErrOutOfRange, "multiple of 16"},
		{m.SetInt("Nope", 1), ErrNotFound, "Nope"},
		{m.SetInt("SensorWidth", 1), ErrReadOnly, "SensorWidth"},
		{m.SetInt("TestImposedRO", 1), ErrReadOnly, "read-only"},
		{m.SetInt("PayloadSize", 1), ErrReadOnly, ""},
		{m.SetString("DeviceVendorName", "x"), ErrReadOnly, ""},
		{m.SetEnum("PixelFormat", "RGB8"), ErrNotEnumEntry, "Mono8, Mono10"},
		{m.SetEnum("DeviceScanType", "Areascan"), ErrNotAvailable, "Areascan"},
		{m.SetInt("PixelFormat", 5), ErrNotEnumEntry, ""},
		{m.SetFloat("ExposureTime", 0.5), ErrOutOfRange, "[1, 10000]"},
		{m.SetFloat("AcquisitionLineRate", 99), ErrOutOfRange, ""},
		{m.SetString("DeviceUserID", strings.Repeat("x", 17)), ErrOutOfRange, "16"},
		{m.SetInt("TestString", 1), ErrWrongType, ""},
		{m.Execute("Width"), ErrWrongType, ""},
		{m.Execute("TriggerSoftware"), ErrNotAvailable, "TriggerSoftware"},
		{m.SetBool("ChunkEnable", false), ErrLocked, ""},
		{m.SetInt("TestNotImplemented", 1), ErrNotImplemented, ""},
		{m.SetValue("Width", "wide"), ErrOutOfRange, "integer"},
	} {
		if !errors.Is(tc.err, tc.want) || !strings.Contains(tc.err.Error(), tc.text) {
			t.Errorf("got %v, want %v containing %q", tc.err, tc.want, tc.text)
		}
		var fe *FeatureError
		if !errors.As(tc.err, &fe) || fe.Feature == "" {
			t.Errorf("%v is not a *FeatureError naming the feature", tc.err)
		}
	}
	if _, err := m.Int("TestWriteOnly"); !errors.Is(err, ErrWriteOnly) {
		t.Errorf("read of WO: %v", err)
	}
	if err := m.SetInt("TestWriteOnly", 9); err != nil {
		t.Errorf("write of WO: %v", err)
	}
	if _, err := m.Int("TestNotImplemented"); !errors.Is(err, ErrNotImplemented) {
		t.Errorf("read of NI: %v", err)
	}
	// Locking through TLParamsLocked, as a transport does while streaming.
	if err := m.SetInt("TLParamsLocked", 1); err != nil {
		t.Fatal(err)
	}
	err := m.SetInt("Width", 1024)
	if !errors.Is(err, ErrLocked) || err.Error() != "genicam: set Width: locked: Width is locked now (node Width)" {
		t.Errorf("locked Width: %q", err)
	}
	if err := m.SetInt("TLParamsLocked", 2); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("TLParamsLocked=2: %v", err)
	}
	// Port failures pass through, wrapped.
	linkDown := errors.New("link down")
	c.p.fail = linkDown
	if _, err := m.Int("EncoderValue"); !errors.Is(err, linkDown) || !strings.Contains(err.Error(), "0x10308") {
		t.Errorf("port failure: %v", err)
	}
	m.Connect(nil)
	if _, err := m.Int("Width"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("no port: %v", err)
	}
}

// TestIntegerFormulaWithFraction: an integer converter written with a
// fractional literal is evaluated in floating point and truncated.
func TestIntegerFormulaWithFraction(t *testing.T) {
	m := hostile(t, `<IntConverter Name="Tenth"><FormulaTo>10 * FROM</FormulaTo><FormulaFrom>0.1 * TO</FormulaFrom><pValue>Raw</pValue></IntConverter>
		<Integer Name="Raw"><Value>57</Value></Integer>
		<IntSwissKnife Name="Half"><pVariable Name="R">Raw</pVariable><Expression Name="H">R * 0.5</Expression><Formula>H + 1</Formula></IntSwissKnife>
		<IntSwissKnife Name="IntDiv"><pVariable Name="R">Raw</pVariable><Formula>R / 2</Formula></IntSwissKnife>`)
	for name, want := range map[string]int64{"Tenth": 5, "Half": 29, "IntDiv": 28} {
		if v, err := m.Int(name); err != nil || v != want {
			t.Errorf("%s = %d, %v; want %d", name, v, err, want)
		}
	}
	if err := m.SetInt("Tenth", 3); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Int("Raw"); v != 30 {
		t.Errorf("Raw after Tenth=3: %d", v)
	}
}

// TestDefaultPort: registers without pPort use the Port named Device even
// when chunk ports exist.
func TestDefaultPort(t *testing.T) {
	m := hostile(t, `<Port Name="Chunk"><ChunkID>1</ChunkID></Port><IntReg Name="R"><Address>0</Address><Length>4</Length><AccessMode>RW</AccessMode></IntReg>`)
	if err := m.SetInt("R", 7); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Int("R"); err != nil || v != 7 {
		t.Errorf("R = %d, %v", v, err)
	}
	m2, err := Parse([]byte(`<RegisterDescription><Port Name="A"/><Port Name="B"/><IntReg Name="R"><Address>0</Address><Length>4</Length></IntReg></RegisterDescription>`))
	if err != nil {
		t.Fatal(err)
	}
	m2.Connect(nullPort{})
	if _, err := m2.Int("R"); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "no pPort") {
		t.Errorf("two ports, no pPort: %v", err)
	}
	m3, err := Parse([]byte(`<RegisterDescription><IntReg Name="R"><Address>0</Address><Length>4</Length><AccessMode>R</AccessMode></IntReg><Port Name="P"/></RegisterDescription>`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m3.Problems()) != 1 || !strings.Contains(m3.Problems()[0].Error(), `"R" taken as RO`) {
		t.Errorf("AccessMode R: problems %v", m3.Problems())
	}
}
