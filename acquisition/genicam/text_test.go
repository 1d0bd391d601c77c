package genicam

import (
	"errors"
	"sync"
	"testing"
)

func TestValueText(t *testing.T) {
	c := newTestCamera(t)
	m := c.m
	for name, want := range map[string]string{
		"Width": "4096", "PixelFormat": "Mono8", "ExposureTime": "50", "ReverseX": "false",
		"DeviceVendorName": "WebInspect", "TestString": "hello", "TestRawRegister": "0000000000000000",
		"DeviceTemperature": "45.5",
	} {
		if got, err := m.Value(name); err != nil || got != want {
			t.Errorf("Value(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, s := range []struct{ name, text, back string }{
		{"Width", "0x400", "1024"}, {"PixelFormat", "Mono10p", "Mono10p"}, {"ExposureTime", "12.5", "12.5"},
		{"ReverseX", "1", "true"}, {"ChunkModeActive", "true", "true"}, {"DeviceUserID", "cam-7", "cam-7"},
		{"TestRegister", "-42", "-42"}, {"TestFloat64", "1e-3", "0.001"},
	} {
		if err := m.SetValue(s.name, s.text); err != nil {
			t.Errorf("SetValue(%s, %q): %v", s.name, s.text, err)
			continue
		}
		if got, _ := m.Value(s.name); got != s.back {
			t.Errorf("%s after SetValue(%q) = %q, want %q", s.name, s.text, got, s.back)
		}
	}
	if err := m.SetValue("AcquisitionStart", "execute"); err != nil {
		t.Errorf("SetValue on a command: %v", err)
	}
	for _, name := range []string{"Root", "Device", "AcquisitionStart"} {
		if _, err := m.Value(name); !errors.Is(err, ErrWrongType) {
			t.Errorf("Value(%s): %v", name, err)
		}
	}
	if err := m.SetValue("ReverseX", "maybe"); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("SetValue(ReverseX, maybe): %v", err)
	}
	if err := m.SetValue("TestRawRegister", "0102"); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("short register bytes: %v", err)
	}
}

func TestFeatures(t *testing.T) {
	c := newTestCamera(t)
	fs := c.m.Features()
	byName := map[string]FeatureInfo{}
	for _, f := range fs {
		if _, dup := byName[f.Name]; dup {
			t.Errorf("%s listed twice", f.Name)
		}
		byName[f.Name] = f
	}
	if fs[0].Name != "Root" || fs[1].Name != "DeviceControl" || fs[1].Category != "Root" {
		t.Errorf("tree order: %+v %+v", fs[0], fs[1])
	}
	want := []string{"DeviceScanType", "Width", "Height", "OffsetX", "PixelFormat", "AcquisitionLineRate",
		"TriggerSelector", "TriggerMode", "TriggerSource", "EncoderDivider", "ExposureTime", "PayloadSize",
		"ChunkModeActive", "ChunkSelector", "ChunkEnable", "TestRegister"}
	for _, name := range want {
		if _, ok := byName[name]; !ok {
			t.Errorf("%s not listed", name)
		}
	}
	pf := byName["PixelFormat"]
	if pf.Kind != "Enumeration" || pf.Category != "ImageFormatControl" || len(pf.Entries) != 6 || pf.Entries[4] != "Mono10p" {
		t.Errorf("PixelFormat info %+v", pf)
	}
	if w := byName["Width"]; w.Unit != "px" || w.Description == "" || w.Access != "RW" {
		t.Errorf("Width info %+v", w)
	}
	if s := byName["TriggerSelector"]; len(s.Selected) != 4 {
		t.Errorf("TriggerSelector selects %v", s.Selected)
	}
	if a := byName["DeviceVendorName"]; a.Access != "RO" {
		t.Errorf("DeviceVendorName access %s", a.Access)
	}
	if a := byName["TestImposedRO"]; a.Access != "RO" {
		t.Errorf("TestImposedRO access %s", a.Access)
	}
	for name, want := range map[string]string{"Width": "RW", "SensorWidth": "RO", "PayloadSize": "RO", "TestWriteOnly": "WO", "TestNotImplemented": "NI", "DeviceScanType": "RW"} {
		if got, err := c.m.Access(name); err != nil || got != want {
			t.Errorf("Access(%s) = %s, %v; want %s", name, got, err, want)
		}
	}
	c.m.SetInt("TLParamsLocked", 1)
	if got, _ := c.m.Access("Width"); got != "RO" {
		t.Errorf("locked Width access %s", got)
	}
	if lo, hi, inc, err := c.m.IntRange("Width"); err != nil || lo != 16 || hi != 4096 || inc != 16 {
		t.Errorf("IntRange(Width) = %d %d %d %v", lo, hi, inc, err)
	}
	if lo, hi, err := c.m.FloatRange("ExposureTime"); err != nil || lo != 1 || hi != 10000 {
		t.Errorf("FloatRange(ExposureTime) = %v %v %v", lo, hi, err)
	}
	if lo, hi, err := c.m.FloatRange("DeviceTemperature"); err != nil || lo != -(1<<31)/256.0 || hi != ((1<<31)-1)/256.0 {
		t.Errorf("FloatRange(DeviceTemperature) through the converter = %v %v %v", lo, hi, err)
	}
}

// TestConcurrent reads and writes from several goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	c := newTestCamera(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g%2 == 0 {
					if err := c.m.SetInt("Height", int64(1+i)); err != nil {
						t.Error(err)
						return
					}
				}
				if _, err := c.m.Int("PayloadSize"); err != nil {
					t.Error(err)
					return
				}
				c.m.Features()
			}
		}()
	}
	wg.Wait()
}
