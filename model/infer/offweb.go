package infer

import "github.com/webinspect/webinspect/model/edge"

// offWeb finds the web's extent [e0, e1) on one model-resolution row and
// overwrites the off-web pixels outside it with the web mirrored across
// the edge (model/edge.FindFill), so that the model sees web texture there
// instead of a step to the background: the band edge then scores like web,
// and a defect at the edge still scores like a defect. The caller zeroes
// the map outside [e0, e1) after inference.
func offWeb(row []uint8, o *OffWebOptions) (e0, e1 int) {
	return edge.FindFill(row, o)
}
