// Package logschema checks deployer log lines against the published JSON
// Schema of the JSON log format, and for what a schema cannot see: a key
// twice in one object, or a dotted key that clashes with another (trace.id
// beside a trace object). Tests use it; the deployer does not.
package logschema

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/valyala/fastjson"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/jsonkeys"
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

// UniqueKeys fails when an object of the JSON text repeats a key (the
// receiver's own check, jsonkeys), or when a dotted top-level key is a
// prefix of another (the same ECS field written two ways).
func UniqueKeys(text []byte) error {
	v, err := fastjson.ParseBytes(text)
	if err != nil {
		return fmt.Errorf("not one JSON value: %w", err)
	}
	if dup := jsonkeys.Duplicate(v); dup != "" {
		return fmt.Errorf("key %q twice in one object", dup)
	}
	obj, err := v.Object()
	if err != nil {
		return errors.New("not a JSON object")
	}
	var keys []string
	obj.Visit(func(k []byte, _ *fastjson.Value) { keys = append(keys, string(k)) })
	for _, a := range keys {
		for _, b := range keys {
			if strings.HasPrefix(b, a+".") {
				return fmt.Errorf("keys %q and %q name the same field twice", a, b)
			}
		}
	}
	return nil
}
