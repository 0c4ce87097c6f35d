// Package qlinear wraps the qlinear C library: linear layers with INT8, INT4 or 4-bit
// codebook weights (quantized linear layers) running on fast CPU kernels.
//
// # Building
//
// The package finds the C library with pkg-config (`#cgo pkg-config: qlinear`): install it
// (`make install` in the qlinear repository, default prefix /usr/local) or extract a
// release archive, and set PKG_CONFIG_PATH to its lib/pkgconfig when that is not a
// directory pkg-config searches already. The .pc file records the library directory as the
// run-time search path, so the program finds libqlinear.so.0 wherever the tree lies.
//
// # Memory and threads
//
// Every handle type (Device, QuantConfig, Linear, QuantizedLinear) owns a C object. Call
// Close when done with it; a finalizer frees handles that were not closed, as a safety net.
// Close is idempotent; using a closed handle returns an error matching ErrNullArgument.
// Layers keep their own reference to their device, so a Device may be closed before the
// layers created on it.
//
// Slices are passed to C only for the duration of a call: the C library copies what it
// keeps and never retains a Go pointer after a call returns, as the cgo pointer rules
// require.
//
// Forward and ForwardInto on one layer may be called from many goroutines at once, and give
// bit-identical results for any number of threads. Close must not race any other call on
// the same handle; QuantConfig setters must not race other uses of that config.
//
// # Errors
//
// Every failure is an *Error holding the library's status code and message. Match the
// kind with errors.Is against the sentinel errors, for example
// errors.Is(err, qlinear.ErrInvalidArgument).
package qlinear

