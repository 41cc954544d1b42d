//go:build unix

package main

import (
	"os"
	"syscall"
)

// The signals that start and stop a role process's windowed CPU profile (bench --profile).
var profileStartSig, profileStopSig os.Signal = syscall.SIGUSR1, syscall.SIGUSR2
