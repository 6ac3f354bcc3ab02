// Command ftvs runs and operates fault-tolerant virtual servers.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
