package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/manifest"
)

// downloadLinkParam is the query parameter a download link rides in. The
// access log and every other record of a request leave the query string
// out, so the link is in none of them.
const downloadLinkParam = "dl"

// maxDownloadLinks bounds the downloads one request mints links for.
const maxDownloadLinks = 100

// caseDownloads are the downloads of a whole case, as a download link
// names them: the path under /api/v1/cases/{case}/. A file is
// "files/NAME".
var caseDownloads = []string{"archive.zip", manifest.Name, manifest.Name + ".sig", manifest.Name + ".sshsig"}

var errLinksForCredentials = newError(http.StatusForbidden, "forbidden",
	"download links are minted for a case credential; the admin token downloads with its header")

type downloadLinksRequest struct {
	// Downloads names each download: "files/NAME", "archive.zip",
	// "SHA256SUMS", "SHA256SUMS.sig" or "SHA256SUMS.sshsig".
	Downloads []string `json:"downloads"`
}

// DownloadLink is a download link just minted: URL opens Download, with
// no header, until ExpiresAt.
type DownloadLink struct {
	Download  string    `json:"download"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// DownloadLinks is the answer to POST /api/v1/cases/{case}/download-links:
// one link for each download asked for, in the same order.
type DownloadLinks struct {
	Links []DownloadLink `json:"links"`
}

// mintDownloadLinks answers POST /api/v1/cases/{case}/download-links for a
// credential of the case: a link for each download asked for, which the
// browser's download manager can fetch without the credential's header.
// A file must be complete now; it is named in the link as the catalog
// names it.
func (s *server) mintDownloadLinks(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if c.Admin {
		return errLinksForCredentials
	}
	var req downloadLinksRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	if len(req.Downloads) == 0 || len(req.Downloads) > maxDownloadLinks {
		return newError(http.StatusBadRequest, "invalid_downloads", fmt.Sprintf("downloads must name 1 to %d downloads", maxDownloadLinks))
	}
	caseID := r.PathValue("case")
	links := make([]DownloadLink, 0, len(req.Downloads))
	for _, d := range req.Downloads {
		d, err := s.downloadNamed(r, caseID, d)
		if err != nil {
			return err
		}
		link, expiresAt, err := s.Issuer.IssueDownload(c.Claims, d)
		if err != nil {
			return err
		}
		u := s.PublicURL + "/api/v1/cases/" + url.PathEscape(caseID) + "/" + escapeDownload(d) + "?" + downloadLinkParam + "=" + link
		links = append(links, DownloadLink{Download: d, URL: u, ExpiresAt: expiresAt})
	}
	writeJSON(w, http.StatusOK, DownloadLinks{Links: links})
	return nil
}

// downloadNamed checks that d names a download of the case that can be
// fetched now, and returns it as a link names it: a file under the name
// the catalog has for it.
func (s *server) downloadNamed(r *http.Request, caseID, d string) (string, error) {
	name, isFile := strings.CutPrefix(d, "files/")
	if !isFile {
		if !slices.Contains(caseDownloads, d) {
			return "", newError(http.StatusBadRequest, "invalid_downloads",
				fmt.Sprintf("%q is no download: name files/NAME, %s", d, strings.Join(caseDownloads, ", ")))
		}
		return d, nil
	}
	f, err := s.downloadable(r, caseID, name)
	if err != nil {
		return "", err
	}
	return "files/" + f.Name, nil
}

// downloadable returns the catalog's entry of the file of caseID that a
// download of name fetches: complete, else an error saying what it is.
func (s *server) downloadable(r *http.Request, caseID, name string) (cases.File, error) {
	f, err := s.Catalog.File(r.Context(), caseID, name)
	if err != nil {
		return cases.File{}, err
	}
	if err := f.Servable(); err != nil {
		return cases.File{}, err
	}
	if f.State != cases.FileComplete {
		return cases.File{}, newError(http.StatusConflict, "file_"+string(f.State), fmt.Sprintf("%s is %s, not downloadable", f.Name, f.State))
	}
	return f, nil
}

// escapeDownload is d as a URL path under the case: a file's name
// escaped as one segment.
func escapeDownload(d string) string {
	if name, ok := strings.CutPrefix(d, "files/"); ok {
		return "files/" + url.PathEscape(name)
	}
	return d
}

// downloadOf names the download r asks for as a link names it, from the
// route that serves it: "files/NAME", "archive.zip", "SHA256SUMS", ...
func downloadOf(r *http.Request) string {
	_, d, _ := strings.Cut(r.Pattern, "/{case}/")
	return strings.Replace(d, "{name}", r.PathValue("name"), 1)
}
