//go:build !linux

package miniotest

import "syscall"

// dieWithParent has no portable equivalent of Linux's Pdeathsig; elsewhere
// a test binary that dies without Stop leaves MinIO running.
func dieWithParent() *syscall.SysProcAttr { return nil }
