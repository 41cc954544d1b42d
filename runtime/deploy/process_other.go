//go:build !linux

package deploy

import "syscall"

// roleChildAttr: outside Linux there is no parent-death signal; a role process still ends
// when its stdin closes, which the parent's exit does, but not while the parent hangs.
func roleChildAttr() *syscall.SysProcAttr { return nil }
