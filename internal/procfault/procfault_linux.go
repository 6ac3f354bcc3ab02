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
// process cannot wake itself, so a helper process, started in a session of its own (it
// outlives this one's process group and its supervisor's signals), sends both signals:
// SIGSTOP after the grace, SIGCONT d after that. The stop lasts at least d however late
// this process would have run a timer of its own (one that fired 4 ms late made a stop
// of a second 996 ms long: procfault TestStopEndsByItself, CI).
func Stop(d time.Duration) error {
	if err := CheckStop(d); err != nil {
		return err
	}
	pid := strconv.Itoa(os.Getpid())
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
	helper := exec.Command("/bin/sh", "-c", "sleep "+secs(grace)+"; kill -STOP "+pid+"; sleep "+secs(d)+"; kill -CONT "+pid)
	helper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := helper.Start(); err != nil {
		return fmt.Errorf("start the helper that stops this process and ends the stop: %w", err)
	}
	go helper.Wait() // reaped once this process runs again
	return nil
}
