package procfault

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Kill sends SIGKILL to this process shortly after it returns: the process ends at
// once, as on a crash, with nothing flushed or closed.
func Kill() error {
	time.AfterFunc(grace, func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) })
	return nil
}

// Stop freezes this process with SIGSTOP shortly after it returns, for d. A stopped
// process cannot wake itself, so first a helper process is started in a session of its
// own (it outlives this one's process group and its supervisor's signals) that sends
// SIGCONT once the stop has lasted d.
func Stop(d time.Duration) error {
	if err := CheckStop(d); err != nil {
		return err
	}
	pid := strconv.Itoa(os.Getpid())
	wait := strconv.FormatFloat((grace + d).Seconds(), 'f', 3, 64)
	helper := exec.Command("/bin/sh", "-c", "sleep "+wait+"; kill -CONT "+pid)
	helper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := helper.Start(); err != nil {
		return fmt.Errorf("start the helper that ends the stop: %w", err)
	}
	go helper.Wait() // reaped once this process runs again
	time.AfterFunc(grace, func() { syscall.Kill(os.Getpid(), syscall.SIGSTOP) })
	return nil
}
