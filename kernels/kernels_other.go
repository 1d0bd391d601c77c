//go:build !amd64 || noasm || !gc

package kernels

// archImpls lists the assembly implementations this build and CPU can run:
// none here, the build uses the generic kernels only.
func archImpls() []string { return nil }

// useArch has nothing to swap in.
func useArch(limit string) {}
