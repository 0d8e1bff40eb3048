package errdefs

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"

	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

var classes = []struct {
	code typesv1.Code
	err  error
}{
	{typesv1.Code_CODE_INVALID_ARGUMENT, ErrInvalidArgument},
	{typesv1.Code_CODE_NOT_FOUND, ErrNotFound},
	{typesv1.Code_CODE_ALREADY_EXISTS, ErrAlreadyExists},
	{typesv1.Code_CODE_FAILED_PRECONDITION, ErrFailedPrecondition},
	{typesv1.Code_CODE_UNAVAILABLE, ErrUnavailable},
	{typesv1.Code_CODE_DEADLINE_EXCEEDED, ErrDeadlineExceeded},
	{typesv1.Code_CODE_CANCELED, ErrCanceled},
	{typesv1.Code_CODE_NOT_IMPLEMENTED, ErrNotImplemented},
	{typesv1.Code_CODE_RESOURCE_EXHAUSTED, ErrResourceExhausted},
	{typesv1.Code_CODE_PERMISSION_DENIED, ErrPermissionDenied},
	{typesv1.Code_CODE_INTERNAL, ErrInternal},
}

// Code returns the class of err as a wire code. Errors of no class are
// classified from well-known causes (context, errno, fs errors), else INTERNAL.
func Code(err error) typesv1.Code {
	if err == nil {
		return typesv1.Code_CODE_OK
	}
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return typesv1.Code_CODE_DEADLINE_EXCEEDED
	case errors.Is(err, context.Canceled):
		return typesv1.Code_CODE_CANCELED
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EMFILE):
		return typesv1.Code_CODE_RESOURCE_EXHAUSTED
	case errors.Is(err, fs.ErrNotExist):
		return typesv1.Code_CODE_NOT_FOUND
	case errors.Is(err, fs.ErrExist):
		return typesv1.Code_CODE_ALREADY_EXISTS
	case errors.Is(err, fs.ErrPermission):
		return typesv1.Code_CODE_PERMISSION_DENIED
	}
	return typesv1.Code_CODE_INTERNAL
}

// Sentinel returns the class sentinel of a wire code (ErrInternal for unknown codes).
func Sentinel(code typesv1.Code) error {
	for _, c := range classes {
		if c.code == code {
			return c.err
		}
	}
	return ErrInternal
}

// ToStatus turns err into the Status an actor sends instead of a response.
func ToStatus(err error) *typesv1.Status {
	if err == nil {
		return &typesv1.Status{Code: typesv1.Code_CODE_OK}
	}
	return &typesv1.Status{Code: Code(err), Message: err.Error()}
}

// FromStatus turns a Status back into an error of the same class. OK gives nil.
func FromStatus(s *typesv1.Status) error {
	if s == nil || s.GetCode() == typesv1.Code_CODE_OK {
		return nil
	}
	return &statusError{msg: s.GetMessage(), class: Sentinel(s.GetCode())}
}

// statusError is an error that came over the wire: its text is the remote
// message, its class is the remote class.
type statusError struct {
	msg   string
	class error
}

func (e *statusError) Error() string {
	if e.msg == "" {
		return e.class.Error()
	}
	return e.msg
}

func (e *statusError) Unwrap() error { return e.class }

// Message strips the class suffix an error message may end with
// ("...: not found"), for messages shown next to the class name.
func Message(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return strings.TrimSuffix(msg, ": "+c.err.Error())
		}
	}
	return msg
}
