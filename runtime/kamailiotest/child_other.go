//go:build unix && !linux

package kamailiotest

import "syscall"

// childAttr: a process group of its own. Outside Linux there is no parent-death signal,
// so a killed test binary can leave the program running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
