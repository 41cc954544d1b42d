// Package gen compiles a model.Spec into Go source for package fsm with
// github.com/dave/jennifer: one type per role with a pure Step function, the typed events
// and actions, the machine tables (run on looplab/fsm through fsm/core), the knob types,
// the Variant value and the spec's named variants.
//
// Knob settings are data: the generated code reads a Variant at run time, so every knob
// combination runs without regenerating. A new kind of trigger, event or rule is a spec
// edit followed by `go generate ./...`.
//
// Package gen must never import fsm (the code it writes), runtime or proptest: the
// generator has to build even when the generated code is stale or broken.
package gen
