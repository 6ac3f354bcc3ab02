package vm

import "syscall"

// mapNoReserve: a reservation of the whole memory limit is address space, not memory.
const mapNoReserve = syscall.MAP_NORESERVE
