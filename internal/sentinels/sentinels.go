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
	"sort"
	"strings"
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
