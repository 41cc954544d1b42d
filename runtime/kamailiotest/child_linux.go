package kamailiotest

import "syscall"

// childAttr: a process group of its own, and SIGTERM when the test binary's thread that
// started it dies. Kamailio's main process ends its workers on SIGTERM; SIGKILL would
// leave them running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
