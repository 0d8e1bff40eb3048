package errdefs

import (
	"context"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

func TestStatusRoundTripKeepsClass(t *testing.T) {
	t.Parallel()
	for _, c := range classes {
		err := fmt.Errorf("image %q: %w", "busybox", c.err)
		st := ToStatus(err)
		if st.GetCode() != c.code {
			t.Fatalf("%v: code %v, want %v", c.err, st.GetCode(), c.code)
		}
		back := FromStatus(st)
		if back == nil || back.Error() != err.Error() {
			t.Fatalf("%v: round trip gave %v", c.err, back)
		}
		if Code(back) != c.code {
			t.Fatalf("%v: class lost in round trip: %v", c.err, Code(back))
		}
	}
}

func TestCodeClassifiesCommonCauses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want typesv1.Code
	}{
		{nil, typesv1.Code_CODE_OK},
		{context.DeadlineExceeded, typesv1.Code_CODE_DEADLINE_EXCEEDED},
		{fmt.Errorf("x: %w", context.Canceled), typesv1.Code_CODE_CANCELED},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, typesv1.Code_CODE_NOT_FOUND},
		{&fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, typesv1.Code_CODE_RESOURCE_EXHAUSTED},
		{fmt.Errorf("boom"), typesv1.Code_CODE_INTERNAL},
	}
	for _, c := range cases {
		if got := Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if FromStatus(&typesv1.Status{Code: typesv1.Code_CODE_OK}) != nil {
		t.Fatal("OK status must give nil")
	}
	if !IsInternal(FromStatus(&typesv1.Status{Code: typesv1.Code(999)})) {
		t.Fatal("an unknown code must read as internal")
	}
}

func TestMessageStripsClass(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("image %q: %w", "x", ErrNotFound)
	if got := Message(err); got != `image "x"` {
		t.Fatalf("Message = %q", got)
	}
}
