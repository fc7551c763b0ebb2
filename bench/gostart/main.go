// Command gostart does nothing: the bench execs it beside the shim, so
// the shim's cost is read against what starting any Go program costs on
// the machine at hand.
package main

func main() {}
