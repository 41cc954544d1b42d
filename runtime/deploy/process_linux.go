package deploy

import "syscall"

// roleChildAttr: the kernel sends the role process SIGKILL when the thread of its parent
// that started it ends (prctl PR_SET_PDEATHSIG): a child whose parent is gone has nobody
// to report to, and must not keep its ports. Go ends a thread only when a goroutine
// locked to it exits, which the parents of role processes do not do.
func roleChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
