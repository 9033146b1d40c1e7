// Command webcaresync puts social-media customer service into the CRM.
// Run `webcaresync --help` for the commands.
package main

import (
	"os"

	"github.com/webcaresync/webcaresync/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
