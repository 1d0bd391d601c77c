//go:build !unix

package boundedfile

const nonblock = 0
