package deploy

import (
	"time"

	"github.com/cpmlink/cpmlink/runtime"
)

// msrp-limits, deployment-wide and per role (docs/deploy.md, "Identity, registrations and
// limits"): what peers may hold of an instance's MSRP side (runtime.MSRPLimits).

// checkLimits checks an msrp-limits section.
func (c *ServeConfig) checkLimits(p *problems, path string, l *MSRPLimitsConfig) {
	if l == nil {
		return
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"max-conns", l.MaxConns}, {"max-conns-per-host", l.MaxConnsPerHost}, {"max-sessions", l.MaxSessions}} {
		if n.v < -1 {
			p.at(path+"."+n.key, "%s.%s %d: a positive number, or -1 for no bound", path, n.key, n.v)
		}
	}
	if l.FirstFrameTimeout != "" {
		if d, err := time.ParseDuration(l.FirstFrameTimeout); err != nil || d <= 0 {
			p.at(path+".first-frame-timeout", "%s.first-frame-timeout %q: a positive duration such as 10s", path, l.FirstFrameTimeout)
		}
	}
	if l.MaxHeaderBytes != "" {
		if n, err := ParseSize(l.MaxHeaderBytes); err != nil || n < 256 || n > 1<<20 {
			p.at(path+".max-header-bytes", "%s.max-header-bytes %q: a size between 256 bytes and 1 MiB, as 16KiB", path, l.MaxHeaderBytes)
		}
	}
}

// msrpLimits merges the deployment's msrp-limits with a role's (nil for a client).
func (c *ServeConfig) msrpLimits(role *MSRPLimitsConfig) runtime.MSRPLimits {
	var out runtime.MSRPLimits
	for _, l := range []*MSRPLimitsConfig{c.MSRPLimits, role} {
		if l == nil {
			continue
		}
		if l.MaxConns != 0 {
			out.MaxConns = l.MaxConns
		}
		if l.MaxConnsPerHost != 0 {
			out.MaxConnsPerHost = l.MaxConnsPerHost
		}
		if l.MaxSessions != 0 {
			out.MaxSessions = l.MaxSessions
		}
		if d, err := time.ParseDuration(l.FirstFrameTimeout); err == nil {
			out.FirstFrameTimeout = d
		}
		if n, err := ParseSize(l.MaxHeaderBytes); err == nil && l.MaxHeaderBytes != "" {
			out.MaxHeaderBytes = int(n)
		}
	}
	return out
}
