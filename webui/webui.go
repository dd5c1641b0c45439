package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed dist
var distFS embed.FS

// contentSecurityPolicy allows the dashboard to load only its own files
// and talk only to its own origin: no inline script, no outside fetch, no
// framing. uPlot and Preact set styles through the DOM (style properties),
// which style-src does not restrict.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	data  []byte
	gz    []byte // gzip-compressed data, nil when compression does not pay
	ctype string
	etag  string
}

var (
	loadOnce sync.Once
	assets   map[string]*asset
	loadErr  error
)

// load reads and compresses the embedded files once: the set is small and
// fixed, so compressing at start beats committing .gz copies.
func load() {
	assets = map[string]*asset{}
	loadErr = fs.WalkDir(distFS, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := distFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "dist")
		sum := sha256.Sum256(data)
		a := &asset{data: data, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		a.ctype = mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) {
		case ".js":
			a.ctype = "text/javascript; charset=utf-8"
		case ".svg":
			a.ctype = "image/svg+xml"
		case ".txt":
			a.ctype = "text/plain; charset=utf-8"
		}
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		if len(data) > 1024 {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
			zw.Write(data)
			zw.Close()
			if b.Len() < len(data)*9/10 {
				a.gz = b.Bytes()
			}
		}
		assets[name] = a
		return nil
	})
}

// Handler returns the handler that serves the dashboard: "/" is the
// application, /assets/ its script, styles and icon, /licenses.txt the
// licences of the libraries it includes. Other paths answer 404. Every
// answer carries a strict Content-Security-Policy; files are revalidated
// by ETag (they change with the firmware, which keeps their names).
func Handler() http.Handler {
	loadOnce.Do(load)
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if loadErr != nil {
		http.Error(w, "the dashboard is not built into this firmware: "+loadErr.Error(), http.StatusInternalServerError)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path
	if name == "/" {
		name = "/index.html"
	}
	a, ok := assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "/index.html" {
		h.Set("X-Frame-Options", "DENY")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	h.Set("Content-Type", a.ctype)
	body, etag := a.data, a.etag
	if a.gz != nil && acceptsGzip(r) {
		// The compressed form is another representation: another ETag.
		h.Set("Content-Encoding", "gzip")
		body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
	}
	h.Set("ETag", etag)
	// ServeContent handles If-None-Match and ranges; the modification time
	// is left out so that only the ETag decides.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request accepts gzip (q=0 refuses it).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
