// Package model is the declarative spec of cpmlink: the five roles of US 8,688,848 B2,
// their SIP legs and MSRP links (hops), the state machines of each side, the message
// triggers as rules, the link-initiative reactions, the knobs of the variant space and
// the named variants (FIG. 1-7 and the alternatives the patent text names).
//
// The spec lives in one YAML file (cpmlink.yaml, embedded; see Default). Load decodes it
// strictly: unknown keys, duplicate keys and references to undeclared names are errors
// that carry file:line:column. Validate rejects impossible settings, such as a trigger
// that the opening role can never observe.
//
// Package model must never import fsm, runtime or proptest: data flows one way, from the
// spec to the generator to the generated code.
package model
