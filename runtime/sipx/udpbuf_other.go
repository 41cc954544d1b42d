//go:build !linux

package sipx

import "net"

// forceUDPBuffers has no way past the system's caps here: setUDPBuffers asks within them.
func forceUDPBuffers(*net.UDPConn, int) {}

// udpReadBuffer and udpWriteBuffer are not known here: setUDPBuffers always asks.
func udpReadBuffer(*net.UDPConn) int  { return 0 }
func udpWriteBuffer(*net.UDPConn) int { return 0 }
