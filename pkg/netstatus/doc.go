// Package netstatus builds the NPWG network-status list (spec section 5)
// from the outcomes of the delegate chain. It is pure: no I/O.
package netstatus
