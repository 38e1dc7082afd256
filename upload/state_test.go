package upload

import (
	"bytes"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/storage"
)

func TestStateDecodesAsItWasEncoded(t *testing.T) {
	s := &state{ID: "u", Case: "c", Name: "f", Size: -1, Offset: 5<<20 + 3,
		Parts: []storage.Part{{Number: 1, Size: 5 << 20, ETag: "e"}}, tail: []byte("abc")}
	data, err := s.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Offset != s.Offset || got.Name != s.Name || len(got.Parts) != 1 || string(got.tail) != "abc" {
		t.Fatalf("decoded %+v, want %+v", got, s)
	}
	r := bytes.NewReader(data)
	head, err := readStateHead(r)
	if err != nil {
		t.Fatal(err)
	}
	if head.Offset != s.Offset || r.Len() != len(s.tail) {
		t.Fatalf("the head reads offset %d and leaves %d bytes, want %d and the tail's %d", head.Offset, r.Len(), s.Offset, len(s.tail))
	}
}

func TestStateThatIsNotWholeIsRefused(t *testing.T) {
	data, err := (&state{ID: "u", Offset: 2, tail: []byte("ab")}).encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"a foreign object is not a state", "not an upload state", []byte("{}")},
		{"a state cut in its JSON is truncated", "truncated upload state", data[:len(stateMagic)+6]},
		{"a state cut in its tail has a short tail", "tail of 1 bytes", data[:len(data)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeState(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decodeState: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
