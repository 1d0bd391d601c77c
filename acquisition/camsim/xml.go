package camsim

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"time"
)

// deviceXML is the camera's GenICam description (see device.xml).
//
//go:embed device.xml
var deviceXML []byte

// DeviceXML returns a copy of the GenICam XML the emulated camera serves.
func DeviceXML() []byte { return bytes.Clone(deviceXML) }

// xmlFileName is the name in the bootstrap URL and inside the zip.
const xmlFileName = "webinspect-linescan"

// xmlImage returns the bytes served at xmlAddr and the first-URL text that
// points at them. Zipped (deflate) unless plain. The length is padded to a
// multiple of 4 so strict READMEM rules hold: a zip through its archive
// comment, plain XML with trailing newlines.
func xmlImage(plain bool) ([]byte, string, error) {
	var img []byte
	name := xmlFileName + ".zip"
	if plain {
		name = xmlFileName + ".xml"
		img = bytes.Clone(deviceXML)
		for len(img)%4 != 0 {
			img = append(img, '\n')
		}
	} else {
		z, err := zipXML(0)
		if err != nil {
			return nil, "", err
		}
		if pad := (4 - len(z)%4) % 4; pad != 0 {
			if z, err = zipXML(pad); err != nil {
				return nil, "", err
			}
		}
		img = z
	}
	url := fmt.Sprintf("Local:%s;%X;%X", name, xmlAddr, len(img))
	return img, url, nil
}

// zipXML zips device.xml with an archive comment of pad spaces.
func zipXML(pad int) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	fh := &zip.FileHeader{Name: xmlFileName + ".xml", Method: zip.Deflate}
	fh.Modified = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w, err := zw.CreateHeader(fh)
	if err != nil {
		return nil, fmt.Errorf("camsim: zip device XML: %w", err)
	}
	if _, err := w.Write(deviceXML); err != nil {
		return nil, fmt.Errorf("camsim: zip device XML: %w", err)
	}
	if pad > 0 {
		if err := zw.SetComment(strings.Repeat(" ", pad)); err != nil {
			return nil, fmt.Errorf("camsim: zip device XML: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("camsim: zip device XML: %w", err)
	}
	return buf.Bytes(), nil
}
