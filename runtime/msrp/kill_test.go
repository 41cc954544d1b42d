package msrp

import "syscall"

// killGroup kills a process and, when it leads one, its process group.
func killGroup(pid int) error {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return syscall.Kill(pid, syscall.SIGKILL)
}
