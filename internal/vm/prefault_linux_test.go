package vm

import (
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident reports, per page of b, whether the kernel backs it (mincore).
func resident(t *testing.T, b []byte) []bool {
	t.Helper()
	vec := make([]byte, len(b)/statePageSize)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(errno)
	}
	r := make([]bool, len(vec))
	for i, v := range vec {
		r[i] = v&1 != 0
	}
	return r
}

// prefault backs exactly the whole pages inside the range it is given, and changes no
// byte; newPageBatch's buffers are backed and zero.
func TestPrefaultBacksPages(t *testing.T) {
	const pages = 16
	mem, err := syscall.Mmap(-1, 0, pages*statePageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	if err := unix.Madvise(mem[:statePageSize], unix.MADV_POPULATE_WRITE); err != nil {
		t.Skipf("this kernel cannot populate a range: %v", err)
	}
	mem[3*statePageSize+7] = 42
	// From the middle of page 2 to the middle of page 9: pages 3 to 8 are whole.
	prefault(mem[2*statePageSize+100 : 9*statePageSize+100])
	got := resident(t, mem)
	for i, r := range got {
		want := i == 0 || (i >= 3 && i <= 8)
		if r != want {
			t.Errorf("page %d backed: %v, want %v", i, r, want)
		}
	}
	for i, c := range mem {
		if c != 0 && i != 3*statePageSize+7 {
			t.Fatalf("byte %d changed to %d", i, c)
		}
	}
	if mem[3*statePageSize+7] != 42 {
		t.Fatal("a byte written before prefault was lost")
	}

	for i, p := range newPageBatch(64) {
		if *p != zeroPage {
			t.Fatalf("buffer %d not zero", i)
		}
		if !resident(t, p[:])[0] {
			t.Errorf("buffer %d not backed", i)
		}
	}
}
