// Package msrp is the MSRP wire for cpmlink: an RFC 4975 codec, sessions bound
// to TCP or TLS connections, connection reuse, chunked sending from an
// io.Reader, Byte-Range reassembly into an io.Writer, and a streaming relay
// that forwards one incoming message to one or many downstream sessions with
// bounded memory.
//
// The package knows nothing about the cpmlink roles (ClientA, PF-A, CF, PF-B,
// ClientB) or about the generated state machines. It must never import
// github.com/cpmlink/cpmlink/fsm or github.com/cpmlink/cpmlink/model: the
// runtime drives it, never the other way round (DESIGN.md §3 rule 5).
//
// # Layers
//
//   - Codec: [URI], [Path], [ByteRange], [Frame], [Reader] (streaming parser)
//     and [Frame.AppendHeader] / [WriteFrame] (serializer). RFC 4975 §7 and §9.
//   - Connections: [Endpoint] accepts on an injected net.Listener
//     ([Endpoint.Serve]) and dials as the active party, optionally reusing a
//     connection whose scheme, host and port match (RFC 4975 §5.4, the
//     patent's "existing link with matching host, port and/or URI").
//   - Sessions: [Session] is one MSRP session (one a=path URI). The active
//     party binds a connection to it with a SEND, bodiless when it has nothing
//     to send (RFC 4975 §7.1.1); the passive party binds it on that first SEND.
//   - Messages: [Session.Send] chunks a message streaming from an io.Reader;
//     incoming messages are handed to a [Sink] chosen by
//     [SessionConfig.Accept]; [NewWriterSink] reassembles by Byte-Range.
//   - Relay: [Relay] forwards every chunk of an upstream message to each
//     downstream session through a bounded queue per downstream, so memory is
//     O(chunk size × queue depth × members), never O(message size).
//   - Building blocks for a caller that decides forwarding and REPORTs itself
//     (cpmlink's runtime, driven by its state machines):
//     [Session.BeginMessage] and [Outgoing.WriteChunk] write a message
//     chunk by chunk keeping an upstream's Message-ID and Byte-Ranges;
//     [Chunk.Retain] keeps received chunks until then;
//     [SessionConfig.DetachedReports] and [Session.SendReport] leave REPORTs to
//     the caller; [Session.SetRemote] names a peer learned after the
//     connection came (RFC 6135 actpass); [Session.Abort] makes the peer see
//     the link fail.
//
// # Goroutines
//
// The package starts two goroutines per connection (reader and
// transaction-timeout sweeper) and, in a [Relay], one per downstream per
// message in flight; [Endpoint.Close] waits for all of them. Callbacks run on the connection's reader goroutine and
// must not block for long: a blocked callback is TCP back-pressure on every
// session sharing that connection.
package msrp
