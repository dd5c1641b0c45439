package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Error codes of the JSON error body.
const (
	codeBadRequest      = "bad_request"
	codeInvalidConfig   = "invalid_config"
	codeUnauthorized    = "unauthorized"
	codeCSRF            = "csrf"
	codeNotFound        = "not_found"
	codeMethod          = "method_not_allowed"
	codeConflict        = "conflict"
	codeTooLarge        = "too_large"
	codeMediaType       = "unsupported_media_type"
	codeLockedOut       = "locked_out"
	codeUnavailable     = "unavailable"
	codeInternal        = "internal"
	codeApplyFailed     = "apply_failed"
	maxBody             = 1 << 20
	contentTypeJSON     = "application/json"
	contentTypeJSONUTF8 = "application/json; charset=utf-8"
)

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	// Code is a stable machine-readable name, such as "not_found".
	Code string `json:"code"`
	// Message is for humans.
	Message string `json:"message"`
	// Field names the configuration field or parameter at fault, if any.
	Field string `json:"field,omitempty"`
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", contentTypeJSONUTF8)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// writeError answers with the JSON error body.
func writeError(w http.ResponseWriter, status int, code, field, format string, args ...any) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: fmt.Sprintf(format, args...), Field: field}})
}

// decodeJSON reads a JSON request body into v: at most 1 MiB, content type
// JSON, unknown keys refused. It answers the error itself and returns false
// on failure. An empty body is accepted when optional.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	data, ok := readBody(w, r, optional)
	if !ok {
		return false
	}
	if len(data) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "", "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, codeBadRequest, "", "request body: data after the JSON value")
		return false
	}
	return true
}

// readBody reads a JSON request body, checking size and content type.
func readBody(w http.ResponseWriter, r *http.Request, optional bool) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "", "the request body is larger than %d bytes", maxBody)
		} else {
			writeError(w, http.StatusBadRequest, codeBadRequest, "", "reading the request body: %v", err)
		}
		return nil, false
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		if optional {
			return nil, true
		}
		writeError(w, http.StatusBadRequest, codeBadRequest, "", "a JSON request body is required")
		return nil, false
	}
	// Requiring a JSON content type also keeps cross-site HTML forms,
	// which cannot send one, from reaching any handler with a body.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != contentTypeJSON {
		writeError(w, http.StatusUnsupportedMediaType, codeMediaType, "", "the request body must be application/json")
		return nil, false
	}
	return data, true
}
