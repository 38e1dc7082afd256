package s3store

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// watchedReader counts the reads made after the call that got it returned.
type watchedReader struct {
	r        io.Reader
	returned atomic.Bool
	late     atomic.Int64
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.returned.Load() {
		w.late.Add(1)
	}
	return w.r.Read(p)
}

// An S3 server may answer a part upload (NoSuchUpload) before it has read
// the part; net/http's writing goroutine may still be reading the body
// when PutPart returns, and nothing orders its reads before the caller's
// reuse of the buffer (the race detector saw it in an upload test). The
// body is fenced: every read happens before PutPart returns, and none
// after. Run under -race, as make test does.
func TestAPartsBodyIsNotReadAfterPutPartReturns(t *testing.T) {
	clientReturned := make(chan struct{})
	handlerDone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			w.WriteHeader(http.StatusOK) // the bucket exists
			return
		}
		defer close(handlerDone)
		_ = http.NewResponseController(w).EnableFullDuplex()
		answer := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>`
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer))) // the answer is whole at once
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, answer)
		_ = http.NewResponseController(w).Flush()
		<-clientReturned
		_, _ = io.Copy(io.Discard, r.Body) // what the client still sends
	}))
	defer srv.Close()
	s, err := New(t.Context(), Config{
		Endpoint: strings.TrimPrefix(srv.URL, "http://"), Bucket: "fenced", AccessKey: "k", SecretKey: "secretsecret",
		Region: "us-east-1", Insecure: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	const size = 32 << 20 // far more than the sockets buffer
	buf := make([]byte, size)
	body := &watchedReader{r: bytes.NewReader(buf)}
	if _, err := s.PutPart(t.Context(), "k/obj", "upload-id", 1, body, size); err == nil {
		t.Fatal("PutPart succeeded against NoSuchUpload")
	}
	body.returned.Store(true)
	// The ingest fills the buffer with the next part at once: under the
	// race detector, this write races with any read of net/http's that
	// PutPart's return does not order before it.
	for i := range buf {
		buf[i] = 1
	}
	close(clientReturned)
	<-handlerDone
	if n := body.late.Load(); n > 0 {
		t.Fatalf("the part's reader was read %d times after PutPart returned", n)
	}
}
