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

// Device is a CPU device: ISA path, worker threads and allocator.
type Device struct {
	ptr     *C.qlinear_device
	threads int
	isa     string
}

// NewDevice creates a device owning threads worker threads (0 = one per core, 1 = run on the
// calling thread); the ISA comes from the QLINEAR_ISA environment variable or is the best
// available.
func NewDevice(threads int) (*Device, error) {
	n, err := size("threads", threads)
	if err != nil {
		return nil, err
	}
	var p *C.qlinear_device
	if err := call(func() C.qlinear_status { return C.qlinear_device_create(n, &p) }); err != nil {
		return nil, err
	}
	return newDevice(p)
}

// NewDeviceWithISA is NewDevice forcing the ISA path: "scalar", "avx2", "avx512" or "auto".
// An unknown name fails with ErrInvalidArgument, a path this CPU lacks with ErrUnsupported.
func NewDeviceWithISA(threads int, isa string) (*Device, error) {
	n, err := size("threads", threads)
	if err != nil {
		return nil, err
	}
	cisa := C.CString(isa)
	defer C.free(unsafe.Pointer(cisa))
	var p *C.qlinear_device
	if err := call(func() C.qlinear_status { return C.qlinear_device_create_with_isa(n, cisa, &p) }); err != nil {
		return nil, err
	}
	return newDevice(p)
}

func newDevice(p *C.qlinear_device) (*Device, error) {
	d := &Device{ptr: p}
	runtime.SetFinalizer(d, (*Device).Close)
	var n C.size_t
	var name *C.char
	if err := call(func() C.qlinear_status { return C.qlinear_device_threads(p, &n) }); err != nil {
		d.Close()
		return nil, err
	}
	if err := call(func() C.qlinear_status { return C.qlinear_device_isa(p, &name) }); err != nil {
		d.Close()
		return nil, err
	}
	d.threads, d.isa = int(n), C.GoString(name)
	return d, nil
}

// ISAAvailable reports whether this CPU can run the ISA path isa.
func ISAAvailable(isa string) (bool, error) {
	cisa := C.CString(isa)
	defer C.free(unsafe.Pointer(cisa))
	var ok C.bool
	err := call(func() C.qlinear_status { return C.qlinear_isa_is_available(cisa, &ok) })
	return bool(ok), err
}

// Threads is the number of threads that may run one call's tasks at once.
func (d *Device) Threads() int { return d.threads }

// ISA is the ISA path the device runs: "scalar", "avx2" or "avx512".
func (d *Device) ISA() string { return d.isa }

// Close frees the device. Layers created on it stay usable. Close is idempotent.
func (d *Device) Close() error {
	if d.ptr != nil {
		C.qlinear_device_free(d.ptr)
		d.ptr = nil
		runtime.SetFinalizer(d, nil)
	}
	return nil
}

// QuantConfig is a quantization recipe: bits, scale granularity, symmetric or not, scale
// storage type and activation mode.
type QuantConfig struct {
	ptr *C.qlinear_quant_config
}

// NewQuantConfig creates the default recipe for 8 or 4 bits (NewQuantConfigInt8 or
// NewQuantConfigInt4); other widths fail with ErrInvalidArgument.
func NewQuantConfig(bits int) (*QuantConfig, error) {
	switch bits {
	case 8:
		return NewQuantConfigInt8()
	case 4:
		return NewQuantConfigInt4()
	}
	return nil, invalid("bits must be 4 or 8, got %d", bits)
}

// NewQuantConfigInt8 creates the INT8 default recipe: symmetric, groups of 32, f16 scales
// chosen by an error search, exact activations.
func NewQuantConfigInt8() (*QuantConfig, error) {
	var p *C.qlinear_quant_config
	if err := call(func() C.qlinear_status { return C.qlinear_quant_config_create_int8(&p) }); err != nil {
		return nil, err
	}
	return newQuantConfig(p), nil
}

// NewQuantConfigInt4 creates the 4-bit default recipe: the cb4 codebook, groups of 32, f16
// scales chosen by an error search with a least-squares refit, exact activations.
func NewQuantConfigInt4() (*QuantConfig, error) {
	var p *C.qlinear_quant_config
	if err := call(func() C.qlinear_status { return C.qlinear_quant_config_create_int4(&p) }); err != nil {
		return nil, err
	}
	return newQuantConfig(p), nil
}