/*
#cgo pkg-config: qlinear
#include <stdlib.h>
#include <string.h>
#include "qlinear.h"

// The status of a call and, on failure, a malloc'ed copy of the library's message, taken on
// the thread that made the call (the message is thread-local and goroutines move between
// threads between cgo calls).
typedef struct {
	qlinear_status status;
	char *message;
} qlgo_result;

static qlgo_result qlgo_result_of(qlinear_status s) {
	qlgo_result r;
	r.status = s;
	r.message = s == QLINEAR_OK ? NULL : strdup(qlinear_last_error_message());
	return r;
}

static qlgo_result qlgo_quantized_forward(const qlinear_quantized_linear *l, const float *x,
		size_t rows, size_t x_len, float *y, size_t y_len) {
	return qlgo_result_of(qlinear_quantized_linear_forward(l, x, rows, x_len, y, y_len));
}

static qlgo_result qlgo_linear_forward(const qlinear_linear *l, const float *x, size_t rows,
		size_t x_len, float *y, size_t y_len) {
	return qlgo_result_of(qlinear_linear_forward(l, x, rows, x_len, y, y_len));
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Version returns the library version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.qlinear_version()) }

// Status is a qlinear_status code from the C library.
type Status int

// The C library's status codes.
const (
	StatusOK              Status = C.QLINEAR_OK
	StatusNullArgument    Status = C.QLINEAR_ERR_NULL_ARGUMENT
	StatusInvalidArgument Status = C.QLINEAR_ERR_INVALID_ARGUMENT
	StatusUnsupported     Status = C.QLINEAR_ERR_UNSUPPORTED
	StatusOutOfMemory     Status = C.QLINEAR_ERR_OUT_OF_MEMORY
	StatusIO              Status = C.QLINEAR_ERR_IO
	StatusCorrupt         Status = C.QLINEAR_ERR_CORRUPT
	StatusInternal        Status = C.QLINEAR_ERR_INTERNAL
)

// String names the status.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNullArgument:
		return "null argument"
	case StatusInvalidArgument:
		return "invalid argument"
	case StatusUnsupported:
		return "unsupported"
	case StatusOutOfMemory:
		return "out of memory"
	case StatusIO:
		return "I/O error"
	case StatusCorrupt:
		return "corrupt data"
	case StatusInternal:
		return "internal error"
	}
	return fmt.Sprintf("status %d", int(s))
}

// Error is a failed qlinear call: the status code and the library's message.
type Error struct {
	// Status is the C library's status code (never StatusOK).
	Status Status
	// Message is the library's description of the failure ("" for the sentinel errors).
	Message string
}

// Error formats the status and message.
func (e *Error) Error() string {
	if e.Message == "" {
		return "qlinear: " + e.Status.String()
	}
	return "qlinear: " + e.Status.String() + ": " + e.Message
}

// Is reports whether target is the sentinel error for e's status, so that
// errors.Is(err, ErrInvalidArgument) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Status == e.Status
}

// Sentinel errors, one per failure status, for use with errors.Is.
var (
	// ErrNullArgument: a required handle or buffer was missing (nil slice, closed handle).
	ErrNullArgument = &Error{Status: StatusNullArgument}
	// ErrInvalidArgument: an argument is out of range or inconsistent (lengths, shapes,
	// bits, group size, NaN/Inf values).
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	// ErrUnsupported: valid, but not supported on this machine (e.g. a missing ISA).
	ErrUnsupported = &Error{Status: StatusUnsupported}
	// ErrOutOfMemory: an allocation failed.
	ErrOutOfMemory = &Error{Status: StatusOutOfMemory}
	// ErrIO: an I/O operation failed.
	ErrIO = &Error{Status: StatusIO}
	// ErrCorrupt: data from outside the library is inconsistent.
	ErrCorrupt = &Error{Status: StatusCorrupt}
	// ErrInternal: a bug inside the library.
	ErrInternal = &Error{Status: StatusInternal}
)

// call runs one C call that returns a status and turns a failure into an *Error. The
// goroutine stays on its OS thread so that the thread-local message is the call's.
func call(f func() C.qlinear_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := f()
	if s == C.QLINEAR_OK {
		return nil
	}
	return &Error{Status: Status(s), Message: C.GoString(C.qlinear_last_error_message())}
}

// resultErr converts a qlgo_result, freeing its message.
func resultErr(r C.qlgo_result) error {
	if r.status == C.QLINEAR_OK {
		return nil
	}
	msg := C.GoString(r.message)
	C.free(unsafe.Pointer(r.message))
	return &Error{Status: Status(r.status), Message: msg}
}

// invalid is an ErrInvalidArgument raised on the Go side (negative sizes, which C's size_t
// cannot express).
func invalid(format string, args ...any) error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// size converts a non-negative int to size_t.
func size(name string, v int) (C.size_t, error) {
	if v < 0 {
		return 0, invalid("%s must not be negative, got %d", name, v)
	}
	return C.size_t(v), nil
}

func floatPtr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

// Granularity says which weights share one scale.
type Granularity uint32

// Scale granularities.
const (
	// PerTensor: one scale for the whole matrix.
	PerTensor Granularity = C.QLINEAR_GRANULARITY_PER_TENSOR
	// PerChannel: one scale per output feature.
	PerChannel Granularity = C.QLINEAR_GRANULARITY_PER_CHANNEL
	// Group: one scale per group of consecutive inputs of a row.
	Group Granularity = C.QLINEAR_GRANULARITY_GROUP
)

// ScaleDtype says how scales are stored.
type ScaleDtype uint32

// Scale storage types.
const (
	// ScaleF32 stores scales as float32.
	ScaleF32 ScaleDtype = C.QLINEAR_SCALE_F32
	// ScaleF16 stores scales as IEEE half floats.
	ScaleF16 ScaleDtype = C.QLINEAR_SCALE_F16
)

// ActivationMode says what Forward does with activations.
type ActivationMode uint32

// Activation modes.
const (
	// ActivationExact keeps activations in float32.
	ActivationExact ActivationMode = C.QLINEAR_ACTIVATION_EXACT
	// ActivationDyn8 quantizes x to int8 at run time, one scale per 32 inputs of a row:
	// faster, slightly less accurate.
	ActivationDyn8 ActivationMode = C.QLINEAR_ACTIVATION_DYN8
	// ActivationDyn8PerRow is ActivationDyn8 with one scale per row: less accurate when a
	// row has outlier channels.
	ActivationDyn8PerRow ActivationMode = C.QLINEAR_ACTIVATION_DYN8_PER_ROW
)

// WeightFormat says what a weight code means.
type WeightFormat uint32

// Weight formats.
const (
	// FormatInt8 is 8-bit integer codes: w = scale·(q − zero).
	FormatInt8 WeightFormat = C.QLINEAR_FORMAT_INT8
	// FormatInt4 is 4-bit integer codes on the uniform grid −8..7.
	FormatInt4 WeightFormat = C.QLINEAR_FORMAT_INT4
	// FormatCb4 is 4-bit indices into 16 non-uniform levels: w = scale·level[q]
	// (symmetric only); the 4-bit default.
	FormatCb4 WeightFormat = C.QLINEAR_FORMAT_CB4
)

// linearForward and quantizedForward call the preamble's wrappers, which copy a failure's
// message on the thread that made the call.
func linearForward(l *C.qlinear_linear, x []float32, rows C.size_t, y []float32) error {
	return resultErr(C.qlgo_linear_forward(l, floatPtr(x), rows, C.size_t(len(x)), floatPtr(y), C.size_t(len(y))))
}

func quantizedForward(q *C.qlinear_quantized_linear, x []float32, rows C.size_t, y []float32) error {
	return resultErr(C.qlgo_quantized_forward(q, floatPtr(x), rows, C.size_t(len(x)), floatPtr(y), C.size_t(len(y))))
}
