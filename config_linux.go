// The config dir's reads on Linux: relative to the directory's file descriptor.

package main

import (
	"syscall"
	"time"
)

// openAt opens name, a slash-separated path in the dir.
func (c *configDir) openAt(name string, flags int) (int, error) {
	return syscall.Openat(c.fd, name, flags, 0)
}

// changedAt is when a file's inode last changed: its ctime, which no copy
// tool can set back, as they do its mtime.
func changedAt(st *syscall.Stat_t) time.Time {
	return time.Unix(st.Ctim.Unix())
}
