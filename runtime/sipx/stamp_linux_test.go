package sipx

import (
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// stampedReader reads datagrams together with the time the kernel received
// them (SO_TIMESTAMPNS). Tests that measure the gaps between retransmissions
// need the arrival time: a reader goroutine held up by load would otherwise
// read two queued datagrams back to back and see a gap of microseconds.
type stampedReader struct {
	uc  *net.UDPConn
	oob []byte
}

func newStampedReader(t *testing.T, pc net.PacketConn) *stampedReader {
	t.Helper()
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		t.Fatalf("stamped reads need a UDP socket, not %T", pc)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("SO_TIMESTAMPNS: %v", serr)
	}
	return &stampedReader{uc: uc, oob: make([]byte, syscall.CmsgSpace(int(unsafe.Sizeof(syscall.Timespec{}))))}
}

// read returns the datagram's length and the kernel's receive time; the
// time is zero when the kernel attached none.
func (r *stampedReader) read(buf []byte) (int, time.Time, error) {
	n, oobn, _, _, err := r.uc.ReadMsgUDP(buf, r.oob)
	if err != nil {
		return 0, time.Time{}, err
	}
	msgs, err := syscall.ParseSocketControlMessage(r.oob[:oobn])
	if err != nil {
		return n, time.Time{}, nil
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS &&
			len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := *(*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
			return n, time.Unix(ts.Unix()), nil
		}
	}
	return n, time.Time{}, nil
}
