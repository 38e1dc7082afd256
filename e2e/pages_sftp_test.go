package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// sftpAccount is what e2e/js/page_sftp.mjs reads off a case page.
type sftpAccount struct {
	Address, Host, Port, Username, Password, TokenNote, Instructions string
}

func TestCasePageShowsTheShortSFTPPasswordThatTheClientsInstructionsLogInWith(t *testing.T) {
	root := requirePages(t)
	srv := testserver.Start(t, testserver.Options{})
	const caseID = "CASE-2718"
	srv.OpenCase(t, caseID)
	cred := srv.Credential(t, caseID, "customer")

	job := map[string]any{"visits": []map[string]string{
		{"url": cred.UploadURL},                                  // the link the API hands out
		{"url": pageURL(srv.URL, "/cases/", caseID, cred.Token)}, // a link with the token alone
	}}
	var out struct{ Results []sftpAccount }
	runPageScript(t, root, "page_sftp.mjs", job, &out)
	if len(out.Results) != 2 {
		t.Fatalf("%d results for 2 visits", len(out.Results))
	}
	withPassword, tokenOnly := out.Results[0], out.Results[1]

	t.Run("the link's password is shown, with the account it opens", func(t *testing.T) {
		a := withPassword
		if a.Password != cred.Password || a.Username != cred.Username || a.Host != cred.SFTPHost || a.Port != strconv.Itoa(cred.SFTPPort) {
			t.Fatalf("the page shows %+v; want user %s, password %s, host %s, port %d",
				a, cred.Username, cred.Password, cred.SFTPHost, cred.SFTPPort)
		}
		if a.TokenNote != "" {
			t.Errorf("a note about the token shows beside the short password: %q", a.TokenNote)
		}
		if strings.Contains(a.Address, "token=") || strings.Contains(a.Address, "password=") {
			t.Errorf("the secrets stayed in the address bar: %s", a.Address)
		}
		for _, want := range []string{"WinSCP", "FileZilla", "sftp -P " + a.Port + " " + a.Username + "@" + a.Host, "the password above"} {
			if !strings.Contains(a.Instructions, want) {
				t.Errorf("the instructions do not say %q:\n%s", want, a.Instructions)
			}
		}
		// The instructions as written: this user name and password, typed
		// into WinSCP's engine, upload a file.
		l := loginOf(srv, cred)
		l.user, l.token = a.Username, a.Password
		path, sum := patternFile(t, t.TempDir(), "from-the-page.txt", 1234, 44)
		if out, err := psftp(t, l, "put "+batchQuoted(path)+"\n"); err != nil {
			t.Fatalf("psftp with what the page shows: %v\n%s", err, out)
		}
		checkComplete(t, fileNamed(t, srv.Files(t, caseID), "from-the-page.txt"), 1234, sum)
	})
	t.Run("a link without the password still says how to log in", func(t *testing.T) {
		a := tokenOnly
		if a.Password != cred.Token || a.Username != cred.Username {
			t.Fatalf("the page shows user %q, password %q; want the token as the password", a.Username, a.Password)
		}
		if !strings.Contains(a.TokenNote, "WinSCP") || !strings.Contains(a.TokenNote, "token") {
			t.Fatalf("no note on using the token, and on WinSCP's short box: %q", a.TokenNote)
		}
	})
}
