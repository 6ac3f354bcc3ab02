//go:build darwin || freebsd

package vm

const mapNoReserve = 0
