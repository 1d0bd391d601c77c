package genicam

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want LocalURL
		err  error
	}{
		{"Local:cam.xml;10000;1A2B", LocalURL{FileName: "cam.xml", Address: 0x10000, Length: 0x1a2b}, nil},
		{"local:///Cam.ZIP;0x8000;400?SchemaVersion=1.1.0\x00\x00", LocalURL{FileName: "Cam.ZIP", Address: 0x8000, Length: 0x400, Query: "SchemaVersion=1.1.0"}, nil},
		{"LOCAL:a.xml;ffffffff00000000;10", LocalURL{FileName: "a.xml", Address: 0xffffffff00000000, Length: 0x10}, nil},
		{"File:///c:/cam.xml", LocalURL{}, ErrUnsupported},
		{"http://www.example.com/cam.xml", LocalURL{}, ErrUnsupported},
		{"Local:cam.xml;10000", LocalURL{}, ErrMalformed},
		{"Local:cam.xml;xyz;10", LocalURL{}, ErrMalformed},
		{"Local:cam.xml;10;-1", LocalURL{}, ErrMalformed},
		{"cam.xml", LocalURL{}, ErrMalformed},
		{"", LocalURL{}, ErrMalformed},
		{"gopher:cam.xml;1;2", LocalURL{}, ErrMalformed},
	} {
		got, err := ParseURL(tc.in)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("ParseURL(%q) error %v, want %v", tc.in, err, tc.err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func zipped(t *testing.T, files map[string][]byte, order ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range order {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pad rounds a file up to whole 4-byte words with NULs, as device memory is.
func pad(b []byte) []byte {
	return append(append([]byte(nil), b...), make([]byte, (4-len(b)%4)%4)...)
}

func TestFetchXML(t *testing.T) {
	doc := []byte(`<?xml version="1.0"?><RegisterDescription ModelName="X">` + strings.Repeat("<!-- filler -->", 200) + `</RegisterDescription>`)
	zdoc := zipped(t, map[string][]byte{"readme.txt": []byte("hi"), "cam.xml": doc}, "readme.txt", "cam.xml")
	p := newMemPort(t)
	p.add(0x10000, pad(doc), "RO")
	p.add(0x20000, pad(zdoc), "RO")
	p.add(0x30000, []byte("not a zip archive at all"), "RO")

	got, err := FetchXML(p, fmt.Sprintf("Local:cam.xml;10000;%x", len(doc)))
	if err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("plain: err %v, got %d bytes want %d", err, len(got), len(doc))
	}
	if p.reads < 2 {
		t.Errorf("plain: %d reads for %d bytes; want chunks of at most %d", p.reads, len(doc), MaxPortChunk)
	}
	got, err = FetchXML(p, fmt.Sprintf("local:cam.zip;20000;%X\x00", len(zdoc)))
	if err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("zip: err %v, got %q", err, got)
	}
	// A plain file padded with NULs up to the URL's length.
	got, err = FetchXML(p, fmt.Sprintf("Local:cam.xml;10000;%x", len(pad(doc))))
	if err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("padded: err %v, got %d bytes", err, len(got))
	}
	for _, tc := range []struct {
		url string
		err error
	}{
		{"Local:cam.zip;30000;18", ErrMalformed},
		{"Local:cam.xml;10000;0", ErrMalformed},
		{fmt.Sprintf("Local:cam.xml;10000;%x", MaxFileSize+1), ErrTooLarge},
		{"Local:cam.xml;fffffffffffffff0;100", ErrMalformed},
	} {
		if _, err := FetchXML(p, tc.url); !errors.Is(err, tc.err) {
			t.Errorf("FetchXML(%q) = %v, want %v", tc.url, err, tc.err)
		}
	}
	portErr := errors.New("link down")
	p.fail = portErr
	if _, err := FetchXML(p, "Local:cam.xml;10000;10"); !errors.Is(err, portErr) {
		t.Errorf("port failure: %v, want it wrapped", err)
	}
}

func TestFetchXMLZipBomb(t *testing.T) {
	defer func(v int64) { maxInflate = v }(maxInflate)
	maxInflate = 1 << 20
	big := bytes.Repeat([]byte("A"), int(maxInflate)+10)
	z := zipped(t, map[string][]byte{"big.xml": big}, "big.xml")
	p := newMemPort(t)
	p.add(0, pad(z), "RO")
	_, err := FetchXML(p, fmt.Sprintf("Local:big.zip;0;%x", len(z)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("zip bomb: %v, want ErrTooLarge", err)
	}
}

// TestFetchParseConnect is the path a transport takes: the zipped
// description in device memory, fetched, parsed and connected to the same
// port.
func TestFetchParseConnect(t *testing.T) {
	c := newTestCamera(t)
	xml, err := os.ReadFile("testdata/linescan.xml")
	if err != nil {
		t.Fatal(err)
	}
	z := zipped(t, map[string][]byte{"LS4096.xml": xml}, "LS4096.xml")
	c.p.add(0x200000, pad(z), "RO")
	got, err := FetchXML(c.p, fmt.Sprintf("Local:LS4096.zip;200000;%x?SchemaVersion=1.1.0", len(z)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	m.Connect(c.p)
	if v, err := m.Enum("DeviceScanType"); err != nil || v != "Linescan" {
		t.Errorf("DeviceScanType %q %v", v, err)
	}
}
