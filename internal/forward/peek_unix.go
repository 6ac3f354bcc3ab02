//go:build linux || darwin || freebsd

package forward

import (
	"net"
	"syscall"
)

// peerClosed reports whether the peer has closed or reset c, as far as the socket
// already knows: a nonblocking peek at the socket under c (and under any connection
// c wraps, through NetConn). Bytes waiting to be read, or a socket it cannot reach,
// count as open. It must only be called on a connection nobody is reading.
func peerClosed(c net.Conn) bool {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0 // end of stream
		case err == syscall.EAGAIN || err == syscall.EINTR:
		default:
			closed = true // reset, or another error the next write would meet
		}
		return true
	})
	return closed || err != nil
}
