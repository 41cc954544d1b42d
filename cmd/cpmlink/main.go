// Command cpmlink generates, checks and runs the CPM large-message media link.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "cpmlink: not yet available")
	os.Exit(2)
}
