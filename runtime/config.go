package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cpmlink/cpmlink/fsm"
	"github.com/cpmlink/cpmlink/fsm/core"
	"github.com/cpmlink/cpmlink/runtime/sipx"
	"go.yaml.in/yaml/v3"
)

// ServeConfig is the configuration `cpmlink serve` runs: the SIP/IP core and the role
// instances of a deployment, each at fixed loopback addresses, all on one variant.
type ServeConfig struct {
	// Variant is a named variant of the spec (fsm.Variants).
	Variant string `yaml:"variant"`
	// Transport is the SIP transport of requests: udp (default) or tcp.
	Transport string `yaml:"transport"`
	// SIPCore is where every role sends SIP: the core below, or an external proxy.
	SIPCore string `yaml:"sip-core"`
	// Core, when set, runs the embedded SIP/IP core.
	Core  *CoreConfig  `yaml:"core"`
	Roles []RoleConfig `yaml:"roles"`
	// ChunkSize is the MSRP chunk size, as "64KiB" or a number of bytes.
	ChunkSize string `yaml:"chunk-size"`
	// Guard is how long a side waits for its peer ("32s").
	Guard string `yaml:"guard"`
}

// CoreConfig is the embedded SIP/IP core: where it listens and its routing table.
type CoreConfig struct {
	Listen string            `yaml:"listen"`
	Routes map[string]string `yaml:"routes"`
}

// RoleConfig is one role instance of a deployment.
type RoleConfig struct {
	Name   string                `yaml:"name"`
	Role   string                `yaml:"role"`
	URI    string                `yaml:"uri"`
	SIP    string                `yaml:"sip"`
	MSRP   string                `yaml:"msrp"`
	Groups map[string]GroupEntry `yaml:"groups"`
}

// GroupEntry is a pre-defined group at the CF.
type GroupEntry struct {
	Members []string `yaml:"members"`
	Senders []string `yaml:"senders"`
}

// LoadServeConfig reads a configuration strictly: unknown keys are errors.
func LoadServeConfig(path string) (*ServeConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c ServeConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("runtime: %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("runtime: %s: %w", path, err)
	}
	return &c, nil
}

func loopbackAddr(what, addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", what, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("%s %q: cpmlink binds loopback addresses only", what, addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%s %q: bad port", what, addr)
	}
	return host, p, nil
}

func (c *ServeConfig) check() error {
	var errs []error
	if _, ok := fsm.VariantByName(c.Variant); !ok {
		errs = append(errs, fmt.Errorf("variant %q is not a named variant of the spec", c.Variant))
	}
	if c.Transport != "" && c.Transport != "udp" && c.Transport != "tcp" {
		errs = append(errs, fmt.Errorf("transport must be udp or tcp"))
	}
	if c.SIPCore == "" {
		errs = append(errs, errors.New("sip-core is required"))
	}
	if c.Core != nil {
		if _, _, err := loopbackAddr("core.listen", c.Core.Listen); err != nil {
			errs = append(errs, err)
		}
	}
	names := map[string]bool{}
	for i, r := range c.Roles {
		if r.Name == "" || names[r.Name] {
			errs = append(errs, fmt.Errorf("roles[%d]: a unique name is required", i))
		}
		names[r.Name] = true
		if _, err := roleKind(r.Role); err != nil {
			errs = append(errs, fmt.Errorf("roles[%d] (%s): %w", i, r.Name, err))
		}
		for _, a := range []struct{ what, addr string }{{"sip", r.SIP}, {"msrp", r.MSRP}} {
			if _, _, err := loopbackAddr(a.what, a.addr); err != nil {
				errs = append(errs, fmt.Errorf("roles[%d] (%s): %w", i, r.Name, err))
			}
		}
	}
	if _, err := c.chunkSize(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.guard(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func roleKind(name string) (fsm.RoleKind, error) {
	for k := fsm.RoleKind(0); k < fsm.NumRoles; k++ {
		if strings.EqualFold(k.String(), name) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q", name)
}

// ParseSize reads "2MB", "512KiB", "100000": K, M, G are powers of 1024.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"GB", 1 << 30}, {"G", 1 << 30}, {"MIB", 1 << 20}, {"MB", 1 << 20}, {"M", 1 << 20},
		{"KIB", 1 << 10}, {"KB", 1 << 10}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func (c *ServeConfig) chunkSize() (int, error) {
	if c.ChunkSize == "" {
		return 0, nil
	}
	n, err := ParseSize(c.ChunkSize)
	if err != nil || n < 1 || n > 1<<20 {
		return 0, fmt.Errorf("chunk-size %q: between 1 byte and 1 MiB", c.ChunkSize)
	}
	return int(n), nil
}

func (c *ServeConfig) guard() (time.Duration, error) {
	if c.Guard == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.Guard)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("guard %q: a positive duration", c.Guard)
	}
	return d, nil
}

// Serve starts what a configuration describes (every role, or only the named ones; the
// name "core" is the SIP/IP core) and returns a function that stops it all.
func Serve(ctx context.Context, c *ServeConfig, only []string, trace *Tracer, log *slog.Logger) (stop func() error, err error) {
	want := func(name string) bool {
		if len(only) == 0 {
			return true
		}
		for _, o := range only {
			if o == name {
				return true
			}
		}
		return false
	}
	v, _ := fsm.VariantByName(c.Variant)
	chunk, _ := c.chunkSize()
	guard, _ := c.guard()
	var stops []func() error
	stop = func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if c.Core != nil && want("core") {
		host, port, _ := loopbackAddr("core.listen", c.Core.Listen)
		p, err := sipx.StartProxy(ctx, sipx.ProxyConfig{Host: host, UDPPort: port, TCPPort: port, Routes: c.Core.Routes, Logger: log})
		if err != nil {
			return nil, err
		}
		stops = append(stops, p.Close)
	}
	for _, r := range c.Roles {
		if !want(r.Name) {
			continue
		}
		kind, _ := roleKind(r.Role)
		host, sport, _ := loopbackAddr("sip", r.SIP)
		_, mport, _ := loopbackAddr("msrp", r.MSRP)
		groups := map[string]core.Group{}
		for uri, g := range r.Groups {
			groups[uri] = core.Group{Members: g.Members, Senders: g.Senders}
		}
		n, err := StartNode(ctx, NodeConfig{Kind: kind, Name: r.Name, URI: r.URI, Host: host, SIPPort: sport, MSRPPort: mport,
			Variant: v, Proxy: c.SIPCore, Transport: c.Transport, Groups: groups, ChunkSize: chunk, Guard: guard, Trace: trace, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("runtime: starting %s: %w", r.Name, err)
		}
		stops = append(stops, n.Close)
	}
	if len(stops) == 0 {
		return nil, fmt.Errorf("runtime: nothing to serve (roles %v)", only)
	}
	return stop, nil
}
