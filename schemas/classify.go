package schemas

import "errors"

// Error classes. Packages mark their errors with these (errors.Is matches them through wrapping
// and joins) so that whoever handles an error decides by what it is — through Classify — and
// never by which fields of a result happen to be empty.
var (
	// ErrUnavailable: something the work needs is not there yet or is away — no rule pack loaded,
	// a broker or store down. Retrying later may succeed.
	ErrUnavailable = errors.New("unavailable")
	// ErrPartial: the result stands without part of it — a rule failed at run time and the other
	// rules' verdict stands. Log it and go on.
	ErrPartial = errors.New("partial result")
	// ErrMisconfigured: no retry and no other message can fix it — the process is set up wrong
	// (a scorer without its phone hasher).
	ErrMisconfigured = errors.New("misconfigured")
)

// Class is what to do about an error.
type Class int

const (
	// Proceed: no error, or one that leaves the result usable (ErrPartial); log it.
	Proceed Class = iota
	// Retry the same work later (ErrUnavailable, and any error nothing says more about).
	Retry
	// DeadLetter the input: it can never be handled (a *FieldError: it does not decode or
	// validate). An API answers 400.
	DeadLetter
	// Fail: a bug or misconfiguration (ErrMisconfigured); an API answers 500, a stage fails the
	// batch and logs at error level.
	Fail
)

func (c Class) String() string {
	switch c {
	case Proceed:
		return "proceed"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	case Fail:
		return "fail"
	}
	return "unknown"
}

// Classify is the one place that decides what an error means for whoever handles it: proceed,
// retry, dead-letter or fail. A joined error takes the gravest class among its parts that decides
// anything: misconfigured, then unavailable, then a bad input, then partial.
func Classify(err error) Class {
	var fe *FieldError
	switch {
	case err == nil:
		return Proceed
	case errors.Is(err, ErrMisconfigured):
		return Fail
	case errors.Is(err, ErrUnavailable):
		return Retry
	case errors.As(err, &fe):
		return DeadLetter
	case errors.Is(err, ErrPartial):
		return Proceed
	}
	return Retry
}

// classed is an error message of one class.
type classed struct {
	msg   string
	class error
}

func (e *classed) Error() string        { return e.msg }
func (e *classed) Is(target error) bool { return target == e.class }

// Unavailable returns an error with message msg in class ErrUnavailable (for sentinels:
// var ErrNoPack = schemas.Unavailable("no rule pack loaded")).
func Unavailable(msg string) error { return &classed{msg, ErrUnavailable} }

// Misconfigured returns an error with message msg in class ErrMisconfigured.
func Misconfigured(msg string) error { return &classed{msg, ErrMisconfigured} }
