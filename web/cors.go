package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/casedrop/casedrop/auth"
	"github.com/rs/cors"
)

// The one CORS policy (tusd's own is off): the origins listed in
// Config.EmbedOrigins, and only those, may call tus and the API routes a
// case credential uses; the admin routes and the pages answer no origin.
// Credentials travel in the Authorization header, never in cookies, so
// Access-Control-Allow-Credentials is never sent.
var (
	corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete}
	// tusd's default list (handler.DefaultCorsConfig) less the IETF
	// draft's headers (not enabled here), plus the checksum extension
	// casedrop adds and the range headers of downloads. Upload-Concat is
	// refused by the server (no concatenation), with an answer the client
	// can read only when its preflight passed.
	corsRequestHeaders = []string{"Authorization", "Content-Type",
		"Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Defer-Length",
		"Upload-Concat", "Upload-Checksum", "X-HTTP-Method-Override", "X-Requested-With", "X-Request-ID",
		"Range", "If-Range"}
	// What tus answers, what downloads (files, zip, SHA256SUMS) carry, and
	// Retry-After of a 429 or 503.
	corsResponseHeaders = []string{"Location", "Upload-Offset", "Upload-Length", "Upload-Metadata",
		"Upload-Defer-Length", "Upload-Expires", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
		"Tus-Checksum-Algorithm", "Content-Disposition", "Content-Length", "Content-Range", "Accept-Ranges",
		"Repr-Digest", "Content-Digest", "ETag", "Retry-After"}
)

// corsMaxAge is how long a browser may keep a preflight's answer, in
// seconds: tusd's default; browsers cap it (Chromium at 2 hours).
const corsMaxAge = 86400

var errOriginRefused = newError(http.StatusForbidden, "origin_not_allowed", "this origin may not call this server cross-origin")

// newCORS returns the policy for origins, nil for none. Each origin must
// be as ParseEmbedOrigins returns it.
func newCORS(origins []string, adminToken string) (*cors.Cors, error) {
	for _, o := range origins {
		if n, err := normalOrigin(o); err != nil || n != o {
			return nil, fmt.Errorf("web: embed origin %q is not as ParseEmbedOrigins returns it", o)
		}
	}
	if len(origins) == 0 {
		return nil, nil
	}
	return cors.New(cors.Options{
		// A function, not AllowedOrigins, whose empty list means "*".
		AllowOriginVaryRequestFunc: func(r *http.Request, origin string) (bool, []string) {
			// The admin token never belongs in a browser: what it is
			// answered is not shared with any origin.
			admin := auth.AdminTokenMatches(adminToken, bearer(r))
			return slices.Contains(origins, origin) && !admin, []string{"Authorization"}
		},
		AllowedMethods:     corsMethods,
		AllowedHeaders:     corsRequestHeaders,
		ExposedHeaders:     corsResponseHeaders,
		MaxAge:             corsMaxAge,
		OptionsPassthrough: true, // so that crossOrigin answers a refused preflight 403
	}), nil
}

// crossOrigin makes h callable from the listed origins: a preflight is
// answered here, before any authentication (it carries no credential), 204
// with the Access-Control-Allow-* headers for a listed origin and a method
// and headers of the policy, else 403 with none; any other request gets
// Access-Control-Allow-Origin and -Expose-Headers when its origin is listed.
func (s *server) crossOrigin(h http.Handler) http.Handler {
	if s.cors == nil {
		return h
	}
	return s.cors.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			h.ServeHTTP(w, r)
			return
		}
		if w.Header().Get("Access-Control-Allow-Origin") == "" {
			s.writeError(w, r, errOriginRefused)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// crossOriginRoutes returns the function that registers on mux the routes
// a case credential may call from a listed origin. A pattern with a
// method also gets OPTIONS on its path, for the preflight, which the mux
// would not route to it; a pattern without one ("/files/") takes every
// method already.
func (s *server) crossOriginRoutes(mux *http.ServeMux) func(pattern string, h http.Handler) {
	preflighted := map[string]bool{}
	return func(pattern string, h http.Handler) {
		mux.Handle(pattern, s.crossOrigin(h))
		_, path, withMethod := strings.Cut(pattern, " ")
		if s.cors == nil || !withMethod || preflighted[path] {
			return
		}
		preflighted[path] = true
		mux.Handle(http.MethodOptions+" "+path, s.crossOrigin(http.HandlerFunc(s.notFound)))
	}
}
