// The config dir's reads elsewhere than on Linux: by path below the directory.

//go:build !linux

package main

import (
	"path/filepath"
	"syscall"
	"time"
)

// openAt opens name by its path: the standard library has no openat
// outside Linux, so here a deploy that swaps the directory is caught only
// by unsettled, not kept out by the handle.
func (c *configDir) openAt(name string, flags int) (int, error) {
	return syscall.Open(filepath.Join(c.path, filepath.FromSlash(name)), flags, 0)
}

func changedAt(st *syscall.Stat_t) time.Time {
	return time.Unix(st.Ctimespec.Unix())
}
