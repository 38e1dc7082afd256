package upload_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/casedrop/casedrop/upload"
)

func TestClientGoneTellsAClientLeavingFromAFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		gone bool
	}{
		{fmt.Errorf("reading: %w", context.Canceled), true},
		{fmt.Errorf("read tcp: %w", syscall.ECONNRESET), true},
		{errors.New("stream error: stream ID 3; CANCEL"), true},
		{errors.New("http2: client disconnected"), true},
		{context.DeadlineExceeded, false},
		{errors.New("disk on fire"), false},
		{nil, false},
	} {
		if got := upload.ClientGone(tc.err); got != tc.gone {
			t.Errorf("ClientGone(%v) = %v, want %v", tc.err, got, tc.gone)
		}
	}
}