// NewQuantConfigInt4Uniform creates the uniform 4-bit recipe (integer codes −8..7),
// otherwise as NewQuantConfigInt4.
func NewQuantConfigInt4Uniform() (*QuantConfig, error) {
	var p *C.qlinear_quant_config
	if err := call(func() C.qlinear_status { return C.qlinear_quant_config_create_int4_uniform(&p) }); err != nil {
		return nil, err
	}
	return newQuantConfig(p), nil
}

func newQuantConfig(p *C.qlinear_quant_config) *QuantConfig {
	c := &QuantConfig{ptr: p}
	runtime.SetFinalizer(c, (*QuantConfig).Close)
	return c
}

func (c *QuantConfig) set(f func(*C.qlinear_quant_config) C.qlinear_status) error {
	err := call(func() C.qlinear_status { return f(c.ptr) })
	runtime.KeepAlive(c)
	return err
}

// SetFormat sets the weight format; FormatCb4 on an asymmetric config fails with
// ErrInvalidArgument.
func (c *QuantConfig) SetFormat(f WeightFormat) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_format(p, C.uint32_t(f))
	})
}

// SetBits sets the code width: 8 (FormatInt8) or 4 (the uniform FormatInt4).
func (c *QuantConfig) SetBits(bits int) error {
	if bits < 0 || bits > 255 {
		return invalid("bits must be 4 or 8, got %d", bits)
	}
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_bits(p, C.uint32_t(bits))
	})
}

// SetGroupSize sets group-wise scales with groupSize inputs per group (a power of two from
// 32 to 1024), or per-channel scales when groupSize is 0.
func (c *QuantConfig) SetGroupSize(groupSize int) error {
	n, err := size("group size", groupSize)
	if err != nil {
		return err
	}
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_group_size(p, n)
	})
}

// SetGranularity sets the granularity; groupSize is used only for Group.
func (c *QuantConfig) SetGranularity(g Granularity, groupSize int) error {
	n, err := size("group size", groupSize)
	if err != nil {
		return err
	}
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_granularity(p, C.uint32_t(g), n)
	})
}

// SetSymmetric chooses symmetric (no zero points) or asymmetric quantization.
func (c *QuantConfig) SetSymmetric(symmetric bool) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_symmetric(p, C.bool(symmetric))
	})
}

// SetActivationMode sets what Forward does with activations.
func (c *QuantConfig) SetActivationMode(mode ActivationMode) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_activation_mode(p, C.uint32_t(mode))
	})
}

// SetScaleDtype sets how scales are stored.
func (c *QuantConfig) SetScaleDtype(dtype ScaleDtype) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_scale_dtype(p, C.uint32_t(dtype))
	})
}

// SetSearch turns the squared-error scale search on (the default) or off.
func (c *QuantConfig) SetSearch(search bool) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_search(p, C.bool(search))
	})
}

