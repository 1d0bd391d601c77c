package engine

import "github.com/webinspect/webinspect/rollmap"

// The names the engine writes to the roll map for detectors and gap
// reasons, in one place, from rollmap's typed terms (rollmap/FORMAT.md,
// "Terms").
const (
	// detectorThreshold names the threshold detector.
	detectorThreshold = string(rollmap.DetectorThreshold)
	// detectorModelPrefix prefixes a model detector's name: "onnx:<model>".
	detectorModelPrefix = rollmap.ModelDetectorPrefix
	// detectorJoin joins the names of two detectors that saw one defect
	// ("threshold+onnx:<model>").
	detectorJoin = "+"

	// reasonDropped: the ring dropped the block (the pipeline was behind).
	reasonDropped = rollmap.ReasonDropped
	// reasonSourceError: the camera's stream failed before the web ended.
	reasonSourceError = rollmap.ReasonSourceError
	// reasonCameraEnded: the camera's stream ended before the web did.
	reasonCameraEnded = rollmap.ReasonCameraEnded
	// reasonFrameLost: the camera itself lost frames (Block.Lost).
	reasonFrameLost = rollmap.ReasonFrameLost
)
