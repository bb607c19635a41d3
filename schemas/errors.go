package schemas

import (
	"errors"
	"fmt"
)

// FieldError is a rejected input: which field, and why. Its message reads
// `ip: "999.1.1.1" is not an IP address`.
//
// Messages go into API answers, dead-letter headers and logs, so the decoders build them to be
// safe there: a caller's value appears only through Excerpt (short, escaped, phone numbers
// masked), a phone number's never, and the whole message is valid UTF-8 of at most MaxErrorLen
// bytes.
type FieldError struct {
	Field  string // JSON name of the offending field; "" for the document itself
	Reason string
}

func (e *FieldError) Error() string {
	msg := e.Reason
	if e.Field != "" {
		msg = e.Field + ": " + e.Reason
	}
	if len(msg) > MaxErrorLen {
		// The decoders' messages are far shorter; this bounds anyone else's.
		b, _ := redact(nil, msg, MaxErrorLen-len("…"))
		msg = string(append(b, "…"...))
	}
	return msg
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
