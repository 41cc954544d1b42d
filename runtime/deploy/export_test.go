package deploy

import (
	"context"
	"github.com/cpmlink/cpmlink/runtime"
	"net"
)

// SetLookup makes c resolve the names its hosts table lacks with lookup instead of DNS,
// so that tests send no query off the machine.
func SetLookup(c *ServeConfig, lookup func(context.Context, string) ([]net.IPAddr, error)) {
	c.lookup = lookup
}

// SetConfigured makes Serve hand each role's NodeConfig to f before it starts it.
func SetConfigured(o *ServeOptions, f func(runtime.NodeConfig)) { o.configured = f }

// StateDir is where the configuration's PFs keep their location stores.
func StateDir(c *ServeConfig) string { return c.stateDir() }
