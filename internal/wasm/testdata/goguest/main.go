//go:build wasip1

// Command goguest is a tiny reactor used by the instrumentation tests.
package main

func main() {}

// add returns a+b, counting b up one at a time so that it loops.
//
//go:wasmexport add
func add(a, b int32) int32 {
	for i := int32(0); i < b; i++ {
		a++
	}
	return a
}
