package miniotest

import "syscall"

// dieWithParent has the kernel kill MinIO when the test binary dies, even
// by a panic or a signal that skips Stop.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
