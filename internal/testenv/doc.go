// Package testenv holds what the plugin's tests share and do not specify:
// a clock the test moves and the JWKS checker a relying party would be. The
// specs stay in the root package's _test.go files; the thin wrappers there
// keep the helpers' old names.
//
// It is imported only by tests: nothing in the plugin depends on it.
package testenv
