package vm

import (
	"syscall"
	"testing"
)

// BenchmarkPageWrite is what the first write to a page costs under write tracking, per
// page: after a collect (every page protected: the write faults, and the kernel
// resolves it), after a collect and an open of the pages (UFFDIO_WRITEPROTECT off, as
// the read path does for the pages reads write: no fault), and with the pages left
// open by the write before. 4,096 pages of 4 KiB, populated once, one byte written to
// each.
func BenchmarkPageWrite(b *testing.B) {
	const pages = 4096
	mem, err := syscall.Mmap(-1, 0, pages*statePageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Munmap(mem)
	t, err := trackWrites(mem)
	if err != nil {
		b.Skipf("no write tracking here: %v", err)
	}
	defer t.close()
	size := uintptr(len(mem))
	touch := func() {
		for p := 0; p < pages; p++ {
			mem[p*statePageSize]++
		}
	}
	touch()
	none := func(_, _ uintptr) {}
	for _, mode := range []string{"protected", "opened", "unprotected"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				switch mode {
				case "protected":
					t.collect(size, none)
				case "opened":
					t.collect(size, none)
					b.StartTimer()
					if err := t.open(0, size); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
				}
				b.StartTimer()
				touch()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pages), "ns/page")
		})
	}
}

// BenchmarkPrefault is what backing fresh page buffers costs, per page: written one by
// one (a page fault each), and backed first by prefaultPages (newPageBatch), then
// written. Each round allocates 64 MiB of buffers the process has not used before (the
// earlier rounds' are kept), so the figures are those of memory new to the process.
func BenchmarkPrefault(b *testing.B) {
	const pages = 16384
	var keep [][]*[statePageSize]byte
	defer func() { keep = nil }()
	for _, mode := range []string{"fault", "prefault"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				var batch []*[statePageSize]byte
				if mode == "prefault" {
					batch = newPageBatch(pages)
				} else {
					batch = make([]*[statePageSize]byte, pages)
					for i := range batch {
						batch[i] = new([statePageSize]byte)
					}
				}
				for _, p := range batch {
					p[0] = 1
				}
				keep = append(keep, batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pages), "ns/page")
		})
	}
}
