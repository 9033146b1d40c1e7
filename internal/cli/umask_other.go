//go:build !unix

package cli

// restrictFiles is a no-op where there is no umask; protect the data dir
// with the platform's own access control.
func restrictFiles() {}