// Close frees the config (layers do not reference it). Close is idempotent.
func (c *QuantConfig) Close() error {
	if c.ptr != nil {
		C.qlinear_quant_config_free(c.ptr)
		c.ptr = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// Linear is a float32 linear layer y = x·Wᵀ + b.
type Linear struct {
	ptr     *C.qlinear_linear
	in, out int
}

// NewLinear creates a layer from weights [out][in] (row-major, out·in values) and an
// optional bias of out values (nil for none). The values are copied.
func NewLinear(dev *Device, weights []float32, bias []float32, in, out int) (*Linear, error) {
	cin, err := size("in", in)
	if err != nil {
		return nil, err
	}
	cout, err := size("out", out)
	if err != nil {
		return nil, err
	}
	var p *C.qlinear_linear
	err = call(func() C.qlinear_status {
		return C.qlinear_linear_create(dev.ptr, floatPtr(weights), C.size_t(len(weights)), cout, cin,
			floatPtr(bias), C.size_t(len(bias)), &p)
	})
	runtime.KeepAlive(dev)
	if err != nil {
		return nil, err
	}
	l := &Linear{ptr: p, in: in, out: out}
	runtime.SetFinalizer(l, (*Linear).Close)
	return l, nil
}

// InFeatures is the number of inputs (columns of W).
func (l *Linear) InFeatures() int { return l.in }

// OutFeatures is the number of outputs (rows of W).
func (l *Linear) OutFeatures() int { return l.out }

// Forward computes y = x·Wᵀ + b for rows rows of x (rows·in values) into a new slice of
// rows·out values.
func (l *Linear) Forward(x []float32, rows int) ([]float32, error) {
	return forwardNew(x, rows, l.in, l.out, l.ForwardInto)
}

// ForwardInto writes rows·out values into y, which is written only on success.
func (l *Linear) ForwardInto(x []float32, rows int, y []float32) error {
	r, err := size("rows", rows)
	if err != nil {
		return err
	}
	res := C.qlgo_linear_forward(l.ptr, floatPtr(x), r, C.size_t(len(x)), floatPtr(y), C.size_t(len(y)))
	runtime.KeepAlive(l)
	return resultErr(res)
}

// Close frees the layer; quantized layers made from it stay valid. Close is idempotent.
func (l *Linear) Close() error {
	if l.ptr != nil {
		C.qlinear_linear_free(l.ptr)
		l.ptr = nil
		runtime.SetFinalizer(l, nil)
	}
	return nil
}

// outputFor allocates the output of a forward when the lengths fit; otherwise it returns a
// one-element slice so that the C call reports the error (its status and message).
func outputFor(rows, in, out, xLen int) ([]float32, error) {
	if rows < 0 {
		return nil, invalid("rows must not be negative, got %d", rows)
	}
	if rows > 0 && in > 0 && out > 0 && xLen/in == rows && xLen%in == 0 {
		return make([]float32, rows*out), nil
	}
	return make([]float32, 1), nil
}

// QuantizedLinear is a linear layer with INT8, INT4 or cb4 weights. Forward and ForwardInto may
// be called from many goroutines at once.
type QuantizedLinear struct {
	ptr            *C.qlinear_quantized_linear
	in, out        int
	bits           int
	format         WeightFormat
	granularity    Granularity
	groupSize      int
	symmetric      bool
	scaleDtype     ScaleDtype
	activationMode ActivationMode
	weightBytes    int
	memorySaved    int
}

// Quantize quantizes float32 weights [out][in] (out·in values) with cfg, with an optional
// bias of out values (nil for none). NaN or Inf values fail with ErrInvalidArgument.
func Quantize(dev *Device, weights []float32, bias []float32, in, out int, cfg *QuantConfig) (*QuantizedLinear, error) {
	cin, err := size("in", in)
	if err != nil {
		return nil, err
	}
	cout, err := size("out", out)
	if err != nil {
		return nil, err
	}
	var p *C.qlinear_quantized_linear
	err = call(func() C.qlinear_status {
		return C.qlinear_quantized_linear_quantize(dev.ptr, floatPtr(weights), C.size_t(len(weights)),
			cout, cin, floatPtr(bias), C.size_t(len(bias)), cfg.ptr, &p)
	})
	runtime.KeepAlive(dev)
	runtime.KeepAlive(cfg)
	if err != nil {
		return nil, err
	}
	return newQuantized(p)
}

// QuantizeLinear quantizes an f32 layer with cfg (weights, bias and device come from it).
func QuantizeLinear(l *Linear, cfg *QuantConfig) (*QuantizedLinear, error) {
	var p *C.qlinear_quantized_linear
	err := call(func() C.qlinear_status {
		return C.qlinear_quantized_linear_from_linear(l.ptr, cfg.ptr, &p)
	})
	runtime.KeepAlive(l)
	runtime.KeepAlive(cfg)
	if err != nil {
		return nil, err
	}
	return newQuantized(p)
}

// Parts is the logical layout of a quantized layer: what (*QuantizedLinear).Parts copies
// out and FromParts builds from. A weight dequantizes as Scales[g]·(code − ZeroPoints[g]).
type Parts struct {
	// In and Out are the layer's shape.
	In, Out int
	// Bits is 4 or 8.
	Bits int
	// Granularity of the scales; GroupSize is used only for Group.
	Granularity Granularity
	// GroupSize is the number of inputs per group.
	GroupSize int
	// ScaleDtype is how the layer stores its scales.
	ScaleDtype ScaleDtype
	// ActivationMode is what Forward does with activations.
	ActivationMode ActivationMode
	// Codes are row-major, each row starting on a byte boundary; with 4 bits two weights
	// per byte, the low nibble holding the even input, nibbles in two's complement (or, with
	// a Codebook, indices 0..15 into it).
	Codes []byte
	// Scales has one value per group, row-major [out][groups per row].
	Scales []float32
	// ZeroPoints has one value per scale, or is empty for symmetric weights.
	ZeroPoints []int8
	// Codebook holds the 16 levels of a FormatCb4 layer (w = scale·Codebook[code]); empty
	// for integer codes.
	Codebook []int8
	// Bias has Out values, or is nil. (*QuantizedLinear).Parts cannot copy it out.
	Bias []float32
}

// FromParts builds a layer from raw quantized parts (copied).
func FromParts(dev *Device, p *Parts) (*QuantizedLinear, error) {
	for _, v := range []struct {
		name string
		v    int
	}{{"in", p.In}, {"out", p.Out}, {"bits", p.Bits}, {"group size", p.GroupSize}} {
		if v.v < 0 {
			return nil, invalid("%s must not be negative, got %d", v.name, v.v)
		}
	}
	var codes *C.uint8_t
	if len(p.Codes) > 0 {
		codes = (*C.uint8_t)(unsafe.Pointer(&p.Codes[0]))
	}
	var zeros *C.int8_t
	if len(p.ZeroPoints) > 0 {
		zeros = (*C.int8_t)(unsafe.Pointer(&p.ZeroPoints[0]))
	}
	var q *C.qlinear_quantized_linear
	if len(p.Codebook) > 0 {
		if p.Bits != 4 || len(p.ZeroPoints) > 0 {
			return nil, invalid("a codebook needs 4-bit codes and no zero points, got %d bits", p.Bits)
		}
		err := call(func() C.qlinear_status {
			return C.qlinear_quantized_linear_from_codebook_parts(dev.ptr, C.size_t(p.Out),
				C.size_t(p.In), C.uint32_t(p.Granularity), C.size_t(p.GroupSize),
				C.uint32_t(p.ScaleDtype), codes, C.size_t(len(p.Codes)), floatPtr(p.Scales),
				C.size_t(len(p.Scales)), (*C.int8_t)(unsafe.Pointer(&p.Codebook[0])),
				C.size_t(len(p.Codebook)), floatPtr(p.Bias), C.size_t(len(p.Bias)),
				C.uint32_t(p.ActivationMode), &q)
		})
		runtime.KeepAlive(dev)
		if err != nil {
			return nil, err
		}
		return newQuantized(q)
	}
	err := call(func() C.qlinear_status {
		return C.qlinear_quantized_linear_from_parts(dev.ptr, C.size_t(p.Out), C.size_t(p.In),
			C.uint32_t(p.Bits), C.uint32_t(p.Granularity), C.size_t(p.GroupSize),
			C.uint32_t(p.ScaleDtype), codes, C.size_t(len(p.Codes)), floatPtr(p.Scales),
			C.size_t(len(p.Scales)), zeros, C.size_t(len(p.ZeroPoints)), floatPtr(p.Bias),
			C.size_t(len(p.Bias)), C.uint32_t(p.ActivationMode), &q)
	})
	runtime.KeepAlive(dev)
	if err != nil {
		return nil, err
	}
	return newQuantized(q)
}

// LayoutLengths returns the lengths FromParts expects for a shape and recipe: codes bytes
// and scales (and as many zero points when asymmetric).
func LayoutLengths(in, out, bits int, g Granularity, groupSize int) (codes, scales int, err error) {
	if in < 0 || out < 0 || bits < 0 || groupSize < 0 {
		return 0, 0, invalid("sizes must not be negative")
	}
	var cl, sl C.size_t
	err = call(func() C.qlinear_status {
		return C.qlinear_quantized_layout_lengths(C.size_t(out), C.size_t(in), C.uint32_t(bits),
			C.uint32_t(g), C.size_t(groupSize), &cl, &sl)
	})
	return int(cl), int(sl), err
}

// newQuantized wraps a new handle and reads its (immutable) properties once.
func newQuantized(p *C.qlinear_quantized_linear) (*QuantizedLinear, error) {
	q := &QuantizedLinear{ptr: p}
	runtime.SetFinalizer(q, (*QuantizedLinear).Close)
	var in, out, gs, wb, saved C.size_t
	var bits, format, gran, sd, mode C.uint32_t
	var sym C.bool
	err := call(func() C.qlinear_status {
		for _, s := range []C.qlinear_status{
			C.qlinear_quantized_linear_in_features(p, &in),
			C.qlinear_quantized_linear_out_features(p, &out),
			C.qlinear_quantized_linear_bits(p, &bits),
			C.qlinear_quantized_linear_format(p, &format),
			C.qlinear_quantized_linear_granularity(p, &gran),
			C.qlinear_quantized_linear_group_size(p, &gs),
			C.qlinear_quantized_linear_symmetric(p, &sym),
			C.qlinear_quantized_linear_scale_dtype(p, &sd),
			C.qlinear_quantized_linear_activation_mode(p, &mode),
			C.qlinear_quantized_linear_weight_bytes(p, &wb),
			C.qlinear_quantized_linear_memory_savings_bytes(p, &saved),
		} {
			if s != C.QLINEAR_OK {
				return s
			}
		}
		return C.QLINEAR_OK
	})
	if err != nil {
		q.Close()
		return nil, err
	}
	q.in, q.out, q.bits, q.groupSize = int(in), int(out), int(bits), int(gs)
	q.format = WeightFormat(format)
	q.granularity, q.symmetric = Granularity(gran), bool(sym)
	q.scaleDtype, q.activationMode = ScaleDtype(sd), ActivationMode(mode)
	q.weightBytes, q.memorySaved = int(wb), int(saved)
	return q, nil
}

// InFeatures is the number of inputs (columns of W).
func (q *QuantizedLinear) InFeatures() int { return q.in }

// OutFeatures is the number of outputs (rows of W).
func (q *QuantizedLinear) OutFeatures() int { return q.out }

// Bits is the code width: 4 or 8.
func (q *QuantizedLinear) Bits() int { return q.bits }

// Format is what a weight code means.
func (q *QuantizedLinear) Format() WeightFormat { return q.format }

// Granularity is how scales are shared.
func (q *QuantizedLinear) Granularity() Granularity { return q.granularity }

// GroupSize is the number of inputs per group for Group granularity, else 0.
func (q *QuantizedLinear) GroupSize() int { return q.groupSize }

// Symmetric reports whether the weights have no zero points.
func (q *QuantizedLinear) Symmetric() bool { return q.symmetric }

// ScaleDtype is how scales are stored.
func (q *QuantizedLinear) ScaleDtype() ScaleDtype { return q.scaleDtype }

// ActivationMode is what Forward does with activations.
func (q *QuantizedLinear) ActivationMode() ActivationMode { return q.activationMode }

// WeightBytes is the size of the quantized weight: codes, scales and zero points.
func (q *QuantizedLinear) WeightBytes() int { return q.weightBytes }

// MemorySaved is the number of bytes saved versus float32 weights.
func (q *QuantizedLinear) MemorySaved() int { return q.memorySaved }

// Parts copies out the codes, scales and zero points with the recipe. Bias is nil: the C
// API cannot copy it out.
func (q *QuantizedLinear) Parts() (*Parts, error) {
	p := &Parts{In: q.in, Out: q.out, Bits: q.bits, Granularity: q.granularity,
		GroupSize: q.groupSize, ScaleDtype: q.scaleDtype, ActivationMode: q.activationMode}
	var cl, sl, zl C.size_t
	defer runtime.KeepAlive(q)
	if err := call(func() C.qlinear_status {
		return C.qlinear_quantized_linear_layout(q.ptr, &cl, &sl, &zl)
	}); err != nil {
		return nil, err
	}
	if cl == 0 || sl == 0 {
		return nil, &Error{Status: StatusInternal, Message: "qlinear: empty layout"}
	}
	p.Codes = make([]byte, int(cl))
	p.Scales = make([]float32, int(sl))
	if zl > 0 {
		p.ZeroPoints = make([]int8, int(zl))
	}
	err := call(func() C.qlinear_status {
		s := C.qlinear_quantized_linear_copy_codes(q.ptr, (*C.uint8_t)(unsafe.Pointer(&p.Codes[0])), cl)
		if s == C.QLINEAR_OK {
			s = C.qlinear_quantized_linear_copy_scales(q.ptr, floatPtr(p.Scales), sl)
		}
		if s == C.QLINEAR_OK && zl > 0 {
			s = C.qlinear_quantized_linear_copy_zero_points(q.ptr, (*C.int8_t)(unsafe.Pointer(&p.ZeroPoints[0])), zl)
		}
		if s == C.QLINEAR_OK && q.format == FormatCb4 {
			p.Codebook = make([]int8, 16)
			s = C.qlinear_quantized_linear_copy_codebook(q.ptr, (*C.int8_t)(unsafe.Pointer(&p.Codebook[0])), 16)
		}
		return s
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Forward computes y = x·dequant(W)ᵀ + b for rows rows of x (rows·in values) into a new
// slice of rows·out values.
func (q *QuantizedLinear) Forward(x []float32, rows int) ([]float32, error) {
	return forwardNew(x, rows, q.in, q.out, q.ForwardInto)
}

// forwardNew allocates the rows·out output of a layer's ForwardInto and runs it.
func forwardNew(x []float32, rows, in, out int, into func([]float32, int, []float32) error) ([]float32, error) {
	y, err := outputFor(rows, in, out, len(x))
	if err != nil {
		return nil, err
	}
	if err := into(x, rows, y); err != nil {
		return nil, err
	}
	return y, nil
}

// ForwardInto writes rows·out values of y = x·dequant(W)ᵀ + b into y (exactly rows·out
// long), which is written only on success. It does not allocate.
func (q *QuantizedLinear) ForwardInto(x []float32, rows int, y []float32) error {
	r, err := size("rows", rows)
	if err != nil {
		return err
	}
	res := C.qlgo_quantized_forward(q.ptr, floatPtr(x), r, C.size_t(len(x)), floatPtr(y), C.size_t(len(y)))
	runtime.KeepAlive(q)
	return resultErr(res)
}

// Close frees the layer. Close is idempotent; it must not race a Forward on the layer.
func (q *QuantizedLinear) Close() error {
	if q.ptr != nil {
		C.qlinear_quantized_linear_free(q.ptr)
		q.ptr = nil
		runtime.SetFinalizer(q, nil)
	}
	return nil
}

// Model holds named quantized layers loaded from a qlinear file (docs/FORMAT.md). Layers
// taken from it share its weights and stay valid after the model is closed.
type Model struct {
	ptr *C.qlinear_model
}

func newModel(p *C.qlinear_model) *Model {
	m := &Model{ptr: p}
	runtime.SetFinalizer(m, (*Model).Close)
	return m
}

// LoadModel loads a qlinear file for dev. A missing file fails with ErrIO, a malformed one
// with ErrCorrupt.
func LoadModel(path string, dev *Device) (*Model, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var p *C.qlinear_model
	err := call(func() C.qlinear_status { return C.qlinear_model_load_file(cpath, dev.ptr, &p) })
	runtime.KeepAlive(dev)
	if err != nil {
		return nil, err
	}
	return newModel(p), nil
}

// LoadModelBytes loads a qlinear file held in data; data is not kept after the call.
func LoadModelBytes(data []byte, dev *Device) (*Model, error) {
	var empty C.uint8_t
	ptr := &empty
	if len(data) > 0 {
		ptr = (*C.uint8_t)(unsafe.Pointer(&data[0]))
	}
	var p *C.qlinear_model
	err := call(func() C.qlinear_status {
		return C.qlinear_model_load_memory(ptr, C.size_t(len(data)), dev.ptr, &p)
	})
	runtime.KeepAlive(data)
	runtime.KeepAlive(dev)
	if err != nil {
		return nil, err
	}
	return newModel(p), nil
}

// withLayerArrays calls f with C arrays of the layers' handles and names (C memory: they
// hold C pointers only), after checking the lists.
func withLayerArrays(names []string, layers []*QuantizedLinear, f func(**C.qlinear_quantized_linear, **C.char, C.size_t) C.qlinear_status) error {
	if len(names) != len(layers) {
		return invalid("%d names for %d layers", len(names), len(layers))
	}
	if len(layers) == 0 {
		return invalid("no layers to save")
	}
	n := C.size_t(len(layers))
	hs := unsafe.Slice((**C.qlinear_quantized_linear)(C.malloc(n*C.size_t(unsafe.Sizeof(uintptr(0))))), len(layers))
	cs := unsafe.Slice((**C.char)(C.malloc(n*C.size_t(unsafe.Sizeof(uintptr(0))))), len(layers))
	defer C.free(unsafe.Pointer(&hs[0]))
	defer C.free(unsafe.Pointer(&cs[0]))
	for i := range layers {
		hs[i] = nil
		if layers[i] != nil {
			hs[i] = layers[i].ptr
		}
		cs[i] = C.CString(names[i])
	}
	defer func() {
		for _, c := range cs {
			C.free(unsafe.Pointer(c))
		}
	}()
	err := call(func() C.qlinear_status {
		return f((**C.qlinear_quantized_linear)(unsafe.Pointer(&hs[0])), (**C.char)(unsafe.Pointer(&cs[0])), n)
	})
	runtime.KeepAlive(layers)
	return err
}

// SaveModel writes layers[i] under names[i], in order, to path. The file is written crash-safely:
// path holds either its old contents or the complete new file, never a torn one.
func SaveModel(path string, names []string, layers []*QuantizedLinear) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return withLayerArrays(names, layers, func(hs **C.qlinear_quantized_linear, cs **C.char, n C.size_t) C.qlinear_status {
		return C.qlinear_model_save_file(cpath, hs, cs, n)
	})
}

// SaveModelBytes returns the bytes SaveModel would write (for hosts that pack assets into
// their own archives); LoadModelBytes reads them back bit for bit.
func SaveModelBytes(names []string, layers []*QuantizedLinear) ([]byte, error) {
	var ptr *C.uint8_t
	var n C.size_t
	err := withLayerArrays(names, layers, func(hs **C.qlinear_quantized_linear, cs **C.char, count C.size_t) C.qlinear_status {
		return C.qlinear_model_save_memory(hs, cs, count, &ptr, &n)
	})
	if err != nil {
		return nil, err
	}
	defer C.qlinear_bytes_free(ptr, n)
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(ptr)), int(n))...), nil
}

// Len is the number of layers.
func (m *Model) Len() int {
	var n C.size_t
	if err := call(func() C.qlinear_status { return C.qlinear_model_layer_count(m.ptr, &n) }); err != nil {
		return 0
	}
	runtime.KeepAlive(m)
	return int(n)
}

// Names lists the layer names in file order.
func (m *Model) Names() []string {
	names := make([]string, 0, m.Len())
	for i := 0; i < cap(names); i++ {
		var c *C.char
		if err := call(func() C.qlinear_status { return C.qlinear_model_layer_name(m.ptr, C.size_t(i), &c) }); err != nil {
			break
		}
		names = append(names, C.GoString(c))
	}
	runtime.KeepAlive(m)
	return names
}

// Layer returns the layer called name as a new QuantizedLinear (sharing the model's
// weights; Close it independently). An unknown name fails with ErrInvalidArgument.
func (m *Model) Layer(name string) (*QuantizedLinear, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var p *C.qlinear_quantized_linear
	err := call(func() C.qlinear_status { return C.qlinear_model_get_layer(m.ptr, cname, &p) })
	runtime.KeepAlive(m)
	if err != nil {
		return nil, err
	}
	return newQuantized(p)
}

// Close frees the model; layers taken from it stay valid. Close is idempotent.
func (m *Model) Close() error {
	if m.ptr != nil {
		C.qlinear_model_free(m.ptr)
		m.ptr = nil
		runtime.SetFinalizer(m, nil)
	}
	return nil
}
