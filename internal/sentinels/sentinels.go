// Package sentinels lists the exported sentinel errors of the packages
// whose errors reach casedrop's doors, so that each door's tests hold its
// error map to all of them: a new Err... variable fails those tests until
// the door maps it or says why it never answers with it.
package sentinels

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Domain are the packages, by folder under the module root, whose errors
// reach the doors.
var Domain = []string{"auth", "cases", "storage", "upload"}

// Exported returns "pkg.ErrName" for every exported package-level variable
// named Err... in the non-test Go files of the Domain packages under root,
// the module's root folder.
func Exported(root string) ([]string, error) {
	var names []string
	fset := token.NewFileSet()
	for _, dir := range Domain {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, &fs.PathError{Op: "glob", Path: filepath.Join(root, dir), Err: fs.ErrNotExist}
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			names = append(names, errVars(f)...)
		}
	}
	sort.Strings(names)
	return names, nil
}

// errVars returns the exported Err... variables that f declares.
func errVars(f *ast.File) []string {
	var names []string
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.VAR {
			continue
		}
		for _, spec := range gen.Specs {
			for _, name := range spec.(*ast.ValueSpec).Names {
				if strings.HasPrefix(name.Name, "Err") && name.IsExported() {
					names = append(names, f.Name.Name+"."+name.Name)
				}
			}
		}
	}
	return names
}

// Check fails t unless listed names exactly the errors Exported finds under
// root: a declared error missing from a door's table, or one listed that
// is no longer declared. where says which table to add it to.
func Check(t testing.TB, root string, listed []string, where string) {
	t.Helper()
	declared, err := Exported(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range declared {
		if !slices.Contains(listed, name) {
			t.Errorf("%s is not in the table: say what the door sends it as (%s)", name, where)
		}
	}
	for _, name := range listed {
		if !slices.Contains(declared, name) {
			t.Errorf("%s is in the table but no longer declared", name)
		}
	}
}
