package sipx

import (
	"net"
	"syscall"
)

// forceUDPBuffers asks for n-byte buffers past net.core.rmem_max and wmem_max
// (SO_RCVBUFFORCE, SO_SNDBUFFORCE: only with CAP_NET_ADMIN; refused otherwise, and
// setUDPBuffers then asks within the caps).
func forceUDPBuffers(uc *net.UDPConn, n int) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, n)
	})
}

// udpReadBuffer and udpWriteBuffer are the buffer sizes the kernel granted (Linux
// reports twice the size asked for, its bookkeeping included: halved here).
func udpReadBuffer(uc *net.UDPConn) int  { return sockoptInt(uc, syscall.SO_RCVBUF) / 2 }
func udpWriteBuffer(uc *net.UDPConn) int { return sockoptInt(uc, syscall.SO_SNDBUF) / 2 }

func sockoptInt(uc *net.UDPConn, opt int) int {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	v := 0
	_ = rc.Control(func(fd uintptr) {
		v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt)
	})
	return v
}
