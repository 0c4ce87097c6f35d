// QuantizedLinear: the quantized layer handle, its parts and its forward pass.

package qlinear

/*
#cgo pkg-config: qlinear
#include "qlinear.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

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
	err = quantizedForward(q.ptr, x, r, y)
	runtime.KeepAlive(q)
	return err
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
