// Package kamailiotest starts Kamailio (Debian package "kamailio") as the SIP/IP core of an
// integration test: a child process on a free loopback port, in a process group of its
// own, run from the project's configuration testdata/kamailio-sip-core.cfg with the test's
// routing table, ready once it answers SIP, killed as a whole at the test's cleanup.
//
// It is test support only, shared by the Kamailio tests of runtime/sipx, runtime and
// cmd/cpmlink so that there is one launcher and one configuration; FreePorts also serves
// the tests that run a deployment file, whose ports are fixed, and StartChild every
// external program a test runs (the MSRP relay of runtime/msrp, sipp): a process group
// ended at cleanup and, on Linux, when the test binary is killed. It imports "testing"
// and starts external processes: non-test code must never import it (a test of this
// package enforces that). It is not an internal package because cmd/cpmlink's tests use it
// too, and the module keeps its top level to model, gen, fsm, runtime, proptest, cmd, docs.
//
// The same configuration file, as committed, is the one docs/kamailio.md runs by hand
// next to `cpmlink demo --sip-core 127.0.0.1:5060 --base-port 5070`; the tests override
// its port and routing table with Kamailio's -A pre-processor defines, never by editing
// the text.
package kamailiotest
