// Package logschema checks deployer log lines against the published JSON
// Schema of the JSON log format, and for what a schema cannot see: a key
// twice in one object, or a dotted key that clashes with another (trace.id
// beside a trace object). Tests use it; the deployer does not.
package logschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	once     sync.Once
	compiled *jsonschema.Schema
	errLoad  error
)

// Path is the schema file.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "schema", "deployer-log.schema.json")
}

func schema() (*jsonschema.Schema, error) {
	once.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		compiled, errLoad = c.Compile(Path())
	})
	return compiled, errLoad
}

// Check validates one line.
func Check(line []byte) error {
	s, err := schema()
	if err != nil {
		return err
	}
	if err := UniqueKeys(line); err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}

// UniqueKeys fails when an object of the JSON text repeats a key, or when
// a dotted top-level key is a prefix of another (the same ECS field
// written two ways).
func UniqueKeys(text []byte) error {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	if err := walk(dec, true); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

func walk(dec *json.Decoder, top bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var keys []string
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q twice in one object", key)
			}
			seen[key] = true
			keys = append(keys, key)
			if err := walk(dec, false); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		if top {
			for _, a := range keys {
				for _, b := range keys {
					if strings.HasPrefix(b, a+".") {
						return fmt.Errorf("keys %q and %q name the same field twice", a, b)
					}
				}
			}
		}
	case json.Delim('['):
		for dec.More() {
			if err := walk(dec, false); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
	}
	return nil
}
