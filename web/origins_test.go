package web_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/web"
)

func TestEmbedOriginsAreParsedToTheFormBrowsersSend(t *testing.T) {
	got, err := web.ParseEmbedOrigins(" HTTPS://Support.Example.COM:443 , http://127.0.0.1:9000,https://support.example.com,http://portal.test:80,https://portal.test:08443,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://support.example.com", "http://127.0.0.1:9000", "http://portal.test", "https://portal.test:8443"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, err := web.ParseEmbedOrigins(""); err != nil || got != nil {
		t.Fatalf("empty: %q, %v", got, err)
	}
}

func TestAnythingButAnOriginIsRefusedNamingIt(t *testing.T) {
	for _, bad := range []struct{ value, why string }{
		{"https://support.example.com/", "path"},
		{"https://support.example.com/portal", "path"},
		{"https://support.example.com?x=1", "query"},
		{"https://support.example.com?", "query"},
		{"https://support.example.com#top", "fragment"},
		{"https://user:pw@support.example.com", "user name"},
		{"https://*.example.com", "wildcard"},
		{"*", "wildcard"},
		{"null", "null"},
		{"NULL", "null"},
		{"ftp://support.example.com", "scheme"},
		{"support.example.com", "scheme"},
		{"//support.example.com", "scheme"},
		{"https:support.example.com", "no host"},
		{"https://", "no host"},
		{"https://support.example.com:", "port"},
		{"https://support.example.com:0", "port"},
		{"https://support.example.com:65536", "port"},
		{"https://[::1]:9000", "IPv4"},
		{"https://bücher.example", "xn--"},
		{"https://a_b.example", "name"},
		{"https://support.example.com https://other.example", "commas"},
	} {
		_, err := web.ParseEmbedOrigins("https://ok.example," + bad.value)
		if err == nil {
			t.Errorf("%q accepted", bad.value)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `"`+bad.value+`"`) || !strings.Contains(msg, bad.why) {
			t.Errorf("%q: %q, want it named and %q said", bad.value, msg, bad.why)
		}
	}
}
