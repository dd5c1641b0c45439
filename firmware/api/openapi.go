package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of this API.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document (JSON) served at
// /api/v1/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", contentTypeJSONUTF8)
	w.Write(openAPI)
}
