package testserver

import (
	"fmt"
	"os"
)

// ResetPeakRSS sets the peak resident set size of the running server
// (VmHWM) back to its current RSS, which it returns: PeakRSS then tells
// the peak of what follows only.
func (s *Server) ResetPeakRSS() (int64, error) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.PID), []byte("5"), 0); err != nil {
		return 0, fmt.Errorf("resetting the peak RSS of pid %d: %w", s.PID, err)
	}
	return s.PeakRSS()
}
