package platform

import (
	"runtime"
	"testing"
)

func TestLocal(t *testing.T) {
	f := Local()
	if f.OS != runtime.GOOS || f.Arch != runtime.GOARCH {
		t.Fatalf("Local() = %+v", f)
	}
	if runtime.GOOS == "linux" && f.Kernel == "" {
		t.Fatal("no kernel release on linux")
	}
	t.Logf("%+v", f)
}
