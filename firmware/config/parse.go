package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FieldError is a problem with one field of a configuration document.
type FieldError struct {
	// Field is the field's path in the document, such as
	// "services[0].ports[1]" or "health.interval".
	Field string
	// Problem says what is wrong with it.
	Problem string
}

// Error returns "field: problem".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Parse decodes a configuration document. It is strict: unknown keys, keys
// whose case differs from the documented one, duplicate keys, nulls, values
// of the wrong type, explicit zeros for optional numbers and durations, and
// anything after the document are errors. Errors about a field are
// *FieldError values naming its path. Parse sets Version to CurrentVersion
// when the document omits it; it does not call Validate.
func Parse(data []byte) (*Config, error) {
	if err := checkDocument(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		// checkDocument accepts only documents that decode; this is a
		// safety net.
		return nil, err
	}
	if c.Version == 0 {
		c.Version = CurrentVersion
	}
	return &c, nil
}

// Load reads, parses and validates the configuration file at path. Its
// errors start with the path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// checkDocument walks the JSON tokens of data against the shape of Config and
// returns the first structural problem, with the path of the field.
func checkDocument(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := &walker{dec: dec, data: data}
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty document")
	}
	if err := w.value(reflect.TypeFor[Config](), "", false); err != nil {
		return err
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		rest := data[end:]
		end += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
		line, col := w.position(end)
		return fmt.Errorf("line %d, column %d: data after the end of the document", line, col)
	}
	return nil
}

type walker struct {
	dec  *json.Decoder
	data []byte
}

var durationType = reflect.TypeFor[Duration]()

// position returns the 1-based line and column of byte offset off.
func (w *walker) position(off int64) (line, col int) {
	off = min(max(off, 0), int64(len(w.data)))
	before := w.data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

// token reads the next token, turning syntax errors into positioned ones.
func (w *walker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		line, col := w.position(se.Offset - 1) // Offset is just past the bad byte
		return nil, fmt.Errorf("line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errors.New("unexpected end of document")
	default:
		line, col := w.position(w.dec.InputOffset())
		return nil, fmt.Errorf("line %d, column %d: %s", line, col, strings.TrimPrefix(err.Error(), "json: "))
	}
}

// describe names a token's JSON type for error messages.
func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return fmt.Sprintf("the string %q", t)
	case json.Number:
		return "the number " + string(t)
	case bool:
		return "the boolean " + strconv.FormatBool(t)
	}
	return "null"
}

// value checks the next value in the stream against type t. optional says the
// field is optional (tagged omitempty), so an explicit zero is refused.
func (w *walker) value(t reflect.Type, path string, optional bool) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	return w.valueFrom(tok, t, path, optional)
}

// valueFrom is value with the value's first token already read.
func (w *walker) valueFrom(tok json.Token, t reflect.Type, path string, optional bool) error {
	at := path
	if at == "" {
		at = "document"
	}
	if tok == nil {
		if optional {
			return fieldErr(at, "null is not allowed; omit the key to use the default")
		}
		return fieldErr(at, "null is not allowed")
	}
	switch {
	case t.Kind() == reflect.Pointer:
		// An optional section: the pointer only records whether the
		// document has it, so check the token against the pointed-to type.
		return w.valueFrom(tok, t.Elem(), path, optional)
	case t == durationType:
		s, ok := tok.(string)
		if !ok {
			return fieldErr(at, "want a duration string such as \"20ms\", got %s", describe(tok))
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fieldErr(at, "%q is not a duration (examples: \"20ms\", \"3s\", \"2h\")", s)
		}
		if d == 0 && optional {
			return fieldErr(at, "%q is not allowed; omit the key to use the default", s)
		}
		return nil
	case t.Kind() == reflect.Bool:
		// Both values are accepted even for optional booleans: unlike a
		// zero number, an explicit false is a clear statement.
		if _, ok := tok.(bool); !ok {
			return fieldErr(at, "want true or false, got %s", describe(tok))
		}
		return nil
	case t.Kind() == reflect.String:
		if _, ok := tok.(string); !ok {
			return fieldErr(at, "want a string, got %s", describe(tok))
		}
		return nil
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return fieldErr(at, "want an integer, got %s", describe(tok))
		}
		v, err := strconv.ParseInt(string(n), 10, t.Bits())
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
				return fieldErr(at, "%s is out of range", n)
			}
			return fieldErr(at, "%s is not an integer", n)
		}
		if v == 0 && optional {
			return fieldErr(at, "0 is not allowed; omit the key to use the default")
		}
		return nil
	case t.Kind() == reflect.Slice:
		if tok != json.Delim('[') {
			return fieldErr(at, "want an array, got %s", describe(tok))
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i), false); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	case t.Kind() == reflect.Struct:
		if tok != json.Delim('{') {
			return fieldErr(at, "want an object, got %s", describe(tok))
		}
		fields := fieldsOf(t)
		seen := make(map[string]bool)
		for w.dec.More() {
			kt, err := w.token()
			if err != nil {
				return err
			}
			key := kt.(string) // object keys are always strings
			kpath := key
			if path != "" {
				kpath = path + "." + key
			}
			f, ok := fields[key]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return fieldErr(kpath, "unknown key (did you mean %q?)", name)
					}
				}
				return fieldErr(kpath, "unknown key")
			}
			if seen[key] {
				return fieldErr(kpath, "duplicate key")
			}
			seen[key] = true
			if err := w.value(f.typ, kpath, f.optional); err != nil {
				return err
			}
		}
		_, err := w.token() // '}'
		return err
	}
	return fieldErr(at, "unsupported type %s", t) // unreachable for Config
}

type fieldInfo struct {
	typ      reflect.Type
	optional bool
}

var fieldCache sync.Map // reflect.Type -> map[string]fieldInfo

// fieldsOf maps the JSON names of struct type t's exported fields to their
// types.
func fieldsOf(t reflect.Type) map[string]fieldInfo {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]fieldInfo)
	}
	m := make(map[string]fieldInfo)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = sf.Name
		}
		m[name] = fieldInfo{
			typ:      sf.Type,
			optional: strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,"),
		}
	}
	fieldCache.Store(t, m)
	return m
}
