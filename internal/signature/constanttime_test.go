package signature

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestComparisonDoesNotShortCircuit reads anyEqual's source: MACs must be
// compared with hmac.Equal (constant time), never with bytes.Equal,
// string equality or an early return inside the loop over candidates, or
// response timing would reveal how much of a forged MAC was right.
func TestComparisonDoesNotShortCircuit(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "signature.go", nil, 0)
	require.NoError(t, err)
	var verify *ast.FuncDecl
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "anyEqual" {
			verify = fn
		}
	}
	require.NotNil(t, verify)
	hmacEqual := 0
	ast.Inspect(verify.Body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok {
				name := id.Name + "." + x.Sel.Name
				assert.NotContains(t, []string{"bytes.Equal", "bytes.Compare", "strings.EqualFold"}, name, "variable-time comparison in anyEqual")
				if name == "hmac.Equal" {
					hmacEqual++
				}
			}
		case *ast.RangeStmt:
			// The loop over v1 candidates must look at every one.
			ast.Inspect(x.Body, func(m ast.Node) bool {
				_, isReturn := m.(*ast.ReturnStmt)
				br, isBranch := m.(*ast.BranchStmt)
				if isReturn && containsCall(x.Body, "hmac", "Equal") {
					t.Errorf("return inside the comparison loop at %s", fset.Position(m.Pos()))
				}
				if isBranch && br.Tok == token.BREAK && containsCall(x.Body, "hmac", "Equal") {
					t.Errorf("break inside the comparison loop at %s", fset.Position(m.Pos()))
				}
				return true
			})
		}
		return true
	})
	assert.Equal(t, 1, hmacEqual, "anyEqual compares with hmac.Equal")

	// anyEqual is the only place MACs are compared.
	ast.Inspect(f, func(n ast.Node) bool {
		if fn, ok := n.(*ast.FuncDecl); ok && fn.Name.Name == "anyEqual" {
			return false
		}
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				name := id.Name + "." + sel.Sel.Name
				assert.NotContains(t, []string{"hmac.Equal", "bytes.Equal", "bytes.Compare", "subtle.ConstantTimeCompare"}, name,
					"MAC compared outside anyEqual at %s", fset.Position(sel.Pos()))
			}
		}
		return true
	})
}

func containsCall(n ast.Node, pkg, name string) bool {
	found := false
	ast.Inspect(n, func(m ast.Node) bool {
		if sel, ok := m.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == pkg && sel.Sel.Name == name {
				found = true
			}
		}
		return !found
	})
	return found
}
