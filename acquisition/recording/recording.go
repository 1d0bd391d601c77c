// Package recording stores camera streams on disk and replays them as an
// acquisition.Source.
//
// # Layout
//
// A recording is a directory:
//
//	DIR/recording.json     format, version, acquisition.Info, generator metadata
//	DIR/camera-0.wrec      one file per camera, operator side first
//	DIR/camera-1.wrec
//	...
//	DIR/truth.csv          (simulations only; written by the caller)
//
// # Camera file
//
// A camera file is a header followed by frames, all integers little-endian:
//
//	+---------------------------+  offset 0
//	| magic "WIREC" 00 01 00    |  8 bytes: name, 0, format version (1), 0
//	| header length H           |  u32
//	| header                    |  H bytes: JSON acquisition.CameraInfo
//	+---------------------------+  offset 12+H: first frame
//	| frame magic "WBLK"        |  4 bytes
//	| payload length L          |  u32
//	| payload CRC-32C           |  u32 (Castagnoli) of the L payload bytes
//	| payload                   |  L bytes: one zstd frame, see below
//	+---------------------------+
//	| ... more WBLK frames ...  |
//	+---------------------------+
//	| "WEND" 00000000 00000000  |  12 bytes: end frame, L = 0; clean close
//	+---------------------------+
//
// The zstd payload decompresses to one block of N lines of W pixels:
//
//	first line  i64   Block.FirstLine
//	lines N     u32
//	width W     u32
//	time        i64   Block.Time in Unix nanoseconds (0 = unknown)
//	counts      N x i64 encoder counts
//	pixels      N x W bytes, line after line
//
// Every frame is written with a single write, so a reader sees the file grow
// by whole frames (or, after a crash, end inside one). A file without the
// end frame was not closed cleanly: a replay delivers every complete frame
// and then reports acquisition.ErrTruncated, unless it follows the file
// (ReadOptions.Follow) and more data arrives. FORMAT.md has the same
// description for readers in other languages.
package recording

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/webinspect/webinspect/acquisition"
)

// Errors returned by the package (wrapped, with the path and offset).
// Reading also returns acquisition.ErrTruncated and acquisition.ErrCorrupt.
var (
	// ErrNoRecording is returned by Open when the directory has no
	// recording.json.
	ErrNoRecording = errors.New("recording: not a recording")
	// ErrExists is returned by Create when the directory already holds a
	// recording.
	ErrExists = errors.New("recording: already exists")
	// ErrCameraMismatch is returned by Open when the camera files do not
	// match the cameras listed in recording.json, and by WriteBlock for a
	// block of an unknown camera or the wrong width.
	ErrCameraMismatch = errors.New("recording: camera mismatch")
	// ErrBadMagic is returned by Open when a file is not a camera file.
	ErrBadMagic = errors.New("recording: bad magic")
	// ErrVersion is returned by Open for a format version this package
	// cannot read.
	ErrVersion = errors.New("recording: unsupported version")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("recording: closed")
	// ErrEndedEarly is returned by a camera's ReadBlock at its end frame
	// when another camera file of the recording holds more blocks: the
	// camera stopped delivering while the web was still recorded. It
	// wraps acquisition.ErrTruncated (the camera's data is cut short).
	ErrEndedEarly = fmt.Errorf("recording: camera ended early: %w", acquisition.ErrTruncated)
)

// File names and format constants.
const (
	MetaFile = "recording.json"
	// FormatName is the "format" value of recording.json.
	FormatName = "webinspect-recording"
	// Version is the format version this package writes and reads.
	Version = 1

	fileMagic  = "WIREC\x00\x01\x00"
	frameBlock = "WBLK"
	frameEnd   = "WEND"
	frameHead  = 12 // magic, length, CRC
	blockHead  = 24 // first line, lines, width, time
	maxHeader  = 16 << 20
)

// CameraFile returns the file name of camera i.
func CameraFile(i int) string { return fmt.Sprintf("camera-%d.wrec", i) }

// Meta is the content of recording.json.
type Meta struct {
	Format  string           `json:"format"`  // FormatName
	Version int              `json:"version"` // Version
	Created time.Time        `json:"created"`
	Info    acquisition.Info `json:"info"`
	// Generator is free-form metadata from whoever made the recording, for
	// example the simulator's configuration.
	Generator json.RawMessage `json:"generator,omitempty"`
}

// ReadOptions controls how a recording is replayed.
type ReadOptions struct {
	// Realtime paces blocks by their recorded Time relative to the first
	// block delivered.
	Realtime bool
	// Follow > 0 reads files that are still being written: at the end of a
	// file without an end frame, wait for more data, and give up (treat the
	// file as truncated) once it has not grown for Follow.
	Follow time.Duration
}

// maxPayload bounds a frame's payload for info's geometry: a block of
// LinesPerBlock lines of the widest camera, plus zstd's worst-case growth.
func maxPayload(info acquisition.Info, width int) int {
	lpb := max(info.LinesPerBlock, 1)
	raw := blockHead + lpb*(8+width)
	return raw + raw/128 + 1024
}
