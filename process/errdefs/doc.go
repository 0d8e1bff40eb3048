// Package errdefs is Berth's one set of error classes (after containerd's
// errdefs). Every component wraps its errors around one of these sentinels with
// %w; callers test the class with errors.Is or the IsXxx helpers and never
// compare message strings.
//
// Across actors an error travels as a typesv1.Status (see ToStatus and
// FromStatus): the class survives the trip, the text is kept for humans.
//
// The package lives under process/ because that is the lowest layer of Go code
// in Berth: process/ and actors/ both use it (docs/adr/0002).
package errdefs
