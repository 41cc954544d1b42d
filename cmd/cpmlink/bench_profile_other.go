//go:build !unix

package main

import "os"

// Without SIGUSR1 and SIGUSR2, bench --profile profiles only bench's own process.
var profileStartSig, profileStopSig os.Signal
