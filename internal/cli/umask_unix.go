//go:build unix

package cli

import "syscall"

// restrictFiles makes every file webcaresync creates (databases, WAL
// files, the sandbox snapshot, reports) readable by its owner only: they
// hold encrypted personal data and keys.
func restrictFiles() { syscall.Umask(0o077) }
