package wire

import "github.com/webinspect/webinspect/acquisition/pfnc"

// PixelFormat is the PFNC code of an image leader (package pfnc, shared
// with USB3 Vision).
type PixelFormat = pfnc.PixelFormat

// Monochrome pixel formats (pfnc).
const (
	Mono8        = pfnc.Mono8
	Mono10       = pfnc.Mono10
	Mono10Packed = pfnc.Mono10Packed
	Mono12       = pfnc.Mono12
	Mono12Packed = pfnc.Mono12Packed
	Mono16       = pfnc.Mono16
	Mono10p      = pfnc.Mono10p
	Mono12p      = pfnc.Mono12p
)
