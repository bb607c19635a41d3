package schemas

import (
	"errors"
	"fmt"
)

// FieldError is a rejected input: which field, and why. Its message reads
// `ip: "999.1.1.1" is not an IP address`.
type FieldError struct {
	Field  string // JSON name of the offending field; "" for the document itself
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// AsFieldError returns the *FieldError in err's chain, if any.
func AsFieldError(err error) (*FieldError, bool) {
	var fe *FieldError
	ok := errors.As(err, &fe)
	return fe, ok
}
