// Package deploy is cpmlink's deployment layer: it reads and checks the configuration file
// of a whole deployment (the SIP/IP core, the server roles PF-A, CF and PF-B, and their
// clients), starts the part of it that one process runs (Serve, ServeConfig.StartClient),
// and runs a role instance in a child process for a parent that measures it
// (RunRoleProcess, StartRoleProcess, CFProcess).
//
// Package runtime is the driver it starts: one role instance on sockets (runtime.Node).
// deploy only turns a configuration into runtime.NodeConfig and sipx.ProxyConfig values
// (trusted identity, location stores and limits included: identity.go, limits.go) and
// starts them; it must hold no protocol logic (that is the spec's, in package fsm) and
// no socket handling of its own (that is runtime's).
//
// It must never import proptest or the explorer (the checkers drive the same FSMs without
// a deployment), gen or model (it runs the generated FSMs, it does not build them), nor be
// imported by runtime or its subpackages: the dependency runs one way, from the
// deployment to the driver.
package deploy
