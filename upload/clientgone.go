package upload

import (
	"context"
	"errors"
	"strings"
	"syscall"
)

// ClientGone says whether err is the client going away mid-request (a
// browser reload, a closed tab, a dropped connection): the request's
// context canceled, the connection reset or broken, or HTTP/2's
// RST_STREAM with CANCEL. It is the client's doing, not the server's.
func ClientGone(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	return goneText(err.Error())
}

// goneText says whether an error's text is a client going away: tusd and
// net/http's bundled HTTP/2 hand some of them on as text or as types of
// their own (http2StreamError is unexported).
func goneText(s string) bool {
	for _, gone := range []string{
		"; CANCEL",                 // http2: stream error: stream ID 3; CANCEL
		"connection reset by peer", // also tusd's ERR_CONNECTION_RESET
		"client disconnected",      // http2: the client closed the stream
		"context canceled",         // a canceled request's context, as text
		"broken pipe",
	} {
		if strings.Contains(s, gone) {
			return true
		}
	}
	return false
}
