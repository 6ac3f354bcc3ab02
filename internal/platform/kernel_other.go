//go:build !linux

package platform

func kernelRelease() string { return "" }
